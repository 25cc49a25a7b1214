//! Green-thread stacks: fixed-size stacks carved out of large slabs, each with a
//! guard region below it, handed out and taken back by a per-worker [`StackPool`].
//!
//! # Why not one `mmap` per stack (corosensei's `DefaultStack`)
//! A stack with a guard page made by `mprotect` costs two VMAs (the `PROT_NONE`
//! guard and the writable stack cannot merge). Linux caps a process at
//! `vm.max_map_count` VMAs (65,530 by default), so `DefaultStack` tops out near
//! 32,000 live green threads, far short of the 100,000 parked connections this
//! runtime is meant to hold. Here one slab of [`STACKS_PER_SLAB`] stacks is one
//! `mmap`, and each guard region is installed with `MADV_GUARD_INSTALL` (Linux 6.13+),
//! which marks page-table entries instead of splitting the VMA: 100,000 stacks cost
//! ~1,600 VMAs. On older kernels the guard falls back to `mprotect(PROT_NONE)` (two
//! VMAs per stack, and `vm.max_map_count` is then the limit; the pool says so).
//!
//! # Guard size
//! A stack's guard region lies directly above the top of the next lower stack in
//! the slab, where that stack's root frame lives. A frame or `alloca` bigger than
//! the guard that does not probe its pages (C code; Rust probes) would jump over a
//! one-page guard and silently overwrite that neighbour. So the guard is
//! [`GUARD_SIZE`] (64 KiB), which costs nothing resident: guard pages are never
//! touched, and with `MADV_GUARD_INSTALL` they are page-table marks, not a VMA.
//!
//! # Memory
//! Slabs are `MAP_NORESERVE`: only pages a green thread actually touches become
//! resident, so a parked connection costs the few pages its deepest call chain
//! touched, not the full stack size. Stacks go back to the pool LIFO so the most
//! recently used (already resident) stack is reused first.
//!
//! After a burst the free list holds every stack the burst touched. The pool keeps the
//! [`WARM_STACKS`] most recently returned ones resident (steady churn reuses them with
//! no page faults) and gives the pages of colder ones back to the kernel in bulk
//! (`MADV_DONTNEED`, whenever [`RELEASE_BATCH`] more have piled up), so memory returns
//! to its baseline once a burst of connections is over. A released stack stays mapped
//! with its guard (guard markers survive `MADV_DONTNEED`); reusing it costs its page
//! faults again.
//!
//! # Overflow
//! Running off the end of a stack touches its guard region and raises `SIGSEGV`. The
//! handler installed by [`install_overflow_handler`] checks the faulting address
//! against the whole guard region of the green thread running on this worker (kept in a
//! thread-local by the scheduler) and, if it matches, writes a clear message to
//! stderr before the default action ends the process — a report, never silent
//! corruption. Any other fault is passed on to the previous handler (Rust's own).

use std::cell::Cell;
use std::io;
use std::num::NonZeroUsize;
use std::ptr;
use std::sync::Once;

use corosensei::stack::{Stack, StackPointer};

/// `madvise` advice that installs lightweight guard regions (Linux 6.13+); not yet
/// exported by the `libc` crate.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Default green-thread stack: 64 KiB of usable stack plus a guard region.
///
/// Stacks are reserved, not committed (`MAP_NORESERVE` slabs, see
/// this module): only touched pages cost memory. A parked green thread keeps
/// about one resident 4 KiB page, because request processing runs on the worker's
/// own stack (`super::on_worker_stack`); the measurements are in
/// `results/2026-11-21-vm-green/` and `results/2026-12-01-vm-driver/`. 64 KiB leaves
/// ample headroom for deep call chains in the connection loop and costs only
/// address space; a smaller default would save no resident memory.
pub const DEFAULT_GREEN_STACK: usize = 64 * 1024;

/// Stacks per slab (one `mmap`).
pub const STACKS_PER_SLAB: usize = 64;

/// Bytes of guard below every stack (rounded up to whole pages).
pub const GUARD_SIZE: usize = 64 * 1024;

/// Free stacks the pool keeps resident for reuse (see the module docs).
pub const WARM_STACKS: usize = 64;

/// Cold free stacks that pile up before their pages are released, in one go.
pub const RELEASE_BATCH: usize = 256;

/// How guard pages are made on this kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardKind {
    /// `MADV_GUARD_INSTALL`: no extra VMA per stack.
    Madvise,
    /// `mprotect(PROT_NONE)`: two VMAs per stack.
    Mprotect,
}

fn page_size() -> usize {
    Some(rustix::param::page_size())
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096)
}

/// One stack from a [`StackPool`]: `[limit, limit + guard_len)` is the guard
/// region, `[limit + guard_len, base)` the usable stack.
///
/// INVARIANT: the memory lies inside a slab owned by the pool that made it, and the
/// pool never unmaps a slab while any of its stacks is handed out.
#[derive(Debug)]
pub struct PooledStack {
    base: StackPointer,
    limit: StackPointer,
    guard_len: usize,
}

impl PooledStack {
    /// The guard region `[start, end)`.
    pub fn guard(&self) -> (usize, usize) {
        (self.limit.get(), self.limit.get() + self.guard_len)
    }
}

// SAFETY: every PooledStack has a guard region at its low end (installed before it is
// handed out, see `StackPool::grow`), its usable part is at least one page (the pool
// rounds the size up to >= MIN_STACK_SIZE), and base/limit are page-aligned, hence
// aligned to STACK_ALIGNMENT. The memory stays mapped while the stack is out (INVARIANT).
unsafe impl Stack for PooledStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.base
    }
    #[inline]
    fn limit(&self) -> StackPointer {
        self.limit
    }
}

/// A slab mapping: `(address, length)`.
#[derive(Debug)]
struct Slab {
    addr: usize,
    len: usize,
}

/// A per-worker pool of green-thread stacks.
///
/// INVARIANT: `outstanding` counts the stacks handed out by `get` and not yet
/// returned by `put`; slabs are only unmapped (in `Drop`) when it is zero.
#[derive(Debug)]
pub struct StackPool {
    /// Usable bytes per stack (page multiple).
    size: usize,
    /// Guard bytes below each stack (page multiple, at least one page).
    guard_len: usize,
    guard: Option<GuardKind>,
    slabs: Vec<Slab>,
    free: Vec<PooledStack>,
    /// `free[..released]` have had their pages given back (never touched since).
    released: usize,
    /// Stacks whose pages were given back, over the pool's life.
    released_total: u64,
    outstanding: usize,
}

impl StackPool {
    /// A pool of stacks with `size` usable bytes each (rounded up to whole pages,
    /// at least corosensei's minimum).
    pub fn new(size: usize) -> Self {
        let page = page_size();
        let size = size
            .max(corosensei::stack::MIN_STACK_SIZE)
            .next_multiple_of(page);
        StackPool {
            size,
            guard_len: GUARD_SIZE.max(page).next_multiple_of(page),
            guard: None,
            slabs: Vec::new(),
            free: Vec::new(),
            released: 0,
            released_total: 0,
            outstanding: 0,
        }
    }

    /// Usable bytes per stack.
    pub fn stack_size(&self) -> usize {
        self.size
    }

    /// Guard bytes below each stack.
    pub fn guard_len(&self) -> usize {
        self.guard_len
    }

    /// How guard regions are made (known after the first slab).
    pub fn guard_kind(&self) -> Option<GuardKind> {
        self.guard
    }

    /// Stacks handed out right now.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// A stack, reusing a returned one when there is any.
    pub fn get(&mut self) -> io::Result<PooledStack> {
        if self.free.is_empty() {
            self.grow()?;
        }
        let stack = self
            .free
            .pop()
            .ok_or_else(|| io::Error::other("stack pool empty"))?;
        self.released = self.released.min(self.free.len());
        self.outstanding += 1;
        Ok(stack)
    }

    /// Stacks whose pages were given back to the kernel, over the pool's life.
    pub fn released_total(&self) -> u64 {
        self.released_total
    }

    /// Give back the pages of every free stack but the [`WARM_STACKS`] most recent,
    /// once [`RELEASE_BATCH`] cold ones have piled up.
    fn release_cold(&mut self) {
        let cold = self.free.len().saturating_sub(WARM_STACKS);
        if cold < self.released + RELEASE_BATCH {
            return;
        }
        for st in &self.free[self.released..cold] {
            let start = st.limit.get() + st.guard_len;
            // `[start, base)` is the usable part of a stack in a slab this pool mapped;
            // the stack is on the free list, so no green thread runs on it.
            // SAFETY: nothing points into that range, and MADV_DONTNEED on private
            // anonymous memory only drops its pages (zeros on reread), keeping guards.
            let r = unsafe {
                libc::madvise(
                    start as *mut libc::c_void,
                    st.base.get() - start,
                    libc::MADV_DONTNEED,
                )
            };
            if r != 0 {
                // Nothing is lost: the pages just stay resident.
                break;
            }
            self.released_total += 1;
        }
        self.released = cold;
    }

    /// Return a stack obtained from this pool's `get`.
    pub fn put(&mut self, stack: PooledStack) {
        debug_assert!(self
            .slabs
            .iter()
            .any(|s| { stack.limit.get() >= s.addr && stack.base.get() <= s.addr + s.len }));
        self.outstanding -= 1;
        self.free.push(stack);
        self.release_cold();
    }

    /// Map one more slab and cut it into stacks.
    fn grow(&mut self) -> io::Result<()> {
        let stride = self.size + self.guard_len;
        let len = stride * STACKS_PER_SLAB;
        // SAFETY: an anonymous private mapping at a kernel-chosen address touches no
        // existing memory; the result is checked for MAP_FAILED.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("mapping {len} bytes of green-thread stacks failed: {e}"),
            ));
        }
        let addr = addr as usize;
        let slab = Slab { addr, len };
        for i in 0..STACKS_PER_SLAB {
            let guard = addr + i * stride;
            if let Err(e) = self.install_guard(guard) {
                // SAFETY: unmapping exactly the mapping made above; no stack from it
                // has been handed out yet.
                unsafe { libc::munmap(slab.addr as *mut libc::c_void, slab.len) };
                return Err(e);
            }
        }
        // Push in reverse so the lowest stack is handed out first (cosmetic).
        for i in (0..STACKS_PER_SLAB).rev() {
            let limit = addr + i * stride;
            let (Some(base), Some(limit)) =
                (NonZeroUsize::new(limit + stride), NonZeroUsize::new(limit))
            else {
                return Err(io::Error::other("mmap returned address 0"));
            };
            self.free.push(PooledStack {
                base,
                limit,
                guard_len: self.guard_len,
            });
        }
        self.slabs.push(slab);
        Ok(())
    }

    fn install_guard(&mut self, at: usize) -> io::Result<()> {
        if self.guard != Some(GuardKind::Mprotect) {
            let region = at as *mut libc::c_void;
            // SAFETY: a page-aligned range inside a private anonymous mapping we own;
            // the advice only makes it fault.
            let r = unsafe { libc::madvise(region, self.guard_len, MADV_GUARD_INSTALL) };
            if r == 0 {
                self.guard = Some(GuardKind::Madvise);
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if self.guard == Some(GuardKind::Madvise) || e.raw_os_error() != Some(libc::EINVAL) {
                return Err(io::Error::new(
                    e.kind(),
                    format!("installing a stack guard region: {e}"),
                ));
            }
            self.guard = Some(GuardKind::Mprotect);
        }
        // SAFETY: as above; PROT_NONE on a page-aligned range of our own mapping.
        let r = unsafe { libc::mprotect(at as *mut libc::c_void, self.guard_len, libc::PROT_NONE) };
        if r != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "protecting a stack guard region: {e} (with mprotect guards every green \
                     thread costs two VMAs; raise vm.max_map_count or use Linux 6.13+)"
                ),
            ));
        }
        Ok(())
    }
}

/// The stack pools of a steal group's workers, one per worker, shared by all of
/// them: a green thread that ends on another worker gives its stack back to the
/// pool it came from. Each pool is used under its own lock; the pools are unmapped
/// when the last worker (and the group) let go of them.
pub(crate) struct SharedPools(Box<[std::sync::Mutex<StackPool>]>);

impl SharedPools {
    /// `workers` pools of stacks with `size` usable bytes.
    pub(crate) fn new(workers: usize, size: usize) -> SharedPools {
        SharedPools(
            (0..workers)
                .map(|_| std::sync::Mutex::new(StackPool::new(size)))
                .collect(),
        )
    }

    fn lock(&self, index: usize) -> std::sync::MutexGuard<'_, StackPool> {
        self.0[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, index: usize) -> io::Result<PooledStack> {
        self.lock(index).get()
    }

    pub(crate) fn put(&self, index: usize, stack: PooledStack) {
        self.lock(index).put(stack);
    }

    /// Stacks handed out by the pools and not given back.
    pub(crate) fn outstanding(&self) -> usize {
        (0..self.0.len()).map(|i| self.lock(i).outstanding()).sum()
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        if self.outstanding != 0 {
            // A stack is still in use (e.g. leaked with an op in flight): keep
            // every slab mapped rather than pull memory from under it.
            return;
        }
        for s in &self.slabs {
            // SAFETY: each slab is a mapping made by `grow`; no stack from it is
            // handed out (outstanding == 0), and `free` is dropped with the pool.
            unsafe { libc::munmap(s.addr as *mut libc::c_void, s.len) };
        }
    }
}

thread_local! {
    /// Guard region `[start, end)` of the green thread running on this OS thread,
    /// `(0, 0)` when none. Read by the SIGSEGV handler, so plain `Cell<(usize, usize)>`
    /// with a const initialiser (no lazy init, no destructor).
    static ACTIVE_GUARD: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// Usable stack size of the running green thread, for the overflow message.
    static ACTIVE_SIZE: Cell<usize> = const { Cell::new(0) };
}

/// Record the guard region of the green thread about to run on this thread.
#[inline]
pub fn set_active(guard: (usize, usize), size: usize) {
    ACTIVE_GUARD.set(guard);
    ACTIVE_SIZE.set(size);
}

static INSTALL: Once = Once::new();
static PREVIOUS: std::sync::OnceLock<libc::sigaction> = std::sync::OnceLock::new();

/// Install (once per process) the SIGSEGV handler that reports green-thread stack
/// overflows.
pub fn install_overflow_handler() {
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; we fill
        // in a handler with the SA_SIGINFO signature and keep the previous action.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_sigsegv as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut act.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGSEGV, &act, &mut old) == 0 {
                let _ = PREVIOUS.set(old);
            }
        }
    });
}

/// Write `bytes` to stderr with the async-signal-safe `write(2)`.
fn raw_stderr(bytes: &[u8]) {
    // SAFETY: write(2) is async-signal-safe; the buffer is valid for its length.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

extern "C" fn on_sigsegv(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (lo, hi) = ACTIVE_GUARD.get();
    if lo != 0 && addr >= lo && addr < hi {
        raw_stderr(b"gvhttpd: green thread stack overflow (hit the guard region of a ");
        let mut digits = [0u8; 20];
        let mut n = ACTIVE_SIZE.get() / 1024;
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        raw_stderr(&digits[i..]);
        raw_stderr(b" KiB stack); raise --green-stack-size. Aborting.\n");
        // SAFETY: restoring the default action is async-signal-safe; returning then
        // re-executes the faulting access, which now terminates the process.
        unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
        return;
    }
    match PREVIOUS.get() {
        Some(prev) if prev.sa_flags & libc::SA_SIGINFO != 0 && prev.sa_sigaction > 1 => {
            // SAFETY: the previous handler was installed with SA_SIGINFO, so it has
            // this exact signature; we pass the kernel's own arguments through.
            unsafe {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(prev.sa_sigaction);
                f(sig, info, ctx);
            }
        }
        Some(prev) if prev.sa_sigaction > 1 => {
            // SAFETY: a handler installed without SA_SIGINFO takes just the signal.
            unsafe {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev.sa_sigaction);
                f(sig);
            }
        }
        _ => {
            // SAFETY: as above; the refault then takes the default action.
            unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_free_stacks_give_their_pages_back() {
        let mut pool = StackPool::new(16 * 1024);
        let n = WARM_STACKS + RELEASE_BATCH;
        let stacks: Vec<PooledStack> = (0..n).map(|_| pool.get().unwrap()).collect();
        let top = |st: &PooledStack| (st.base().get() - 8) as *mut u64;
        for st in &stacks {
            // SAFETY: the top word of a stack handed out by the pool, in a mapped
            // read-write slab; no coroutine runs on these stacks.
            unsafe { top(st).write(0xfeed) };
        }
        let tops: Vec<*mut u64> = stacks.iter().map(top).collect();
        for st in stacks {
            pool.put(st);
        }
        assert_eq!(pool.released_total(), RELEASE_BATCH as u64);
        // SAFETY: the slabs stay mapped while the pool lives; the words are read only.
        let read = |p: *mut u64| unsafe { p.read() };
        // The first returned are the coldest: released, their pages read back as zeros.
        assert!(tops[..RELEASE_BATCH].iter().all(|&p| read(p) == 0));
        // The most recent WARM_STACKS keep their pages.
        assert!(tops[RELEASE_BATCH..].iter().all(|&p| read(p) == 0xfeed));
        // A second burst ends the same way: its cold stacks are released again.
        let again: Vec<PooledStack> = (0..n).map(|_| pool.get().unwrap()).collect();
        for st in again {
            pool.put(st);
        }
        assert_eq!(pool.released_total(), 2 * RELEASE_BATCH as u64);
    }

    #[test]
    fn stacks_are_reused_lifo_and_have_guards() {
        let mut pool = StackPool::new(10_000);
        assert_eq!(pool.stack_size() % page_size(), 0);
        assert!(pool.stack_size() >= 10_000);
        let a = pool.get().unwrap();
        let b = pool.get().unwrap();
        assert!(pool.guard_kind().is_some());
        assert_ne!(a.base(), b.base());
        let (lo, hi) = a.guard();
        assert!(hi - lo >= GUARD_SIZE, "guard of {} bytes", hi - lo);
        assert_eq!(hi - lo, pool.guard_len());
        assert_eq!(a.base().get() - hi, pool.stack_size());
        let a_base = a.base();
        pool.put(a);
        assert_eq!(pool.outstanding(), 1);
        let c = pool.get().unwrap();
        assert_eq!(
            c.base(),
            a_base,
            "most recently returned stack is reused first"
        );
        pool.put(b);
        pool.put(c);
    }

    #[test]
    fn pool_grows_past_one_slab() {
        let mut pool = StackPool::new(4096);
        let stacks: Vec<_> = (0..STACKS_PER_SLAB + 3)
            .map(|_| pool.get().unwrap())
            .collect();
        assert_eq!(pool.outstanding(), STACKS_PER_SLAB + 3);
        for s in stacks {
            pool.put(s);
        }
        assert_eq!(pool.outstanding(), 0);
    }
}
