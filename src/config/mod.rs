//! One `Config` for `gvhttpd serve`, built from the CLI flags in [`crate::cli`].
//!
//! Grouped by concern (HTTP limits, timeouts, io_uring knobs) so no model has to
//! take a giant flat options struct.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::uring::probe;

/// The three ways of driving the one handler's I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
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

mod sched;
pub use sched::{GreenReactor, GreenSched, Scheduling, TokioRuntime, Variant, DEFAULT_WORK_SLICE};

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
    /// Sending one response (its head and whole body, however slowly the client
    /// reads) takes at most this long; then the connection is cut. Unlike `write`,
    /// progress does not restart it, so a client reading a byte at a time cannot
    /// hold a connection for ever.
    pub response: Duration,
    /// After SIGINT/SIGTERM, in-flight work gets this long before the process exits.
    pub shutdown_grace: Duration,
}

/// `--response-timeout`'s default: long enough for a large file over a slow
/// link (5 GiB at 20 MB/s), short enough that no client holds a connection for ever.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            write: Duration::from_secs(30),
            response: DEFAULT_RESPONSE_TIMEOUT,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

pub use crate::uring::UringOptions;

pub use crate::green::DEFAULT_GREEN_STACK;

/// Everything `gvhttpd serve` needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub addr: SocketAddr,
    pub model: Model,
    /// Worker threads; each owns its listener (SO_REUSEPORT) and its event loop.
    pub workers: usize,
    /// Directory served under `/static/`; `None` means every `/static/` path is 404.
    pub root: Option<PathBuf>,
    /// Connections open at once, across all workers; beyond it new ones get a
    /// 503 and are closed.
    pub max_conns: usize,
    /// `--max-buffer-memory`: the process-wide budget for connection buffers
    /// beyond each connection's base buffers ([`crate::stats::MemoryBudget`]).
    pub max_buffer_memory: usize,
    /// `--reuse-port`: join a port other listeners with `SO_REUSEPORT` already
    /// hold, instead of refusing to start (see [`crate::net::bind_listeners`]).
    pub reuse_port: bool,
    /// `--access-log`: where the combined-format access log goes; `None` = off.
    pub access_log: Option<LogTarget>,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub uring: UringOptions,
    /// Usable stack bytes per green thread (a 64 KiB guard region is added below it).
    pub green_stack_size: usize,
    /// Scheduling variant knobs and the work slice.
    pub sched: Scheduling,
    /// `--bench-routes`: whether `/work`, `/sleep` and `/stats` answer (else 404).
    /// `None` decides by the address: see [`Config::bench_routes`].
    pub bench_routes: Option<bool>,
    /// `GVHTTPD_ZERO_COPY` at start-up: `off` reads and sends static files in every
    /// model; `on`, or unset (`None`), sends them zero-copy where the kernel allows
    /// (see [`Config::zero_copy_files`]).
    pub zero_copy: Option<bool>,
    /// `--upstream` and its settings: where requests under `/proxy/` go (`None`:
    /// `/proxy/` is 404 like any unknown path).
    pub upstream: Option<Upstreams>,
    /// `--notsent-lowat`: the most bytes a connection may have written into the
    /// kernel that it has not yet sent (`TCP_NOTSENT_LOWAT`, set on the listeners
    /// and so inherited by every accepted socket); `None`: the kernel's
    /// (unlimited) default. See [`DEFAULT_NOTSENT_LOWAT`].
    pub notsent_lowat: Option<u32>,
}

/// `--notsent-lowat`'s default: 768 KiB. Without a bound, a socket's send queue
/// grows to its (autotuned, up to 4 MiB) send buffer whatever its reader takes:
/// with `sendfile`, 500 slow readers waiting for three 1 MiB responses each held
/// ~3.4 MB of kernel memory a connection, past the kernel's TCP memory pressure
/// threshold on a 24 GiB machine, and a fresh client's `GET /` waited up to
/// 1-2.5 s behind them now and then (the worker's `sendfile` stalled allocating
/// the wave's skbs). The kernel holds ~2.45x the bound: at 768 KiB the wave took
/// 1.9 MB a connection and the probe 3-8 ms in 16 of 18 runs (at most 0.24 s);
/// at 1 MiB 2.5 MB and up to 1.1 s. Fast readers' CPU per MB did not move (paired
/// over 19 rounds at 64 KiB, 1 MiB and the 3-300 KB mix, every interval spanning
/// 1); 512 KiB doubled it for a 1 MiB file, which then no longer fits one
/// `sendfile` beside a 256 KiB window (results/2026-12-07-vm-lowat).
pub const DEFAULT_NOTSENT_LOWAT: u32 = 768 << 10;

/// The reverse proxy's settings (`--upstream`, `--upstream-connect-timeout`,
/// `--upstream-timeout`, `--upstream-pool`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstreams {
    /// The upstreams, taken in turn (round robin, per worker).
    pub addrs: Vec<SocketAddr>,
    /// A connect that takes longer is a 504.
    pub connect_timeout: Duration,
    /// From the request sent whole to the response head, and between two reads
    /// or writes of an exchange: past it, a 504 (or, once the response has begun,
    /// the client's connection is cut).
    pub timeout: Duration,
    /// Idle keep-alive connections each worker keeps, to all upstreams together.
    pub pool: usize,
}

/// `--upstream-connect-timeout`'s default.
pub const DEFAULT_UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `--upstream-timeout`'s default.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);
/// `--upstream-pool`'s default.
pub const DEFAULT_UPSTREAM_POOL: usize = 64;

impl Upstreams {
    /// `addrs` with the default timeouts and pool.
    pub fn new(addrs: Vec<SocketAddr>) -> Upstreams {
        Upstreams {
            addrs,
            connect_timeout: DEFAULT_UPSTREAM_CONNECT_TIMEOUT,
            timeout: DEFAULT_UPSTREAM_TIMEOUT,
            pool: DEFAULT_UPSTREAM_POOL,
        }
    }
}

impl Config {
    /// How this server sends static files: zero-copy (`Action::SendFile`: every
    /// model calls `sendfile(2)` on its non-blocking socket, driven by write
    /// readiness: tokio's reactor, an io_uring `POLL_ADD` for callback and green),
    /// or read into a buffer and send it (every model when `GVHTTPD_ZERO_COPY=off`;
    /// the io_uring models where [`crate::uring::probe::zero_copy_sends`] finds the
    /// kernel lacking).
    ///
    /// Zero-copy is every model's default. For the io_uring models it used to
    /// be `GVHTTPD_ZERO_COPY=on` only, because while 500 clients that read slowly
    /// waited for three pipelined 1 MiB responses each, it let a fresh client's
    /// `GET /` wait past `tests/slow_readers.rs`' bound now and then; the
    /// `--notsent-lowat` bound on each connection's unsent bytes
    /// ([`DEFAULT_NOTSENT_LOWAT`]) took that away.
    pub fn zero_copy_files(&self) -> bool {
        let uring = self.model.uses_io_uring();
        self.zero_copy.unwrap_or(true) && (!uring || probe::zero_copy_sends().is_ok())
    }

    /// The start-up line's and `/stats`' words for how files are sent: `sendfile`
    /// or `read+send`, and why not zero-copy when it is not.
    pub fn files_mode(&self) -> (&'static str, Option<&'static str>) {
        match self.zero_copy_files() {
            true => ("sendfile", None),
            false if self.zero_copy == Some(false) => ("read+send", Some("GVHTTPD_ZERO_COPY=off")),
            false => ("read+send", probe::zero_copy_sends().err()),
        }
    }

    /// A config with every default for `variant`'s model and scheduling on `addr`.
    pub fn for_variant(variant: Variant, addr: SocketAddr) -> Self {
        let mut cfg = Config::new(variant.model(), addr);
        cfg.sched = variant.scheduling();
        cfg
    }

    /// The variant these settings are, if they are one of the suite's rows.
    pub fn variant(&self) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| {
            let s = v.scheduling();
            v.model() == self.model
                && s.tokio_runtime == self.sched.tokio_runtime
                && s.green_sched == self.sched.green_sched
                && s.green_reactor == self.sched.green_reactor
        })
    }

    /// The model and its scheduling as people write it: a variant's name
    /// (`green+steal`), or the model with each non-default knob.
    pub fn model_label(&self) -> String {
        if let Some(v) = self.variant() {
            return v.name().to_string();
        }
        let d = Scheduling::default();
        let mut s = self.model.name().to_string();
        if self.sched.green_sched != d.green_sched {
            s.push_str("+steal");
        }
        if self.sched.green_reactor != d.green_reactor {
            s.push_str("+dedicated");
        }
        s
    }

    /// A config with every default, for `model` on `addr`.
    pub fn new(model: Model, addr: SocketAddr) -> Self {
        Config {
            addr,
            model,
            workers: default_workers(),
            root: None,
            max_conns: 100_000,
            max_buffer_memory: default_buffer_memory(),
            reuse_port: false,
            access_log: None,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            uring: UringOptions::default(),
            green_stack_size: DEFAULT_GREEN_STACK,
            sched: Scheduling::default(),
            bench_routes: None,
            zero_copy: match std::env::var("GVHTTPD_ZERO_COPY").as_deref() {
                Ok("on") => Some(true),
                Ok("off") => Some(false),
                _ => None,
            },
            upstream: None,
            notsent_lowat: Some(DEFAULT_NOTSENT_LOWAT),
        }
    }

    /// Whether the benchmark routes (`/work`, `/sleep`, `/stats`) answer: as
    /// `--bench-routes` says, or by default only when the server listens on a
    /// loopback address. They let anyone who can connect burn a worker's CPU
    /// (`/work`), hold a connection (`/sleep`) and read the server's traffic and
    /// panic counts (`/stats`), so a server reachable from the network has them off
    /// unless asked.
    pub fn bench_routes(&self) -> bool {
        self.bench_routes
            .unwrap_or_else(|| self.addr.ip().to_canonical().is_loopback())
    }
}

/// `--max-buffer-memory`'s default: a quarter of the machine's memory
/// (`MemTotal` in `/proc/meminfo`), or 1 GiB where that cannot be read.
pub fn default_buffer_memory() -> usize {
    let total_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
    });
    total_kib.map_or(1 << 30, |kib| kib.saturating_mul(1024) / 4)
}

/// The CPUs this process may run on (respects `taskset`), at least 1.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Where a log goes: `-` is stdout, anything else a file (appended to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    File(PathBuf),
}

impl std::str::FromStr for LogTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" => Err("expected a file path or - for stdout".into()),
            "-" => Ok(LogTarget::Stdout),
            path => Ok(LogTarget::File(PathBuf::from(path))),
        }
    }
}

/// The host `--addr PORT` and `--addr :PORT` listen on: loopback, like the
/// default address, so a bare port never exposes the server by surprise.
pub const DEFAULT_HOST: std::net::Ipv4Addr = std::net::Ipv4Addr::LOCALHOST;

/// Parses `--addr`: `IP:PORT` (`[::1]:PORT` for IPv6), `HOST:PORT` with a host
/// name that resolves (its first IPv4 address, else its first address), or
/// `:PORT` / `PORT` for 127.0.0.1. Listening on every interface takes
/// `0.0.0.0:PORT` or `[::]:PORT`.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let port_only = s.strip_prefix(':').unwrap_or(s);
    if !port_only.is_empty() && port_only.bytes().all(|b| b.is_ascii_digit()) {
        let port = parse_port(port_only, s)?;
        return Ok(SocketAddr::from((DEFAULT_HOST, port)));
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!(
            "'{s}' is not an address: expected HOST:PORT, IP:PORT, :PORT or PORT \
             (e.g. 127.0.0.1:8080, localhost:8080, 8080)"
        ));
    };
    let port = parse_port(port, s)?;
    if host.is_empty() {
        return Err(format!("'{s}' has no host"));
    }
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    // Digits and dots are meant as an IPv4 address, never a host name to look up
    // (`999.1.1.1` is out of range, not a name that failed to resolve).
    if host.contains('.') && host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "'{host}' of '{s}' is not a valid IPv4 address: expected four numbers \
             from 0 to 255 separated by dots, e.g. 127.0.0.1"
        ));
    }
    if host.contains(':') {
        return Err(format!(
            "'{host}' of '{s}' is not a valid IPv6 address (write it in brackets, \
             e.g. [::1]:8080)"
        ));
    }
    use std::net::ToSocketAddrs as _;
    let all: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host '{host}' of '{s}': {e}"))?
        .collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| format!("host '{host}' of '{s}' resolves to no address"))
}

fn parse_port(p: &str, whole: &str) -> Result<u16, String> {
    p.parse::<u16>().map_err(|_| {
        format!("'{whole}': bad port '{p}' (expected 0 to 65535; 0 picks a free port)")
    })
}

/// Parses a size: raw bytes (`65536`) or a number with a binary unit, case
/// insensitive: `k`/`KiB` (1024), `m`/`MiB` (1024²), `g`/`GiB` (1024³), and `b`
/// for bytes (`64k`, `16KiB`, `1MiB`, `1.5m`). `KB`/`MB`/`GB` are refused as
/// ambiguous (1000 or 1024?).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" | "mb" | "gb" => {
            return Err(format!(
                "'{s}': '{unit}' is ambiguous; write {num}{}iB (powers of 1024) or the bytes",
                &unit[..1].to_ascii_uppercase()
            ))
        }
        _ => {
            return Err(format!(
                "'{s}' is not a size: expected bytes or a unit, e.g. 65536, 64k, 16KiB, 1MiB"
            ))
        }
    };
    let bad =
        || format!("'{s}' is not a size: expected bytes or a unit, e.g. 65536, 64k, 16KiB, 1MiB");
    if num.is_empty() {
        return Err(bad());
    }
    if num.contains('.') {
        let v: f64 = num.parse().map_err(|_| bad())?;
        let bytes = v * scale as f64;
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(format!("'{s}' is too large"));
        }
        if bytes.fract() != 0.0 {
            return Err(format!("'{s}' is not a whole number of bytes"));
        }
        return Ok(bytes as u64);
    }
    let v: u64 = num.parse().map_err(|_| format!("'{s}' is too large"))?;
    v.checked_mul(scale)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// `1 worker`, `2 workers`: a count with its noun, singular or plural.
pub fn plural(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_the_forms_people_type() {
        let v4 = |s: &str| parse_addr(s).unwrap();
        assert_eq!(v4("127.0.0.1:8080"), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(v4("0.0.0.0:80"), "0.0.0.0:80".parse().unwrap());
        assert_eq!(v4("[::1]:8080"), "[::1]:8080".parse().unwrap());
        assert_eq!(v4(":8080"), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(v4("8080"), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(v4("0"), "127.0.0.1:0".parse().unwrap());
        assert_eq!(v4("localhost:8080"), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(v4("[127.0.0.2]:81"), "127.0.0.2:81".parse().unwrap());
    }

    #[test]
    fn bad_addresses_say_why() {
        let e = |s: &str| parse_addr(s).unwrap_err();
        assert!(e("8080x").contains("not an address"), "{}", e("8080x"));
        assert!(e("99999").contains("bad port '99999'"));
        assert!(e(":99999").contains("bad port"));
        assert!(e("localhost:http").contains("bad port 'http'"));
        assert!(e(":").contains("bad port ''"), "{}", e(":"));
        assert!(e("no-such-host.invalid:80").contains("cannot resolve host 'no-such-host.invalid'"));
        for bad in [
            "999.1.1.1:80",
            "1.2.3:80",
            "1.2.3.4.5:80",
            "256.0.0.1:80",
            "[1.2.3.999]:80",
        ] {
            assert!(
                e(bad).contains("is not a valid IPv4 address"),
                "{bad}: {}",
                e(bad)
            );
            assert!(!e(bad).contains("resolve"), "{bad}: {}", e(bad));
        }
        assert!(e("[::zz]:80").contains("'::zz' of '[::zz]:80' is not a valid IPv6 address"));
        assert!(!e("").is_empty());
    }

    #[test]
    fn sizes_with_units() {
        let ok = |s: &str| parse_size(s).unwrap();
        assert_eq!(ok("65536"), 65536);
        assert_eq!(ok("64k"), 65536);
        assert_eq!(ok("64K"), 65536);
        assert_eq!(ok("16KiB"), 16384);
        assert_eq!(ok("16kib"), 16384);
        assert_eq!(ok("1MiB"), 1 << 20);
        assert_eq!(ok("1m"), 1 << 20);
        assert_eq!(ok("1.5m"), 3 << 19);
        assert_eq!(ok("2GiB"), 2 << 30);
        assert_eq!(ok("512b"), 512);
        assert_eq!(ok(" 8 KiB "), 8192);
    }

    #[test]
    fn bad_sizes_say_why() {
        let e = |s: &str| parse_size(s).unwrap_err();
        assert!(e("1MB").contains("ambiguous; write 1MiB"), "{}", e("1MB"));
        assert!(e("64kb").contains("write 64KiB"), "{}", e("64kb"));
        assert!(e("lots").contains("not a size"));
        assert!(e("k").contains("not a size"));
        assert!(e("1.2.3k").contains("not a size"));
        assert!(e("0.3b").contains("whole number"));
        assert!(e("99999999999999999999").contains("too large"));
        assert!(e("99999999999g").contains("too large"));
    }

    #[test]
    fn bench_routes_default_to_on_only_for_loopback() {
        let on = |a: &str| Config::new(Model::Tokio, a.parse().unwrap()).bench_routes();
        assert!(on("127.0.0.1:80") && on("127.1.2.3:80") && on("[::1]:80"));
        assert!(on("[::ffff:127.0.0.1]:80"));
        assert!(!on("0.0.0.0:80") && !on("[::]:80") && !on("192.0.2.1:80"));
        assert!(!on("[::ffff:192.0.2.1]:80"));
        let mut cfg = Config::new(Model::Tokio, "0.0.0.0:80".parse().unwrap());
        cfg.bench_routes = Some(true);
        assert!(cfg.bench_routes());
        cfg.addr = "127.0.0.1:80".parse().unwrap();
        cfg.bench_routes = Some(false);
        assert!(!cfg.bench_routes());
    }

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(plural(1, "worker", "workers"), "1 worker");
        assert_eq!(plural(2, "worker", "workers"), "2 workers");
        assert_eq!(plural(0, "worker", "workers"), "0 workers");
    }

    #[test]
    fn log_targets() {
        assert_eq!("-".parse::<LogTarget>(), Ok(LogTarget::Stdout));
        assert_eq!(
            "/tmp/a.log".parse::<LogTarget>(),
            Ok(LogTarget::File("/tmp/a.log".into()))
        );
        assert!("".parse::<LogTarget>().is_err());
    }

    #[test]
    fn variant_names_round_trip_and_name_their_settings() {
        for v in Variant::ALL {
            assert_eq!(v.name().parse::<Variant>(), Ok(v));
            let cfg = Config::for_variant(v, "127.0.0.1:0".parse().unwrap());
            assert_eq!(cfg.variant(), Some(v));
            assert_eq!(v.flags().is_empty(), v.name() == v.model().name());
        }
        let e = "green+fast".parse::<Variant>().unwrap_err();
        assert!(
            e.contains("'green+fast'") && e.contains("green+steal"),
            "{e}"
        );
    }

    #[test]
    fn model_names_round_trip_and_are_clap_values() {
        use clap::ValueEnum as _;
        for m in Model::ALL {
            assert_eq!(m.name().parse::<Model>(), Ok(m));
            assert_eq!(m.to_possible_value().unwrap().get_name(), m.name());
        }
    }
}
