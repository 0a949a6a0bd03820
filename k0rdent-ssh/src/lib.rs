//! Node access for k0rdent-deploy (in progress).
