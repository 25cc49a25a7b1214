//! Tests of the dedicated reactor: tags and generations, backpressure, several
//! workers on one queue, cancellation and deadlines, cross-thread wakes, and the
//! Tier 2 blocking pool (forced). The per-model suite (`tests/`) runs the whole
//! server as the `green+dedicated` row on top of these.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::opcode;

use super::mailbox::Done;
use super::*;
use crate::config::Model;
use crate::green::net::{GvtListener, GvtStream};
use crate::green::{self, fs as gfs, sched, Interrupt, Runtime, RuntimeOptions, StatsSource};
use crate::stats::Registry;
use crate::uring::{skip_if_unavailable, OpKind, Token};

fn start(
    workers: usize,
    tweak: impl FnOnce(&mut ReactorOptions),
) -> (ReactorThread, Arc<Registry>) {
    let mut o = ReactorOptions::new(UringOptions::default(), workers).expect("options");
    o.force_fallback = OpSet::default();
    tweak(&mut o);
    let reg = Arc::new(Registry::new(Model::Green, workers));
    let r = ReactorThread::start(&o, Some(reg.reactor_counters())).expect("reactor thread");
    (r, reg)
}

fn rt_on(r: &ReactorThread, worker: usize, reg: &Arc<Registry>) -> Runtime {
    Runtime::on_reactor(&RuntimeOptions::default(), r, worker)
        .expect("attach")
        .with_stats(Arc::clone(reg) as Arc<dyn StatsSource>, worker)
}

fn stats(reg: &Registry) -> String {
    let mut s = String::new();
    reg.render_json(&mut s);
    s
}

/// A JSON number field of `/stats` (first occurrence).
fn field(json: &str, name: &str) -> u64 {
    let at = json
        .find(&format!("\"{name}\":"))
        .unwrap_or_else(|| panic!("{name} in {json}"));
    json[at + name.len() + 3..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} is a number in {json}"))
}

#[test]
fn tags_carry_worker_slot_and_full_generation() {
    let key = crate::uring::SlotKey {
        index: MAX_SLOTS - 1,
        gen: crate::uring::token::GEN_MASK,
    };
    let last_epoch = (EPOCHS - 1) as u8;
    let t = tag(255, last_epoch, key);
    let named = |worker, epoch, key| Some(Tag { worker, epoch, key });
    assert_eq!(untag(t), named(255, last_epoch, key));
    let other = crate::uring::SlotKey { index: 7, gen: 3 };
    assert_eq!(untag(tag(0, 1, other)), named(0, 1, other));
    assert_ne!(
        tag(0, 1, other),
        tag(1, 1, other),
        "the worker is part of the tag"
    );
    assert_ne!(
        tag(0, 1, other),
        tag(0, 2, other),
        "the attach epoch is part of the tag"
    );
    let next_gen = crate::uring::SlotKey { index: 7, gen: 4 };
    assert_ne!(
        untag(tag(0, 1, next_gen)),
        named(0, 1, other),
        "generations differ"
    );
    for internal in [OpKind::WAKE, OpKind::CANCEL, OpKind::NOP, OpKind::TIMER] {
        assert_eq!(untag(Token::internal(internal).raw()), None);
    }
}

#[test]
fn attach_refuses_unknown_and_taken_worker_slots() {
    if skip_if_unavailable() {
        return;
    }
    let (r, _) = start(1, |_| {});
    let o = RuntimeOptions::default();
    let first = Runtime::on_reactor(&o, &r, 0).expect("worker 0");
    let e = Runtime::on_reactor(&o, &r, 0).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
    let e = Runtime::on_reactor(&o, &r, 1).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    drop(first);
    Runtime::on_reactor(&o, &r, 0).expect("free again once the first runtime is gone");
    let too_many = ReactorOptions::new(UringOptions::default(), MAX_WORKERS + 1).unwrap();
    assert!(ReactorThread::start(&too_many, None).is_err());
}

/// A listener, a client that writes and reads back, a server that echoes; then a
/// read that misses its deadline (cancelled in the reactor's ring or the pool).
fn echo_and_timeout() -> (Vec<u8>, io::ErrorKind, Duration) {
    let l = GvtListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = l.local_addr().unwrap();
    let server = green::spawn(move || {
        let mut s = l.accept().unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        s.write_all(&buf[..n]).unwrap();
        // Then stay silent: the client's next read times out. Wait for its close.
        let mut rest = [0u8; 8];
        let _ = s.read(&mut rest);
    });
    let mut c = GvtStream::connect(addr).unwrap();
    c.write_all(b"ping through the reactor").unwrap();
    let mut got = vec![0u8; 24];
    let mut n = 0;
    while n < got.len() {
        n += c.read(&mut got[n..]).unwrap();
    }
    c.set_read_timeout(Some(Duration::from_millis(50)));
    let t0 = Instant::now();
    let kind = c.read(&mut [0u8; 8]).unwrap_err().kind();
    let waited = t0.elapsed();
    drop(c);
    server.join().unwrap();
    (got, kind, waited)
}

#[test]
fn ops_run_on_the_reactor_thread_and_report_its_counters() {
    if skip_if_unavailable() {
        return;
    }
    let (r, reg) = start(1, |_| {});
    let mut rt = rt_on(&r, 0, &reg);
    let ((got, kind, waited), slept) = rt
        .block_on(|| {
            green::nop().unwrap();
            let t0 = Instant::now();
            green::sleep(Duration::from_millis(20)).unwrap();
            (echo_and_timeout(), t0.elapsed())
        })
        .unwrap()
        .unwrap();
    assert_eq!(got, b"ping through the reactor");
    assert_eq!(kind, io::ErrorKind::TimedOut);
    assert!(
        waited >= Duration::from_millis(45),
        "deadline honoured: {waited:?}"
    );
    assert!(slept >= Duration::from_millis(19), "{slept:?}");
    drop(rt);
    drop(r); // the reactor publishes its last counters as it stops
    let s = stats(&reg);
    assert!(field(&s, "sqes") >= 8, "{s}");
    assert!(field(&s, "completions") >= 8, "{s}");
    assert!(
        field(&s, "worker_sleeps") >= 1,
        "the idle worker slept: {s}"
    );
    assert_eq!(field(&s, "fallbacks"), 0, "{s}");
    assert!(
        field(&s, "sqes_submitted") >= 8,
        "the reactor's ring counts as io_uring: {s}"
    );
}

#[test]
fn a_stale_completion_after_slot_reuse_is_dropped() {
    if skip_if_unavailable() {
        return;
    }
    let (r, reg) = start(1, |_| {});
    let shared = Arc::clone(r.shared());
    let mut rt = rt_on(&r, 0, &reg);
    let epoch = epoch_of(&rt);
    rt.block_on(move || {
        let old = green::spawn(|| sched::current().unwrap().1).join().unwrap();
        // A late completion for the finished task, as a reactor would deliver it.
        shared.mailboxes[0].deliver_one(Done {
            tag: tag(0, epoch, old),
            result: 0,
        });
        let reused = green::spawn(move || {
            let me = sched::current().unwrap().1;
            assert_eq!(me.index, old.index, "slot reused");
            assert_ne!(me.gen, old.gen, "with a new generation");
            // Parked on a real op: the forged completion must not resume it early.
            let t0 = Instant::now();
            green::sleep(Duration::from_millis(30)).unwrap();
            t0.elapsed()
        });
        let slept = reused.join().unwrap();
        assert!(
            slept >= Duration::from_millis(29),
            "resumed early: {slept:?}"
        );
    })
    .unwrap()
    .unwrap();
    assert_eq!(rt.stale_completions(), 1);
}

/// The attach epoch of a runtime on a dedicated reactor.
fn epoch_of(rt: &Runtime) -> u8 {
    rt.ctx
        .reactor
        .borrow_mut()
        .backend_mut::<client::Client>()
        .expect("attached to a reactor thread")
        .epoch()
}

/// Pop the next op request the workers pushed (the test plays the reactor).
fn next_op(q: &mut queue::Consumer<Request>) -> u64 {
    let t0 = Instant::now();
    loop {
        match q.pop() {
            Some(Request::Op { tag, .. }) => return tag,
            Some(Request::Cancel { .. }) => panic!("nothing here is cancelled"),
            None => {
                assert!(t0.elapsed() < Duration::from_secs(10), "no op came");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

// Issue 24, item 7: a runtime attached to a worker slot whose previous runtime was
// dropped with an op in flight took that op's late completion for its own (same
// slot, same generation): its task resumed while its read was still the kernel's.
#[test]
fn a_late_completion_of_a_dropped_runtime_does_not_resume_the_next_one() {
    if skip_if_unavailable() {
        return;
    }
    let (r, mut q) = ReactorThread::stalled(1, 16).unwrap();
    let shared = Arc::clone(r.shared());
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let conn = || std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (a_conn, b_conn) = (conn(), conn());
    let _peers = (l.accept().unwrap(), l.accept().unwrap());
    let o = RuntimeOptions::default();

    // Runtime A reads; its reactor then "stops", so A's loop fails with the read in
    // flight and A is dropped (its root's stack leaked, as the runtime does).
    let mut a = Runtime::on_reactor(&o, &r, 0).unwrap();
    let sh = Arc::clone(&shared);
    let fake = std::thread::spawn(move || {
        let old = next_op(&mut q);
        sh.closed.store(true, Ordering::SeqCst);
        sh.mailboxes[0].post_external();
        (old, q)
    });
    let failed = a.block_on(move || {
        let mut s = GvtStream::from_std(a_conn).unwrap();
        s.read(&mut [0u8; 16]).map_err(|e| e.kind())
    });
    assert!(failed.is_err(), "A's loop ends with its read in flight");
    drop(a);
    let (old, mut q) = fake.join().unwrap();
    shared.closed.store(false, Ordering::SeqCst);

    // Runtime B on the same slot: its root reads too (same slot and generation as
    // A's). A's read completes late, before B's own.
    let mut b = Runtime::on_reactor(&o, &r, 0).unwrap();
    let sh = Arc::clone(&shared);
    let fake = std::thread::spawn(move || {
        let new = next_op(&mut q);
        sh.mailboxes[0].deliver_one(Done {
            tag: old,
            result: 5,
        });
        std::thread::sleep(Duration::from_millis(30));
        sh.mailboxes[0].deliver_one(Done {
            tag: new,
            result: 0,
        });
    });
    let n = b
        .block_on(move || {
            let mut s = GvtStream::from_std(b_conn).unwrap();
            s.read(&mut [0u8; 16]).map_err(|e| e.kind())
        })
        .unwrap()
        .unwrap();
    fake.join().unwrap();
    assert_eq!(n, Ok(0), "B's read ended with its own completion, not A's");
    assert_eq!(
        b.stale_completions(),
        1,
        "A's completion was dropped as stale"
    );
    drop(b);
    // Every op of A came back: its epoch is free again.
    assert!(shared.mailboxes[0]
        .orphans
        .iter()
        .all(|n| n.load(Ordering::SeqCst) == 0));
}

#[test]
fn wait_wake_until_ends_by_deadline_or_wake_on_the_reactor_thread() {
    if skip_if_unavailable() {
        return;
    }
    let (r, reg) = start(1, |_| {});
    crate::green::tests::wait_wake_until_ends_by_deadline_or_wake(&mut rt_on(&r, 0, &reg));
}

#[test]
fn a_full_queue_parks_submitters_until_space_and_a_deadline_ends_a_waiting_op() {
    if skip_if_unavailable() {
        return;
    }
    // No reactor thread: this test is the reactor, and pops only when it decides.
    let (r, mut q) = ReactorThread::stalled(1, 2).unwrap();
    let shared = Arc::clone(r.shared());
    let gave_up = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&gave_up);
    let fake = std::thread::spawn(move || {
        let t0 = Instant::now();
        while !flag.load(Ordering::SeqCst) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the read never gave up"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(q.len(), 2, "two NOPs fill the queue; nothing else got in");
        let mb = &shared.mailboxes[0];
        let mut served = 0;
        while served < 3 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "third NOP never came"
            );
            match q.pop() {
                Some(Request::Op { tag, sqe }) => {
                    assert_eq!(blocking::opcode_of(&sqe), opcode::Nop::CODE, "only NOPs");
                    fence(Ordering::SeqCst);
                    if mb.wants_space.swap(false, Ordering::SeqCst) {
                        mb.post_space();
                    }
                    mb.deliver_one(Done { tag, result: 0 });
                    served += 1;
                }
                Some(Request::Cancel { .. }) => {
                    panic!("the read ended before reaching the queue: nothing to cancel")
                }
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        assert!(q.pop().is_none());
    });
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let std_c = std::net::TcpStream::connect(std_l.local_addr().unwrap()).unwrap();
    let _peer = std_l.accept().unwrap();
    let mut rt = Runtime::on_reactor(&RuntimeOptions::default(), &r, 0).unwrap();
    let kind = rt
        .block_on(move || {
            let nops: Vec<_> = (0..3).map(|_| green::spawn(green::nop)).collect();
            let reader = green::spawn(move || {
                let mut s = GvtStream::from_std(std_c).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(50)));
                let e = s.read(&mut [0u8; 16]).unwrap_err();
                gave_up.store(true, Ordering::SeqCst);
                e.kind()
            });
            for n in nops {
                n.join().unwrap().unwrap();
            }
            reader.join().unwrap()
        })
        .unwrap()
        .unwrap();
    assert_eq!(kind, io::ErrorKind::TimedOut);
    fake.join().unwrap();
}

#[test]
fn several_workers_share_one_small_queue() {
    if skip_if_unavailable() {
        return;
    }
    const THREADS: usize = 40;
    const OPS: usize = 25;
    let (r, reg) = start(2, |o| o.queue_capacity = 4);
    let r = Arc::new(r);
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (r, reg) = (Arc::clone(&r), Arc::clone(&reg));
            std::thread::spawn(move || {
                let mut rt = rt_on(&r, w, &reg);
                rt.block_on(|| {
                    let hs: Vec<_> = (0..THREADS)
                        .map(|_| {
                            green::spawn(|| {
                                for _ in 0..OPS {
                                    green::nop().unwrap();
                                }
                                OPS
                            })
                        })
                        .collect();
                    hs.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
                })
                .unwrap()
                .unwrap()
            })
        })
        .collect();
    let done: usize = workers.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(done, 2 * THREADS * OPS);
    drop(Arc::into_inner(r).expect("workers are gone"));
    let s = stats(&reg);
    assert!(field(&s, "queue_depth_max") <= 4, "bounded: {s}");
    assert!(
        field(&s, "completions") >= (2 * THREADS * OPS) as u64,
        "{s}"
    );
}

#[test]
fn interrupts_and_cross_thread_wakes_reach_green_threads() {
    if skip_if_unavailable() {
        return;
    }
    let (r, reg) = start(1, |_| {});
    let mut rt = rt_on(&r, 0, &reg);
    let waker = rt.waker();
    let flag = Arc::new(AtomicBool::new(false));
    let f2 = Arc::clone(&flag);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        f2.store(true, Ordering::SeqCst);
        waker.wake();
    });
    let kind = rt
        .block_on(move || {
            while !flag.load(Ordering::SeqCst) {
                green::wait_wake().unwrap();
            }
            // An accept parked in the reactor's ring is cancelled by a soft interrupt.
            let l = GvtListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let acceptor = green::spawn(move || l.accept().map(|_| ()).unwrap_err().kind());
            green::sleep(Duration::from_millis(10)).unwrap();
            green::interrupt_all(Interrupt::Soft).unwrap();
            acceptor.join().unwrap()
        })
        .unwrap()
        .unwrap();
    assert_eq!(kind, io::ErrorKind::Interrupted);
    t.join().unwrap();
}

#[test]
fn forced_fallback_runs_every_op_on_the_blocking_pool() {
    if skip_if_unavailable() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("gvhttpd-fallback-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f.txt"), b"file via the pool").unwrap();
    let root = std::fs::File::open(&dir).unwrap();
    let (r, reg) = start(1, |o| o.force_fallback = OpSet::all());
    let mut rt = rt_on(&r, 0, &reg);
    let (file, stat_size, echo, slept) = rt
        .block_on(move || {
            use std::os::fd::AsFd;
            green::nop().unwrap();
            let f = gfs::open_beneath(
                root.as_fd(),
                std::path::Path::new("f.txt"),
                libc::O_RDONLY as u64,
                0,
            )
            .unwrap();
            let st = f.stat().unwrap();
            let mut buf = vec![0u8; 64];
            let n = f.read_at(&mut buf, 0).unwrap();
            buf.truncate(n);
            f.close().unwrap();
            let missing = gfs::open_beneath(root.as_fd(), std::path::Path::new("nope"), 0, 0);
            assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
            let t0 = Instant::now();
            green::sleep(Duration::from_millis(20)).unwrap();
            let slept = t0.elapsed();
            (buf, st.size, echo_and_timeout(), slept)
        })
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(file, b"file via the pool");
    assert_eq!(stat_size, 17);
    assert_eq!(echo.0, b"ping through the reactor");
    assert_eq!(
        echo.1,
        io::ErrorKind::TimedOut,
        "a running pool recv is cancelled"
    );
    assert!(echo.2 >= Duration::from_millis(45), "{:?}", echo.2);
    assert!(slept >= Duration::from_millis(19), "{slept:?}");
    drop(rt);
    drop(r);
    let s = stats(&reg);
    assert!(
        field(&s, "fallbacks") >= 12,
        "every op went to the pool: {s}"
    );
}

#[test]
fn fallback_names_parse_and_unknown_ones_are_refused() {
    assert_eq!(OpSet::parse("").unwrap(), OpSet::default());
    let s = OpSet::parse("read, statx").unwrap();
    assert!(s.contains(opcode::Read::CODE) && s.contains(opcode::Statx::CODE));
    assert!(!s.contains(opcode::Recv::CODE));
    assert_eq!(OpSet::parse("all").unwrap(), OpSet::all());
    let e = OpSet::parse("read,sendfile").unwrap_err();
    assert!(e.contains("sendfile") && e.contains("statx"), "{e}");
    assert!(OpSet::lacking(None).contains(opcode::Recv::CODE));
    assert!(!OpSet::lacking(None).contains(opcode::Nop::CODE));
}

#[test]
fn ops_waiting_on_the_pool_do_not_starve_the_others() {
    if skip_if_unavailable() {
        return;
    }
    let (r, reg) = start(1, |o| {
        o.force_fallback = OpSet::all();
        o.pool_threads = 1;
    });
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut peers = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..4 {
        streams.push(std::net::TcpStream::connect(std_l.local_addr().unwrap()).unwrap());
        peers.push(std_l.accept().unwrap());
    }
    let mut rt = rt_on(&r, 0, &reg);
    let (finished_first, kinds) = rt
        .block_on(move || {
            let done = std::rc::Rc::new(std::cell::Cell::new(0));
            let readers: Vec<_> = streams
                .into_iter()
                .map(|s| {
                    let done = std::rc::Rc::clone(&done);
                    green::spawn(move || {
                        // Each waits on a pool thread for data that never comes.
                        let mut s = GvtStream::from_std(s).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(2)));
                        let k = s.read(&mut [0u8; 8]).unwrap_err().kind();
                        done.set(done.get() + 1);
                        k
                    })
                })
                .collect();
            green::sleep(Duration::from_millis(20)).unwrap();
            green::nop().unwrap();
            let finished_first = done.get();
            let kinds: Vec<_> = readers.into_iter().map(|h| h.join().unwrap()).collect();
            (finished_first, kinds)
        })
        .unwrap()
        .unwrap();
    assert_eq!(
        finished_first, 0,
        "the NOP ran while four recvs held pool threads"
    );
    assert!(
        kinds.iter().all(|k| *k == io::ErrorKind::TimedOut),
        "{kinds:?}"
    );
    drop(peers);
}
