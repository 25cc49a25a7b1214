//! Green threads over an io_uring reactor: blocking-style code, io_uring underneath.
//!
//! ```text
//!  green thread:  let n = stream.read(&mut buf)?;   stream.write_all(&out)?;
//!        │ push one SQE (token = slot+generation), park        ▲ resumed with the CQE result
//!        ▼                                                     │
//!  worker loop:   run ready threads ─► ONE io_uring_enter (submit all + wait) ─► reap CQEs
//! ```
//!
//! - A green thread is a stackful coroutine (`corosensei`) on a pooled stack with a
//!   64 KiB guard region ([`stack`]). It runs until it makes a blocking call, which pushes
//!   exactly one SQE and parks it ([`reactor`]); the worker's loop batches every
//!   SQE of a turn into one `io_uring_enter`.
//! - **One runtime per worker thread**, each with its own ring, scheduler and
//!   stacks. A [`Runtime`] is created and driven on the thread that owns it. By
//!   default green threads never migrate and nothing is shared on the hot path;
//!   with a [`StealGroup`] (`--green-sched steal`) a worker with nothing runnable
//!   takes runnable threads spawned by [`steal::spawn_migratable`] from the others
//!   ([`steal`]: the migration contract).
//! - **Who owns the ring** (`--green-reactor`): `per-worker` (the default,
//!   [`Runtime::new`]): each worker its own ring, nothing shared on the hot path;
//!   the worker's one `io_uring_enter` per turn submits and waits. `dedicated`
//!   ([`Runtime::on_reactor`], the seed's design, [`dedicated`]): one
//!   [`ReactorThread`] owns the only ring; workers push tagged SQEs onto a bounded
//!   lock-free MPSC queue (a full queue parks the submitter), sleep on a futex with
//!   the timeout of their next timer, and get completions by slot + generation in a
//!   per-worker mailbox (woken by a syscall only when they said they sleep). Ops the
//!   kernel's ring lacks run on a small blocking pool (Tier 2) and complete the same
//!   way. Deadlines, interrupts and the buffer contract are the same in both.
//! - Wake-ups are never lost (`task` module docs) and completions for finished
//!   or reused slots are dropped by their generation.
//! - A green thread's panic is caught at its root, logged and counted
//!   (`stats.green.panics`); only that thread ends (for the server: only its
//!   connection closes).
//! - Deadlines (per call) and interrupts (shutdown) cancel the op in flight and
//!   resume the thread with `TimedOut` / `Interrupted` once the kernel is done with
//!   its buffer.
//!
//! # Layers
//! Each module uses only those listed before it, so imports point one way:
//!
//! 1. [`stack`] (pooled guarded stacks), [`counters`] and `crate::uring` (the
//!    ring, tokens, the single-writer `Counter`).
//! 2. `task`: a green thread and its worker's task table (`Sched`): plain data.
//! 3. `backend`: the one `Backend` trait both reactors implement, the worker's
//!    `Reactor` around it, and [`Waker`]; its implementations `ring_backend` (a
//!    ring per worker) and `dedicated::client` (a client of the reactor thread,
//!    whose queue, mailbox and thread are the rest of [`dedicated`]).
//! 4. `steal::group`: stealable queues, offering, stealing, taking back.
//! 5. `ctx` (what one worker's threads share: `Sched`, `Reactor`, group member),
//!    then `tls` (the thread-locals that hold it while the worker runs).
//! 6. `sched`: resume ready threads, park / wake, yield, interrupts.
//! 7. `spawn`, `reactor` (one op per blocking call), `steal::join`.
//! 8. [`net`], [`fs`], `time`: the blocking-style calls.
//! 9. This file: [`Runtime`] and the one worker loop, over either backend, with
//!    or without a steal group.
//!
//! Outside itself the runtime uses only `crate::uring` (and, in its tests, the
//! application's types): it sits below the application. It owns the counter
//! blocks it writes ([`counters`]) and publishes them into whatever a
//! [`StatsSource`] hands it (the server's `/stats` registry); the dedicated
//! reactor thread writes its own block, given to [`ReactorThread::start`], and
//! reports a failed loop through [`ReactorOptions::on_failure`]. The server's
//! `--green-reactor` choice and error-log lines live in `crate::models`.
//!
//! API: [`Runtime::new`] / [`Runtime::on_reactor`] / [`Runtime::for_worker`],
//! [`spawn`] / [`try_spawn`] → [`JoinHandle`], [`yield_now`], [`sleep`],
//! [`nop`], [`wait_wake`] / [`wait_wake_until`] / [`wake_workers`], [`interrupt_all`],
//! [`on_worker_stack`]; [`net::GvtListener`] /
//! [`net::GvtStream`]; [`fs::GvtFile`].

pub(crate) mod backend;
pub mod counters;
pub(crate) mod ctx;
pub mod dedicated;
pub mod fs;
pub mod net;
pub(crate) mod reactor;
pub(crate) mod ring_backend;
pub(crate) mod sched;
pub(crate) mod spawn;
pub mod stack;
pub mod steal;
pub(crate) mod task;
mod time;
mod tls;

#[cfg(test)]
mod tests;

use std::cell::{Cell, OnceCell, RefCell};
use std::io::{self, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::uring::{Features, UringOptions};

pub use backend::Waker;
pub use counters::{GreenCounters, ReactorCounters, WorkerCounters};
pub use dedicated::{ReactorOptions, ReactorThread};
pub use sched::{in_green_thread, on_worker_stack, yield_now};
pub use spawn::JoinHandle;
pub use stack::DEFAULT_GREEN_STACK;
pub use steal::{SendJoinHandle, StealGroup};
pub use task::{Interrupt, ParkReason};
pub use time::{nop, sleep, sleep_or_interrupted};

use backend::{Backend, Reactor};
use ctx::Ctx;
use ring_backend::RingBackend;
use task::Sched;

/// Where a runtime publishes its counters: the blocks of its worker, owned by
/// whoever serves them (the server's `/stats` registry implements this).
pub trait StatsSource: Send + Sync {
    fn worker_counters(&self, worker: usize) -> WorkerCounters<'_>;
}

/// How to build a worker's runtime.
#[derive(Clone, Copy, Debug)]
pub struct RuntimeOptions {
    /// Usable bytes per green-thread stack (`--green-stack-size`).
    pub stack_size: usize,
    pub uring: UringOptions,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            stack_size: DEFAULT_GREEN_STACK,
            uring: UringOptions::default(),
        }
    }
}

/// Resumes per scheduling pass before the loop looks at the ring again, so
/// threads that keep yielding cannot starve I/O.
pub(crate) const PASS_BUDGET: usize = 1024;

/// One worker's green-thread runtime. Not `Send`: create it on the worker thread.
pub struct Runtime {
    ctx: Rc<Ctx>,
    stats: Option<(Arc<dyn StatsSource>, usize)>,
    /// Loop turns since this worker's CPU time was last read (see `publish`).
    turns: Cell<u32>,
    cpu_published: Cell<u64>,
    stolen_from_published: Cell<u64>,
}

/// Loop turns between two reads of the worker's CPU time (one syscall).
const CPU_EVERY: u32 = 128;

/// Source of `Ctx::id`.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("green_threads", &self.ctx.sched.borrow().tasks.len())
            .finish()
    }
}

impl Runtime {
    /// A runtime with its own ring. Fails when io_uring cannot be set up.
    pub fn new(opts: &RuntimeOptions) -> io::Result<Runtime> {
        Runtime::with_backend(opts, Box::new(RingBackend::new(&opts.uring)?))
    }

    /// A runtime without a ring of its own, attached as worker `worker` to the
    /// dedicated reactor thread `reactor` (`--green-reactor dedicated`); its ops go
    /// there. `opts.uring` is not used (the reactor thread has the ring).
    pub fn on_reactor(
        opts: &RuntimeOptions,
        reactor: &ReactorThread,
        worker: usize,
    ) -> io::Result<Runtime> {
        let client = dedicated::client::Client::attach(reactor.shared(), worker)?;
        Runtime::with_backend(opts, Box::new(client))
    }

    /// [`Runtime::new`] without a reactor thread, else [`Runtime::on_reactor`].
    pub fn for_worker(
        opts: &RuntimeOptions,
        reactor: Option<&ReactorThread>,
        worker: usize,
    ) -> io::Result<Runtime> {
        match reactor {
            None => Runtime::new(opts),
            Some(r) => Runtime::on_reactor(opts, r, worker),
        }
    }

    fn with_backend(opts: &RuntimeOptions, backend: Box<dyn Backend>) -> io::Result<Runtime> {
        stack::install_overflow_handler();
        let mut sched = Sched::new(opts.stack_size);
        sched.slot_limit = backend.slot_limit();
        Ok(Runtime {
            ctx: Rc::new(Ctx {
                sched: RefCell::new(sched),
                reactor: RefCell::new(Reactor::new(backend)),
                steal: OnceCell::new(),
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                worker: Cell::new(0),
            }),
            stats: None,
            turns: Cell::new(0),
            cpu_published: Cell::new(0),
            stolen_from_published: Cell::new(0),
        })
    }

    /// Publish counters into `source.worker_counters(worker)` once per loop turn.
    pub fn with_stats(mut self, source: Arc<dyn StatsSource>, worker: usize) -> Runtime {
        self.ctx.worker.set(worker);
        self.stats = Some((source, worker));
        self
    }

    /// Make this runtime worker `index` of `group` (`--green-sched steal`): when it
    /// has nothing runnable it takes runnable migratable threads from the others,
    /// and offers its own waiting ones to idle workers. Stacks then come from the
    /// group's pools. Call before [`Runtime::block_on`] (`Err` after, or when
    /// `index` is taken or out of range).
    pub fn with_steal(self, group: Arc<StealGroup>, index: usize) -> io::Result<Runtime> {
        if self.ctx.steal.get().is_some() {
            return Err(io::Error::other(
                "Runtime::with_steal must come before the runtime runs anything",
            ));
        }
        let waker = self.waker();
        let member = steal::group::join_group(
            &mut self.ctx.sched.borrow_mut(),
            waker,
            self.ctx.id,
            group,
            index,
        )?;
        let _ = self.ctx.steal.set(member);
        self.ctx.worker.set(index);
        Ok(self)
    }

    /// What this runtime's ring (or the dedicated reactor's) supports.
    pub fn features(&self) -> Features {
        self.ctx.reactor.borrow().features()
    }

    /// Wakes this runtime's [`wait_wake`] callers from any thread.
    pub fn waker(&self) -> Arc<Waker> {
        self.ctx.reactor.borrow().waker()
    }

    /// Usable bytes per green-thread stack (after rounding to pages).
    pub fn stack_size(&self) -> usize {
        self.ctx.sched.borrow().stack_size
    }

    /// Green threads this worker took from other workers' queues so far.
    pub fn stolen(&self) -> u64 {
        self.ctx.sched.borrow().counts.stolen
    }

    /// Completions dropped because their task had finished (stale generation).
    pub fn stale_completions(&self) -> u64 {
        self.ctx.reactor.borrow().stale
    }

    /// Run `f` as a green thread and drive this worker until **every** green
    /// thread has finished; returns `f`'s result (`Err(payload)` if it panicked).
    /// `Err(io)` when the ring fails, or when threads are parked with nothing that
    /// could ever wake them (a deadlock).
    pub fn block_on<T: 'static>(
        &mut self,
        f: impl FnOnce() -> T + 'static,
    ) -> io::Result<std::thread::Result<T>> {
        tls::install(&self.ctx)?;
        // Uninstalled however `drive` ends, also by a panic escaping the scheduler.
        struct Installed;
        impl Drop for Installed {
            fn drop(&mut self) {
                tls::uninstall();
            }
        }
        let _installed = Installed;
        reactor::configure(&self.ctx.reactor.borrow().features());
        let root = spawn::spawn_on(&self.ctx, f)?;
        let r = self.drive().map(|()| root.join());
        self.publish(true);
        r
    }

    /// The worker loop, for either backend, with or without a steal group: run
    /// the ready threads, then ONE enter (submit everything they pushed, and wait
    /// when nothing is runnable), then dispatch the completions. Ends when every
    /// green thread of this worker has finished (and, stealing, nothing it offered
    /// is left in its stealable queue).
    ///
    /// Stealing (the idle protocol of [`steal`]'s docs): a worker whose run queue
    /// is empty first takes threads from the group; before it blocks it announces
    /// itself idle, looks once more, and lets its ring's wake end the wait.
    fn drive(&self) -> io::Result<()> {
        let ctx = &*self.ctx;
        let member = ctx.steal.get();
        let mut busy_passes = 0u32;
        loop {
            sched::run_ready(ctx, PASS_BUDGET);
            self.publish(false);
            let mut s = ctx.sched.borrow_mut();
            if let Some(m) = member {
                if s.runq.is_empty() && steal::group::refill(m, &mut s) > 0 {
                    continue;
                }
                // `refill` took back all this worker offered: nothing of it is queued.
            }
            if s.tasks.is_empty() {
                return Ok(());
            }
            let mut r = ctx.reactor.borrow_mut();
            if !s.timers.is_empty() {
                r.fire_timers(&mut s, Instant::now());
            }
            let idle = s.runq.is_empty();
            // Threads parked with nothing that could wake them: a deadlock. Not in a
            // steal group, where another worker may wake them (a cross-worker join).
            if idle
                && member.is_none()
                && s.ops_in_flight == 0
                && s.wake_waiters.is_empty()
                && r.pushed == 0
            {
                return Err(io::Error::other(format!(
                    "green runtime deadlock: {} green threads parked with no I/O in flight",
                    s.tasks.len()
                )));
            }
            drop(s);
            if idle {
                busy_passes = 0;
                match member {
                    None => r.enter(1)?,
                    Some(m) => {
                        m.go_idle();
                        // Look once more after announcing: an owner that published
                        // before it saw our flag is found here.
                        if steal::group::refill(m, &mut ctx.sched.borrow_mut()) > 0 {
                            m.end_idle();
                            continue;
                        }
                        r.listen_for_wake();
                        let entered = r.enter(1);
                        m.end_idle();
                        entered?;
                    }
                }
            } else if r.pushed > 0 {
                r.enter(0)?;
            } else {
                busy_passes += 1;
                if busy_passes.is_multiple_of(16) {
                    r.poll()?;
                }
            }
            r.dispatch(&mut ctx.sched.borrow_mut());
        }
    }

    /// Publish the counters (every loop turn); the worker's CPU time every
    /// [`CPU_EVERY`] turns and at the end (`last`).
    fn publish(&self, last: bool) {
        let Some((src, worker)) = &self.stats else {
            return;
        };
        let st = src.worker_counters(*worker);
        let mut s = self.ctx.sched.borrow_mut();
        let (c, p) = (s.counts, s.published);
        st.green.spawned.add(c.spawned - p.spawned);
        st.green.finished.add(c.finished - p.finished);
        st.green.context_switches.add(c.switches - p.switches);
        st.green.panics.add(c.panics - p.panics);
        for i in 0..c.parks.len() {
            st.green.parks[i].add(c.parks[i] - p.parks[i]);
        }
        st.green.stolen.add(c.stolen - p.stolen);
        s.published = c;
        drop(s);
        self.ctx.reactor.borrow_mut().publish(st);
        let turns = self.turns.get() + 1;
        self.turns.set(turns);
        if turns >= CPU_EVERY || last {
            self.turns.set(0);
            let cpu = thread_cpu_ns();
            st.cpu_ns.add(cpu.saturating_sub(self.cpu_published.get()));
            self.cpu_published.set(cpu.max(self.cpu_published.get()));
            if let Some(m) = self.ctx.steal.get() {
                let n = m.stolen_from();
                st.green
                    .stolen_from
                    .add(n - self.stolen_from_published.get());
                self.stolen_from_published.set(n);
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let mut s = self.ctx.sched.borrow_mut();
        if let Some(m) = self.ctx.steal.get() {
            // Threads this worker offered and nobody took are still its own.
            steal::group::reclaim(m, &mut s);
        }
        if s.tasks.is_empty() {
            return;
        }
        let leaked = sched::drop_leftovers(&mut s);
        if leaked > 0 {
            // Not `eprintln!`: a panic here, maybe already unwinding, would abort.
            let _ = writeln!(
                io::stderr(),
                "gvhttpd: {leaked} green threads still had I/O in flight at runtime drop; \
                 their stacks are leaked rather than freed under the kernel"
            );
        }
    }
}

/// Spawn a green thread on the current worker. Panics when called outside a green
/// thread or when no stack can be mapped; see [`try_spawn`].
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
    match try_spawn(f) {
        Ok(h) => h,
        Err(e) => panic!("green::spawn: {e}"),
    }
}

/// Spawn a green thread on the current worker (the caller must be a green thread).
/// The new thread never leaves this worker, and neither does the caller from now
/// on: the two may share `!Send` state (the [`JoinHandle`] at least).
pub fn try_spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> io::Result<JoinHandle<T>> {
    let (ctx, _) = sched::current()?;
    spawn::pin_current();
    spawn::spawn_on(&ctx, f)
}

/// The worker index of the runtime running the caller (as given to
/// [`Runtime::with_stats`] / [`Runtime::with_steal`]); `None` outside a runtime.
/// With work stealing it can change across any blocking call.
pub fn current_worker() -> Option<usize> {
    tls::worker_index()
}

/// Park until this worker's ring is woken from another thread (see
/// [`Runtime::waker`]). Check your condition before calling; a soft interrupt
/// ends the wait with `Interrupted`.
pub fn wait_wake() -> io::Result<()> {
    reactor::wait_wake()
}

/// Wake the [`wait_wake`] callers of the caller's runtime and, with work stealing,
/// of every runtime in its [`StealGroup`] (e.g. "the last connection of the server
/// ended"). Outside a green thread it does nothing.
pub fn wake_workers() {
    let Ok((ctx, _)) = sched::current() else {
        return;
    };
    match ctx.steal.get() {
        Some(m) => m.wake_all(),
        None => ctx.reactor.borrow().waker().wake(),
    }
}

/// [`wait_wake`] with a deadline: `Ok(true)` when woken (check your condition
/// again: it may be spurious), `Ok(false)` once `deadline` has passed. One timer
/// op, no polling; a soft interrupt ends it with `Interrupted`.
pub fn wait_wake_until(deadline: Instant) -> io::Result<bool> {
    reactor::wait_wake_until(deadline)
}

/// Interrupt every other green thread on this worker (and those spawned later).
/// [`Interrupt::Soft`]: the next (or current) accept / read / wait of each thread
/// fails once with `Interrupted`. [`Interrupt::Hard`]: every blocking call from
/// now on fails with `Interrupted`.
pub fn interrupt_all(level: Interrupt) -> io::Result<()> {
    let (ctx, _) = sched::current()?;
    sched::interrupt_all(&ctx, level);
    Ok(())
}

/// CPU time the calling OS thread has used, in nanoseconds (0 if unreadable).
fn thread_cpu_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}
