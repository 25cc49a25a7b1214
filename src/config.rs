//! One `Config` for `gvhttpd serve`, built from the CLI flags in `bins/gvhttpd.rs`.
//!
//! Grouped by concern (HTTP limits, timeouts, io_uring knobs) so no model has to
//! take a giant flat options struct.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The three ways of driving the one handler's I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    /// io_uring, one completion-driven state machine per connection.
    Callback,
    /// tokio on epoll, one future per connection.
    Tokio,
    /// Green threads (stackful coroutines) over an io_uring reactor.
    Green,
}

impl Model {
    pub const ALL: [Model; 3] = [Model::Callback, Model::Tokio, Model::Green];

    pub fn name(self) -> &'static str {
        match self {
            Model::Callback => "callback",
            Model::Tokio => "tokio",
            Model::Green => "green",
        }
    }

    /// Whether this model drives its I/O through io_uring.
    pub fn uses_io_uring(self) -> bool {
        !matches!(self, Model::Tokio)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Model::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown model '{s}' (expected callback, tokio or green)"))
    }
}

/// Protocol limits enforced by the sans-IO core (`http-behaviour.md` cases 5, 18, 19, 29).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request target, in octets (414 beyond).
    pub max_target: usize,
    /// Most header fields in one request (431 beyond).
    pub max_headers: usize,
    /// Largest request head (request line + header section), in octets (431 beyond).
    pub max_head: usize,
    /// Largest request body, in octets (413 beyond).
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_target: 8 * 1024,
            max_headers: 100,
            max_head: 16 * 1024,
            max_body: 1024 * 1024,
        }
    }
}

/// Per-connection and shutdown timeouts, shared by every model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first byte of a request until its header section is complete.
    pub header: Duration,
    /// From the end of the header section until the body is complete.
    pub body: Duration,
    /// An idle keep-alive connection (no partial request) is closed after this.
    pub idle: Duration,
    /// A write that makes no progress for this long closes the connection.
    pub write: Duration,
    /// After SIGINT/SIGTERM, in-flight work gets this long before the process exits.
    pub shutdown_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            write: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// io_uring knobs for the callback and green models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UringOptions {
    /// Submission queue entries per ring (power of two).
    pub entries: u32,
    /// Ask for a kernel SQ polling thread (`IORING_SETUP_SQPOLL`).
    pub sqpoll: bool,
}

impl Default for UringOptions {
    fn default() -> Self {
        UringOptions {
            entries: 1024,
            sqpoll: false,
        }
    }
}

/// Default green-thread stack: 64 KiB of usable stack plus one guard page.
///
/// Stacks are reserved, not committed (`MAP_NORESERVE` slabs, see
/// `green::stack`): only touched pages cost memory. Measured (benches/green.rs,
/// scripts/idle-conns-rss.py): a parked green thread keeps one resident 4 KiB page
/// (100,000 parked threads: ~4.3 KB each, 420 MB; 10,000 idle HTTP connections:
/// ~4.5 KB each), because request processing runs on the worker's own stack
/// (`green::on_worker_stack`). 64 KiB leaves ample headroom for deep call chains in
/// the connection loop and costs only address space (100,000 threads reserve
/// ~6.6 GiB of it); a smaller default would save no resident memory.
pub const DEFAULT_GREEN_STACK: usize = 64 * 1024;

/// Everything `gvhttpd serve` needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub addr: SocketAddr,
    pub model: Model,
    /// Worker threads; each owns its listener (SO_REUSEPORT) and its event loop.
    pub workers: usize,
    /// Directory served under `/static/`; `None` means every `/static/` path is 404.
    pub root: Option<PathBuf>,
    /// Connections open at once, across all workers; beyond it new ones are closed.
    pub max_conns: usize,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub uring: UringOptions,
    /// Usable stack bytes per green thread (a guard page is added below it).
    pub green_stack_size: usize,
}

impl Config {
    /// A config with every default, for `model` on `addr`.
    pub fn new(model: Model, addr: SocketAddr) -> Self {
        Config {
            addr,
            model,
            workers: default_workers(),
            root: None,
            max_conns: 100_000,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            uring: UringOptions::default(),
            green_stack_size: DEFAULT_GREEN_STACK,
        }
    }
}

/// The CPUs this process may run on (respects `taskset`), at least 1.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
