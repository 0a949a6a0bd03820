//! A real Azurite blob service for tests: `azurite-blob` from `tests/azurite/node_modules`
//! (pinned there; `.ci/run` installs it with `npm ci --prefix tests/azurite`), on a loopback
//! port, with telemetry off. The process dies with the test binary, even if the test panics
//! or is killed: it runs under a shell that kills it when its stdin (a pipe from the test)
//! closes.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Azurite's well-known development account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development account key (public, not a secret).
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How Azurite is started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep its data in this directory (so a restart keeps the blobs) instead of in memory.
    pub location: Option<PathBuf>,
    /// This port instead of a free one (a restart on the same endpoint).
    pub port: Option<u16>,
    /// Serve HTTPS with this certificate and key (PEM files) and accept bearer tokens
    /// (`--oauth basic`).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A running Azurite blob service; dropping it stops it.
pub struct Azurite {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    https: bool,
}

/// The `azurite-blob` program: `$AZURITE_BLOB`, else the workspace's pinned install.
///
/// # Panics
/// When it is not installed, with how to install it (a missing tool fails the test).
pub fn program() -> PathBuf {
    if let Some(p) = std::env::var_os("AZURITE_BLOB") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/azurite/node_modules/.bin/azurite-blob");
    assert!(
        p.exists(),
        "azurite is not installed at {}: run `npm ci --prefix tests/azurite` (Node.js 20+), \
         or set AZURITE_BLOB to an azurite-blob program",
        p.display()
    );
    p
}

impl Azurite {
    /// Azurite in memory on a free loopback port.
    pub fn start() -> Azurite {
        Azurite::start_with(&Options::default())
    }

    /// Azurite as `opts` says.
    ///
    /// # Panics
    /// When it does not start listening within 30 s.
    pub fn start_with(opts: &Options) -> Azurite {
        let mut args: Vec<String> = vec![
            "--blobHost".into(),
            "127.0.0.1".into(),
            "--blobPort".into(),
            opts.port.unwrap_or(0).to_string(),
            "--disableTelemetry".into(),
            "--silent".into(),
        ];
        match &opts.location {
            Some(dir) => {
                args.push("--location".into());
                args.push(dir.display().to_string());
            }
            None => args.push("--inMemoryPersistence".into()),
        }
        if let Some((cert, key)) = &opts.tls {
            for (flag, v) in [
                ("--cert", cert.display().to_string()),
                ("--key", key.display().to_string()),
                ("--oauth", "basic".into()),
            ] {
                args.push(flag.into());
                args.push(v);
            }
        }
        // Its output goes to a log file (read for the port): a pipe would break when this
        // process exits before Azurite does.
        static N: AtomicU32 = AtomicU32::new(0);
        let log = std::env::temp_dir().join(format!(
            "azurite-{}-{}.log",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let out = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        // The shell starts Azurite and kills it as soon as its stdin closes: when this
        // process exits, however it exits.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" "$@" & p=$!; trap 'kill $p 2>/dev/null' EXIT; cat >/dev/null; kill $p; wait $p"#)
            .arg(program())
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sh for azurite-blob: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(port) = text.lines().find_map(|line| {
                let rest = line.split("successfully listens on ").nth(1)?;
                rest.trim().rsplit(':').next()?.parse::<u16>().ok()
            }) {
                break port;
            }
            if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                panic!("azurite-blob did not start listening within 30 s:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let _ = std::fs::remove_file(&log);
        Azurite {
            stdin: child.stdin.take(),
            child,
            port,
            https: opts.tls.is_some(),
        }
    }

    /// The blob endpoint (path-style, with the account).
    pub fn endpoint(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// `AZURE_STORAGE_CONNECTION_STRING` for it.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};BlobEndpoint={};",
            self.endpoint()
        )
    }

    /// `AZURE_STORAGE_CONNECTION_STRING` for this account reached through another loopback
    /// port (a proxy in front of it).
    pub fn connection_string_via(&self, port: u16) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
        )
    }

    /// Stops it and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A container name no other test in this process uses.
pub fn fresh_container(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let tag: String = tag
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(30)
        .collect();
    format!(
        "t{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        tag
    )
}
