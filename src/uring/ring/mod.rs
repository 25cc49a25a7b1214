//! The per-worker ring: submission with a backlog, batched `io_uring_enter`, reaping,
//! counters, the wake eventfd, and draining on drop.
//!
//! # The buffer-lifetime contract (stated once, for every caller)
//!
//! An SQE carries raw pointers: the bytes a send reads, the buffer a recv or read
//! fills, the `statx` a statx writes, the path an openat2 resolves. From the moment
//! the SQE is pushed until **the CQE that ends the op arrives** (the CQE without
//! `IORING_CQE_F_MORE`), the kernel may read or write that memory at any time, from
//! any context. Therefore every such pointer must point into memory that is
//!
//! 1. *owned by the in-flight op* — e.g. a `Vec` held in the connection's state that
//!    is neither dropped, reallocated (no `push`/`reserve` on it) nor handed out as
//!    `&mut` for reading while the op is in flight — or *pinned on a coroutine stack
//!    that cannot be freed first* (the coroutine is parked on exactly that op and its
//!    stack is only recycled after the CQE resumed it), and
//! 2. kept that way **through cancellation**: `IORING_OP_ASYNC_CANCEL` only *asks*;
//!    the cancelled op still posts its CQE (`-ECANCELED`, or its normal result if it
//!    won the race), and only that CQE releases the memory. A timed-out or shut-down
//!    connection is therefore never freed while it has an op in flight: it cancels,
//!    waits for the CQE, then frees.
//!
//! [`Ring::push`] is `unsafe` with exactly this contract, so every raw submission
//! says at its call site (in its `// SAFETY:` comment) which owner keeps its memory
//! alive. The safe helpers ([`Ring::push_nop`], [`Ring::push_timeout`],
//! [`Ring::push_cancel`], [`Ring::push_close`], [`Ring::push_accept_multi`],
//! [`Ring::push_recv_multi`], [`Ring::arm_wake`]) submit ops whose memory, if any, the
//! ring owns itself: a timeout's `timespec` is boxed by the ring and freed only once
//! the kernel has *consumed* the SQE (the kernel copies it while preparing the op),
//! the wake read's 8 bytes and the provided buffers live as long as the ring.
//! The owned-buffer ops of [`super::ops`] (send, recv, read, openat2, statx,
//! accept, ...) keep their memory in the ring's in-flight table until the final
//! CQE, which hands it back in the [`Completion`].
//!
//! Whatever is still in flight when a `Ring` is dropped is cancelled and reaped by
//! its `Drop` (bounded wait; if the kernel does not finish in time the memory the
//! ring owns is leaked rather than freed under the kernel). Owners of buffers lent
//! to the ring must be dropped *after* it: declare the `Ring` field first.
//!
//! # Batching
//!
//! [`Ring::push`] never enters the kernel. A worker pushes everything a loop turn
//! produced, then calls [`Ring::submit_and_wait`] once: one `io_uring_enter` that
//! submits the batch and waits for the next completion. When the SQ is full, pushes
//! go to an in-process backlog (counted as `sq_full`), which `submit_and_wait`
//! drains in order; only then does a turn take more than one enter.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::bufring::BufRing;
use super::counters::UringCounters;
use super::owned::{InFlight, Returned};
use super::probe::{build_ring, Features, UringOptions};
use super::token::{OpKind, Token};

mod helpers;

/// One completion, copied out of the CQ.
#[derive(Debug)]
pub struct Completion {
    pub token: Token,
    /// The op's result: a count or fd when `>= 0`, `-errno` otherwise.
    pub result: i32,
    pub flags: u32,
    /// What an owned op ([`super::ops`]) hands back with its final CQE
    /// ([`super::owned`]).
    pub(super) returned: Option<Returned>,
}

/// `IORING_CQE_F_BUFFER`: the CQE names a provided buffer (in its upper 16 bits).
const CQE_F_BUFFER: u32 = 1;

/// Record that `c` hands us its provided buffer. An id the buffer ring does not
/// know, or one it already holds (a kernel or ring bug), must not reach the
/// consumer, which would read or recycle a buffer that another completion holds:
/// such a completion loses its buffer and fails with `EIO`.
pub(super) fn take_buffer(bufs: &mut BufRing, c: &mut Completion) {
    if let Some(bid) = c.buffer_id() {
        if !bufs.mark_held(bid) {
            c.flags &= !CQE_F_BUFFER;
            c.result = -libc::EIO;
        }
    }
}

impl Completion {
    /// More CQEs will follow for this SQE (multishot).
    #[inline]
    pub fn more(&self) -> bool {
        cqueue::more(self.flags)
    }
    /// The provided buffer the kernel filled, if any (now held: recycle it).
    #[inline]
    pub fn buffer_id(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }
    /// The result as `io::Result`.
    pub fn io_result(&self) -> io::Result<u32> {
        if self.result >= 0 {
            Ok(self.result as u32)
        } else {
            Err(io::Error::from_raw_os_error(-self.result))
        }
    }
}

/// Wakes one worker's ring from any thread (eventfd write).
#[derive(Debug)]
pub struct RingWaker(OwnedFd);

impl RingWaker {
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live local to an eventfd we own; a failure
        // (only EAGAIN at counter saturation, when a wake is pending anyway) is ignored.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

#[derive(Default, Clone, Copy)]
struct Counts {
    submitted: u64,
    reaped: u64,
    enters: u64,
    sq_full: u64,
    enobufs: u64,
}

/// A backlogged SQE, with the timespec it points to when it is a timeout.
struct Pending {
    sqe: squeue::Entry,
    ts: Option<Box<types::Timespec>>,
    /// An `IORING_OP_CLOSE`: its descriptor already belongs to the ring, so the SQE
    /// must reach the kernel even when the ring drains.
    close: bool,
}

/// Token of the timeout `drain` waits with on kernels without `EXT_ARG`.
const DRAIN_WAIT: Token = Token::new(u32::MAX, super::token::GEN_MASK, OpKind::TIMER);

/// One worker's io_uring (see the module docs for the contract it enforces).
pub struct Ring {
    uring: IoUring,
    features: Features,
    /// SQEs that did not fit in the SQ, in submission order.
    backlog: VecDeque<Pending>,
    /// Timespecs of timeouts in the SQ, tagged with their SQ sequence number; freed
    /// once the kernel's SQ head has passed them.
    ts_in_sq: VecDeque<(u64, Box<types::Timespec>)>,
    /// Entries ever written into the SQ.
    sq_seq: u64,
    /// SQEs pushed (SQ or backlog) whose final CQE has not been reaped.
    in_flight: u64,
    counts: Counts,
    published: Counts,
    bufs: Option<BufRing>,
    /// Memory owned by in-flight ops of [`super::ops`]; dropped after draining.
    pub(super) owned: InFlight,
    waker: Arc<RingWaker>,
    /// 8 bytes the wake read fills; allocated in `new`, freed in `Drop` after draining.
    wake_buf: NonNull<u64>,
    wake_armed: bool,
    /// Kernels without `IORING_ASYNC_CANCEL_ANY` (before 5.19): how many ops with
    /// each `user_data` are in flight, so `drain` can cancel them one by one.
    /// `None` where cancel-any exists (nothing is tracked on the hot path there).
    tracked: Option<HashMap<u64, u32>>,
    /// `GVHTTPD_URING_FAULT=ecanceled|eagain` only: the socket ops this ring fakes.
    fake: Option<super::fault::FakeOps>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("features", &self.features)
            .field("in_flight", &self.in_flight)
            .field("backlog", &self.backlog.len())
            .finish()
    }
}

impl Ring {
    /// Set up a ring with the best flags this kernel accepts (see [`super::probe`]).
    pub fn new(opts: &UringOptions) -> io::Result<Ring> {
        let (uring, features) = build_ring(opts)?;
        // Blocking on purpose: an O_NONBLOCK file would make io_uring's read fail with
        // EAGAIN instead of waiting for a write.
        let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?;
        let wake_buf = NonNull::from(Box::leak(Box::new(0u64)));
        let tracked = (!features.cancel_flags).then(HashMap::new);
        Ok(Ring {
            uring,
            features,
            backlog: VecDeque::new(),
            ts_in_sq: VecDeque::new(),
            sq_seq: 0,
            in_flight: 0,
            counts: Counts::default(),
            published: Counts::default(),
            bufs: None,
            owned: InFlight::default(),
            waker: Arc::new(RingWaker(efd)),
            wake_buf,
            wake_armed: false,
            tracked,
            fake: super::fault::FakeOps::for_ring(),
        })
    }

    /// Behave like a 5.10 kernel in `drain`: no cancel-any, no `EXT_ARG` (the
    /// fallbacks then run on this kernel too). Call before pushing anything.
    #[cfg(test)]
    pub(crate) fn pretend_old_kernel(&mut self) {
        self.features.cancel_flags = false;
        self.features.ext_arg = false;
        self.tracked = Some(HashMap::new());
    }

    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Which opcodes this kernel's io_uring implements (`IORING_REGISTER_PROBE`);
    /// `None` where the probe itself is missing (kernels before 5.6).
    pub fn opcode_probe(&self) -> Option<io_uring::Probe> {
        let mut p = io_uring::Probe::new();
        self.uring.submitter().register_probe(&mut p).ok()?;
        Some(p)
    }

    /// SQEs pushed whose last CQE has not been reaped yet.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// A handle other threads use to wake this ring (completes the [`arm_wake`]
    /// read with token [`OpKind::WAKE`]).
    ///
    /// [`arm_wake`]: Ring::arm_wake
    pub fn waker(&self) -> Arc<RingWaker> {
        Arc::clone(&self.waker)
    }

    /// Register a provided-buffer ring (group `bgid`) and keep it for the ring's
    /// lifetime. `Err` means the kernel lacks `IORING_REGISTER_PBUF_RING`; callers
    /// fall back to plain recv into their own buffers.
    pub fn register_buf_ring(&mut self, bgid: u16, entries: u16, buf_size: u32) -> io::Result<()> {
        if self.bufs.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "one buffer ring per Ring",
            ));
        }
        let entries = super::fault::buf_ring_entries(entries);
        let br = BufRing::register(&self.uring, bgid, entries, buf_size)?;
        self.features.pbuf_ring = true;
        self.bufs = Some(br);
        Ok(())
    }

    /// The provided-buffer ring, when registered.
    pub fn buf_ring(&mut self) -> Option<&mut BufRing> {
        self.bufs.as_mut()
    }

    /// Queue one SQE (into the SQ, or the backlog when the SQ is full). Never enters
    /// the kernel; [`Ring::submit_and_wait`] does, once per loop turn.
    ///
    /// # Safety
    ///
    /// Every pointer in `sqe` must stay valid for the kernel's accesses until the op's
    /// final CQE is reaped, including after a cancel: the memory is owned by the
    /// in-flight op or pinned on a coroutine stack that cannot be freed first (see the
    /// module docs). `sqe.user_data` should be a [`Token`].
    #[inline]
    pub unsafe fn push(&mut self, sqe: squeue::Entry) {
        let sqe = match &mut self.fake {
            None => sqe,
            Some(f) => f.swap(sqe),
        };
        // Common case inline, straight into the SQ (a `Pending` copy of it stalled on
        // store forwarding); the same steps as `push_pending`, in its order.
        if self.tracked.is_none() && self.backlog.is_empty() && self.try_push_sq(&sqe) {
            self.in_flight += 1;
            self.sq_seq += 1;
            return;
        }
        self.push_pending(Pending {
            sqe,
            ts: None,
            close: false,
        });
    }

    #[inline(never)]
    fn push_pending(&mut self, p: Pending) {
        self.in_flight += 1;
        if let Some(t) = &mut self.tracked {
            *t.entry(p.sqe.get_user_data()).or_insert(0) += 1;
        }
        if self.backlog.is_empty() && self.try_push_sq(&p.sqe) {
            self.note_in_sq(p.ts);
        } else {
            self.counts.sq_full += 1;
            self.backlog.push_back(p);
        }
    }

    #[inline]
    fn try_push_sq(&mut self, sqe: &squeue::Entry) -> bool {
        // SAFETY: the caller of `push` (or a safe helper) upheld the buffer contract
        // for `sqe`; the SQ copies the entry.
        unsafe { self.uring.submission().push(sqe).is_ok() }
    }

    fn note_in_sq(&mut self, ts: Option<Box<types::Timespec>>) {
        self.sq_seq += 1;
        if let Some(ts) = ts {
            self.ts_in_sq.push_back((self.sq_seq, ts));
        }
    }

    /// Submit everything queued (backlog first, in order) and wait for at least
    /// `want` completions, in one `io_uring_enter` unless the backlog forces more.
    pub fn submit_and_wait(&mut self, want: usize) -> io::Result<()> {
        loop {
            self.drain_backlog();
            let backlog_left = !self.backlog.is_empty();
            let wait = if backlog_left { 0 } else { want };
            self.counts.enters += 1;
            let r = if super::fault::interrupt_enter() {
                Err(io::Error::from_raw_os_error(libc::EINTR))
            } else {
                self.uring.submit_and_wait(wait)
            };
            self.free_consumed_timespecs();
            match r {
                Ok(0) if backlog_left => return Ok(()), // nothing moved: reap first
                Ok(n) => self.counts.submitted += n as u64,
                // Interrupted, or the CQ is overflowing / resources are short: let the
                // caller reap and come back.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                    ) =>
                {
                    return Ok(())
                }
                Err(e) => return Err(e),
            }
            if !backlog_left {
                return Ok(());
            }
            if self.features.sqpoll && self.uring.submission().is_full() {
                let _ = self.uring.submitter().squeue_wait();
            }
        }
    }

    fn drain_backlog(&mut self) {
        while let Some(p) = self.backlog.pop_front() {
            if !self.try_push_sq(&p.sqe) {
                self.backlog.push_front(p);
                break;
            }
            self.note_in_sq(p.ts);
        }
    }

    fn free_consumed_timespecs(&mut self) {
        let unconsumed = self.uring.submission().len() as u64;
        let consumed = self.sq_seq - unconsumed;
        while self
            .ts_in_sq
            .front()
            .is_some_and(|(seq, _)| *seq <= consumed)
        {
            self.ts_in_sq.pop_front();
        }
    }

    /// Move every available completion into `out` (appending). Marks provided
    /// buffers as held, counts ENOBUFS, and re-allows [`Ring::arm_wake`] after a
    /// WAKE completion.
    pub fn reap(&mut self, out: &mut Vec<Completion>) {
        let mut cq = self.uring.completion();
        cq.sync();
        for cqe in &mut cq {
            let (result, flags) = match &mut self.fake {
                None => (cqe.result(), cqe.flags()),
                Some(f) => f.complete(cqe.user_data(), cqe.result(), cqe.flags()),
            };
            let mut c = Completion {
                token: Token::from_raw(cqe.user_data()),
                result,
                flags,
                returned: None,
            };
            c.returned = self.owned.complete(c.token, c.result, c.more());
            self.counts.reaped += 1;
            if !c.more() {
                self.in_flight = self.in_flight.saturating_sub(1);
                if let Some(t) = &mut self.tracked {
                    untrack(t, cqe.user_data());
                }
            }
            if c.result == -libc::ENOBUFS {
                self.counts.enobufs += 1;
            }
            if let Some(bufs) = self.bufs.as_mut() {
                take_buffer(bufs, &mut c);
            }
            if c.token == Token::internal(OpKind::WAKE) && !c.more() {
                self.wake_armed = false;
            }
            out.push(c);
        }
    }

    /// Add what happened since the last call to `stats` (once per loop turn).
    pub fn publish(&mut self, stats: &UringCounters) {
        let (c, p) = (self.counts, self.published);
        stats.sqes_submitted.add(c.submitted - p.submitted);
        stats.cqes_reaped.add(c.reaped - p.reaped);
        stats.enter_calls.add(c.enters - p.enters);
        stats.sq_full.add(c.sq_full - p.sq_full);
        stats.enobufs.add(c.enobufs - p.enobufs);
        self.published = c;
    }

    /// Cancel everything in flight and reap until nothing is, or `limit` passes.
    /// Returns whether the ring is now idle.
    ///
    /// SQEs still in the backlog were never seen by the kernel and are forgotten,
    /// except closes, which are submitted (their descriptors are the ring's). On
    /// kernels without cancel-any (before 5.19) every tracked op is cancelled by its
    /// token; without `EXT_ARG` (5.10) the wait is bounded by a timeout SQE instead
    /// of an enter timeout.
    pub fn drain(&mut self, limit: Duration) -> bool {
        let before = self.backlog.len();
        let tracked = &mut self.tracked;
        self.backlog.retain(|p| {
            if !p.close {
                if let Some(t) = tracked.as_mut() {
                    untrack(t, p.sqe.get_user_data());
                }
            }
            p.close
        });
        self.in_flight -= (before - self.backlog.len()) as u64;
        if self.in_flight == 0 {
            return true;
        }
        self.cancel_everything();
        let end = Instant::now() + limit;
        let mut sink = Vec::new();
        let mut waiting = false;
        while self.in_flight > 0 && Instant::now() < end {
            if self.features.ext_arg {
                let ts = types::Timespec::from(Duration::from_millis(50));
                let args = types::SubmitArgs::new().timespec(&ts);
                self.drain_backlog();
                let _ = self.uring.submitter().submit_with_args(1, &args);
                self.free_consumed_timespecs();
            } else {
                if !waiting {
                    // Ends after 50 ms, or as soon as any other op completes.
                    self.push_timeout_count(Duration::from_millis(50), 1, DRAIN_WAIT);
                    waiting = true;
                }
                let _ = self.submit_and_wait(1);
            }
            sink.clear();
            self.reap(&mut sink);
            if sink.iter().any(|c| c.token == DRAIN_WAIT) {
                waiting = false;
            }
        }
        self.in_flight == 0
    }

    /// Ask the kernel to cancel every op in flight.
    fn cancel_everything(&mut self) {
        let Some(tracked) = &self.tracked else {
            let sqe = opcode::AsyncCancel2::new(types::CancelBuilder::any().all())
                .build()
                .user_data(Token::internal(OpKind::CANCEL).raw());
            // SAFETY: a cancel references no memory.
            unsafe { self.push(sqe) };
            return;
        };
        // One cancel per op; cancels, closes and NOPs finish on their own.
        let targets: Vec<(u64, u32)> = tracked
            .iter()
            .filter(|(&raw, _)| {
                let k = Token::from_raw(raw).kind();
                k != OpKind::CANCEL && k != OpKind::CLOSE && k != OpKind::NOP
            })
            .map(|(&raw, &n)| (raw, n))
            .collect();
        for (raw, n) in targets {
            for _ in 0..n {
                self.push_cancel(Token::from_raw(raw), Token::internal(OpKind::CANCEL));
            }
        }
    }
}

/// One op with `user_data` is no longer in flight.
fn untrack(t: &mut HashMap<u64, u32>, user_data: u64) {
    if let Some(n) = t.get_mut(&user_data) {
        *n -= 1;
        if *n == 0 {
            t.remove(&user_data);
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // Not a hot path: a worker's ring is dropped once, at exit. Bounded wait.
        let idle = self.drain(Duration::from_secs(2));
        if !idle {
            // The kernel may still write into ring-owned memory: leak it rather than
            // free it under the kernel.
            if let Some(b) = self.bufs.take() {
                std::mem::forget(b);
            }
            std::mem::forget(std::mem::take(&mut self.owned));
            return;
        }
        if let Some(b) = &self.bufs {
            let _ = self.uring.submitter().unregister_buf_ring(b.bgid());
        }
        // SAFETY: allocated by Box::leak in `new`; no op is in flight (drain returned
        // true), so the kernel no longer references it.
        drop(unsafe { Box::from_raw(self.wake_buf.as_ptr()) });
    }
}
