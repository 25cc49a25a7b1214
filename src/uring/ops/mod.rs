//! Safe op constructors over owned memory: the buffer-lifetime contract of
//! [`super::ring`] discharged once, here, so model code needs no `unsafe`.
//!
//! Every constructor takes ownership of what the kernel reads or writes (a
//! `Vec<u8>`, a path, the `statx` buffer) and parks it in the ring's in-flight table
//! (`super::owned`, keyed by the op's [`Token`]) until **the CQE that ends the op**.
//! [`Ring::reap`] then moves it into that [`Completion`], from which the caller
//! takes it back ([`Completion::take_buf`], [`Completion::take_fd`],
//! [`Completion::stat`]); whatever the caller does not take is dropped with the
//! completion, which is sound because the kernel is done with it. So:
//!
//! - dropping the caller's state (a closed connection) cannot free memory under
//!   the kernel: the table, not the caller, owns it;
//! - a cancelled op keeps its memory until its own CQE (`-ECANCELED`, or its normal
//!   result when it won the race), which hands it back like any other;
//! - an open or accept that succeeds after its owner went away returns an
//!   [`OwnedFd`] in the completion, closed when that is dropped, never leaked.
//!
//! At most one op per token may own memory at a time (a model gives each op of a
//! connection its own kind): a second one is refused with [`Busy`], which returns
//! the memory, and nothing is submitted. The table is owned by the [`Ring`] and
//! dropped only after its `Drop` has drained every op (leaked if that fails).

use std::ffi::CString;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use io_uring::{opcode, squeue, types};

use super::owned::{Held, Lent, Returned, Stat};
use super::ring::{Completion, Ring};
use super::token::Token;

/// An owned op was not submitted: another op with the same token still owns
/// memory. Carries the memory back (the buffer, when there was one).
#[derive(Debug)]
pub struct Busy(pub Option<Vec<u8>>);

impl Completion {
    /// The buffer the op owned (send, recv, read), if this completion ended one.
    pub fn take_buf(&mut self) -> Option<Vec<u8>> {
        match self.returned.take() {
            Some(Returned::Buf(b)) => Some(b),
            other => {
                self.returned = other;
                None
            }
        }
    }

    /// The descriptor a successful open or accept created.
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        match self.returned.take() {
            Some(Returned::Fd(fd)) => Some(fd),
            other => {
                self.returned = other;
                None
            }
        }
    }

    /// The result of a successful statx.
    pub fn stat(&self) -> Option<Stat> {
        match &self.returned {
            Some(Returned::Statx(st)) => Some(Stat::from(&**st)),
            _ => None,
        }
    }
}

/// `len` clamped to what one SQE can carry.
fn sqe_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Ring {
    /// Record `held` for `token` and queue `sqe`, whose pointers point into `held`.
    fn push_owned(&mut self, token: Token, held: Held, sqe: squeue::Entry) -> Result<(), Busy> {
        if let Err(held) = self.owned.insert(token, held) {
            return Err(Busy(match held {
                Held::Buf(b) => Some(b),
                _ => None, // never handed to the kernel: dropping it is fine
            }));
        }
        // Every pointer in `sqe` points into the heap memory of `held` (a Vec's
        // buffer, a `Lent` allocation), which now sits in the table and is neither
        // moved nor freed before the op's final CQE (module docs); the table goes
        // only after Ring's Drop drained every op.
        // SAFETY: so the memory outlives the op, as `Ring::push` requires.
        unsafe { self.push(sqe.user_data(token.raw())) };
        Ok(())
    }

    /// Send `buf[range]` (`MSG_NOSIGNAL`); `buf` comes back with the completion.
    pub fn send(
        &mut self,
        fd: BorrowedFd<'_>,
        buf: Vec<u8>,
        range: Range<usize>,
        token: Token,
    ) -> Result<(), Busy> {
        self.send_more(fd, buf, range, token, false)
    }

    /// [`Self::send`]; with `more`, as `MSG_MORE`: more follows at once, so the
    /// kernel may hold these bytes to send them with the next ones.
    pub fn send_more(
        &mut self,
        fd: BorrowedFd<'_>,
        buf: Vec<u8>,
        range: Range<usize>,
        token: Token,
        more: bool,
    ) -> Result<(), Busy> {
        let end = range.end.min(buf.len());
        let start = range.start.min(end);
        let end = start + super::fault::send_len(end - start);
        let ptr = buf[start..end].as_ptr();
        let more = if more { libc::MSG_MORE } else { 0 };
        let sqe = opcode::Send::new(types::Fd(fd.as_raw_fd()), ptr, sqe_len(end - start))
            .flags(libc::MSG_NOSIGNAL | more)
            .build();
        self.push_owned(token, Held::Buf(buf), sqe)
    }

    /// Receive into `buf[offset..]`; `buf` comes back with the completion (the
    /// result says how many bytes landed at `offset`).
    pub fn recv(
        &mut self,
        fd: BorrowedFd<'_>,
        mut buf: Vec<u8>,
        offset: usize,
        token: Token,
    ) -> Result<(), Busy> {
        let offset = offset.min(buf.len());
        let spare = &mut buf[offset..];
        let (ptr, len) = (spare.as_mut_ptr(), sqe_len(spare.len()));
        let sqe = opcode::Recv::new(types::Fd(fd.as_raw_fd()), ptr, len).build();
        self.push_owned(token, Held::Buf(buf), sqe)
    }

    /// Read `len` bytes (at most `buf.len()`) at file `offset` into the start of
    /// `buf`; `buf` comes back with the completion.
    pub fn read_at(
        &mut self,
        fd: BorrowedFd<'_>,
        mut buf: Vec<u8>,
        len: usize,
        offset: u64,
        token: Token,
    ) -> Result<(), Busy> {
        let len = len.min(buf.len());
        let ptr = buf[..len].as_mut_ptr();
        let sqe = opcode::Read::new(types::Fd(fd.as_raw_fd()), ptr, sqe_len(len))
            .offset(offset)
            .build();
        self.push_owned(token, Held::Buf(buf), sqe)
    }

    /// `openat2(dirfd, path, {flags, resolve})`; a successful completion carries
    /// the new descriptor ([`Completion::take_fd`]).
    pub fn openat2(
        &mut self,
        dirfd: BorrowedFd<'_>,
        path: CString,
        flags: i32,
        resolve: u64,
        token: Token,
    ) -> Result<(), Busy> {
        let path = Lent::new(path);
        let how = Lent::new(types::OpenHow::new().flags(flags as u64).resolve(resolve));
        // SAFETY: `path.ptr()` is a live, initialised CString (Lent INVARIANT) that
        // nothing else references; this only reads its pointer.
        let cpath = unsafe { (*path.ptr()).as_ptr() };
        let sqe = opcode::OpenAt2::new(types::Fd(dirfd.as_raw_fd()), cpath, how.ptr()).build();
        let held = Held::Open {
            _path: path,
            _how: how,
        };
        self.push_owned(token, held, sqe)
    }

    /// `statx(fd, "", AT_EMPTY_PATH, TYPE | SIZE | MTIME | INO)` into a buffer the
    /// ring owns; a successful completion carries the [`Stat`].
    pub fn statx(&mut self, fd: BorrowedFd<'_>, token: Token) -> Result<(), Busy> {
        // SAFETY: `statx` is plain old data; all-zero is a valid value.
        let st = Lent::new(unsafe { std::mem::zeroed::<libc::statx>() });
        let sqe = opcode::Statx::new(
            types::Fd(fd.as_raw_fd()),
            c"".as_ptr(),
            st.ptr().cast::<types::statx>(),
        )
        .flags(libc::AT_EMPTY_PATH)
        .mask(libc::STATX_TYPE | libc::STATX_SIZE | libc::STATX_MTIME | libc::STATX_INO)
        .build();
        self.push_owned(token, Held::Statx(st), sqe)
    }

    /// Accept on `listener` (multishot when `multi`, which needs
    /// `features.multishot_accept`); each successful completion carries the new
    /// connection ([`Completion::take_fd`]), in `O_NONBLOCK` mode when `nonblock`
    /// (io_uring still waits for readiness with it where the ring has
    /// `IORING_FEAT_FAST_POLL`). The listener must stay open until the final
    /// completion (cancel first).
    pub fn accept(
        &mut self,
        listener: BorrowedFd<'_>,
        multi: bool,
        nonblock: bool,
        token: Token,
    ) -> Result<(), Busy> {
        let fd = types::Fd(listener.as_raw_fd());
        let flags = match nonblock {
            true => libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            false => libc::SOCK_CLOEXEC,
        };
        let sqe = if multi {
            opcode::AcceptMulti::new(fd).flags(flags).build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(flags)
                .build()
        };
        // No peer address is requested, so the op references no memory.
        self.push_owned(token, Held::Accept, sqe)
    }

    /// `connect(fd, addr)` (the socket is the caller's; the address is held by
    /// the ring until the op's CQE).
    pub fn connect(
        &mut self,
        fd: BorrowedFd<'_>,
        addr: std::net::SocketAddr,
        token: Token,
    ) -> Result<(), Busy> {
        let addr = Lent::new(socket2::SockAddr::from(addr));
        // SAFETY: `addr.ptr()` is a live, initialised SockAddr (Lent INVARIANT)
        // that nothing else references; this only reads its pointer and length.
        let (ptr, len) = unsafe { ((*addr.ptr()).as_ptr(), (*addr.ptr()).len()) };
        let sqe = opcode::Connect::new(types::Fd(fd.as_raw_fd()), ptr.cast(), len).build();
        self.push_owned(token, Held::Connect { _addr: addr }, sqe)
    }

    /// `shutdown(fd, how)` (`libc::SHUT_WR` ...). References no memory.
    pub fn shutdown(&mut self, fd: BorrowedFd<'_>, how: i32, token: Token) {
        let sqe = opcode::Shutdown::new(types::Fd(fd.as_raw_fd()), how)
            .build()
            .user_data(token.raw());
        // SAFETY: a shutdown references no memory.
        unsafe { self.push(sqe) }
    }

    /// A one-shot poll for `mask` (`libc::POLLIN` ...; `0` still reports errors
    /// and hang-ups); the result is the ready mask. References no memory.
    pub fn poll(&mut self, fd: BorrowedFd<'_>, mask: u32, token: Token) {
        let sqe = opcode::PollAdd::new(types::Fd(fd.as_raw_fd()), mask)
            .build()
            .user_data(token.raw());
        // SAFETY: a poll references no memory.
        unsafe { self.push(sqe) }
    }

    /// Ops that own memory (or an accept) and have not completed yet.
    pub fn owned_in_flight(&self) -> usize {
        self.owned.len()
    }
}

#[cfg(test)]
mod tests;
