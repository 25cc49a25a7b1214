//! The reactor thread's loop: pop requests, submit them in one `io_uring_enter`
//! that also waits, reap, deliver per worker.
//!
//! ```text
//!  loop:  pop every ready request ─► push SQE (tag = user_data) / cancel / pool
//!         popped any? post "space" to workers that wait for it
//!         reactor_sleeping = true; fence; request ready? ─► enter(0) : enter(1)
//!         reap CQEs ─► per-worker Vec<Done> ─► one mailbox delivery per worker
//! ```
//!
//! The doorbell: producers push, fence, and write the ring's wake eventfd only when
//! they find `reactor_sleeping` set; the reactor sets it, fences, and checks the
//! queue's head before waiting. Either the reactor sees the request, or the producer
//! sees the flag (and the eventfd read armed on the ring completes the wait). A busy
//! reactor therefore costs its producers no syscall.

use std::io;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use super::blocking::{self, OpSet, Pool};
use super::mailbox::{Done, Mailbox};
use super::queue::{self, Consumer};
use super::{untag, ReactorOptions, ReactorThread, Request, Shared};
use crate::green::counters::ReactorCounters;
use crate::uring::{Completion, OpKind, Ring, Token};

pub(super) fn spawn(
    opts: &ReactorOptions,
    stats: Option<Arc<ReactorCounters>>,
) -> io::Result<ReactorThread> {
    let (producer, consumer) = queue::channel::<Request>(opts.queue_capacity);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (shared_tx, shared_rx) = mpsc::channel::<Arc<Shared>>();
    let o = opts.clone();
    let thread = std::thread::Builder::new()
        .name("gvhttpd-reactor".into())
        .spawn(move || {
            // Built here: this thread is the ring's single issuer.
            let ring = match Ring::new(&o.uring) {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok((ring.waker(), *ring.features())));
            let Ok(shared) = shared_rx.recv() else {
                return;
            };
            let mut l = Loop::new(ring, consumer, shared, &o);
            if let Err(e) = l.run() {
                (o.on_failure)(&e);
            }
            l.shared.closed.store(true, Ordering::SeqCst);
            for m in l.shared.mailboxes.iter() {
                m.post_external();
            }
        })?;
    let (waker, features) = match ready_rx.recv() {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(e);
        }
        Err(_) => {
            let _ = thread.join();
            return Err(io::Error::other("the green reactor thread died at start"));
        }
    };
    let shared = Arc::new(Shared {
        producer,
        mailboxes: (0..opts.workers).map(|_| Mailbox::default()).collect(),
        reactor_sleeping: AtomicBool::new(false),
        reactor_waker: waker,
        stop: AtomicBool::new(false),
        closed: AtomicBool::new(false),
        attached: AtomicUsize::new(0),
        features,
        stats,
    });
    if shared_tx.send(Arc::clone(&shared)).is_err() {
        let _ = thread.join();
        return Err(io::Error::other("the green reactor thread died at start"));
    }
    Ok(ReactorThread {
        shared,
        thread: Some(thread),
    })
}

#[derive(Clone, Copy, Default)]
struct Counts {
    queue_depth_max: u64,
    submits: u64,
    sqes: u64,
    wakes: u64,
    completions: u64,
    worker_wakeups: u64,
    fallbacks: u64,
}

struct Loop {
    ring: Ring,
    queue: Consumer<Request>,
    shared: Arc<Shared>,
    /// Opcodes that go to the blocking pool (the ring lacks them, or forced).
    to_pool: OpSet,
    pool: Option<Pool>,
    pool_threads: usize,
    /// Completions per worker, delivered once per reap.
    batches: Vec<Vec<Done>>,
    touched: Vec<usize>,
    reaped: Vec<Completion>,
    /// Worker ops in the ring whose CQE has not been reaped.
    ops_in_ring: u64,
    /// SQEs pushed since the last enter.
    unsubmitted: u64,
    counts: Counts,
    published: Counts,
}

impl Loop {
    fn new(ring: Ring, queue: Consumer<Request>, shared: Arc<Shared>, o: &ReactorOptions) -> Loop {
        let lacking = OpSet::lacking(ring.opcode_probe().as_ref());
        Loop {
            ring,
            queue,
            batches: (0..shared.mailboxes.len()).map(|_| Vec::new()).collect(),
            shared,
            to_pool: lacking.union(o.force_fallback),
            pool: None,
            pool_threads: o.pool_threads.max(1),
            touched: Vec::new(),
            reaped: Vec::with_capacity(256),
            ops_in_ring: 0,
            unsubmitted: 0,
            counts: Counts::default(),
            published: Counts::default(),
        }
    }

    fn run(&mut self) -> io::Result<()> {
        if let Some(r) = self.stats() {
            r.running.add(1);
        }
        self.ring.arm_wake();
        loop {
            let depth = self.queue.len() as u64;
            self.counts.queue_depth_max = self.counts.queue_depth_max.max(depth);
            let mut popped = 0;
            while let Some(req) = self.queue.pop() {
                self.handle(req);
                popped += 1;
            }
            if popped > 0 {
                self.post_space();
            }
            if self.shared.stop.load(Ordering::SeqCst)
                && self.ops_in_ring == 0
                && self.pool.as_ref().is_none_or(Pool::idle)
                && !self.queue.is_ready()
            {
                self.publish();
                return Ok(());
            }
            self.shared.reactor_sleeping.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let mut want = 1;
            if self.queue.is_ready() {
                self.shared.reactor_sleeping.store(false, Ordering::Relaxed);
                want = 0;
                if self.ops_in_ring > 0 && self.ring.features().defer_taskrun {
                    // With DEFER_TASKRUN the kernel completes polled ops (a recv
                    // whose data came) only in an enter that waits: a NOP lets
                    // `want = 1` return at once after that work ran, so a busy
                    // queue cannot hold completions back.
                    self.ring.push_nop(Token::internal(OpKind::NOP));
                    self.unsubmitted += 1;
                    want = 1;
                }
            }
            if self.unsubmitted > 0 {
                self.counts.submits += 1;
                self.counts.sqes += self.unsubmitted;
                self.unsubmitted = 0;
            }
            let r = self.ring.submit_and_wait(want);
            self.shared.reactor_sleeping.store(false, Ordering::SeqCst);
            r?;
            self.reap();
            self.publish();
        }
    }

    fn stats(&self) -> Option<&ReactorCounters> {
        self.shared.stats.as_deref()
    }

    fn handle(&mut self, req: Request) {
        match req {
            Request::Op { tag, sqe } => {
                if self.to_pool.contains(blocking::opcode_of(&sqe)) {
                    self.counts.fallbacks += 1;
                    let threads = self.pool_threads;
                    let shared = &self.shared;
                    self.pool
                        .get_or_insert_with(|| Pool::start(threads, Arc::clone(shared)))
                        .submit(tag, sqe);
                    return;
                }
                // `tag` makes this op's CQE find its way back to its worker's mailbox
                // (module docs of `super`: who owns what).
                // SAFETY: the green thread that built `sqe` stays parked in
                // `reactor::submit`, leaving the SQE's buffers alone, until that CQE.
                unsafe { self.ring.push(sqe.user_data(tag)) };
                self.ops_in_ring += 1;
                self.unsubmitted += 1;
            }
            Request::Cancel { tag } => {
                if self.pool.as_ref().is_some_and(|p| p.cancel(tag)) {
                    return;
                }
                // An op that already completed is not found (-ENOENT): harmless.
                self.ring
                    .push_cancel(Token::from_raw(tag), Token::internal(OpKind::CANCEL));
                self.unsubmitted += 1;
            }
        }
    }

    /// Requests were popped: wake the submitters parked on a full queue.
    fn post_space(&mut self) {
        // Pairs with the fence in `Client::want_space`.
        fence(Ordering::SeqCst);
        for m in self.shared.mailboxes.iter() {
            if m.wants_space.load(Ordering::Relaxed)
                && m.wants_space.swap(false, Ordering::SeqCst)
                && m.post_space()
            {
                self.counts.worker_wakeups += 1;
            }
        }
    }

    fn reap(&mut self) {
        self.reaped.clear();
        self.ring.reap(&mut self.reaped);
        if !self.reaped.is_empty() {
            self.counts.wakes += 1;
            self.counts.completions += self.reaped.len() as u64;
        }
        for c in &self.reaped {
            let Some(w) = untag(c.token.raw()).map(|t| t.worker) else {
                continue; // the wake read, cancels: no news for a worker
            };
            self.ops_in_ring -= 1;
            let Some(batch) = self.batches.get_mut(w) else {
                continue;
            };
            if batch.is_empty() {
                self.touched.push(w);
            }
            batch.push(Done {
                tag: c.token.raw(),
                result: c.result,
            });
        }
        for w in self.touched.drain(..) {
            if self.shared.mailboxes[w].deliver(&mut self.batches[w]) {
                self.counts.worker_wakeups += 1;
            }
        }
        self.ring.arm_wake();
    }

    fn publish(&mut self) {
        let (c, p) = (self.counts, self.published);
        self.published = c;
        let Some(st) = self.shared.stats.as_deref() else {
            return;
        };
        st.queue_depth_max.raise_to(c.queue_depth_max);
        st.submits.add(c.submits - p.submits);
        st.sqes.add(c.sqes - p.sqes);
        st.wakes.add(c.wakes - p.wakes);
        st.completions.add(c.completions - p.completions);
        st.worker_wakeups.add(c.worker_wakeups - p.worker_wakeups);
        st.fallbacks.add(c.fallbacks - p.fallbacks);
        self.ring.publish(&st.uring);
    }
}

/// The calling process's CPU affinity as a list (`0-1`, `0,2`); `?` if unreadable.
pub(super) fn affinity_of_current_process() -> String {
    let Ok(set) = rustix::thread::sched_getaffinity(None) else {
        return "?".into();
    };
    let cpus: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&i| set.is_set(i))
        .collect();
    let mut out = String::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if cpus[i] == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{}", cpus[i]));
        }
        i += 1;
    }
    out
}
