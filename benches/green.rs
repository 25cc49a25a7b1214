//! Green-thread runtime micro-benchmarks (a plain harness, not tests):
//!
//! - yield round trip: a green thread yields and is resumed (two context switches
//!   plus a run-queue push/pop), alone and with 2 threads ping-ponging;
//! - spawn + join of an empty green thread (stack from the pool);
//! - park on I/O + wake: a NOP through the ring, one thread (one `io_uring_enter`
//!   per op) and 64 threads (ops batched into one enter per turn);
//! - RSS of 10,000 and 100,000 parked green threads (VmRSS delta / thread).
//!
//! Run: `cargo bench --bench green` (pin it: `taskset -c 0 cargo bench --bench green`).
//! Optional args: `--quick` (fewer iterations).

use std::hint::black_box;
use std::time::Duration;

use gvhttpd::green::{self, Runtime, RuntimeOptions};

/// This thread's CPU time (user + system). The machine is shared, so wall time
/// would count the time other processes held the core; CPU time does not.
#[derive(Clone, Copy)]
struct Instant(Duration);

impl Instant {
    fn now() -> Instant {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Instant(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
    fn elapsed(self) -> Duration {
        Instant::now().0.saturating_sub(self.0)
    }
}

fn rt() -> Runtime {
    Runtime::new(&RuntimeOptions::default()).expect("io_uring runtime (is io_uring available?)")
}

/// Median of `runs` timings of `f(iters)`, in ns per iteration.
fn measure(runs: usize, iters: u64, mut f: impl FnMut(u64) -> Duration) -> f64 {
    let mut v: Vec<f64> = (0..runs)
        .map(|_| f(iters).as_nanos() as f64 / iters as f64)
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Reference: a bare corosensei resume + suspend, no scheduler at all.
fn bare_switch(iters: u64) -> Duration {
    let mut co = corosensei::Coroutine::<(), (), ()>::new(|y, ()| loop {
        y.suspend(());
    });
    let t = Instant::now();
    for _ in 0..iters {
        co.resume(());
    }
    let e = t.elapsed();
    co.force_unwind();
    e
}

/// Reference: the same on a pooled (slab, MADV_GUARD) stack.
fn bare_switch_pooled(iters: u64) -> Duration {
    let mut pool = green::stack::StackPool::new(64 * 1024);
    let stack = pool.get().unwrap();
    let mut co = corosensei::Coroutine::<(), (), (), _>::with_stack(stack, |y, ()| loop {
        y.suspend(());
    });
    let t = Instant::now();
    for _ in 0..iters {
        co.resume(());
    }
    let e = t.elapsed();
    co.force_unwind();
    pool.put(co.into_stack());
    e
}

fn yield_alone(iters: u64) -> Duration {
    rt().block_on(move || {
        let t = Instant::now();
        for _ in 0..iters {
            green::yield_now();
        }
        t.elapsed()
    })
    .unwrap()
    .unwrap()
}

/// Two threads alternate: `iters` yields in all (each resumes the other thread).
fn yield_pingpong(iters: u64) -> Duration {
    rt().block_on(move || {
        let other = green::spawn(move || {
            for _ in 0..iters / 2 {
                green::yield_now();
            }
        });
        let t = Instant::now();
        for _ in 0..iters / 2 {
            green::yield_now();
        }
        let e = t.elapsed();
        other.join().unwrap();
        e
    })
    .unwrap()
    .unwrap()
}

fn spawn_join(iters: u64) -> Duration {
    rt().block_on(move || {
        // Warm the stack pool so the measurement is the steady state.
        green::spawn(|| ()).join().unwrap();
        let t = Instant::now();
        for i in 0..iters {
            let h = green::spawn(move || black_box(i));
            black_box(h.join().unwrap());
        }
        t.elapsed()
    })
    .unwrap()
    .unwrap()
}

fn nop_one(iters: u64) -> Duration {
    rt().block_on(move || {
        let t = Instant::now();
        for _ in 0..iters {
            green::nop().unwrap();
        }
        t.elapsed()
    })
    .unwrap()
    .unwrap()
}

fn nop_batched(threads: u64, iters: u64) -> Duration {
    rt().block_on(move || {
        let t = Instant::now();
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                green::spawn(move || {
                    for _ in 0..iters / threads {
                        green::nop().unwrap();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        t.elapsed()
    })
    .unwrap()
    .unwrap()
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// RSS growth per parked green thread with `n` of them parked in `wait_wake`.
fn rss_parked(n: usize) -> (f64, u64) {
    let mut r = rt();
    let waker = r.waker();
    r.block_on(move || {
        let before = vm_rss_kib();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                green::spawn(|| {
                    // Parked like an idle connection waiting for its next request.
                    let _ = green::wait_wake();
                })
            })
            .collect();
        green::yield_now(); // every thread runs once and parks
        let after = vm_rss_kib();
        waker.wake();
        for h in hs {
            h.join().unwrap();
        }
        ((after - before) as f64 * 1024.0 / n as f64, after - before)
    })
    .unwrap()
    .unwrap()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    if std::env::args().any(|a| a == "--bare") {
        println!("bare {:.1} ns", measure(5, 20_000_000, bare_switch));
        println!(
            "bare pooled {:.1} ns",
            measure(5, 20_000_000, bare_switch_pooled)
        );
        return;
    }
    if std::env::args().any(|a| a == "--yield-only") {
        println!(
            "yield round trip {:.1} ns",
            measure(5, 20_000_000, yield_alone)
        );
        return;
    }
    let (runs, scale) = if quick { (3, 10) } else { (7, 1) };
    println!("green runtime micro-benchmarks (median of {runs} runs, thread CPU time)");
    println!(
        "bare corosensei resume+suspend   {:>8.1} ns  (reference, no scheduler)",
        measure(runs, 10_000_000 / scale, bare_switch)
    );
    println!(
        "yield round trip (1 thread)      {:>8.1} ns",
        measure(runs, 10_000_000 / scale, yield_alone)
    );
    println!(
        "yield, 2 threads alternating     {:>8.1} ns per yield",
        measure(runs, 10_000_000 / scale, yield_pingpong)
    );
    println!(
        "spawn + join                     {:>8.1} ns",
        measure(runs, 1_000_000 / scale, spawn_join)
    );
    println!(
        "park on I/O + wake (NOP, 1 thr)  {:>8.1} ns",
        measure(runs, 1_000_000 / scale, nop_one)
    );
    println!(
        "park on I/O + wake (NOP, 64 thr) {:>8.1} ns/op",
        measure(runs, 2_560_000 / scale, |i| nop_batched(64, i))
    );
    for n in [10_000, 100_000] {
        let (per, total) = rss_parked(n);
        println!(
            "RSS, {n:>6} parked green threads {:>8.0} B/thread ({} KiB total)",
            per, total
        );
    }
}
