//! Tier 2: ops the kernel's io_uring lacks run on a small pool of OS threads (it
//! grows while every thread is busy, see [`Pool`]) as the equivalent plain syscall, and complete the same way as ring ops (a tagged result
//! in the worker's mailbox), so the green API works on older kernels.
//!
//! # Roles and memory
//! The reactor thread hands a job (the op's SQE, decoded from the kernel's 64-byte
//! SQE layout, plus its tag) to the pool and forgets it. A pool thread runs the
//! syscall on the pointers in the SQE: the submitting green thread is parked until
//! the result is delivered, so those pointers stay valid and nothing else touches
//! that memory meanwhile, exactly as for the kernel. The result goes into the
//! worker's mailbox (its mutex orders the pool thread's writes before the worker's
//! reads).
//!
//! # Cancellation
//! Same contract as the ring: a cancel only asks, the op's own completion ends it.
//! A job still queued ends at once with `-ECANCELED`. A running job that waits
//! (recv, send, poll, timeout) waits in `poll(2)` slices of at most
//! [`CANCEL_SLICE_MS`] and checks its cancel flag between them, so a cancel ends it
//! with `-ECANCELED` that much later at most (the pool holds no descriptor of its
//! own: it keeps working when the process has none left). A running job that does
//! not wait (open, stat, read of a file, close) finishes with its real result, like
//! an io_uring op that is past cancelling.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

use io_uring::{opcode, squeue, Probe};

use super::mailbox::Done;
use super::{untag, Shared};

/// A set of io_uring opcodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpSet([u64; 4]);

/// The ops green threads submit, by name (`GVHTTPD_GREEN_FALLBACK`).
const KNOWN: [(&str, u8); 11] = [
    ("nop", opcode::Nop::CODE),
    ("read", opcode::Read::CODE),
    ("openat2", opcode::OpenAt2::CODE),
    ("statx", opcode::Statx::CODE),
    ("close", opcode::Close::CODE),
    ("shutdown", opcode::Shutdown::CODE),
    ("send", opcode::Send::CODE),
    ("recv", opcode::Recv::CODE),
    ("connect", opcode::Connect::CODE),
    ("poll_add", opcode::PollAdd::CODE),
    ("timeout", opcode::Timeout::CODE),
];

impl OpSet {
    pub fn insert(&mut self, code: u8) {
        self.0[usize::from(code / 64)] |= 1 << (code % 64);
    }

    pub fn contains(&self, code: u8) -> bool {
        self.0[usize::from(code / 64)] & (1 << (code % 64)) != 0
    }

    pub fn union(self, o: OpSet) -> OpSet {
        let mut s = self;
        for (a, b) in s.0.iter_mut().zip(o.0) {
            *a |= b;
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// Every op green threads use.
    pub fn all() -> OpSet {
        let mut s = OpSet::default();
        for (_, c) in KNOWN {
            s.insert(c);
        }
        s
    }

    /// `all`, or a comma-separated list of op names (`read,statx`); empty = none.
    pub fn parse(list: &str) -> Result<OpSet, String> {
        let mut s = OpSet::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "all" {
                s = s.union(OpSet::all());
                continue;
            }
            match KNOWN.iter().find(|(n, _)| *n == name) {
                Some(&(_, c)) => s.insert(c),
                None => {
                    let names: Vec<&str> = KNOWN.iter().map(|(n, _)| *n).collect();
                    return Err(format!(
                        "unknown op {name:?} (expected all or some of {})",
                        names.join(",")
                    ));
                }
            }
        }
        Ok(s)
    }

    /// The green ops this kernel's ring lacks, per its probe (`None`: no probe,
    /// a kernel before 5.6, where all but NOP are taken to be missing).
    pub fn lacking(probe: Option<&Probe>) -> OpSet {
        let mut s = OpSet::default();
        for (_, c) in KNOWN {
            let has = match probe {
                Some(p) => p.is_supported(c),
                None => c == opcode::Nop::CODE,
            };
            if !has {
                s.insert(c);
            }
        }
        s
    }
}

/// The kernel's `struct io_uring_sqe` (64 bytes, a stable ABI), for reading the
/// fields of an SQE built with the `io_uring` crate.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct RawSqe {
    opcode: u8,
    flags: u8,
    ioprio: u16,
    fd: i32,
    /// `off`, or `addr2`.
    off: u64,
    addr: u64,
    len: u32,
    /// `rw_flags` / `msg_flags` / `poll32_events` / `statx_flags` / `timeout_flags`.
    op_flags: u32,
    user_data: u64,
    buf_index: u16,
    personality: u16,
    file_index: u32,
    addr3: u64,
    pad: u64,
}

const _: () = assert!(std::mem::size_of::<RawSqe>() == 64);
const _: () = assert!(std::mem::size_of::<squeue::Entry>() == 64);

fn raw(sqe: &squeue::Entry) -> RawSqe {
    // `squeue::Entry` is `#[repr(C)]` around the kernel's 64-byte `io_uring_sqe`
    // (sizes asserted above), and `RawSqe` mirrors that layout.
    // SAFETY: every field of `RawSqe` is a plain integer: any bit pattern is valid.
    unsafe { std::mem::transmute_copy::<squeue::Entry, RawSqe>(sqe) }
}

/// The opcode of an SQE.
pub(crate) fn opcode_of(sqe: &squeue::Entry) -> u8 {
    raw(sqe).opcode
}

struct Job {
    tag: u64,
    sqe: RawSqe,
}

/// The longest a waiting pool job goes without looking at its cancel flag.
pub(crate) const CANCEL_SLICE_MS: i32 = 20;

/// One pool thread, as the pool's state sees it.
struct Worker {
    /// The tag it runs, and whether a cancel asked it to stop.
    job: Option<(u64, bool)>,
}

struct State {
    queue: VecDeque<Job>,
    threads: Vec<Worker>,
    /// Threads waiting for a job.
    idle: usize,
    stop: bool,
}

struct PoolShared {
    state: Mutex<State>,
    cv: Condvar,
    deliver: Arc<Shared>,
}

/// The blocking pool (started by the reactor the first time an op needs it).
///
/// It starts with `min` threads and adds one whenever a job arrives while every
/// thread is busy, up to `max`: an op that waits (a recv on an idle connection)
/// holds its thread, as io_uring's own io-wq workers do, so a fixed pool would
/// let a few waiting ops starve the rest. Beyond `max`, jobs queue.
pub(crate) struct Pool {
    shared: Arc<PoolShared>,
    handles: Vec<std::thread::JoinHandle<()>>,
    max: usize,
}

/// Most threads the pool grows to.
pub(crate) const MAX_POOL_THREADS: usize = 256;

impl Pool {
    pub fn start(min: usize, deliver: Arc<Shared>) -> Pool {
        let shared = Arc::new(PoolShared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: Vec::new(),
                idle: 0,
                stop: false,
            }),
            cv: Condvar::new(),
            deliver,
        });
        let mut pool = Pool {
            shared,
            handles: Vec::new(),
            max: MAX_POOL_THREADS.max(min),
        };
        let shared = Arc::clone(&pool.shared);
        for _ in 0..min.max(1) {
            let mut st = lock(&shared.state);
            pool.grow(&mut st);
        }
        pool
    }

    /// Start one more thread (`false` when none could be started).
    fn grow(&mut self, st: &mut State) -> bool {
        let me = st.threads.len();
        let s = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name(format!("gvhttpd-blocking-{me}"))
            .spawn(move || pool_thread(&s, me));
        match spawned {
            Ok(h) => {
                st.threads.push(Worker { job: None });
                self.handles.push(h);
                true
            }
            Err(_) => false,
        }
    }

    pub fn submit(&mut self, tag: u64, sqe: squeue::Entry) {
        let job = Job {
            tag,
            sqe: raw(&sqe),
        };
        let shared = Arc::clone(&self.shared);
        let mut st = lock(&shared.state);
        st.queue.push_back(job);
        if st.idle < st.queue.len()
            && st.threads.len() < self.max
            && !self.grow(&mut st)
            && st.threads.is_empty()
        {
            // No thread at all: fail the op rather than lose it.
            st.queue.pop_back();
            drop(st);
            deliver(&self.shared.deliver, tag, -libc::EAGAIN);
            return;
        }
        drop(st);
        shared.cv.notify_one();
    }

    /// Cancel the job with `tag`, if the pool has it (queued: ended now; running:
    /// asked to stop). `false` when the pool does not know the tag.
    pub fn cancel(&self, tag: u64) -> bool {
        let mut st = lock(&self.shared.state);
        if let Some(i) = st.queue.iter().position(|j| j.tag == tag) {
            st.queue.remove(i);
            drop(st);
            deliver(&self.shared.deliver, tag, -libc::ECANCELED);
            return true;
        }
        let Some(w) = st
            .threads
            .iter_mut()
            .find(|w| w.job.is_some_and(|(t, _)| t == tag))
        else {
            return false;
        };
        w.job = Some((tag, true));
        true
    }

    /// Nothing queued or running.
    pub fn idle(&self) -> bool {
        let st = lock(&self.shared.state);
        st.queue.is_empty() && st.threads.iter().all(|w| w.job.is_none())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.cv.notify_all();
        for t in self.handles.drain(..) {
            let _ = t.join();
        }
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn deliver(shared: &Shared, tag: u64, result: i32) {
    if let Some(t) = untag(tag) {
        if let Some(m) = shared.mailboxes.get(t.worker) {
            m.deliver_one(Done { tag, result });
        }
    }
}

fn pool_thread(p: &PoolShared, me: usize) {
    loop {
        let job = {
            let mut st = lock(&p.state);
            loop {
                if st.stop {
                    return;
                }
                if let Some(j) = st.queue.pop_front() {
                    st.threads[me].job = Some((j.tag, false));
                    break j;
                }
                st.idle += 1;
                st = p.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                st.idle -= 1;
            }
        };
        let t = Thread { p, me };
        let result = run(&t, &job.sqe);
        lock(&p.state).threads[me].job = None;
        deliver(&p.deliver, job.tag, result);
    }
}

/// What a running job needs to wait cancellably.
struct Thread<'a> {
    p: &'a PoolShared,
    me: usize,
}

/// `-errno` of the last failed libc call.
fn neg_errno() -> i32 {
    -std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn ret(r: libc::c_long) -> i32 {
    if r < 0 {
        neg_errno()
    } else {
        r.min(i64::from(i32::MAX)) as i32
    }
}

/// Run one op as the plain syscall; the result as a CQE would carry it.
///
/// Every pointer used below comes from an SQE whose memory the parked submitter
/// keeps valid and untouched until this job's result is delivered (module docs),
/// with the lengths the submitter gave for it: that is the SAFETY argument of each
/// call.
fn run(t: &Thread<'_>, s: &RawSqe) -> i32 {
    let fd = s.fd;
    match s.opcode {
        c if c == opcode::Nop::CODE => 0,
        c if c == opcode::Read::CODE => {
            let (buf, len) = (s.addr as *mut libc::c_void, s.len as usize);
            ret(match s.off {
                // SAFETY: `buf` is the submitter's buffer of `len` bytes (see above).
                u64::MAX => unsafe { libc::read(fd, buf, len) as libc::c_long },
                // SAFETY: as above.
                off => unsafe { libc::pread(fd, buf, len, off as libc::off_t) as libc::c_long },
            })
        }
        c if c == opcode::OpenAt2::CODE => {
            // SAFETY: `addr` is the submitter's NUL-terminated path, `off` its
            // `open_how` of `len` bytes (see above).
            let r = unsafe { libc::syscall(libc::SYS_openat2, fd, s.addr, s.off, s.len as usize) };
            ret(r)
        }
        c if c == opcode::Statx::CODE => {
            // SAFETY: `addr` is the submitter's path, `off` its `statx` buffer (see above).
            let r = unsafe { libc::syscall(libc::SYS_statx, fd, s.addr, s.op_flags, s.len, s.off) };
            ret(r)
        }
        // SAFETY: closing a descriptor the submitter handed over with the op.
        c if c == opcode::Close::CODE => ret(unsafe { libc::close(fd) }.into()),
        // SAFETY: a shutdown touches no memory.
        c if c == opcode::Shutdown::CODE => ret(unsafe { libc::shutdown(fd, s.len as i32) }.into()),
        // SAFETY: `addr` is the submitter's socket address of `off` bytes (see above).
        c if c == opcode::Connect::CODE => ret(unsafe {
            libc::connect(
                fd,
                s.addr as *const libc::sockaddr,
                s.off as libc::socklen_t,
            )
        }
        .into()),
        c if c == opcode::Send::CODE || c == opcode::Recv::CODE => {
            let send = c == opcode::Send::CODE;
            let flags = s.op_flags as i32 | libc::MSG_DONTWAIT;
            loop {
                let ev = if send { libc::POLLOUT } else { libc::POLLIN };
                if let Err(e) = wait(t, fd, ev, -1) {
                    break e;
                }
                let (buf, len) = (s.addr as *mut libc::c_void, s.len as usize);
                let r = if send {
                    // SAFETY: `buf` holds the submitter's `len` bytes to send (see above).
                    unsafe { libc::send(fd, buf, len, flags) }
                } else {
                    // SAFETY: `buf` is the submitter's buffer of `len` bytes (see above).
                    unsafe { libc::recv(fd, buf, len, flags) }
                };
                match ret(r as libc::c_long) {
                    e if e == -libc::EAGAIN => continue,
                    r => break r,
                }
            }
        }
        c if c == opcode::PollAdd::CODE => match wait(t, fd, (s.op_flags & 0xFFFF) as i16, -1) {
            Ok(revents) => i32::from(revents as u16),
            Err(e) => e,
        },
        c if c == opcode::Timeout::CODE => {
            if s.op_flags != 0 || s.off != 0 {
                return -libc::EINVAL; // only the relative, count-less timeout of `sleep`
            }
            // SAFETY: `addr` points to the submitter's `__kernel_timespec` (see above).
            let ts = unsafe { *(s.addr as *const libc::timespec) };
            sleep_cancellable(t, ts)
        }
        _ => -libc::EOPNOTSUPP,
    }
}

/// A relative timeout: `-ETIME` when it passes, `-ECANCELED` when cancelled.
fn sleep_cancellable(t: &Thread<'_>, ts: libc::timespec) -> i32 {
    let d = std::time::Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    );
    let deadline = std::time::Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return -libc::ETIME;
        }
        // Round up: never wake just before the deadline.
        let ms = (left.as_micros().div_ceil(1000)).clamp(1, i32::MAX as u128) as i32;
        if let Err(e) = wait(t, -1, 0, ms) {
            return e;
        }
    }
}

/// Wait until `fd` has `events` (`fd < 0`: only the timeout), `timeout_ms` passes
/// (`-1`: never; returns `Ok(0)`), or a cancel asks this job to stop
/// (`Err(-ECANCELED)`, noticed within [`CANCEL_SLICE_MS`]).
fn wait(t: &Thread<'_>, fd: i32, events: i16, timeout_ms: i32) -> Result<i16, i32> {
    let end = (timeout_ms >= 0)
        .then(|| std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms as u64));
    loop {
        {
            let st = lock(&t.p.state);
            if st.stop || matches!(st.threads[t.me].job, Some((_, true))) {
                return Err(-libc::ECANCELED);
            }
        }
        let slice = match end {
            None => CANCEL_SLICE_MS,
            Some(end) => {
                let left = end.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Ok(0);
                }
                (left.as_micros().div_ceil(1000) as i32).clamp(1, CANCEL_SLICE_MS)
            }
        };
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: `pfd` is a live local pollfd; poll writes only its `revents`.
        let n = unsafe { libc::poll(&mut pfd, 1, slice) };
        if n < 0 {
            let e = neg_errno();
            if e == -libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if n > 0 && fd >= 0 && pfd.revents != 0 {
            return Ok(pfd.revents);
        }
    }
}
