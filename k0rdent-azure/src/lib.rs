//! Azure provider for k0rdent-deploy (in progress).
