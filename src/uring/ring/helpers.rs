//! The ring's safe submissions: ops whose memory, if any, the ring owns itself
//! (see the buffer-lifetime contract in [`super`]).

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use io_uring::{opcode, types};

use super::{Pending, Ring};
use crate::uring::token::{OpKind, Token};

impl Ring {
    /// A no-op whose CQE carries `token` (result 0).
    pub fn push_nop(&mut self, token: Token) {
        let sqe = opcode::Nop::new().build().user_data(token.raw());
        // SAFETY: a NOP references no memory.
        unsafe { self.push(sqe) }
    }

    /// A relative timeout that completes with `-ETIME` after `after` (or
    /// `-ECANCELED` when cancelled). The ring owns the `timespec`.
    pub fn push_timeout(&mut self, after: Duration, token: Token) {
        self.push_timeout_count(after, 0, token);
    }

    /// A timeout that also completes once `count` other completions were posted
    /// (`0`: only on time).
    pub(super) fn push_timeout_count(&mut self, after: Duration, count: u32, token: Token) {
        let ts = Box::new(types::Timespec::from(after));
        let sqe = opcode::Timeout::new(&*ts as *const types::Timespec)
            .count(count)
            .build()
            .user_data(token.raw());
        // The Box's heap address is stable while the Box moves into `backlog` or
        // `ts_in_sq`, where it stays until the kernel has consumed the SQE (the kernel
        // copies the timespec while preparing the op, io_uring/timeout.c).
        self.push_pending(Pending {
            sqe,
            ts: Some(ts),
            close: false,
        });
    }

    /// Ask the kernel to cancel every op carrying `target`; the cancel's own CQE
    /// carries `token` (typically `Token::internal(OpKind::CANCEL)`). The cancelled
    /// ops still post their CQEs, which alone end their buffers' loans.
    pub fn push_cancel(&mut self, target: Token, token: Token) {
        let sqe = if self.features.cancel_flags {
            opcode::AsyncCancel2::new(types::CancelBuilder::user_data(target.raw()).all()).build()
        } else {
            opcode::AsyncCancel::new(target.raw()).build()
        };
        // SAFETY: a cancel references no memory (the target is named by user_data).
        unsafe { self.push(sqe.user_data(token.raw())) }
    }

    /// Close `fd` through `IORING_OP_CLOSE`. Ownership moves to the kernel.
    pub fn push_close(&mut self, fd: OwnedFd, token: Token) {
        let raw = fd.into_raw_fd();
        let sqe = opcode::Close::new(types::Fd(raw))
            .build()
            .user_data(token.raw());
        // A close references no memory.
        self.push_pending(Pending {
            sqe,
            ts: None,
            close: true,
        });
    }

    /// A multishot accept on `listener` (needs `features.multishot_accept`): each
    /// connection posts a CQE with the new fd and `F_MORE` while it stays armed.
    /// The listener must stay open until the final CQE (cancel it first).
    pub fn push_accept_multi(&mut self, listener: RawFd, token: Token) {
        let sqe = opcode::AcceptMulti::new(types::Fd(listener))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(token.raw());
        // SAFETY: no peer address is requested, so no memory is referenced.
        unsafe { self.push(sqe) }
    }

    /// A multishot recv into the registered buffer ring (needs a
    /// [`Ring::register_buf_ring`] and `features.multishot_recv`).
    pub fn push_recv_multi(&mut self, fd: RawFd, token: Token) -> io::Result<()> {
        let bgid = match &self.bufs {
            Some(b) => b.bgid(),
            None => return Err(io::Error::from(io::ErrorKind::Unsupported)),
        };
        let sqe = opcode::RecvMulti::new(types::Fd(fd), bgid)
            .build()
            .user_data(token.raw());
        // SAFETY: the kernel writes only into provided buffers, which the ring owns
        // and unregisters only after draining every op (Drop).
        unsafe { self.push(sqe) };
        Ok(())
    }

    /// Read the wake eventfd into ring-owned memory; completes with token
    /// `Token::internal(OpKind::WAKE)` after [`RingWaker::wake`]. Re-arm after each
    /// WAKE completion. Does nothing while armed.
    pub fn arm_wake(&mut self) {
        if self.wake_armed {
            return;
        }
        self.wake_armed = true;
        let sqe = opcode::Read::new(
            types::Fd(self.waker.0.as_raw_fd()),
            self.wake_buf.as_ptr().cast::<u8>(),
            8,
        )
        .build()
        .user_data(Token::internal(OpKind::WAKE).raw());
        // SAFETY: `wake_buf` is owned by the ring and freed only in Drop after every
        // op has been reaped; nothing else reads or writes it.
        unsafe { self.push(sqe) }
    }
}
