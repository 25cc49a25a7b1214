//! Runtime tests over real io_uring and loopback sockets.

mod panic;
mod reactor;
mod stack;
mod steal;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::stats::Registry;
use crate::uring::skip_if_unavailable;

fn rt() -> Runtime {
    Runtime::new(&RuntimeOptions::default()).expect("green runtime")
}

#[test]
fn spawn_yield_join_interleave_in_order() {
    if skip_if_unavailable() {
        return;
    }
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = Rc::clone(&log);
    let out = rt()
        .block_on(move || {
            let hs: Vec<_> = (0..3)
                .map(|i| {
                    let l = Rc::clone(&l);
                    spawn(move || {
                        for step in 0..2 {
                            l.borrow_mut().push((i, step));
                            yield_now();
                        }
                        i * 10
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
        })
        .unwrap()
        .unwrap();
    assert_eq!(out, 30);
    assert_eq!(
        *log.borrow(),
        vec![(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)],
        "round-robin"
    );
}

#[test]
fn panic_is_caught_counted_and_other_threads_continue() {
    if skip_if_unavailable() {
        return;
    }
    let reg = Arc::new(Registry::new(crate::config::Model::Green, 1));
    let mut r = rt().with_stats(Arc::clone(&reg) as Arc<dyn StatsSource>, 0);
    let survived = r
        .block_on(|| {
            let bad = spawn(|| -> u32 { panic!("boom in a green thread") });
            let good = spawn(|| {
                yield_now();
                7u32
            });
            assert!(bad.join().is_err());
            good.join().unwrap()
        })
        .unwrap()
        .unwrap();
    assert_eq!(survived, 7);
    let g = &reg.worker(0).green;
    assert_eq!(g.panics.get(), 1);
    assert_eq!(g.spawned.get(), 3);
    assert_eq!(g.finished.get(), 3);
    assert!(g.parks[ParkReason::Join as usize].get() >= 1);
    // Three green threads ran, and `good` yielded: the worker switched stacks.
    assert!(
        g.context_switches.get() >= 3,
        "{}",
        g.context_switches.get()
    );
}

#[test]
fn root_panic_is_returned() {
    if skip_if_unavailable() {
        return;
    }
    let r = rt().block_on(|| panic!("root")).unwrap();
    assert!(r.is_err());
}

#[test]
fn sleep_parks_only_the_green_thread() {
    if skip_if_unavailable() {
        return;
    }
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = Rc::clone(&order);
    let t0 = Instant::now();
    rt().block_on(move || {
        let o1 = Rc::clone(&o);
        let a = spawn(move || {
            sleep(Duration::from_millis(60)).unwrap();
            o1.borrow_mut().push("slow");
        });
        let o2 = Rc::clone(&o);
        let b = spawn(move || {
            sleep(Duration::from_millis(5)).unwrap();
            o2.borrow_mut().push("fast");
        });
        a.join().unwrap();
        b.join().unwrap();
    })
    .unwrap()
    .unwrap();
    assert_eq!(*order.borrow(), vec!["fast", "slow"]);
    assert!(t0.elapsed() >= Duration::from_millis(60));
}

#[test]
fn calls_outside_a_green_thread_fail_cleanly() {
    assert!(!in_green_thread());
    let e = sleep(Duration::from_millis(1)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
    assert!(try_spawn(|| ()).is_err());
}

#[test]
fn echo_over_loopback_and_read_deadline() {
    if skip_if_unavailable() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    let client = std::thread::spawn(move || {
        let addr = rx.recv().unwrap();
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"HELLO");
        // Then stay silent: the server's read deadline must fire and close.
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        rest
    });
    let res = rt()
        .block_on(move || {
            let l = net::GvtListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            let mut s = l.accept().unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap();
            buf[..n].make_ascii_uppercase();
            s.write_all(&buf[..n]).unwrap();
            s.set_read_deadline(Some(Instant::now() + Duration::from_millis(50)));
            let e = s.read(&mut buf).unwrap_err();
            s.close().unwrap();
            e.kind()
        })
        .unwrap()
        .unwrap();
    assert_eq!(res, std::io::ErrorKind::TimedOut);
    assert!(client.join().unwrap().is_empty());
}

#[test]
fn soft_interrupt_ends_accept_and_idle_read_but_not_sleep() {
    if skip_if_unavailable() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    let client = std::thread::spawn(move || {
        let addr = rx.recv().unwrap();
        let s = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        s.shutdown(Shutdown::Both).ok();
    });
    let kinds = rt()
        .block_on(move || {
            let l = Rc::new(net::GvtListener::bind("127.0.0.1:0".parse().unwrap()).unwrap());
            tx.send(l.local_addr().unwrap()).unwrap();
            let mut s = l.accept().unwrap();
            let l2 = Rc::clone(&l);
            let acceptor = spawn(move || l2.accept().map(|_| ()).unwrap_err().kind());
            let reader = spawn(move || {
                let mut b = [0u8; 8];
                s.read(&mut b).unwrap_err().kind()
            });
            let slept = Rc::new(Cell::new(false));
            let sl = Rc::clone(&slept);
            let sleeper = spawn(move || {
                sleep(Duration::from_millis(20)).unwrap();
                sl.set(true);
            });
            sleep(Duration::from_millis(5)).unwrap();
            interrupt_all(Interrupt::Soft).unwrap();
            let k = (acceptor.join().unwrap(), reader.join().unwrap());
            sleeper.join().unwrap();
            assert!(slept.get());
            k
        })
        .unwrap()
        .unwrap();
    assert_eq!(kinds.0, std::io::ErrorKind::Interrupted);
    assert_eq!(kinds.1, std::io::ErrorKind::Interrupted);
    client.join().unwrap();
}

#[test]
fn cross_thread_wake_reaches_a_waiting_green_thread() {
    if skip_if_unavailable() {
        return;
    }
    let mut r = rt();
    let waker = r.waker();
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f2 = Arc::clone(&flag);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        f2.store(true, std::sync::atomic::Ordering::SeqCst);
        waker.wake();
    });
    r.block_on(move || {
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            wait_wake().unwrap();
        }
    })
    .unwrap()
    .unwrap();
    t.join().unwrap();
}

#[test]
fn deadlock_is_reported_not_hung() {
    if skip_if_unavailable() {
        return;
    }
    let mut r = rt();
    let e = r
        .block_on(|| {
            let me = Rc::new(RefCell::new(None::<JoinHandle<()>>));
            let m2 = Rc::clone(&me);
            // A thread that joins itself can never finish.
            let h = spawn(move || {
                yield_now();
                let h = m2.borrow_mut().take().unwrap();
                let _ = h.join();
            });
            *me.borrow_mut() = Some(h);
        })
        .unwrap_err();
    assert!(e.to_string().contains("deadlock"), "{e}");
}

#[test]
fn files_open_beneath_stat_and_read() {
    if skip_if_unavailable() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("gvhttpd-green-fs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), b"green file bytes").unwrap();
    let dirfd = std::fs::File::open(&dir).unwrap();
    let res = rt()
        .block_on(move || {
            let flags = (libc::O_RDONLY | libc::O_NOFOLLOW) as u64;
            let resolve = 0x08 | 0x04; // RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
            let f = fs::open_beneath(dirfd.as_fd(), "a.txt".as_ref(), flags, resolve).unwrap();
            let st = f.stat().unwrap();
            let mut buf = vec![0u8; 64];
            let n = f.read_at(&mut buf, 6).unwrap();
            f.close().unwrap();
            let escape = fs::open_beneath(dirfd.as_fd(), "../x".as_ref(), flags, resolve);
            (
                st,
                buf[..n].to_vec(),
                escape.map(|_| ()).unwrap_err().raw_os_error(),
            )
        })
        .unwrap()
        .unwrap();
    let meta = std::fs::metadata(dir.join("a.txt")).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(res.0.is_regular() && res.0.size == 16);
    // The validators' inputs: the same modification time and inode as fstat's.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (res.0.mtime_sec, i64::from(res.0.mtime_nsec), res.0.ino),
        (meta.mtime(), meta.mtime_nsec(), meta.ino())
    );
    assert_eq!(res.1, b"file bytes");
    assert_eq!(res.2, Some(libc::EXDEV));
}

use std::os::fd::AsFd;

#[test]
fn completion_for_a_finished_slot_is_dropped_not_delivered() {
    if skip_if_unavailable() {
        return;
    }
    let mut r = rt();
    r.block_on(|| {
        // A task finishes; its slot is then reused by the next spawn.
        let old = spawn(|| sched::current().unwrap().1).join().unwrap();
        let (ctx, _) = sched::current().unwrap();
        // Forge a late completion carrying the finished task's token.
        let sqe = io_uring::opcode::Nop::new()
            .build()
            .user_data(old.token(crate::green::ring_backend::OP).raw());
        // SAFETY: a NOP references no memory.
        unsafe {
            ctx.reactor
                .borrow_mut()
                .backend_mut::<crate::green::ring_backend::RingBackend>()
                .expect("a per-worker ring")
                .ring_mut()
                .push(sqe)
        };
        let reused = spawn(move || {
            let me = sched::current().unwrap().1;
            assert_eq!(me.index, old.index, "slot reused");
            assert_ne!(me.gen, old.gen, "with a new generation");
            // Parks on a real op; the forged CQE must not resume it early.
            sleep(Duration::from_millis(20)).unwrap();
        });
        reused.join().unwrap();
    })
    .unwrap()
    .unwrap();
    assert_eq!(r.stale_completions(), 1);
}

#[test]
fn on_worker_stack_runs_off_the_green_stack_and_returns() {
    if skip_if_unavailable() {
        return;
    }
    let (inside, outside, v) = rt()
        .block_on(|| {
            let here = 0u8;
            let green_sp = &here as *const u8 as usize;
            let (worker_sp, v) = on_worker_stack(|| {
                let there = 0u8;
                (&there as *const u8 as usize, 41 + 1)
            });
            (green_sp, worker_sp, v)
        })
        .unwrap()
        .unwrap();
    assert_eq!(v, 42);
    // The two frames live on different stacks (green stacks are far from the
    // thread's own stack).
    assert!(
        inside.abs_diff(outside) > 1 << 20,
        "{inside:x} vs {outside:x}"
    );
    assert_eq!(
        on_worker_stack(|| 7),
        7,
        "outside a green thread it just runs"
    );
}

#[test]
fn blocking_inside_on_worker_stack_panics_instead_of_corrupting() {
    if skip_if_unavailable() {
        return;
    }
    let r = rt()
        .block_on(|| spawn(|| on_worker_stack(yield_now)).join())
        .unwrap()
        .unwrap();
    assert!(r.is_err());
}

/// An op started inside `on_worker_stack` (where parking is impossible) is refused
/// before anything reaches the ring, so no kernel op can outlive its buffer; the
/// connection then works normally and the bytes are still there to read.
#[test]
fn io_inside_on_worker_stack_is_refused_before_submission() {
    if skip_if_unavailable() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(rx.recv().unwrap()).unwrap();
        s.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        buf
    });
    let out = rt()
        .block_on(move || {
            let l = net::GvtListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            let mut s = l.accept().unwrap();
            let mut buf = [0u8; 4];
            let refused = on_worker_stack(|| s.read(&mut buf)).unwrap_err();
            let slept = on_worker_stack(|| time::sleep(Duration::from_millis(1))).unwrap_err();
            let n = s.read(&mut buf).unwrap();
            s.write_all(b"pong").unwrap();
            (refused.kind(), slept.kind(), buf[..n].to_vec())
        })
        .unwrap()
        .unwrap();
    assert_eq!(out.0, std::io::ErrorKind::Unsupported);
    assert_eq!(out.1, std::io::ErrorKind::Unsupported);
    assert_eq!(out.2, b"ping");
    assert_eq!(&client.join().unwrap(), b"pong");
}

#[test]
fn a_wake_before_park_is_not_lost() {
    if skip_if_unavailable() {
        return;
    }
    // The wake-up arrives while the task is still running (before it parks): the
    // park must return at once instead of sleeping forever (which block_on would
    // report as a deadlock).
    let r = rt()
        .block_on(|| {
            let (ctx, key) = sched::current().unwrap();
            ctx.sched.borrow_mut().wake(key);
            drop(ctx);
            sched::park(ParkReason::Io);
            "woken"
        })
        .unwrap()
        .unwrap();
    assert_eq!(r, "woken");
}

#[test]
fn accept_takes_a_burst_of_waiting_connections_in_few_turns() {
    // Issue 14, item 1: with one io_uring accept per call, a worker took one waiting
    // connection per loop turn, so a wave queued behind turns made long by others.
    if skip_if_unavailable() {
        return;
    }
    const WAITING: usize = 100;
    let turns = rt()
        .block_on(|| {
            let l = net::GvtListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = l.local_addr().unwrap();
            // Connected (by the kernel) before anything accepts them.
            let clients: Vec<TcpStream> = (0..WAITING)
                .map(|_| TcpStream::connect(addr).unwrap())
                .collect();
            // Another green thread takes one op per loop turn: it counts the turns.
            let turns = Rc::new(Cell::new(0u32));
            let done = Rc::new(Cell::new(false));
            let (t, d) = (Rc::clone(&turns), Rc::clone(&done));
            let ticker = spawn(move || {
                while !d.get() {
                    nop().unwrap();
                    t.set(t.get() + 1);
                }
            });
            let accepted: Vec<_> = (0..WAITING).map(|_| l.accept().unwrap()).collect();
            let took = turns.get();
            done.set(true);
            ticker.join().unwrap();
            assert_eq!(accepted.len(), clients.len());
            took
        })
        .unwrap()
        .unwrap();
    assert!(
        turns < 10,
        "accepting {WAITING} waiting connections took {turns} loop turns"
    );
}

#[test]
fn close_inside_on_worker_stack_still_releases_the_descriptor() {
    // Issue 14, item 9: close_fd gave up the descriptor (`into_raw_fd`) before a
    // submit that fails inside on_worker_stack, so the socket leaked.
    if skip_if_unavailable() {
        return;
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let server = net::GvtStream::from_std(l.accept().unwrap().0).unwrap();
    let closed = rt()
        .block_on(move || on_worker_stack(move || server.close()))
        .unwrap()
        .unwrap();
    // The peer sees the close (EOF), not a socket held open by a leaked descriptor.
    let mut b = [0u8; 1];
    let eof = client.read(&mut b);
    assert!(matches!(eof, Ok(0)), "the descriptor leaked: {eof:?}");
    assert!(closed.is_ok(), "{closed:?}");
}

#[test]
fn deadline_heap_is_bounded_by_live_green_threads() {
    // Issue 14, item 10: a finished task's deadline entry stayed in the heap until
    // it came due, so short connections with a 60 s idle deadline piled up entries.
    if skip_if_unavailable() {
        return;
    }
    const TASKS: usize = 5000;
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(rx.recv().unwrap()).unwrap();
        s.write_all(&[b'x'; TASKS]).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let (largest, left) = rt()
        .block_on(move || {
            let l = net::GvtListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            let s = Rc::new(RefCell::new(l.accept().unwrap()));
            let heap = || sched::current().unwrap().0.sched.borrow().timers.len();
            let mut largest = 0;
            for _ in 0..TASKS {
                let s = Rc::clone(&s);
                // Each green thread reads one byte under a far deadline and ends.
                spawn(move || {
                    let mut s = s.borrow_mut();
                    s.set_read_deadline(Some(Instant::now() + Duration::from_secs(60)));
                    s.read_exact(&mut [0u8; 1]).unwrap();
                })
                .join()
                .unwrap();
                largest = largest.max(heap());
            }
            (largest, heap())
        })
        .unwrap()
        .unwrap();
    client.join().unwrap();
    let bound = crate::green::reactor::COMPACT_MIN + 1;
    assert!(
        largest <= bound && left <= bound,
        "{TASKS} finished green threads left {left} deadline entries (at most {largest}); bound {bound}"
    );
}

/// `wait_wake_until` ends at its deadline when nobody wakes the worker, and at
/// once when another thread does (also run on a dedicated reactor).
pub(super) fn wait_wake_until_ends_by_deadline_or_wake(r: &mut Runtime) {
    let waker = r.waker();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let waking = std::thread::spawn(move || {
        rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        waker.wake();
    });
    let ((timed, waited), (woken, took)) = r
        .block_on(move || {
            let t0 = Instant::now();
            let timed = wait_wake_until(t0 + Duration::from_millis(30)).unwrap();
            let waited = t0.elapsed();
            tx.send(()).unwrap();
            let t1 = Instant::now();
            let woken = wait_wake_until(t1 + Duration::from_secs(20)).unwrap();
            ((timed, waited), (woken, t1.elapsed()))
        })
        .unwrap()
        .unwrap();
    waking.join().unwrap();
    assert!(!timed, "nobody woke the first wait");
    assert!(
        waited >= Duration::from_millis(29),
        "ended early: {waited:?}"
    );
    assert!(woken, "the second wait was woken");
    assert!(
        took < Duration::from_secs(10),
        "not by its deadline: {took:?}"
    );
}

#[test]
fn wait_wake_until_ends_by_deadline_or_wake_on_a_ring() {
    // Issue 20, point 1: the shutdown watcher's wait for "the last connection
    // ended" until the grace deadline, without polling.
    if skip_if_unavailable() {
        return;
    }
    wait_wake_until_ends_by_deadline_or_wake(&mut rt());
}
