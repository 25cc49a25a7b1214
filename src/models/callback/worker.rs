//! One worker: its ring, its listener, its connections, its deadlines.

use std::net::TcpListener;
use std::time::Instant;

use super::conn::{Conn, Cx};
use super::deadlines::Deadlines;
use super::events::free;
use super::op::{Kind, Op};
use super::ServeError;
use crate::accept::Acceptor;
use crate::http::Env;
use crate::models::WorkerCtx;
use crate::uring::{Completion, OpKind, Ring, SlotKey, Slots, Token};

/// The provided-buffer ring for multishot recv: `--uring-entries` buffers (a power
/// of two, 64..=32768) of 2 KiB per worker, 2 MiB by default. The kernel cycles
/// through all of them, so the whole pool ends up resident: a fixed cost per
/// worker, unlike a read buffer per connection. Larger input just takes more CQEs.
const RECV_BGID: u16 = 0;
const RECV_BUF_SIZE: u32 = 2048;

fn recv_bufs(entries: u32) -> u16 {
    entries.clamp(64, 32768).next_power_of_two() as u16
}

pub(super) struct Worker {
    /// Declared first so it is dropped first: its Drop cancels and reaps every op
    /// still in flight before the connections' descriptors close.
    pub(super) ring: Ring,
    /// Boxed: the slab keeps only a pointer per slot, so after a burst of connections
    /// closes, their memory goes back to the allocator (and the kernel) instead of
    /// staying in a slab that never shrinks.
    pub(super) conns: Slots<Box<Conn>>,
    pub(super) deadlines: Deadlines,
    pub(super) ctx: WorkerCtx,
    pub(super) acceptor: Acceptor,
    /// Closed (dropped) at once when shutdown begins, as soon as no accept refers
    /// to it.
    pub(super) listener: Option<TcpListener>,
    pub(super) accept_armed: bool,
    /// Connections receive through multishot recv + the provided-buffer ring.
    pub(super) multishot: bool,
    /// Static files go out by `sendfile(2)` ([`crate::config::Config::zero_copy_files`]):
    /// connections are accepted in `O_NONBLOCK` mode, so that call never blocks
    /// the worker on a full socket buffer.
    pub(super) zero_copy: bool,
    /// When the earliest armed deadline timeout fires.
    pub(super) timer_at: Option<Instant>,
    /// This worker began the shutdown sequence of [`crate::accept`]: its listener
    /// is closed (or closing) and every connection's driver was woken. (When
    /// connections are cut is the drivers' business, not the worker's.)
    pub(super) stopping: bool,
    /// The time of the current loop turn.
    pub(super) now: Instant,
    /// Connections whose work yielded ([`crate::http::Action::Yield`]), resumed
    /// after the next batch of completions; `running` is the batch being resumed
    /// (two vectors swapped, so the ready list never allocates once grown).
    pub(super) ready: Vec<SlotKey>,
    pub(super) running: Vec<SlotKey>,
}

/// Set up this worker's ring and serve until shutdown.
pub(super) fn run(ctx: WorkerCtx, listener: TcpListener) -> Result<(), ServeError> {
    let mut ring = Ring::new(&ctx.cfg.uring)
        .map_err(|e| ServeError::Unavailable(crate::uring::probe::explain_setup_error(&e)))?;
    // Multishot recv needs the provided-buffer ring; without either, fall back to
    // one recv per read into the driver's buffer.
    let multishot = ring.features().multishot_recv
        && ring
            .register_buf_ring(RECV_BGID, recv_bufs(ctx.cfg.uring.entries), RECV_BUF_SIZE)
            .is_ok();
    let waker = ring.waker();
    ctx.shutdown.on_trigger(move || waker.wake());
    let mut w = Worker {
        ring,
        conns: Slots::new(),
        deadlines: Deadlines::default(),
        acceptor: ctx.acceptor(),
        zero_copy: ctx.cfg.zero_copy_files(),
        ctx,
        listener: Some(listener),
        accept_armed: false,
        multishot,
        timer_at: None,
        stopping: false,
        now: Instant::now(),
        ready: Vec::new(),
        running: Vec::new(),
    };
    w.run()
}

impl Worker {
    fn run(&mut self) -> Result<(), ServeError> {
        self.ring.arm_wake();
        self.arm_accept();
        let mut cqes = Vec::with_capacity(256);
        loop {
            if !self.stopping && self.acceptor.shutting_down() {
                self.begin_shutdown();
            }
            if self.stopping && self.conns.is_empty() && self.listener.is_none() {
                break;
            }
            self.arm_timer();
            self.ring.publish(&self.ctx.stats().uring);
            if !self.ready.is_empty() {
                // Work is ready to resume: never block. A NOP completes at once, so
                // waiting for one returns at once, and a waiting enter is what runs
                // the kernel's deferred completion work (DEFER_TASKRUN).
                self.ring.push_nop(Token::internal(OpKind::NOP));
            }
            self.ring
                .submit_and_wait(1)
                .map_err(|e| ServeError::io("io_uring_enter", e))?;
            self.now = Instant::now();
            self.ring.reap(&mut cqes);
            for c in cqes.drain(..) {
                self.dispatch(c);
            }
            self.expire_deadlines();
            self.resume_ready();
            let conns = &self.conns;
            self.deadlines.bound(conns.len(), |at, key| {
                conns.get(key).is_some_and(|c| c.queued == Some(at))
            });
        }
        self.ring.publish(&self.ctx.stats().uring);
        Ok(())
    }

    fn dispatch(&mut self, c: Completion) {
        match Kind::of(c.token.kind()) {
            Some(Kind::Conn(op)) => self.on_conn(op, c),
            Some(Kind::Accept) => self.on_accept(c),
            Some(Kind::Backoff) => self.arm_accept(),
            Some(Kind::Tick) => self.timer_at = None,
            None if c.token.kind() == OpKind::WAKE => self.begin_shutdown(),
            None => {} // cancels and closes: nothing to do
        }
    }

    /// Run `f` on connection `key` with a [`Cx`], then free it or queue its deadline.
    pub(super) fn with_conn(&mut self, key: SlotKey, f: impl FnOnce(&mut Conn, &mut Cx<'_>)) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let env = Env::new(
            &*self.ctx.app,
            self.ctx.stats(),
            &self.ctx.shutdown,
            self.now,
        );
        f(
            conn,
            &mut Cx {
                ring: &mut self.ring,
                env,
                ready: &mut self.ready,
            },
        );
        self.settle(key);
    }

    /// Resume the connections whose work yielded before this turn (those that
    /// yield again go on the next turn's list). Each slice reads the clock anew.
    fn resume_ready(&mut self) {
        if self.ready.is_empty() {
            return;
        }
        std::mem::swap(&mut self.ready, &mut self.running);
        let mut batch = std::mem::take(&mut self.running);
        for key in batch.drain(..) {
            self.now = Instant::now();
            self.with_conn(key, |c, cx| c.resume(key, cx));
        }
        self.running = batch;
    }

    fn on_conn(&mut self, op: Op, mut c: Completion) {
        let key = SlotKey::from(c.token);
        let conn = self.conns.get_mut(key);
        let mut fed = None;
        if let (Some(bid), Some(bufs)) = (c.buffer_id(), self.ring.buf_ring()) {
            // Hand the bytes to the driver while the buffer is borrowed, then give
            // it straight back to the kernel.
            if let (Some(conn), Ok(n)) = (conn, usize::try_from(c.result)) {
                let env = Env::new(
                    &*self.ctx.app,
                    self.ctx.stats(),
                    &self.ctx.shutdown,
                    self.now,
                );
                fed = bufs.get(bid, n).map(|bytes| conn.on_bytes(bytes, &env));
            }
            bufs.recycle(bid);
        }
        // A stale completion (the slot's occupant changed) is dropped with what it
        // returned.
        self.with_conn(key, |conn, cx| conn.complete(key, op, &mut c, fed, cx));
    }

    /// Free the connection once nothing refers to it, else queue its deadline if
    /// it is earlier than what it has queued.
    fn settle(&mut self, key: SlotKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.done() {
            if let Some(conn) = self.conns.remove(key) {
                free(*conn, &mut self.ring);
            }
            return;
        }
        if let Some(d) = conn.deadline() {
            if conn.queued.is_none_or(|q| d < q) {
                conn.queued = Some(d);
                self.deadlines.push(d, key);
            }
        }
    }

    fn expire_deadlines(&mut self) {
        while let Some((at, key)) = self.deadlines.pop_due(self.now) {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.queued != Some(at) {
                continue; // superseded by an earlier entry
            }
            conn.queued = None;
            match conn.deadline() {
                Some(d) if d <= self.now => self.with_conn(key, |c, cx| c.expire(key, cx)),
                _ => self.settle(key), // moved later: queue the current one
            }
        }
    }

    /// Keep a timeout armed at the earliest deadline, exactly (a 408 is not late
    /// by a timer's rounding). One armed for a later instant stays: it fires
    /// harmlessly, and the loop then re-arms for whatever deadline is next.
    fn arm_timer(&mut self) {
        let Some(at) = self.deadlines.next() else {
            return;
        };
        if self.timer_at.is_some_and(|t| t <= at) {
            return;
        }
        self.timer_at = Some(at);
        let after = at.saturating_duration_since(self.now);
        self.ring.push_timeout(after, Kind::Tick.worker_token());
    }

    /// The shutdown sequence of [`crate::accept`]: close the listener at once,
    /// tell every connection's driver, return when none is left.
    fn begin_shutdown(&mut self) {
        if self.stopping || !self.acceptor.shutting_down() {
            return;
        }
        self.stopping = true;
        if self.accept_armed {
            // The listener closes when the cancelled accept's completion is in
            // (an accept in flight keeps the socket alive).
            self.ring
                .push_cancel(Kind::Accept.worker_token(), Token::internal(OpKind::CANCEL));
        } else {
            self.listener = None;
        }
        for key in self.conns.keys() {
            self.with_conn(key, |conn, cx| conn.shutdown(key, cx));
        }
    }
}
