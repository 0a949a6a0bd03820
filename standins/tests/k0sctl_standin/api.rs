//! A minimal Kubernetes API for nodes only, over TLS that requires a client certificate, to
//! see what the stand-in k0sctl registers: `GET`/`DELETE /api/v1/nodes/NAME`,
//! `POST /api/v1/nodes`, `PUT /api/v1/nodes/NAME/status` (with the `resourceVersion`
//! precondition). Certificates come from the `openssl` command.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

/// What the server has and what it was asked.
#[derive(Default)]
pub struct World {
    pub nodes: BTreeMap<String, Value>,
    /// `METHOD path` of every request.
    pub requests: Vec<String>,
}

pub struct Api {
    pub world: Arc<Mutex<World>>,
    /// A kubeconfig for the API with the client certificate.
    pub kubeconfig: std::path::PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn certs(dir: &Path) {
    let ec = [
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
    ];
    for k in ["ca.key", "server.key", "client.key"] {
        let mut a = ec.to_vec();
        a.push(k);
        openssl(dir, &a);
    }
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=test-ca",
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
            "-out",
            "ca.crt",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (who, subj) in [
        ("server", "/CN=kube-apiserver"),
        ("client", "/O=system:masters/CN=admin"),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                &format!("{who}.key"),
                "-subj",
                subj,
                "-out",
                &format!("{who}.csr"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{who}.ext"),
                "-out",
                &format!("{who}.crt"),
            ],
        );
    }
}

fn respond(code: u16, body: &Value) -> Vec<u8> {
    let b = body.to_string();
    format!(
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
        b.len()
    )
    .into_bytes()
}

fn status(code: u16, reason: &str, msg: &str) -> Vec<u8> {
    respond(
        code,
        &json!({"kind":"Status","apiVersion":"v1","status":"Failure","message":msg,"reason":reason,"code":code}),
    )
}

fn handle(world: &Mutex<World>, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut w = world.lock().unwrap();
    w.requests.push(format!("{method} {path}"));
    let rest = path.strip_prefix("/api/v1/nodes").unwrap_or("?");
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match (method, parts.as_slice()) {
        ("GET", [name]) => match w.nodes.get(*name) {
            Some(n) => respond(200, n),
            None => status(404, "NotFound", &format!("nodes \"{name}\" not found")),
        },
        ("POST", []) => {
            let mut n: Value = serde_json::from_slice(body).unwrap();
            let name = n["metadata"]["name"].as_str().unwrap().to_owned();
            if w.nodes.contains_key(&name) {
                return status(
                    409,
                    "AlreadyExists",
                    &format!("nodes \"{name}\" already exists"),
                );
            }
            n["metadata"]["resourceVersion"] = json!("1");
            w.nodes.insert(name, n.clone());
            respond(201, &n)
        }
        ("PUT", [name, "status"]) => {
            let mut n: Value = serde_json::from_slice(body).unwrap();
            let Some(old) = w.nodes.get(*name) else {
                return status(404, "NotFound", &format!("nodes \"{name}\" not found"));
            };
            let rv = old["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .to_owned();
            if n["metadata"]["resourceVersion"].as_str() != Some(rv.as_str()) {
                return status(409, "Conflict", "the object has been modified");
            }
            let next = (rv.parse::<u64>().unwrap() + 1).to_string();
            n["metadata"]["resourceVersion"] = json!(next);
            w.nodes.insert((*name).to_owned(), n.clone());
            respond(200, &n)
        }
        ("DELETE", [name]) => match w.nodes.remove(*name) {
            Some(_) => respond(200, &json!({"kind":"Status","status":"Success"})),
            None => status(404, "NotFound", &format!("nodes \"{name}\" not found")),
        },
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

impl Api {
    /// Starts the server on 127.0.0.1 (threads end with the test process).
    pub fn start(dir: &Path) -> Api {
        std::fs::create_dir_all(dir).unwrap();
        certs(dir);
        let ca = CertificateDer::from_pem_file(dir.join("ca.crt")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .unwrap();
        let chain = vec![CertificateDer::from_pem_file(dir.join("server.crt")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder()
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let world = Arc::new(Mutex::new(World::default()));
        let w = world.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let config = config.clone();
                let w = w.clone();
                std::thread::spawn(move || {
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    let mut reader = BufReader::new(&mut tls);
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let mut it = line.split_whitespace();
                    let (method, path) = (
                        it.next().unwrap_or("").to_owned(),
                        it.next().unwrap_or("").to_owned(),
                    );
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let reply = handle(&w, &method, &path, &body);
                    let _ = tls.write_all(&reply);
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        let b64 = |f: &str| {
            base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join(f)).unwrap())
        };
        let kubeconfig = dir.join("admin.conf");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority-data: {}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: admin\ncurrent-context: t\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
                b64("ca.crt"),
                b64("client.crt"),
                b64("client.key")
            ),
        )
        .unwrap();
        Api { world, kubeconfig }
    }
}
