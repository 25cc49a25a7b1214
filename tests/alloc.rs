//! The plaintext path allocates nothing per request: a counting global allocator
//! (`stats_alloc` around the system allocator) watches the driver answer
//! keep-alive and pipelined `GET /` with the real handler, after a warm-up that
//! fills the per-thread buffer pools. A count, not a timing.

use std::alloc::System;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use gvhttpd::app::App;
use gvhttpd::config::{Config, Model};
use gvhttpd::http::{Action, Driver, Env};
use gvhttpd::shutdown::Shutdown;
use gvhttpd::stats::Registry;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/// The server's shutdown signal, never triggered here.
static STOP: LazyLock<Arc<Shutdown>> = LazyLock::new(|| Shutdown::new(Duration::from_secs(5)));

/// Answer `rounds` feeds of `input` on one connection, each at the event time
/// `now(n)` gives for the `n`th feed; the allocations made, the fewest of three
/// such passes.
///
/// The counter is the whole process's, and libtest's main thread allocates (its
/// table of running tests) right after it has started this test's thread: in
/// CI that landed inside a measured pass now and then ("left: 4"). A one-off
/// allocation on another thread shows in one pass at most; one made per request
/// shows in every pass, `rounds` times.
fn allocations_at(
    app: &App,
    d: &mut Driver,
    input: &[u8],
    rounds: usize,
    now: impl Fn(usize) -> Instant,
) -> usize {
    let stats = app.registry().worker(0);
    let mut fewest = usize::MAX;
    for pass in 0..3 {
        let region = Region::new(GLOBAL);
        for i in 0..rounds {
            // Event times keep going forward across passes.
            let env = Env::new(app, stats, &STOP, now(pass * rounds + i));
            let a = d.feed(&env, input);
            assert!(matches!(a, Action::Send { .. }), "{a:?}");
            let n = d.pending().len();
            let a = d.sent(&env, n);
            assert!(matches!(a, Action::Recv { idle: true, .. }), "{a:?}");
        }
        fewest = fewest.min(region.change().allocations);
    }
    fewest
}

fn allocations(app: &App, d: &mut Driver, input: &[u8], rounds: usize) -> usize {
    allocations_at(app, d, input, rounds, |_| Instant::now())
}

#[test]
fn plaintext_requests_allocate_nothing() {
    let cfg = Config::new(Model::Tokio, "127.0.0.1:0".parse().unwrap());
    let app = App::new(&cfg, Arc::new(Registry::new(Model::Tokio, 1))).unwrap();
    let stats = app.registry().worker(0);
    let mut d = Driver::new(cfg.limits, cfg.timeouts);
    d.start(&Env::new(&app, stats, &STOP, Instant::now()));
    let pipelined = GET.repeat(16);
    // Warm-up: the first requests fill the per-thread pools and the Date cache.
    allocations(&app, &mut d, GET, 10);
    allocations(&app, &mut d, &pipelined, 10);
    assert_eq!(allocations(&app, &mut d, GET, 1000), 0, "keep-alive GET /");
    assert_eq!(
        allocations(&app, &mut d, &pipelined, 100),
        0,
        "16 pipelined GET /"
    );
    // A new second re-renders the cached Date; that happens inside some request's
    // answer and must not allocate either. Event times 1.1 s apart force it on
    // every round rather than when the test happens to cross a second.
    let start = Instant::now();
    let step = Duration::from_millis(1100);
    assert_eq!(
        allocations_at(&app, &mut d, GET, 5, |i| start + step * (i as u32 + 1)),
        0,
        "keep-alive GET / in a new second (the Date refresh)"
    );
    // The count is real: a request that must allocate is seen.
    let a = {
        let region = Region::new(GLOBAL);
        let env = Env::new(&app, stats, &STOP, Instant::now());
        let _ = d.feed(&env, b"GET /json?x HTTP/1.1\r\nHost: a\r\n\r\n");
        let _ = d.sent(&env, d.pending().len());
        let mut post = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n".to_vec();
        post.resize(post.len() + 70_000, b'x');
        let _ = d.feed(&env, &post);
        region.change().allocations
    };
    assert!(a > 0, "a 70 kB upload grows the buffers: allocations");
}
