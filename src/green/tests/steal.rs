//! Work-stealing tests: several runtimes in one [`StealGroup`], each on its own OS
//! thread, over real io_uring and loopback sockets. Whether a given thread is
//! stolen depends on timing (an idle worker at the moment its owner offers), so
//! the tests that need a steal repeat their scenario until one happened and
//! check every round's results either way.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Model;
use crate::green::net::GvtStream;
use crate::green::steal::spawn_migratable;
use crate::green::*;
use crate::stats::Registry;
use crate::uring::skip_if_unavailable;

/// Burn CPU for `d` without yielding (a busy worker).
fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn here() -> usize {
    current_worker().expect("on a runtime")
}

struct Run<R> {
    main: R,
    group: Arc<StealGroup>,
    reg: Arc<Registry>,
    stolen: Vec<u64>,
}

/// Run `main` as worker 0's root and `side(i)` as the root of every other worker
/// (by default: idle until `main` returns) in one group of `n` workers.
fn run_group<R: Send + 'static>(
    n: usize,
    main: impl FnOnce() -> R + Send + 'static,
    side: impl Fn(usize, &AtomicBool) + Send + Sync + 'static,
) -> Run<R> {
    let group = StealGroup::new(n, DEFAULT_GREEN_STACK);
    let reg = Arc::new(Registry::new(Model::Green, n));
    let done = Arc::new(AtomicBool::new(false));
    let side = Arc::new(side);
    let start = |i: usize, root: Box<dyn FnOnce() -> Option<R> + Send>| {
        let (group, reg) = (Arc::clone(&group), Arc::clone(&reg));
        std::thread::spawn(move || {
            let mut rt = Runtime::new(&RuntimeOptions::default())
                .expect("runtime")
                .with_stats(reg as Arc<dyn StatsSource>, i)
                .with_steal(group, i)
                .expect("joins the group");
            let r = rt.block_on(root).expect("runtime ran").expect("root ok");
            (r, rt.stolen())
        })
    };
    let d = Arc::clone(&done);
    let mut threads = vec![start(
        0,
        Box::new(move || {
            let r = main();
            d.store(true, Ordering::SeqCst);
            Some(r)
        }),
    )];
    for i in 1..n {
        let (side, done) = (Arc::clone(&side), Arc::clone(&done));
        threads.push(start(
            i,
            Box::new(move || {
                side(i, &done);
                None
            }),
        ));
    }
    let mut main = None;
    let mut stolen = Vec::new();
    for t in threads {
        let (r, s) = t.join().expect("worker thread");
        main = main.or(r);
        stolen.push(s);
    }
    Run {
        main: main.expect("worker 0's result"),
        group,
        reg,
        stolen,
    }
}

/// A side worker that idles (blocked in its ring) until `done`.
fn idle(_: usize, done: &AtomicBool) {
    while !done.load(Ordering::SeqCst) {
        sleep(Duration::from_millis(20)).unwrap();
    }
}

/// An echo server on loopback, one std thread per connection.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut b = [0u8; 256];
                while let Ok(n) = s.read(&mut b) {
                    if n == 0 || s.write_all(&b[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn idle_worker_steals_and_stolen_threads_keep_doing_their_io() {
    if skip_if_unavailable() {
        return;
    }
    let addr = echo_server();
    // Each round checks every echo and the counters; the rounds repeat until a
    // thread was moved in the middle of its loop of I/O (the first steals split
    // the threads early, after which both workers may stay busy).
    let rounds = until_stolen(|| {
        let run = run_group(
            2,
            move || {
                let hs: Vec<_> = (0..8u8)
                    .map(|id| {
                        spawn_migratable(move || {
                            let mut s = GvtStream::connect(addr).unwrap();
                            let mut workers = Vec::new();
                            for round in 0..6u8 {
                                spin(Duration::from_millis(2));
                                let msg = [id, round, 0xAB];
                                s.write_all(&msg).unwrap();
                                let mut got = [0u8; 3];
                                let mut n = 0;
                                while n < 3 {
                                    n += s.read(&mut got[n..]).unwrap();
                                }
                                assert_eq!(got, msg, "echo of thread {id} round {round}");
                                workers.push(here());
                                yield_now();
                            }
                            workers
                        })
                        .unwrap()
                    })
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            },
            idle,
        );
        assert!(run.stolen[1] > 0, "worker 1 stole nothing: {:?}", run.main);
        assert_eq!(
            run.reg.worker(1).green.stolen.get(),
            run.stolen[1],
            "published"
        );
        let taken: u64 = (0..2).map(|i| run.group.stolen_from(i)).sum();
        assert_eq!(taken, run.stolen.iter().sum::<u64>());
        for i in 0..2 {
            assert_eq!(
                run.reg.worker(i).green.stolen_from.get(),
                run.group.stolen_from(i)
            );
        }
        assert!(run.reg.worker(0).cpu_ns.get() > 0, "CPU time published");
        assert_eq!(
            run.group.stacks_outstanding(),
            0,
            "every stack back in its pool"
        );
        run.main.iter().any(|w| w.contains(&0) && w.contains(&1))
    });
    assert_eq!(rounds, 1, "no thread moved mid-loop in 20 rounds");
}

/// Repeat `round` until it reports that the thread it cares about was stolen
/// (at most 20 times); returns how many rounds saw a steal.
fn until_stolen(mut round: impl FnMut() -> bool) -> usize {
    let mut stolen = 0;
    for _ in 0..20 {
        if round() {
            stolen += 1;
            break;
        }
    }
    stolen
}

#[test]
fn a_thread_finishing_on_another_worker_wakes_its_joiner() {
    if skip_if_unavailable() {
        return;
    }
    let steals = until_stolen(|| {
        let run = run_group(
            2,
            || {
                sleep(Duration::from_millis(5)).unwrap();
                // The hog runs first on worker 0; the target waits behind it and
                // is offered to idle worker 1.
                let hog = spawn_migratable(|| spin(Duration::from_millis(30))).unwrap();
                let target = spawn_migratable(|| (here(), 42)).unwrap();
                let r = target.join().unwrap();
                hog.join().unwrap();
                r
            },
            idle,
        );
        assert_eq!(run.main.1, 42, "the result crosses workers");
        run.main.0 == 1
    });
    assert_eq!(steals, 1, "the target was never stolen in 20 rounds");
}

#[test]
fn a_stolen_thread_that_panics_is_contained_and_its_join_gets_the_payload() {
    if skip_if_unavailable() {
        return;
    }
    let steals = until_stolen(|| {
        let run = run_group(
            2,
            || {
                sleep(Duration::from_millis(5)).unwrap();
                let hog = spawn_migratable(|| spin(Duration::from_millis(30))).unwrap();
                let bad = spawn_migratable(|| -> u8 {
                    let w = here();
                    nop().unwrap(); // some I/O on the worker it runs on
                    panic!("boom on worker {w}")
                })
                .unwrap();
                let payload = bad.join().unwrap_err();
                hog.join().unwrap();
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default()
            },
            idle,
        );
        assert!(run.main.starts_with("boom on worker"), "{}", run.main);
        let panics: u64 = (0..2).map(|i| run.reg.worker(i).green.panics.get()).sum();
        assert_eq!(panics, 1, "counted once, where it ran");
        assert_eq!(run.group.stacks_outstanding(), 0);
        run.main == "boom on worker 1"
    });
    assert_eq!(
        steals, 1,
        "the panicking thread was never stolen in 20 rounds"
    );
}

#[test]
fn a_soft_interrupt_reaches_a_thread_once_and_a_hard_one_reaches_it_where_it_runs() {
    if skip_if_unavailable() {
        return;
    }
    // A silent peer: reads on it only end by deadline or interrupt.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let peers = std::thread::spawn(move || {
        let a = l.accept().unwrap().0;
        std::thread::sleep(Duration::from_secs(3));
        drop(a);
    });
    let on_1 = Arc::new(AtomicBool::new(false));
    let side_flag = Arc::clone(&on_1);
    let run = run_group(
        2,
        move || {
            let flag = Arc::clone(&on_1);
            let t = spawn_migratable(move || {
                let mut s = GvtStream::connect(addr).unwrap();
                let mut b = [0u8; 8];
                // 1. Parked in a read on worker 0: the soft interrupt ends it.
                let first = s.read(&mut b).unwrap_err().kind();
                // 2. Keep yielding until worker 1 takes us. (Short turns: a worker
                // whose threads keep yielding looks at its ring only every 16
                // scheduling passes of up to 1024 resumes each.)
                let t0 = Instant::now();
                while here() == 0 && t0.elapsed() < Duration::from_secs(5) {
                    yield_now();
                }
                let moved = here();
                // 3. Worker 1 delivered Soft before we came: not delivered again.
                s.set_read_timeout(Some(Duration::from_millis(100)));
                let second = s.read(&mut b).unwrap_err().kind();
                // 4. Worker 1's hard interrupt reaches us there.
                s.set_read_timeout(None);
                flag.store(true, Ordering::SeqCst);
                let third = s.read(&mut b).unwrap_err().kind();
                (first, moved, second, third)
            })
            .unwrap();
            // Something else worker 0 is busy with, so `t` is offered.
            let busy = Arc::new(AtomicBool::new(true));
            let b2 = Arc::clone(&busy);
            let hog = spawn(move || {
                while b2.load(Ordering::SeqCst) {
                    yield_now();
                }
            });
            sleep(Duration::from_millis(30)).unwrap();
            interrupt_all(Interrupt::Soft).unwrap();
            let r = t.join().unwrap();
            busy.store(false, Ordering::SeqCst);
            hog.join().unwrap();
            r
        },
        move |_, done| {
            interrupt_all(Interrupt::Soft).unwrap();
            while !side_flag.load(Ordering::SeqCst) {
                sleep(Duration::from_millis(5)).unwrap();
            }
            sleep(Duration::from_millis(20)).unwrap();
            // Every other thread here gets it; this root (the caller) does not.
            interrupt_all(Interrupt::Hard).unwrap();
            idle(1, done);
        },
    );
    use std::io::ErrorKind::{Interrupted, TimedOut};
    assert_eq!(run.main, (Interrupted, 1, TimedOut, Interrupted));
    assert!(run.stolen[1] >= 1);
    peers.join().unwrap();
}

#[test]
fn pinned_threads_never_move() {
    if skip_if_unavailable() {
        return;
    }
    let moved = Arc::new(AtomicUsize::new(0));
    let m = Arc::clone(&moved);
    let run = run_group(
        2,
        move || {
            // Plain `spawn`s, and a migratable thread that calls `spawn` (pinned
            // from then on), next to a CPU hog: none of them may leave worker 0.
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let m = Arc::clone(&m);
                    spawn(move || {
                        for _ in 0..5 {
                            spin(Duration::from_millis(1));
                            yield_now();
                            if here() != 0 {
                                m.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    })
                })
                .collect();
            let m2 = Arc::clone(&m);
            let parent = spawn_migratable(move || {
                // It may be stolen before it gets here, not after.
                let child = spawn(|| 7);
                let w = here();
                for _ in 0..5 {
                    spin(Duration::from_millis(1));
                    yield_now();
                    if here() != w {
                        m2.fetch_add(1, Ordering::SeqCst);
                    }
                }
                // Was a `JoinHandle` of worker 0; it must still be joined there.
                child.join().unwrap()
            })
            .unwrap();
            for h in hs {
                h.join().unwrap();
            }
            parent.join().unwrap()
        },
        idle,
    );
    assert_eq!(run.main, 7);
    assert_eq!(moved.load(Ordering::SeqCst), 0, "a pinned thread moved");
}

#[test]
fn with_steal_refuses_a_taken_or_missing_worker() {
    if skip_if_unavailable() {
        return;
    }
    let g = StealGroup::new(2, DEFAULT_GREEN_STACK);
    let rt = || Runtime::new(&RuntimeOptions::default()).unwrap();
    let _a = rt().with_steal(Arc::clone(&g), 0).unwrap();
    let e = rt().with_steal(Arc::clone(&g), 0).unwrap_err();
    assert!(e.to_string().contains("already has a runtime"), "{e}");
    let e = rt().with_steal(Arc::clone(&g), 2).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    let other = StealGroup::new(1, 256 * 1024);
    let e = rt().with_steal(other, 0).unwrap_err();
    assert!(e.to_string().contains("stack size"), "{e}");
}

#[test]
fn migratable_threads_on_a_lone_runtime_behave_like_spawned_ones() {
    if skip_if_unavailable() {
        return;
    }
    let mut r = Runtime::new(&RuntimeOptions::default()).unwrap();
    let v = r
        .block_on(|| {
            let h = spawn_migratable(|| {
                nop().unwrap();
                yield_now();
                5
            })
            .unwrap();
            h.join().unwrap()
        })
        .unwrap()
        .unwrap();
    assert_eq!(v, 5);
    // A finished handle can be joined from outside a green thread.
    let h = r
        .block_on(|| spawn_migratable(|| 9).unwrap())
        .unwrap()
        .unwrap();
    assert!(h.is_finished());
    assert_eq!(h.join().unwrap(), 9);
}

#[test]
fn wake_workers_reaches_a_waiter_on_every_worker_of_the_group() {
    // Issue 20, point 1: under stealing the shutdown watchers polled the
    // server-wide live count every 5 ms, because the last connection may end on
    // any worker. That connection now wakes every worker's `wait_wake` instead.
    if skip_if_unavailable() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let flag = Arc::new(AtomicBool::new(false));
        let (mine, theirs) = (Arc::clone(&flag), Arc::clone(&flag));
        let run = run_group(
            3,
            move || {
                sleep(Duration::from_millis(30)).unwrap(); // the others wait by now
                mine.store(true, Ordering::SeqCst);
                wake_workers();
            },
            move |_, _| {
                // Only a wake-up can end this wait: no timer, no polling.
                while !theirs.load(Ordering::SeqCst) {
                    wait_wake().unwrap();
                }
            },
        );
        let () = run.main;
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("every worker's waiter was woken");
}
