//! The engine against real loopback servers: counts are exact, failures land in
//! the right category and stay out of the latency histogram.

mod common;

use common::{args, start, Style};
use loadgen::cli::{run_load, Failure};
use loadgen::hist;
use loadgen::report::Report;
use std::sync::atomic::Ordering;

fn run(a: &loadgen::cli::LoadArgs) -> Report {
    run_load(a).expect("run succeeds")
}

#[test]
fn closed_loop_count_is_exact_across_threads() {
    let srv = start(Style::Length);
    let mut a = args(srv.addr, "/");
    a.connections = 6;
    a.threads = Some(3);
    a.requests = Some(1_000);
    let r = run(&a);
    assert_eq!(r.result.requests, 1_000);
    assert_eq!(r.result.counts.status_2xx, 1_000);
    assert_eq!(r.result.latency.count, 1_000);
    assert_eq!(r.result.counts.transport_errors(), 0);
    assert_eq!(srv.requests.load(Ordering::Relaxed), 1_000);
    // 13-byte body + head (65 bytes): every byte was read.
    assert_eq!(r.result.counts.bytes_read, 1_000 * 78);
    let h = hist::decode(&r.result.histogram).unwrap();
    assert_eq!(h.len(), 1_000);
}

#[test]
fn also_paths_are_requested_in_turn_by_every_connection() {
    let srv = start(Style::Length);
    let mut a = args(srv.addr, "/a");
    a.also = vec!["/b".into(), "/c?x=1".into()];
    a.connections = 1;
    a.requests = Some(300);
    let r = run(&a);
    assert_eq!(r.result.counts.status_2xx, 300);
    let seen = srv.targets.lock().unwrap().clone();
    assert_eq!(seen.len(), 300);
    // One connection: exactly the list, in order, a hundred times.
    for (i, t) in seen.iter().enumerate() {
        assert_eq!(t, ["/a", "/b", "/c?x=1"][i % 3], "request {i}: {seen:?}");
    }
    assert_eq!(r.config.also, a.also);
    // Pipelined on three connections: each starts at a different entry, wraps
    // around the list inside a batch, and the three paths stay level.
    let srv = start(Style::Length);
    let mut a = args(srv.addr, "/a");
    a.also = vec!["/b".into(), "/c".into()];
    a.connections = 3;
    a.pipeline = 4;
    a.requests = Some(600);
    let r = run(&a);
    assert_eq!(r.result.counts.status_2xx, 600);
    assert_eq!(r.result.counts.transport_errors(), 0);
    let seen = srv.targets.lock().unwrap().clone();
    for p in ["/a", "/b", "/c"] {
        let n = seen.iter().filter(|t| *t == p).count();
        assert!((190..=210).contains(&n), "{p}: {n} of {}", seen.len());
    }
}

#[test]
fn pipelined_chunked_responses_are_all_counted() {
    let srv = start(Style::Chunked);
    let mut a = args(srv.addr, "/chunked");
    a.pipeline = 8;
    a.requests = Some(2_000);
    let r = run(&a);
    assert_eq!(r.result.counts.status_2xx, 2_000);
    assert_eq!(r.result.counts.parse_error, 0);
    assert_eq!(srv.requests.load(Ordering::Relaxed), 2_000);
}

#[test]
fn no_keepalive_uses_one_connection_per_request() {
    let srv = start(Style::CloseEach);
    let mut a = args(srv.addr, "/");
    a.no_keepalive = true;
    a.requests = Some(200);
    let r = run(&a);
    assert_eq!(r.result.counts.status_2xx, 200);
    assert_eq!(r.result.counts.transport_errors(), 0);
}

#[test]
fn churn_counts_one_connection_per_request() {
    // A server that keeps connections open: only the client's Connection: close
    // makes each request use a fresh connection.
    let srv = start(Style::Length);
    let mut a = args(srv.addr, "/");
    a.no_keepalive = true;
    a.requests = Some(300);
    let r = run(&a);
    assert_eq!(r.result.counts.status_2xx, 300);
    assert_eq!(
        r.result.counts.connections, 300,
        "one connection per request"
    );
    // The server saw them too: 300, the preflight probe, and at most one
    // reconnect per load connection opened after its last response.
    let accepted = srv.accepted.load(Ordering::Relaxed);
    assert!((301..=305).contains(&accepted), "{accepted}");
    let summary = loadgen::report::summary(&r);
    assert!(summary.contains("(300 connections opened)"), "{summary}");

    // With keep-alive the same 300 requests share the 4 connections.
    let srv = start(Style::Length);
    let mut a = args(srv.addr, "/");
    a.requests = Some(300);
    let r = run(&a);
    assert_eq!(r.result.counts.status_2xx, 300);
    assert_eq!(r.result.counts.connections, 4);
    assert_eq!(
        srv.accepted.load(Ordering::Relaxed),
        5,
        "4 and the preflight probe"
    );
}

#[test]
fn server_errors_are_counted_but_not_in_the_histogram() {
    let srv = start(Style::Unavailable);
    let mut a = args(srv.addr, "/");
    a.requests = Some(100);
    match run_load(&a) {
        Err(Failure::Run(e)) => assert!(e.contains("no successful responses"), "{e}"),
        other => panic!("expected a run failure, got {other:?}"),
    }
    // And with --json the counts are there.
    let dir = std::env::temp_dir().join(format!("lg-5xx-{}.json", std::process::id()));
    a.json = Some(dir.clone());
    let _ = run_load(&a);
    let r = Report::from_json(&std::fs::read_to_string(&dir).unwrap()).unwrap();
    std::fs::remove_file(&dir).unwrap();
    assert_eq!(r.result.counts.status_5xx, 100);
    assert_eq!(r.result.latency.count, 0);
}

#[test]
fn silent_server_gives_request_timeouts() {
    let srv = start(Style::Silent);
    let mut a = args(srv.addr, "/");
    a.requests = None;
    a.duration = Some("1200ms".into());
    a.timeout = "300ms".into();
    a.connections = 2;
    let out = loadgen::cli::plan(&a).unwrap().0;
    let outcome = loadgen::engine::run(&out).unwrap();
    assert!(outcome.counts.request_timeout >= 2, "{:?}", outcome.counts);
    assert_eq!(outcome.latencies.corrected.len(), 0);
}

#[test]
fn resets_are_counted_as_reset_eof() {
    let srv = start(Style::Reset);
    let mut a = args(srv.addr, "/");
    a.requests = None;
    a.duration = Some("300ms".into());
    let (plan, _) = loadgen::cli::plan(&a).unwrap();
    let outcome = loadgen::engine::run(&plan).unwrap();
    assert!(outcome.counts.reset_eof > 0, "{:?}", outcome.counts);
    assert_eq!(outcome.counts.successes(), 0);
}

#[test]
fn open_loop_sends_at_the_target_rate() {
    let srv = start(Style::Length);
    let mut a = args(srv.addr, "/");
    a.requests = None;
    a.duration = Some("1s".into());
    a.rate = Some(500.0);
    a.connections = 5;
    let r = run(&a);
    // 500 req/s for 1 s, evenly scheduled: 500 intended send times (+1 at the
    // edge). The engine never sends more than intended; a stall of the machine
    // near the end may leave a few intended sends unsent, never most of them.
    assert!(
        (250..=501).contains(&r.result.sends),
        "sends {}",
        r.result.sends
    );
    assert!(r.result.late_sends <= r.result.sends);
    // Every send reached the server, and nothing else did.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while srv.requests.load(Ordering::Relaxed) < r.result.sends && std::time::Instant::now() < until
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(srv.requests.load(Ordering::Relaxed), r.result.sends);
    assert_eq!(r.result.target_rate, Some(500.0));
    assert!(r.result.latency_uncorrected.is_some());
    assert!(r.result.histogram_uncorrected.is_some());
}

#[test]
fn count_after_warmup_is_exact() {
    let srv = start(Style::Length);
    let mut a = args(srv.addr, "/");
    a.warmup = "300ms".into();
    a.requests = Some(500);
    a.pipeline = 4;
    let r = run(&a);
    assert_eq!(r.result.requests, 500);
    assert_eq!(r.result.latency.count, 500);
    // The warm-up's requests reached the server too but are not in the results.
    assert!(srv.requests.load(Ordering::Relaxed) > 500);
    let in_timeline: u64 = r.timeline.iter().map(|s| s.requests).sum();
    assert_eq!(in_timeline, 500);
}

/// The receive buffer (`rb` of `ss -tm`, bytes) of the loopback socket whose
/// local port is `port`: the load generator's side of a connection, seen from
/// the kernel.
fn receive_buffer_of(port: u16) -> u64 {
    let out = std::process::Command::new("ss")
        .args([
            "-tmnH",
            "state",
            "established",
            "sport",
            "=",
            &format!(":{port}"),
        ])
        .output()
        .expect("this test needs ss (Debian: apt-get install iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text
        .find(",rb")
        .unwrap_or_else(|| panic!("no rb in ss output: {text}"));
    text[at + 3..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad rb in ss output: {text}"))
}

/// A keep-alive server that answers `ok` and, at the first request of each
/// connection, records the client socket's receive buffer.
fn buffer_watching_server() -> (std::net::SocketAddr, std::sync::mpsc::Receiver<u64>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let port = conn.peer_addr().unwrap().port();
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                let mut first = true;
                let mut line = String::new();
                loop {
                    line.clear();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            if first {
                                first = false;
                                let _ = tx.send(receive_buffer_of(port));
                            }
                            let ok = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                            if ok.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    (addr, rx)
}

#[test]
fn recv_buffer_fixes_every_connections_receive_buffer() {
    // 200,000 bytes asked: the kernel doubles it (400,000), a size autotuning
    // does not start from (tcp_rmem's default is 131,072 on most systems).
    let (addr, seen) = buffer_watching_server();
    let mut a = args(addr, "/");
    a.connections = 3;
    a.requests = Some(300);
    a.recv_buffer = Some(200_000);
    let r = run(&a);
    assert_eq!(r.result.counts.status_2xx, 300);
    assert_eq!(r.config.recv_buffer, Some(400_000), "the report says so");
    assert!(loadgen::report::summary(&r).contains("receive buffer 390 KiB each (fixed)"));
    let buffers: Vec<u64> = seen.try_iter().collect();
    // The preflight probe's connection is not the engine's: it keeps the default.
    let fixed = buffers.iter().filter(|&&b| b == 400_000).count();
    assert_eq!(
        fixed, 3,
        "every load connection, not the probe: {buffers:?}"
    );

    // Without the flag, the kernel's default (not 400,000).
    let (addr, seen) = buffer_watching_server();
    let mut a = args(addr, "/");
    a.requests = Some(100);
    let r = run(&a);
    assert_eq!(r.config.recv_buffer, None);
    let buffers: Vec<u64> = seen.try_iter().collect();
    assert!(
        !buffers.is_empty() && buffers.iter().all(|&b| b != 400_000),
        "{buffers:?}"
    );
}
