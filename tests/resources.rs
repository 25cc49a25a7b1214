//! Case 38 at the scale it names, under every model: 10,000 idle keep-alive
//! connections are cheap, a new request is still served promptly, and descriptors
//! and memory come back once they close.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{read_response, Server};
use gvhttpd::config::Variant;

const IDLE: usize = 10_000;

/// One 10,000-connection test at a time in this process: each needs that many
/// descriptors of its own.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Make room for `need` descriptors in this test process (raising the soft limit
/// with `prlimit(1)`, as far as the hard limit allows); false if impossible.
fn ensure_nofile(need: u64) -> bool {
    let (soft, hard) = common::nofile_limits();
    if soft >= need {
        return true;
    }
    if hard < need {
        return false;
    }
    let ok = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={need}:"))
        .status()
        .is_ok_and(|s| s.success());
    ok && common::nofile_limits().0 >= need
}

/// Open `IDLE` idle connections to `s` and wait until the server holds them all.
fn open_idle(s: &Server) -> Vec<TcpStream> {
    let mut idle: Vec<TcpStream> = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        idle.push(TcpStream::connect(s.addr).expect("connect"));
        // Pace the handshakes a little so the accept backlog never overflows
        // (an overflow costs a 1 s SYN retransmit, not a failure).
        if i % 1000 == 999 {
            let until = Instant::now() + Duration::from_secs(10);
            while s.stats_open() + 1000 < i as u64 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    let until = Instant::now() + Duration::from_secs(20);
    while s.stats_open() <= IDLE as u64 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        s.stats_open() > IDLE as u64,
        "only {} of {IDLE} idle connections open",
        s.stats_open()
    );
    idle
}

/// Close `idle` and wait until the server has closed its side of every one.
fn close_idle(s: &Server, idle: Vec<TcpStream>) {
    drop(idle);
    let until = Instant::now() + Duration::from_secs(20);
    // Judge by the count a poll saw: a fresh /stats right after one that saw 1 may
    // run on another thread before the previous /stats connection's close is
    // counted (its client has the response, the server is still closing).
    let mut open = s.stats_open();
    while open > 1 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
        open = s.stats_open();
    }
    assert_eq!(open, 1, "connections left open after the clients closed");
}

/// RSS once the allocator has handed back what it frees asynchronously (jemalloc
/// purges freed pages gradually over about a second): the lowest reading, taken
/// every 100 ms until a full second brings no new low (at most 6 s).
fn settled_rss(s: &Server) -> u64 {
    let mut low = s.rss_kib();
    let mut since_low = 0;
    for _ in 0..60 {
        std::thread::sleep(Duration::from_millis(100));
        let now = s.rss_kib();
        if now < low {
            low = now;
            since_low = 0;
        } else {
            since_low += 1;
            if since_low >= 10 {
                break;
            }
        }
    }
    low
}

/// A server with room for `IDLE` connections, warmed up; `None` (recorded as a
/// skip) when this test process cannot open that many descriptors.
fn start(model: Variant) -> Option<Server> {
    let need = IDLE as u64 + 1000;
    if !ensure_nofile(need) {
        gvhttpd::uring::record_skip(&format!(
            "this process cannot open {need} descriptors (limits {:?})",
            common::nofile_limits()
        ));
        return None;
    }
    let s = Server::start_in_shell(
        model,
        "ulimit -n 12000 && exec \"$@\"",
        &["--idle-timeout", "60s"],
    );
    // Warm up (buffers, Date cache) before any baseline is taken.
    for _ in 0..20 {
        assert_eq!(s.get("/").status, 200);
    }
    std::thread::sleep(Duration::from_millis(100));
    Some(s)
}

/// 10,000 idle connections: all held, cheap, the server still serving; after they
/// close the server holds none of them and a second round costs no more memory.
fn ten_thousand_idle_connections(model: Variant) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(s) = start(model) else { return };
    let rss0 = s.rss_kib();
    let mut idle = open_idle(&s);
    // A fresh request is served promptly (bounded by the harness's read timeout),
    // and a request on one of the idle connections too.
    assert_eq!(s.get("/json").status, 200);
    let c = &mut idle[IDLE / 2];
    c.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(c, false).status, 200);
    // Idle connections are cheap: a few KiB each, never a buffer of the size
    // limits (16 KiB head + 1 MiB body).
    let per_conn = s.rss_kib().saturating_sub(rss0) as f64 / IDLE as f64;
    assert!(
        per_conn < 24.0,
        "{per_conn:.1} KiB of RSS per idle connection"
    );
    close_idle(&s, idle);
    let after_one = settled_rss(&s);
    // Nothing per connection is kept: a second round ends where the first did.
    close_idle(&s, open_idle(&s));
    let after_two = settled_rss(&s);
    assert!(
        after_two <= after_one + 2048,
        "RSS grew from {after_one} to {after_two} KiB over a second round of {IDLE} connections"
    );
    assert_eq!(s.get("/").status, 200);
}

/// Case 38's last clause, and issue 14's "memory is given back": after a burst of
/// idle connections closes, RSS returns to within 2x of what it was before the
/// burst, and to within the per-thread buffer pool (4 MiB) plus a tenth of the
/// burst's peak. The allocator hands freed pages back asynchronously (jemalloc's
/// purge within about a second, green's stack pool in bulk), so this waits up to
/// 10 s for it.
fn memory_returns_to_baseline_after_idle_burst(model: Variant) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(s) = start(model) else { return };
    let rss0 = s.rss_kib();
    let idle = open_idle(&s);
    let peak = s.rss_kib().saturating_sub(rss0);
    close_idle(&s, idle);
    let bound = rss0.min(4096 + 1024 + peak / 10);
    let until = Instant::now() + Duration::from_secs(10);
    let mut left = s.rss_kib().saturating_sub(rss0);
    while left > bound && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
        left = s.rss_kib().saturating_sub(rss0);
    }
    assert!(
        left <= bound,
        "RSS still {left} KiB above the baseline of {rss0} KiB 10 s after {IDLE} idle \
         connections closed (it grew {peak} KiB while they were open; allowed {bound} KiB)"
    );
    assert_eq!(s.get("/").status, 200);
}

per_model!(
    ten_thousand_idle_connections,
    memory_returns_to_baseline_after_idle_burst
);
