//! A slow TCP proxy on loopback for tests: it forwards every connection to a target port,
//! sending what the client writes on in small chunks with a pause between them, so an upload
//! takes long enough that a test can kill the client in the middle of it. It counts the
//! requests whose request line contains a marker (`PUT /…/deployment-state.yaml`) that are in
//! flight, so the test knows whether a kill landed mid-upload. A client that dies mid-request
//! closes its side, and the proxy then closes the upstream side: the server sees a request cut
//! short, as it would from a killed process.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// A running proxy; it stops accepting when dropped (open connections finish on their own).
pub struct SlowProxy {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

#[derive(Default)]
struct Counters {
    in_flight: AtomicI64,
    started: AtomicU64,
    answered: AtomicU64,
    cut: AtomicU64,
}

/// How the proxy slows the client's bytes and which requests it counts.
#[derive(Debug, Clone)]
pub struct Slowness {
    /// Bytes per chunk sent upstream.
    pub chunk: usize,
    /// Pause after each chunk.
    pub pause: Duration,
    /// A request line containing all of these is counted (e.g. `["PUT ", "deployment-state.yaml"]`).
    pub marker: Vec<String>,
    /// A request line containing any of these is not counted (e.g. `comp=`).
    pub except: Vec<String>,
}

impl SlowProxy {
    /// Starts a proxy to `127.0.0.1:target`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    #[allow(clippy::expect_used)]
    pub fn start(target: u16, slowness: Slowness) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counters.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                serve(client, server, slowness.clone(), c.clone());
            }
        });
        SlowProxy {
            port,
            counters,
            stop,
        }
    }

    /// Marked requests sent but not answered yet.
    pub fn in_flight(&self) -> i64 {
        self.counters.in_flight.load(Ordering::SeqCst)
    }

    /// Marked requests started so far.
    pub fn started(&self) -> u64 {
        self.counters.started.load(Ordering::SeqCst)
    }

    /// Marked requests cut short: the client went away before the answer (mid-upload, the
    /// rest of the body was never sent).
    pub fn cut(&self) -> u64 {
        self.counters.cut.load(Ordering::SeqCst)
    }

    /// Marked requests answered so far.
    pub fn answered(&self) -> u64 {
        self.counters.answered.load(Ordering::SeqCst)
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Whether the client closed its side (a killed process's socket is closed by the kernel):
/// a peek that sees the end of the stream within 1 ms.
fn client_closed(c: &TcpStream) -> bool {
    if c.set_read_timeout(Some(Duration::from_millis(1))).is_err() {
        return false;
    }
    let closed = matches!(c.peek(&mut [0u8; 1]), Ok(0));
    let _ = c.set_read_timeout(None);
    closed
}

fn serve(client: TcpStream, server: TcpStream, slowness: Slowness, counters: Arc<Counters>) {
    let (Ok(mut c_read), Ok(mut s_write)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let (mut s_read, mut c_write) = (server, client);
    // Per connection: is a marked request waiting for its answer (HTTP/1.1 answers in order,
    // and a client sends the next request only after the answer to this one)?
    let pending = Arc::new(AtomicBool::new(false));
    let p_up = pending.clone();
    let c_up = counters.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let text = String::from_utf8_lossy(&buf[..n]);
            for line in text.lines().filter(|l| l.ends_with("HTTP/1.1")) {
                let marked = slowness.marker.iter().all(|m| line.contains(m.as_str()))
                    && !slowness.except.iter().any(|m| line.contains(m.as_str()));
                if marked && !p_up.swap(true, Ordering::SeqCst) {
                    c_up.in_flight.fetch_add(1, Ordering::SeqCst);
                    c_up.started.fetch_add(1, Ordering::SeqCst);
                }
            }
            let mut gone = false;
            for chunk in buf[..n].chunks(slowness.chunk.max(1)) {
                if s_write.write_all(chunk).is_err() {
                    break;
                }
                std::thread::sleep(slowness.pause);
                // A client that died mid-upload does not get the rest sent for it.
                if client_closed(&c_read) {
                    gone = true;
                    break;
                }
            }
            if gone {
                break;
            }
        }
        // The client is gone (or closed): so is the request it was sending.
        let _ = s_write.shutdown(Shutdown::Both);
        if p_up.swap(false, Ordering::SeqCst) {
            c_up.in_flight.fetch_sub(1, Ordering::SeqCst);
            c_up.cut.fetch_add(1, Ordering::SeqCst);
        }
    });
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match s_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if buf[..n].starts_with(b"HTTP/1.1 ") && pending.swap(false, Ordering::SeqCst) {
                counters.in_flight.fetch_sub(1, Ordering::SeqCst);
                counters.answered.fetch_add(1, Ordering::SeqCst);
            }
            if c_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = c_write.shutdown(Shutdown::Both);
    });
}
