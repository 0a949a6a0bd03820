//! The blocking libssh2 layer (run on tokio's blocking pool by the async types): TCP connect,
//! handshake, public-key auth, and exec with a deadline, bounded output capture and stdin.
//!
//! Exec runs the session in non-blocking mode and waits on the socket with `poll`, so stdout
//! and stderr are drained together (a chatty stderr cannot stall the command) and a deadline
//! holds however the remote side behaves.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use ssh2::{BlockDirections, ErrorCode, MethodType, Session};

use super::hostkey::HostKey;

const EAGAIN: i32 = -37;
const LIBSSH2_TIMEOUT: i32 = -9;

/// A failure in the blocking layer (classified by the connector, which knows the node).
#[derive(Debug)]
pub(crate) enum Fail {
    Connect(io::Error),
    /// A deadline passed during this operation.
    Timeout(String),
    /// libssh2 reported an error during this operation.
    Ssh(String, ssh2::Error),
    /// A socket error during this operation.
    Io(String, io::Error),
    /// The server refused authentication.
    Auth(String),
}

/// A connected session and a second handle on its socket for `poll`.
pub(crate) struct Conn {
    pub(crate) session: Session,
    poll_sock: TcpStream,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conn(..)")
    }
}

fn ssh_timeout_or(op: &str, e: ssh2::Error) -> Fail {
    if e.code() == ErrorCode::Session(LIBSSH2_TIMEOUT) {
        Fail::Timeout(op.to_owned())
    } else {
        Fail::Ssh(op.to_owned(), e)
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

impl Conn {
    /// TCP connect and SSH handshake; returns the key the server presented.
    pub(crate) fn open(
        addr: SocketAddr,
        connect_timeout: Duration,
        handshake_timeout: Duration,
        hostkey_methods: Option<&str>,
    ) -> Result<(Conn, HostKey), Fail> {
        let tcp = TcpStream::connect_timeout(&addr, connect_timeout).map_err(Fail::Connect)?;
        let _ = tcp.set_nodelay(true);
        let poll_sock = tcp
            .try_clone()
            .map_err(|e| Fail::Io("socket setup".into(), e))?;
        let mut session = Session::new().map_err(|e| Fail::Ssh("session setup".into(), e))?;
        session.set_tcp_stream(tcp);
        session.set_blocking(true);
        session.set_timeout(millis(handshake_timeout));
        if let Some(m) = hostkey_methods.filter(|m| !m.is_empty()) {
            session
                .method_pref(MethodType::HostKey, m)
                .map_err(|e| Fail::Ssh("host key preference".into(), e))?;
        }
        session
            .handshake()
            .map_err(|e| ssh_timeout_or("SSH handshake", e))?;
        let (blob, _) = session
            .host_key()
            .ok_or_else(|| Fail::Ssh("reading the host key".into(), ssh2::Error::unknown()))?;
        let key = HostKey::from_blob(blob).map_err(|e| {
            Fail::Io(
                "reading the host key".into(),
                io::Error::other(e.to_string()),
            )
        })?;
        Ok((Conn { session, poll_sock }, key))
    }

    /// Public-key authentication from an in-memory private key (OpenSSH or PEM format).
    pub(crate) fn authenticate(
        &self,
        user: &str,
        private_key: &str,
        passphrase: Option<&str>,
        timeout: Duration,
    ) -> Result<(), Fail> {
        self.session.set_blocking(true);
        self.session.set_timeout(millis(timeout));
        match self
            .session
            .userauth_pubkey_memory(user, None, private_key, passphrase)
        {
            Ok(()) if self.session.authenticated() => Ok(()),
            Ok(()) => Err(Fail::Auth("the server did not accept the key".into())),
            Err(e) if e.code() == ErrorCode::Session(LIBSSH2_TIMEOUT) => {
                Err(Fail::Timeout("authentication".into()))
            }
            Err(e) => Err(Fail::Auth(e.message().to_owned())),
        }
    }

    /// Waits until the socket is ready in the direction libssh2 is blocked on.
    fn wait(&self, deadline: Instant, op: &str) -> Result<(), Fail> {
        let now = Instant::now();
        if now >= deadline {
            return Err(Fail::Timeout(op.to_owned()));
        }
        let flags = match self.session.block_directions() {
            BlockDirections::Outbound => PollFlags::OUT,
            BlockDirections::Both => PollFlags::IN | PollFlags::OUT,
            BlockDirections::Inbound | BlockDirections::None => PollFlags::IN,
        };
        // Wake at least every 250 ms: libssh2 may have buffered data without the socket
        // becoming readable again.
        let slice = (deadline - now).min(Duration::from_millis(250));
        let ts = rustix::event::Timespec::try_from(slice).unwrap_or(rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 250_000_000,
        });
        let mut fds = [PollFd::new(&self.poll_sock, flags)];
        match poll(&mut fds, Some(&ts)) {
            Ok(_) => Ok(()),
            Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(Fail::Io(op.to_owned(), e.into())),
        }
    }

    /// Repeats a libssh2 call until it stops returning EAGAIN or the deadline passes.
    fn again<T>(
        &self,
        deadline: Instant,
        op: &str,
        mut f: impl FnMut() -> Result<T, ssh2::Error>,
    ) -> Result<T, Fail> {
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if e.code() == ErrorCode::Session(EAGAIN) => self.wait(deadline, op)?,
                Err(e) => return Err(Fail::Ssh(op.to_owned(), e)),
            }
        }
    }

    /// Runs `command` on a new channel of this session.
    pub(crate) fn exec(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        deadline: Instant,
        max_output: usize,
    ) -> Result<RawOutput, Fail> {
        self.session.set_blocking(false);
        let op = "command";
        let mut ch = self.again(deadline, "opening a channel", || {
            self.session.channel_session()
        })?;
        let res = self.run_channel(&mut ch, command, stdin, deadline, max_output, op);
        if res.is_err() {
            // Best effort: tell the server we are done with it; never block on it.
            let _ = ch.close();
        }
        res
    }

    fn run_channel(
        &self,
        ch: &mut ssh2::Channel,
        command: &str,
        stdin: Option<&[u8]>,
        deadline: Instant,
        max_output: usize,
        op: &str,
    ) -> Result<RawOutput, Fail> {
        self.again(deadline, op, || ch.exec(command))?;
        if let Some(data) = stdin {
            let mut off = 0;
            while off < data.len() {
                match ch.write(&data[off..]) {
                    Ok(n) => off += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(deadline, op)?,
                    Err(e) => return Err(Fail::Io("sending stdin".into(), e)),
                }
            }
            self.again(deadline, op, || ch.send_eof())?;
        }
        let mut out = RawOutput::default();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let mut progressed = false;
            for stream in [0, 1] {
                loop {
                    let r = if stream == 0 {
                        ch.read(&mut buf)
                    } else {
                        ch.stderr().read(&mut buf)
                    };
                    match r {
                        Ok(0) => break,
                        Ok(n) => {
                            progressed = true;
                            let (dst, trunc) = if stream == 0 {
                                (&mut out.stdout, &mut out.stdout_truncated)
                            } else {
                                (&mut out.stderr, &mut out.stderr_truncated)
                            };
                            let room = max_output.saturating_sub(dst.len());
                            dst.extend_from_slice(&buf[..n.min(room)]);
                            if n > room {
                                *trunc = true;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(Fail::Io("reading output".into(), e)),
                    }
                }
            }
            if ch.eof() && !progressed {
                break;
            }
            if !progressed {
                self.wait(deadline, op)?;
            }
        }
        self.again(deadline, op, || ch.close())?;
        self.again(deadline, op, || ch.wait_close())?;
        out.status = ch
            .exit_status()
            .map_err(|e| Fail::Ssh("reading the exit status".into(), e))?;
        out.signal = ch.exit_signal().ok().and_then(|s| s.exit_signal);
        Ok(out)
    }
}

/// What a command produced.
#[derive(Debug, Default)]
pub(crate) struct RawOutput {
    pub(crate) status: i32,
    pub(crate) signal: Option<String>,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) stdout_truncated: bool,
    pub(crate) stderr_truncated: bool,
}
