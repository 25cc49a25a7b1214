//! Micro-benchmark of the sans-IO core alone (no socket, no model): request bytes
//! in through the connection driver, response bytes out, with the real handler.
//!
//! Cases (one line each, `core/<case>: <ns> ns/request`):
//! - `plaintext-get`: one wrk-style `GET /` per receive (keep-alive ping-pong);
//! - `pipelined-16`: 16 wrk-style `GET /` in one receive, answered in one send;
//! - `browser-get`: a `GET /` with 12 header fields, as a browser sends it.
//!
//! Time is wall time; each case runs five rounds and the best is printed (on a
//! shared machine the best round is the one least disturbed). For numbers that do
//! not depend on the machine's load, count instructions instead. Run: `taskset -c 0 cargo bench --bench core`
//! (`-- --quick` for fewer iterations; `-- --case NAME --iters N` runs one case
//! once, e.g. under `valgrind --tool=callgrind` to count instructions, see
//! `scripts/core-instructions.sh`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gvhttpd::app::App;
use gvhttpd::config::{Config, Model};
use gvhttpd::http::{Action, Driver, Env};
use gvhttpd::shutdown::Shutdown;
use gvhttpd::stats::Registry;

const WRK_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
const BROWSER_GET: &[u8] = b"GET / HTTP/1.1\r\n\
Host: localhost:8080\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Connection: keep-alive\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: none\r\n\
Sec-Fetch-User: ?1\r\n\
Priority: u=0, i\r\n\
\r\n";

/// Feed `input` (holding `per_feed` requests) `iters` times; ns per request.
fn run(app: &App, input: &[u8], per_feed: usize, iters: usize) -> f64 {
    let stats = app.registry().worker(0);
    let mut d = Driver::new(Default::default(), Default::default());
    let now = Instant::now();
    let stop = Shutdown::new(Duration::from_secs(5));
    let env = Env::new(app, stats, &stop, now);
    let mut act = d.start(&env);
    let t0 = Instant::now();
    for _ in 0..iters {
        assert!(matches!(act, Action::Recv { .. }), "{act:?}");
        let sending = d.feed(&env, black_box(input));
        assert!(matches!(sending, Action::Send { .. }), "{sending:?}");
        let n = black_box(d.pending()).len();
        act = d.sent(&env, n);
    }
    let spent = t0.elapsed();
    spent.as_nanos() as f64 / (iters * per_feed) as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let quick = args.iter().any(|a| a == "--quick");
    let iters = flag("--iters")
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 200_000 });
    let only = flag("--case");
    let rounds = if flag("--iters").is_some() { 1 } else { 5 };
    let cfg = Config::new(Model::Tokio, "127.0.0.1:0".parse().unwrap());
    let app = App::new(&cfg, Arc::new(Registry::new(Model::Tokio, 1))).unwrap();
    let pipelined: Vec<u8> = WRK_GET.repeat(16);
    let cases: [(&str, &[u8], usize, usize); 3] = [
        ("plaintext-get", WRK_GET, 1, iters),
        ("pipelined-16", &pipelined, 16, iters / 16),
        ("browser-get", BROWSER_GET, 1, iters),
    ];
    for (name, input, per, n) in cases {
        if only.is_some_and(|c| c != name) {
            continue;
        }
        let best = (0..rounds)
            .map(|_| run(&app, input, per, n))
            .fold(f64::INFINITY, f64::min);
        println!("core/{name}: {best:.1} ns/request");
    }
}
