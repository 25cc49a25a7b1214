//! Starting and stopping `gvhttpd serve` for one comparison run.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to print its readiness line.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A running server, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
}

/// Why a server did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// The model exited with status 2 before readiness (its one-line reason).
    Unavailable(String),
    /// Anything else (exec failure, crash, no readiness line).
    Failed(String),
}

impl Server {
    /// Starts `exe serve --model M --addr 127.0.0.1:0 --workers N` pinned to
    /// `cpus` and waits for `gvhttpd: listening on http://ADDR (...)`.
    pub fn start(exe: &Path, model: &str, cpus: &[usize]) -> Result<Server, StartError> {
        let mut cmd = Command::new(exe);
        cmd.args([
            "serve",
            "--model",
            model,
            "--addr",
            "127.0.0.1:0",
            "--workers",
        ])
        .arg(cpus.len().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        // The child inherits the CPU mask of the thread that forks it, so fork
        // from a thread pinned to the server CPUs (this thread keeps its own mask).
        let cpus = cpus.to_vec();
        let mut child = std::thread::scope(|s| {
            s.spawn(move || {
                crate::sys::pin_current_thread(&cpus).map_err(StartError::Failed)?;
                cmd.spawn()
                    .map_err(|e| StartError::Failed(format!("cannot start {}: {e}", exe.display())))
            })
            .join()
            .unwrap_or_else(|_| Err(StartError::Failed("spawner thread panicked".into())))
        })?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut sent = false;
            for line in lines.by_ref().map_while(Result::ok) {
                if !sent {
                    if let Some(addr) = parse_ready(&line) {
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
            }
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(addr) => Ok(Server { child, addr, pid }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let msg = err
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("")
                    .to_string();
                match status.and_then(|s| s.code()) {
                    Some(2) => Err(StartError::Unavailable(if msg.is_empty() {
                        format!("model {model} is unavailable (exit 2)")
                    } else {
                        msg
                    })),
                    code => Err(StartError::Failed(format!(
                        "serve --model {model} did not become ready (exit {code:?}): {msg}"
                    ))),
                }
            }
        }
    }

    /// True while the process has not exited.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `gvhttpd: listening on http://127.0.0.1:PORT (model M, N workers)`.
pub fn parse_ready(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix("gvhttpd: listening on http://")?;
    let addr = rest.split_whitespace().next()?.trim_end_matches('/');
    addr.parse().ok()
}
