//! Starting and stopping the server of one comparison run: `gvhttpd serve` for a
//! model, or any other HTTP server for a `--peer`.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a peer gets to exit after SIGTERM before it is killed.
const PEER_GRACE: Duration = Duration::from_secs(2);

/// What a comparison runs: one of gvhttpd's models, or another server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Model(String),
    /// `--peer NAME=COMMAND`.
    Peer {
        name: String,
        command: String,
    },
}

impl Target {
    /// The name in tables and plots.
    pub fn name(&self) -> &str {
        match self {
            Target::Model(m) => m,
            Target::Peer { name, .. } => name,
        }
    }
}

/// Parses `NAME=COMMAND` (NAME: letters, digits, `-`, `_`, `.`; COMMAND must
/// contain `{port}`, where the server is to listen on 127.0.0.1).
pub fn parse_peer(s: &str) -> Result<(String, String), String> {
    let (name, command) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': expected NAME='command with {{port}}'"))?;
    let name = name.trim();
    let command = command.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "'{s}': the name must be letters, digits, '-', '_' or '.'"
        ));
    }
    if command.is_empty() {
        return Err(format!("'{s}': the command is empty"));
    }
    if !command.contains("{port}") {
        return Err(format!(
            "'{s}': the command must contain {{port}} (the port it is to listen on, 127.0.0.1)"
        ));
    }
    Ok((name.to_string(), command.to_string()))
}

/// `command` with `{port}`, `{root}`, `{workers}` and `{upstream}` replaced by
/// their values, each shell-quoted: the line runs under `sh -c`, and a root such
/// as `/tmp/a b;rm x` must stay one word, not become a second command.
/// `{upstream}` is the `proxy` scenario's backend (`HOST:PORT`), elsewhere
/// [`NO_UPSTREAM`](super::NO_UPSTREAM).
pub fn fill_peer_command(
    command: &str,
    port: u16,
    root: &Path,
    workers: usize,
    upstream: Option<SocketAddr>,
) -> String {
    let upstream = upstream.map_or_else(|| super::NO_UPSTREAM.to_string(), |a| a.to_string());
    command
        .replace("{port}", &shell_quote(&port.to_string()))
        .replace("{root}", &shell_quote(&root.display().to_string()))
        .replace("{workers}", &shell_quote(&workers.to_string()))
        .replace("{upstream}", &shell_quote(&upstream))
}

/// `s` as one POSIX shell word: bare when it holds only characters no shell
/// treats specially, otherwise in single quotes (a `'` inside becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '/' | '.' | '_' | '-' | ':' | ',' | '+' | '=' | '@')
        });
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Flags every model's `serve` gets from the comparison itself, before the
/// `--serve-arg`s. The scenarios need the benchmark routes (`/work`, `/sleep`,
/// `/stats`), which `serve` answers by default only on a loopback address: said
/// explicitly, so the comparison does not depend on that default.
pub const MODEL_SERVE_FLAGS: &[&str] = &["--bench-routes"];

/// Flags `bench compare` sets on every `serve` itself: a `--serve-arg` may not.
const SET_BY_COMPARE: [(&str, &str); 8] = [
    ("--model", "--models names the rows"),
    (
        "--bench-routes",
        "the sleep and skew scenarios need /sleep and /work",
    ),
    ("--addr", "each server listens on a free 127.0.0.1 port"),
    ("--workers", "--server-cpus sets the workers (2 in skew)"),
    ("--root", "the large scenario creates its own static root"),
    (
        "--upstream",
        "the proxy scenario points every server at its own backend",
    ),
    (
        "--write-timeout",
        "the downloads scenario gives every server the same send timeout",
    ),
    (
        "--response-timeout",
        "the downloads scenario gives every server the same send timeout",
    ),
];
/// Scheduling flags a row's name stands for: a `--serve-arg` would make a row's
/// name lie about what it ran.
const SET_BY_ROW: [(&str, &str); 3] = [
    ("--tokio-runtime", "tokio+multi"),
    ("--green-sched", "green+steal"),
    ("--green-reactor", "green+dedicated"),
];

/// Checks `--serve-arg`s: each is a flag (`--name` or `--name=value`) or the value
/// of the flag before it, and none is a flag the comparison sets itself.
pub fn check_serve_args(args: &[String]) -> Result<(), String> {
    for (i, a) in args.iter().enumerate() {
        if a.trim().is_empty() {
            return Err("an empty argument".into());
        }
        let Some(flag) = a.strip_prefix("--") else {
            let after_flag = i > 0 && args[i - 1].starts_with("--") && !args[i - 1].contains('=');
            if !after_flag {
                return Err(format!(
                    "'{a}' is not a flag (--name or --name=value) nor its value"
                ));
            }
            continue;
        };
        let name = format!("--{}", flag.split('=').next().unwrap_or(""));
        if let Some((_, why)) = SET_BY_COMPARE.iter().find(|(f, _)| *f == name) {
            return Err(format!("'{a}': bench compare sets {name} itself ({why})"));
        }
        if let Some((_, row)) = SET_BY_ROW.iter().find(|(f, _)| *f == name) {
            return Err(format!(
                "'{a}': {name} is what a row's name says; name the row instead (--models {row})"
            ));
        }
    }
    Ok(())
}

/// How to start a server.
#[derive(Debug, Clone, Copy)]
pub struct StartOpts<'a> {
    /// CPUs to pin it to.
    pub cpus: &'a [usize],
    pub workers: usize,
    /// The static root (`--root`, `{root}`).
    pub root: &'a Path,
    /// Extra flags for a model's `serve` (`--serve-arg`; peers keep their command).
    pub serve_args: &'a [String],
    /// The backend to forward `/proxy/` to (`proxy` scenario): a model gets
    /// `--upstream ADDR`, a peer's command `{upstream}`.
    pub upstream: Option<SocketAddr>,
}

/// A running server, stopped when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    /// A peer gets SIGTERM and a grace period; a model is killed at once.
    graceful: bool,
}

/// Why a server did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// The model exited with status 2 before readiness (its one-line reason).
    Unavailable(String),
    /// Anything else (exec failure, crash, no readiness).
    Failed(String),
}

impl Server {
    /// Starts `t` pinned to `o.cpus`, and waits until it is ready.
    pub fn start(exe: &Path, t: &Target, o: &StartOpts<'_>) -> Result<Server, StartError> {
        match t {
            Target::Model(m) => Self::start_model(exe, m, o),
            Target::Peer { name, command } => Self::start_peer(name, command, o),
        }
    }

    /// `exe serve --model M --addr 127.0.0.1:0 --workers N --root DIR --bench-routes [serve
    /// args]` (the routes are on for 127.0.0.1 anyway; said, so no default can drop them); ready at
    /// `gvhttpd: listening on http://ADDR (...)`.
    fn start_model(exe: &Path, model: &str, o: &StartOpts<'_>) -> Result<Server, StartError> {
        let mut cmd = Command::new(exe);
        cmd.args(["serve", "--model", model, "--addr", "127.0.0.1:0"])
            .arg("--workers")
            .arg(o.workers.to_string())
            .arg("--root")
            .arg(o.root)
            .args(MODEL_SERVE_FLAGS)
            .args(
                o.upstream
                    .iter()
                    .flat_map(|a| ["--upstream".to_string(), a.to_string()]),
            )
            .args(o.serve_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_pinned(cmd, o.cpus, &exe.display().to_string())?;
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
            Ok(addr) => Ok(Server {
                child,
                addr,
                pid,
                graceful: false,
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let msg = first_line(&err);
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

    /// `sh -c 'exec COMMAND'` with `{port}`, `{root}` and `{workers}` filled in;
    /// ready once 127.0.0.1:port accepts a connection.
    fn start_peer(name: &str, command: &str, o: &StartOpts<'_>) -> Result<Server, StartError> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| StartError::Failed(format!("cannot find a free port: {e}")))?
            .port();
        let line = fill_peer_command(command, port, o.root, o.workers, o.upstream);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("exec {line}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn_pinned(cmd, o.cpus, "sh")?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        // Drain stderr so a chatty server never blocks on it; keep its first line.
        std::thread::spawn(move || {
            let mut first = None;
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                if first.is_none() && !l.trim().is_empty() {
                    first = Some(l.trim().to_string());
                    let _ = tx.send(l.trim().to_string());
                }
            }
        });
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let until = Instant::now() + READY_TIMEOUT;
        let pid = child.id();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let msg = rx
                    .recv_timeout(Duration::from_millis(200))
                    .unwrap_or_default();
                return Err(StartError::Failed(format!(
                    "peer {name} exited ({status}) before accepting connections: {msg}"
                )));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(Server {
                    child,
                    addr,
                    pid,
                    graceful: true,
                });
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartError::Failed(format!(
                    "peer {name} did not accept connections on {addr} within {}s: {}",
                    READY_TIMEOUT.as_secs(),
                    rx.try_recv().unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True while the process has not exited.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Spawns `cmd` from a thread pinned to `cpus`: the child inherits the CPU mask
/// of the thread that forks it (this thread keeps its own mask).
fn spawn_pinned(mut cmd: Command, cpus: &[usize], what: &str) -> Result<Child, StartError> {
    let cpus = cpus.to_vec();
    std::thread::scope(|s| {
        s.spawn(move || {
            crate::sys::pin_current_thread(&cpus).map_err(StartError::Failed)?;
            cmd.spawn()
                .map_err(|e| StartError::Failed(format!("cannot start {what}: {e}")))
        })
        .join()
        .unwrap_or_else(|_| Err(StartError::Failed("spawner thread panicked".into())))
    })
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.graceful && matches!(self.child.try_wait(), Ok(None)) {
            // SIGTERM through kill(1), so this crate needs no unsafe for it.
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let until = Instant::now() + PEER_GRACE;
            while Instant::now() < until {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::{check_serve_args, fill_peer_command, shell_quote};
    use std::path::Path;

    #[test]
    fn peer_placeholders_are_shell_quoted() {
        assert_eq!(
            shell_quote("/tmp/gvhttpd-compare-12"),
            "/tmp/gvhttpd-compare-12"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        let line = fill_peer_command(
            "srv --port {port} --root {root} -w {workers} --to {upstream}",
            8080,
            Path::new("/tmp/a b;touch x"),
            2,
            None,
        );
        assert_eq!(
            line,
            "srv --port 8080 --root '/tmp/a b;touch x' -w 2 --to 127.0.0.1:9"
        );
        let backend = "127.0.0.1:41000".parse().ok();
        let line = fill_peer_command("p {port} {upstream}", 1, Path::new("/r"), 1, backend);
        assert_eq!(line, "p 1 127.0.0.1:41000");
        // What sh makes of it: one argument, the root exactly, and no second command.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf '%s\\n' {}",
                fill_peer_command("{root}", 1, Path::new("/r o'o$(echo t);ls"), 1, None)
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/r o'o$(echo t);ls\n");
    }

    fn check(args: &[&str]) -> Result<(), String> {
        check_serve_args(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn serve_args_pass_flags_and_their_values() {
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&["--work-slice=0"]), Ok(()));
        assert_eq!(check(&["--work-slice", "2ms", "--uring-sqpoll"]), Ok(()));
        assert_eq!(check(&["--max-conns=50000", "--access-log=-"]), Ok(()));
    }

    #[test]
    fn serve_args_refuse_what_the_comparison_sets() {
        for (arg, says) in [
            ("--model=tokio", "sets --model itself"),
            ("--addr=127.0.0.1:9", "sets --addr itself"),
            ("--workers", "sets --workers itself"),
            ("--root=/tmp", "sets --root itself"),
            ("--bench-routes=false", "sets --bench-routes itself"),
            ("--upstream=127.0.0.1:80", "sets --upstream itself"),
            ("--write-timeout=120s", "sets --write-timeout itself"),
            ("--response-timeout", "sets --response-timeout itself"),
            ("--tokio-runtime=multi-thread", "--models tokio+multi"),
            ("--green-sched=steal", "--models green+steal"),
            ("--green-reactor", "--models green+dedicated"),
        ] {
            let e = check(&[arg]).unwrap_err();
            assert!(e.contains(says), "{arg}: {e}");
        }
        // A value with no flag before it, or after a flag that had one already.
        assert!(check(&["0"]).unwrap_err().contains("not a flag"));
        assert!(check(&["--work-slice=1ms", "0"]).is_err());
        assert!(check(&[" "]).is_err());
    }
}
