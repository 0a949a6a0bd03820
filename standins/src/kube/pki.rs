//! The fake cluster's certificates: one CA, a server certificate per listener (its address
//! as IP SAN, like k0s puts the controllers' addresses in the API server's certificate) and
//! client certificates whose subject is the identity (CN = user, O = group), as the API
//! server's x509 authenticator reads them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::KubeError;

/// Who a client certificate says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name (certificate CN).
    pub user: String,
    /// The groups (certificate O); `system:masters` may do anything.
    pub groups: Vec<String>,
}

impl Identity {
    /// Whether the identity is in `system:masters`, the group RBAC never restricts.
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// A client certificate and its key, PEM-encoded, ready for a kubeconfig.
#[derive(Clone)]
pub struct ClientCredentials {
    /// Who the certificate names.
    pub identity: Identity,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("identity", &self.identity)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// The CA and the identities it issued.
pub(crate) struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    issued: Mutex<HashMap<Vec<u8>, Identity>>,
}

fn ca_params(common_name: &str) -> Result<CertificateParams, KubeError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    Ok(params)
}

fn client_params(identity: &Identity) -> Result<CertificateParams, KubeError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, identity.user.as_str());
    for group in &identity.groups {
        params
            .distinguished_name
            .push(DnType::OrganizationName, group.as_str());
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}

impl Pki {
    pub fn new() -> Result<Self, KubeError> {
        let key = KeyPair::generate()?;
        let params = ca_params("fake-kube-ca")?;
        let cert = params.self_signed(&key)?;
        Ok(Pki {
            ca_pem: cert.pem(),
            ca_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            issued: Mutex::new(HashMap::new()),
        })
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A server TLS configuration whose certificate names `ips` and `dns`, requiring a client
    /// certificate issued by this CA.
    pub fn server_config(
        &self,
        ips: &[IpAddr],
        dns: &[String],
    ) -> Result<Arc<rustls::ServerConfig>, KubeError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(dns.to_vec())?;
        params
            .subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone())?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert.der().clone(), self.ca_der.clone()], key_der)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Issues a client certificate for `identity` and remembers it, so requests made with it
    /// are attributed to that identity.
    pub fn issue_client(&self, identity: Identity) -> Result<ClientCredentials, KubeError> {
        let key = KeyPair::generate()?;
        let cert = client_params(&identity)?.signed_by(&key, &self.issuer)?;
        if let Ok(mut issued) = self.issued.lock() {
            issued.insert(cert.der().to_vec(), identity.clone());
        }
        Ok(ClientCredentials {
            identity,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The identity of a verified peer certificate.
    pub fn identity_of(&self, der: &[u8]) -> Option<Identity> {
        self.issued
            .lock()
            .ok()
            .and_then(|issued| issued.get(der).cloned())
    }
}

/// Credentials from a CA the fake server has never seen: a kubeconfig with them must fail.
pub(crate) fn foreign_credentials() -> Result<ClientCredentials, KubeError> {
    let ca_key = KeyPair::generate()?;
    let issuer = Issuer::new(ca_params("some-other-ca")?, ca_key);
    let identity = Identity {
        user: "intruder".into(),
        groups: vec!["system:masters".into()],
    };
    let key = KeyPair::generate()?;
    let cert = client_params(&identity)?.signed_by(&key, &issuer)?;
    Ok(ClientCredentials {
        identity,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A kubeconfig with one cluster, user and context, all named `context`, data inline.
pub(crate) fn render_kubeconfig(
    server_url: &str,
    context: &str,
    ca_pem: &str,
    creds: &ClientCredentials,
) -> String {
    let b64 = |s: &str| STANDARD.encode(s.as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: {server_url}\n    certificate-authority-data: {ca}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {user}\ncurrent-context: {context}\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
        ca = b64(ca_pem),
        user = format!("{}-{context}", creds.identity.user.replace(':', "-")),
        cert = b64(&creds.cert_pem),
        key = b64(&creds.key_pem),
    )
}
