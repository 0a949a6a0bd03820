//! The HTTP side: accept loop, token endpoint, authentication, latency, throttling, faults,
//! logging, and dropping a connection after a write was processed.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;

use super::arm;
use super::faults::LoggedRequest;
use super::operation::Job;
use super::reply::{Query, Reply, err};
use super::world::World;
use super::{Catalog, Config, Emu, Emulator};

/// Why a connection is closed without a response (a fault).
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

pub(crate) async fn start(cfg: Config, catalog: Catalog) -> std::io::Result<Emulator> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let cfg_latency = cfg.latency;
    let emu = Arc::new(Emu {
        cfg,
        base: format!("http://{addr}"),
        world: Mutex::new(World::default()),
        catalog: Mutex::new(catalog),
        faults: Default::default(),
        log: Default::default(),
        latency_us: std::sync::atomic::AtomicU64::new(
            u64::try_from(cfg_latency.as_micros()).unwrap_or(u64::MAX),
        ),
        vaults: Mutex::default(),
        vault_denied: std::sync::atomic::AtomicBool::new(false),
    });
    let e2 = emu.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let emu = e2.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| serve(emu.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(Emulator { emu, task })
}

fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[fastrand::usize(..16)]))
        .collect()
}

pub(crate) fn issue_token(emu: &Emu) -> String {
    let t = format!("emu.{}", random_hex(48));
    emu.world()
        .tokens
        .insert(t.clone(), Instant::now() + emu.cfg.token_lifetime);
    t
}

fn token_endpoint(emu: &Emu, tenant: &str, body: &[u8]) -> Reply {
    let form = Query::parse(&String::from_utf8_lossy(body));
    let bad = |code: &str, desc: &str| {
        Reply::json(401, json!({ "error": code, "error_description": desc }))
    };
    if !tenant.eq_ignore_ascii_case(&emu.cfg.tenant) {
        return Reply::json(
            400,
            json!({ "error": "invalid_request", "error_description": "AADSTS90002: Tenant not found." }),
        );
    }
    if form.get("grant_type") != Some("client_credentials") {
        return Reply::json(400, json!({ "error": "unsupported_grant_type" }));
    }
    if form.get("client_id") != Some(emu.cfg.client_id.as_str()) {
        return bad(
            "unauthorized_client",
            "AADSTS700016: Application not found in the directory.",
        );
    }
    let secret_ok = form.get("client_secret") == Some(emu.cfg.client_secret.as_str());
    let assertion_ok = emu.cfg.assertion.is_some()
        && form.get("client_assertion") == emu.cfg.assertion.as_deref()
        && form.get("client_assertion_type")
            == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    if !secret_ok && !assertion_ok {
        return bad(
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    let secs = emu.cfg.token_lifetime.as_secs();
    Reply::json(
        200,
        json!({
            "token_type": "Bearer",
            "expires_in": secs,
            "ext_expires_in": secs,
            "access_token": issue_token(emu),
        }),
    )
}

fn check_auth(emu: &Emu, header: Option<&str>) -> Option<Reply> {
    if !emu.cfg.require_auth {
        return None;
    }
    let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return Some(err(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ));
    };
    let w = emu.world();
    match w.tokens.get(token) {
        Some(exp) if *exp > Instant::now() => {
            let other = emu.faults.subscription_tenant()?;
            Some(err(
                401,
                "InvalidAuthenticationTokenTenant",
                format!(
                    "The access token is from the wrong issuer 'https://sts.windows.net/{}/'. It must match the tenant 'https://sts.windows.net/{other}/' associated with this subscription. Please use the authority (URL) 'https://login.windows.net/{other}' to get the token. Note, if the subscription is transferred to another tenant there is no impact to the services, but information about new tenant could take time to propagate (up to an hour). If you just transferred your subscription and see this error message, please try back later.",
                    emu.cfg.tenant
                ),
            ))
        }
        Some(_) => Some(err(
            401,
            "ExpiredAuthenticationToken",
            "The access token expiry UTC time is earlier than current UTC time.",
        )),
        None => Some(err(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        )),
    }
}

fn to_response(emu: &Emu, r: Reply) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(r.status);
    let has_retry = r
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("retry-after"));
    for (k, v) in &r.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    if !has_retry && (r.status == 429 || r.status == 202) {
        b = retry_headers(emu, b);
    }
    // Every ARM response carries `Date` (RFC 9110 IMF-fixdate), from the server's clock.
    let now = chrono::Utc::now() + emu.cfg.clock_offset;
    b = b.header("date", now.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
    b = b.header("x-ms-request-id", super::reply::guid()).header(
        "content-type",
        if r.html.is_some() {
            "text/html; charset=us-ascii"
        } else {
            "application/json; charset=utf-8"
        },
    );
    let body = match (r.html, r.body) {
        (Some(page), _) => page,
        (None, Some(v)) => v.to_string(),
        (None, None) => String::new(),
    };
    b.body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// What Azure's front end answers to a write without a length (an IIS page, not JSON).
fn length_required() -> Reply {
    Reply::html(
        411,
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"\"http://www.w3.org/TR/html4/strict.dtd\">\r\n\
         <HTML><HEAD><TITLE>Length Required</TITLE>\r\n\
         <META HTTP-EQUIV=\"Content-Type\" Content=\"text/html; charset=us-ascii\"></HEAD>\r\n\
         <BODY><h2>Length Required</h2>\r\n\
         <hr><p>HTTP Error 411. The request must be chunked or have a content length.</p>\r\n\
         </BODY></HTML>\r\n",
    )
}

pub(crate) fn retry_headers(
    emu: &Emu,
    b: hyper::http::response::Builder,
) -> hyper::http::response::Builder {
    let d = emu.cfg.retry_after;
    b.header("Retry-After", d.as_secs_f64().ceil().to_string())
        .header("retry-after-ms", d.as_millis().to_string())
}

async fn serve(emu: Arc<Emu>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let client_request_id = header("x-ms-client-request-id");
    let correlation_id = header("x-ms-correlation-request-id");
    let states_length = header("content-length").is_some()
        || header("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    // The whole request is received before anything happens.
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let token_call = method == "POST"
        && segs.len() == 4
        && segs[1].eq_ignore_ascii_case("oauth2")
        && segs[3].eq_ignore_ascii_case("token");
    let mutating = !token_call && matches!(method.as_str(), "PUT" | "PATCH" | "POST" | "DELETE");
    let seq = emu.log.push(LoggedRequest {
        seq: 0,
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        status: 0,
        resource_type: arm::resource_type(&segs),
        mutating,
        client_request_id,
        correlation_id,
        at: Instant::now(),
    });
    if mutating {
        emu.log.write_started();
    }
    let latency = emu.latency_us.load(std::sync::atomic::Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_micros(latency)).await;
    }
    let needs_length = matches!(method.as_str(), "POST" | "PUT" | "PATCH");
    let (reply, jobs) = if token_call {
        (token_endpoint(&emu, segs[0], &body), Vec::new())
    } else if segs.first() == Some(&"vaults") {
        // Key Vault's data plane: its own authentication challenge and error shapes.
        let q = Query::parse(&query);
        (
            super::keyvault::handle(&emu, &method, &segs, &q, auth.as_deref(), &body),
            Vec::new(),
        )
    } else if needs_length && !states_length && emu.faults.length_required() {
        // Azure's front end, before ARM sees the request.
        (length_required(), Vec::new())
    } else if let Some(r) = check_auth(&emu, auth.as_deref()) {
        (r, Vec::new())
    } else if let Some(after) = emu.faults.throttled(&method, &path) {
        (
            err(
                429,
                "TooManyRequests",
                "The request is being throttled as the limit has been reached for operation type (emulated).",
            )
            .header("Retry-After", after.as_secs_f64().ceil().to_string()),
            Vec::new(),
        )
    } else if emu.faults.throttle_now() {
        (
            err(
                429,
                "TooManyRequests",
                "The request is being throttled as the limit has been reached for operation type (emulated).",
            ),
            Vec::new(),
        )
    } else if emu.faults.forbidden(&method, &path) {
        (
            err(
                403,
                "AuthorizationFailed",
                format!(
                    "The client '{client}' with object id '{client}' does not have authorization to perform action '{action}' over scope '{path}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                    client = emu.cfg.client_id,
                    action = arm::action(&method, &segs),
                ),
            ),
            Vec::new(),
        )
    } else {
        arm::handle(&emu, &method, &path, &Query::parse(&query), &body)
    };
    let mut jobs = jobs;
    if !token_call {
        jobs.extend(super::inbound_sync::changed(&emu));
    }
    for job in jobs {
        spawn_job(emu.clone(), job);
    }
    if mutating {
        emu.log.write_finished();
    }
    if reply.status < 300 && emu.faults.drop_now(&method, &path) {
        tracing::debug!(method = %method, path = %path, "emulator: dropping the connection after processing");
        return Err(Dropped);
    }
    emu.log.set_status(seq, reply.status);
    tracing::trace!(method = %method, path = %path, status = reply.status, "emulator");
    Ok(to_response(&emu, reply))
}

fn spawn_job(emu: Arc<Emu>, job: Job) {
    let Some(backend) = emu.cfg.backend.clone() else {
        return;
    };
    tokio::spawn(async move {
        if let Job::Inbound { name } = &job {
            let Some(rules) = super::inbound_sync::current(&emu, name) else {
                return;
            };
            if let Err(e) = backend.inbound_changed(name, &rules).await {
                tracing::warn!(vm = %name, error = %e, "VM backend: applying the NSG change failed");
            }
            return;
        }
        let (op, result, ip) = match &job {
            Job::Create { op, vm, pip_id } => match backend.create(vm).await {
                Ok(ip) => (op.clone(), Ok(()), ip.map(|i| (pip_id.clone(), i))),
                Err(e) => (op.clone(), Err(e), None),
            },
            Job::Power { op, name, start } => {
                let r = if *start {
                    backend.start(name).await
                } else {
                    backend.deallocate(name).await
                };
                (op.clone(), r, None)
            }
            Job::Inbound { .. } => return,
        };
        let mut w = emu.world();
        if let Some((Some(pip), addr)) = ip
            && let Some(p) = w.get_mut(&pip)
        {
            p.body["properties"]["ipAddress"] = json!(addr.to_string());
        }
        if let Some(o) = w.ops.get_mut(&op) {
            o.backend_done = true;
            o.backend_error = result.err().map(|e| e.to_string());
        }
    });
}
