//! One worker: its ring, its listener, its connections, its deadlines.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use io_uring::{opcode, types};

use super::conn::{bit, Conn, Flow, State};
use super::ServeError;
use crate::app::App;
use crate::config::Config;
use crate::net::{self, ConnGate};
use crate::shutdown::Shutdown;
use crate::stats::WorkerStats;
use crate::uring::{Completion, OpKind, Ring, SlotKey, Slots, Token};

// Connection op kinds (each is a bit in `Conn::ops`, so all are < 8).
pub(super) const K_RECV: OpKind = OpKind::new(1);
pub(super) const K_SEND: OpKind = OpKind::new(2);
pub(super) const K_SLEEP: OpKind = OpKind::new(3);
pub(super) const K_SHUT: OpKind = OpKind::new(4);
pub(super) const K_READ: OpKind = OpKind::new(5);
pub(super) const K_OPEN: OpKind = OpKind::new(6);
pub(super) const K_STATX: OpKind = OpKind::new(7);
// Worker op kinds.
const K_ACCEPT: OpKind = OpKind::new(8);
const K_TICK: OpKind = OpKind::new(9);
const K_BACKOFF: OpKind = OpKind::new(10);
const K_GRACE: OpKind = OpKind::new(11);
const ACCEPT_TOKEN: Token = Token::new(0, 0, K_ACCEPT);

/// Deadlines are rounded up to this, so connections share timer ops.
pub(super) const TICK: Duration = Duration::from_millis(10);

/// The provided-buffer ring for multishot recv: `--uring-entries` buffers (a power
/// of two, 64..=32768) of 2 KiB per worker, 2 MiB by default. The kernel cycles
/// through all of them, so the whole pool ends up resident: a fixed cost per
/// worker, unlike a read buffer per connection. Larger input just takes more CQEs.
const RECV_BGID: u16 = 0;
const RECV_BUF_SIZE: u32 = 2048;

fn recv_bufs(entries: u32) -> u16 {
    entries.clamp(64, 32768).next_power_of_two() as u16
}

/// What connection handlers read from the worker.
pub(super) struct Ctx<'a> {
    pub cfg: &'a Config,
    pub app: &'a App,
    pub stats: &'a WorkerStats,
    pub shutting_down: bool,
    /// The time of the current loop turn.
    pub now: Instant,
}

struct Worker<'a> {
    /// Declared first so it is dropped first: its Drop cancels and reaps every op
    /// still in flight before the buffers below (the connections) go.
    ring: Ring,
    conns: Slots<Conn>,
    cx: Ctx<'a>,
    gate: &'a ConnGate,
    shutdown: &'a Shutdown,
    listener: TcpListener,
    /// (deadline, slot, generation), earliest first; entries may be stale.
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    /// When the earliest armed TICK timeout fires.
    timer_at: Option<Instant>,
    accept_armed: bool,
    /// Connections receive through multishot recv + the provided-buffer ring.
    multishot: bool,
    /// Connections that started a send this turn / the previous turn: a send still
    /// in flight one turn later gets its write deadline queued.
    writes: Vec<SlotKey>,
    writes_prev: Vec<SlotKey>,
}

/// Set up this worker's ring and serve until shutdown.
pub(super) fn run_worker(
    index: usize,
    cfg: &Config,
    listener: TcpListener,
    app: &App,
    gate: &ConnGate,
    shutdown: &Shutdown,
) -> Result<(), ServeError> {
    let mut ring = Ring::new(&cfg.uring).map_err(|e| {
        shutdown.trigger();
        ServeError::Unavailable(crate::uring::probe::explain_setup_error(&e))
    })?;
    // Multishot recv needs the provided-buffer ring; without either, fall back to
    // one recv per read into the core's buffer.
    let multishot = ring.features().multishot_recv
        && ring
            .register_buf_ring(RECV_BGID, recv_bufs(cfg.uring.entries), RECV_BUF_SIZE)
            .is_ok();
    let waker = ring.waker();
    shutdown.on_trigger(move || waker.wake());
    let mut w = Worker {
        ring,
        conns: Slots::new(),
        cx: Ctx {
            cfg,
            app,
            stats: app.registry().worker(index),
            shutting_down: false,
            now: Instant::now(),
        },
        gate,
        shutdown,
        listener,
        heap: BinaryHeap::new(),
        timer_at: None,
        accept_armed: false,
        multishot,
        writes: Vec::new(),
        writes_prev: Vec::new(),
    };
    let r = w.run();
    if r.is_err() {
        shutdown.trigger();
    }
    r
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        // Connections own the buffers their in-flight ops point into. If the kernel
        // cannot be made to finish with them (a drain that times out, e.g. on a
        // kernel without cancel-any), leak them rather than free them under it; the
        // process is exiting anyway. Runs before the fields drop (ring first).
        if !self.ring.drain(std::time::Duration::from_secs(2)) {
            std::mem::forget(std::mem::take(&mut self.conns));
        }
    }
}

impl Worker<'_> {
    fn run(&mut self) -> Result<(), ServeError> {
        self.ring.arm_wake();
        self.arm_accept();
        let mut cqes = Vec::with_capacity(256);
        loop {
            if self.shutdown.is_triggered() && !self.cx.shutting_down {
                self.begin_shutdown();
            }
            if self.cx.shutting_down && self.conns.is_empty() && !self.accept_armed {
                break;
            }
            self.arm_timer();
            self.ring.publish(&self.cx.stats.uring);
            self.ring
                .submit_and_wait(1)
                .map_err(|e| ServeError::Io("io_uring_enter".into(), e))?;
            self.cx.now = Instant::now();
            self.ring.reap(&mut cqes);
            for c in cqes.drain(..) {
                self.dispatch(c);
            }
            self.expire_deadlines();
            self.watch_writes();
        }
        self.ring.publish(&self.cx.stats.uring);
        Ok(())
    }

    fn dispatch(&mut self, c: Completion) {
        let kind = c.token.kind();
        match kind {
            K_ACCEPT => self.on_accept(c),
            K_BACKOFF => self.arm_accept(),
            K_TICK => self.timer_at = None,
            K_GRACE => {
                for key in self.conns.keys() {
                    self.close(key);
                }
            }
            OpKind::WAKE => self.begin_shutdown(),
            _ if kind.is_internal() => {} // cancels, closes: nothing to do
            _ => self.on_conn_cqe(c),
        }
    }

    fn on_conn_cqe(&mut self, c: Completion) {
        let key = SlotKey::from(c.token);
        let kind = c.token.kind();
        let mut conn = self.conns.get_mut(key);
        if let (Some(bid), Some(bufs)) = (c.buffer_id(), self.ring.buf_ring()) {
            // Copy the chunk into the core (not while lingering: that input is
            // discarded), then hand the buffer straight back to the kernel.
            if let Some(conn) = conn.as_deref_mut() {
                if !conn.closing && conn.state != State::Lingering && c.result > 0 {
                    if let Some(bytes) = bufs.get(bid, c.result as usize) {
                        conn.http.feed(bytes);
                    }
                }
            }
            bufs.recycle(bid);
        }
        let Some(conn) = conn else {
            return; // stale: the slot's occupant changed
        };
        if !c.more() {
            conn.ops &= !bit(kind);
        }
        if conn.closing && kind == K_OPEN && c.result >= 0 {
            // The open won the race with the cancel: close what it opened.
            // SAFETY: a successful open's result is a new descriptor we now own.
            let fd = unsafe { OwnedFd::from_raw_fd(c.result) };
            self.ring.push_close(fd, Token::internal(OpKind::CLOSE));
        }
        if conn.closing {
            if conn.ops == 0 {
                self.finalize(key);
            }
            return;
        }
        let (ring, cx) = (&mut self.ring, &self.cx);
        let flow = match kind {
            K_RECV if conn.multishot => conn.on_recv_multi(c.result, c.more(), key, ring, cx),
            K_RECV => conn.on_recv(c.result, key, ring, cx),
            K_SEND => conn.on_send(c.result, key, ring, cx),
            K_SLEEP => conn.on_sleep(key, ring, cx),
            K_OPEN => conn.on_open(c.result, key, ring, cx),
            K_STATX => conn.on_statx(c.result, key, ring, cx),
            K_READ => conn.on_file_read(c.result, key, ring, cx),
            _ => Flow::Continue, // K_SHUT: the lingering recv decides
        };
        match flow {
            Flow::Close => self.close(key),
            Flow::Continue => self.schedule(key),
        }
    }

    fn arm_accept(&mut self) {
        if self.accept_armed || self.cx.shutting_down {
            return;
        }
        self.accept_armed = true;
        let token = ACCEPT_TOKEN;
        let fd = self.listener.as_raw_fd();
        if self.ring.features().multishot_accept {
            self.ring.push_accept_multi(fd, token);
        } else {
            let sqe =
                opcode::Accept::new(types::Fd(fd), std::ptr::null_mut(), std::ptr::null_mut())
                    .flags(libc::SOCK_CLOEXEC)
                    .build()
                    .user_data(token.raw());
            // SAFETY: no peer address is requested, so no memory is referenced.
            unsafe { self.ring.push(sqe) };
        }
    }

    fn on_accept(&mut self, c: Completion) {
        if !c.more() {
            self.accept_armed = false;
        }
        if c.result >= 0 {
            // SAFETY: a successful accept's result is a new descriptor we now own.
            let fd = unsafe { OwnedFd::from_raw_fd(c.result) };
            self.admit(fd);
            if !c.more() {
                self.arm_accept();
            }
            return;
        }
        let err = std::io::Error::from_raw_os_error(-c.result);
        if self.cx.shutting_down || c.result == -libc::ECANCELED {
            return;
        }
        if net::is_fd_exhaustion(&err) {
            // Out of descriptors: keep serving, retry after a back-off timer (case 41).
            if c.more() {
                self.ring
                    .push_cancel(ACCEPT_TOKEN, Token::internal(OpKind::CANCEL));
            }
            self.ring
                .push_timeout(net::ACCEPT_BACKOFF, Token::new(0, 0, K_BACKOFF));
        } else if !c.more() {
            self.arm_accept(); // ECONNABORTED and friends
        }
    }

    /// A new connection: refuse beyond `--max-conns`, else start reading.
    fn admit(&mut self, fd: OwnedFd) {
        if self.cx.shutting_down {
            self.ring.push_close(fd, Token::internal(OpKind::CLOSE));
            return;
        }
        if !self.gate.try_open() {
            self.cx.stats.refused.inc();
            net::send_refusal(&fd);
            self.ring.push_close(fd, Token::internal(OpKind::CLOSE));
            return;
        }
        self.cx.stats.accepted.inc();
        net::tune_stream(&fd);
        let conn = Conn::new(fd, &self.cx, self.multishot);
        let key = self.conns.insert(conn);
        let conn = self.conns.get_mut(key).expect("just inserted");
        match conn.drive(key, &mut self.ring, &self.cx) {
            Flow::Close => self.close(key),
            Flow::Continue => self.schedule(key),
        }
    }

    /// Start closing: cancel in-flight ops; free once their CQEs are in.
    fn close(&mut self, key: SlotKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.closing {
            conn.closing = true;
            conn.deadline = None;
            for kind in conn.ops_for_cancel().collect::<Vec<_>>() {
                self.ring
                    .push_cancel(key.token(kind), Token::internal(OpKind::CANCEL));
            }
        }
        if conn.ops == 0 {
            self.finalize(key);
        }
    }

    /// No op references the connection any more: free it, close its descriptors.
    fn finalize(&mut self, key: SlotKey) {
        let Some(mut conn) = self.conns.remove(key) else {
            return;
        };
        debug_assert_eq!(conn.ops, 0);
        if let Some(mut f) = conn.file.take() {
            f.close(&mut self.ring);
        }
        if let Some(fd) = conn.fd.take() {
            self.ring.push_close(fd, Token::internal(OpKind::CLOSE));
        }
        self.cx.stats.closed.inc();
        self.gate.close();
    }

    /// Queue the connection's deadline in the heap if it is earlier than what is
    /// queued for it already.
    fn schedule(&mut self, key: SlotKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.write_deadline {
            conn.write_deadline = false;
            self.writes.push(key);
            return;
        }
        self.queue_deadline(key);
    }

    fn queue_deadline(&mut self, key: SlotKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(d) = conn.deadline {
            if conn.queued.map_or(true, |q| d < q) {
                conn.queued = Some(d);
                self.heap.push(Reverse((d, key.index, key.gen)));
            }
        }
    }

    /// Queue the write deadline of sends started last turn that are still in flight.
    fn watch_writes(&mut self) {
        let mut prev = std::mem::take(&mut self.writes_prev);
        for key in prev.drain(..) {
            let writing = self.conns.get(key).is_some_and(|c| {
                matches!(c.state, State::Writing(_)) && c.ops & bit(K_SEND) != 0 && !c.closing
            });
            if writing {
                self.queue_deadline(key);
            }
        }
        self.writes_prev = std::mem::replace(&mut self.writes, prev);
    }

    fn expire_deadlines(&mut self) {
        let now = self.cx.now;
        while let Some(&Reverse((at, index, gen))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            let key = SlotKey { index, gen };
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.queued != Some(at) {
                continue; // superseded by an earlier entry
            }
            conn.queued = None;
            match conn.deadline {
                Some(d) if d <= now => {
                    if conn.expire(key, &mut self.ring) == Flow::Close {
                        self.close(key);
                    }
                }
                _ => self.queue_deadline(key), // moved later: queue the current one
            }
        }
    }

    /// Keep one timeout armed at the earliest deadline (rounded up to a tick).
    fn arm_timer(&mut self) {
        let Some(&Reverse((at, _, _))) = self.heap.peek() else {
            return;
        };
        if self.timer_at.is_some_and(|t| t <= at + TICK) {
            return;
        }
        let after = at.saturating_duration_since(self.cx.now) + TICK;
        self.timer_at = Some(self.cx.now + after);
        self.ring.push_timeout(after, Token::new(0, 0, K_TICK));
    }

    /// Stop accepting, close idle connections, let the others finish their
    /// responses (marked `Connection: close` by the core), and bound it all by the
    /// shutdown deadline.
    fn begin_shutdown(&mut self) {
        if self.cx.shutting_down {
            return;
        }
        self.cx.shutting_down = true;
        if self.accept_armed {
            let token = ACCEPT_TOKEN;
            self.ring
                .push_cancel(token, Token::internal(OpKind::CANCEL));
        }
        let left = self.shutdown.deadline().map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(Instant::now())
        });
        self.ring.push_timeout(left, Token::new(0, 0, K_GRACE));
        for key in self.conns.keys() {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.closing {
                continue;
            }
            let idle = conn.http.shutdown();
            if idle && conn.state == State::Reading {
                self.close(key);
            }
        }
    }
}
