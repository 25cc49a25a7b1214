//! Fault injection for tests: `GVHTTPD_URING_FAULT`, a comma-separated list of
//! faults (read once per process), each making the io_uring layer behave as the
//! kernel may, so that every model's handling of it runs on demand:
//!
//! - `setup-enomem`: every ring [`super::probe::build_ring`] sets up fails with
//!   ENOMEM, as `io_uring_setup` does when the memlock limit or the kernel's memory
//!   runs out; the start-up probe ([`super::check_available`]) is spared, so this
//!   is a worker's ring failing after the server decided io_uring works. Expected:
//!   exit status 2 and the one-line cause and fix, no hang, no panic.
//! - `short-send`: every send op asks the kernel for at most [`SHORT_SEND`] bytes,
//!   a short send as a full socket buffer gives, so the send-the-rest path runs on
//!   every response. Expected: the same bytes on the wire.
//! - `tiny-bufring`: a provided-buffer ring gets [`TINY_BUF_RING`] buffers, so a
//!   few connections receiving at once run it dry and their multishot recvs end
//!   with ENOBUFS. Expected: the recvs are re-armed once buffers come back
//!   (`/stats` `enobufs` counts them), every request is answered.
//! - `eintr`: every other `io_uring_enter` of [`super::Ring::submit_and_wait`]
//!   fails with EINTR before reaching the kernel, as a signal makes it. Expected:
//!   the caller reaps and comes back; nothing is lost or doubled.
//! - `ecanceled` / `eagain`: every other socket recv and send op a ring is given
//!   ends with `-ECANCELED` / `-EAGAIN` without running: the ring submits a NOP
//!   under the op's `user_data` instead and gives its completion that result and
//!   no flags (no data moved, no provided buffer taken, a multishot recv ended),
//!   as the kernel completes an op cancelled from elsewhere, or a socket op it did
//!   not poll-arm. Expected: the op is issued again; the same bytes on the wire.
//! - `no-fast-poll`: the start-up probe of zero-copy file sends
//!   ([`super::probe::zero_copy_sends`]) finds no `IORING_FEAT_FAST_POLL`, as on a
//!   kernel before 5.7. Expected: the io_uring models read and send files, the
//!   start-up line and `/stats` say so, and files are served intact.
//!
//! Unset, each check is one load of a cached flag.

use std::sync::OnceLock;

use io_uring::{opcode, squeue};

/// Bytes a send asks for under `short-send`.
pub const SHORT_SEND: usize = 7;

/// Buffers a provided-buffer ring gets under `tiny-bufring`.
pub const TINY_BUF_RING: u16 = 2;

/// The buffers a provided-buffer ring asked for `entries` gets.
pub fn buf_ring_entries(entries: u16) -> u16 {
    if injected("tiny-bufring") {
        entries.min(TINY_BUF_RING)
    } else {
        entries
    }
}

/// Under `eintr`: should this `io_uring_enter` fail with EINTR? Every other one,
/// per thread.
#[inline]
pub fn interrupt_enter() -> bool {
    static EINTR: OnceLock<bool> = OnceLock::new();
    if !*EINTR.get_or_init(|| injected("eintr")) {
        return false;
    }
    thread_local! {
        static TURN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    TURN.with(|t| {
        t.set(!t.get());
        t.get()
    })
}

/// Is `fault` asked for?
pub fn injected(fault: &str) -> bool {
    static FAULTS: OnceLock<Vec<String>> = OnceLock::new();
    FAULTS
        .get_or_init(|| {
            std::env::var("GVHTTPD_URING_FAULT")
                .map(|v| v.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        })
        .iter()
        .any(|f| f == fault)
}

/// The length a send of `len` bytes asks the kernel for.
#[inline]
pub fn send_len(len: usize) -> usize {
    static SHORT: OnceLock<bool> = OnceLock::new();
    if *SHORT.get_or_init(|| injected("short-send")) {
        len.min(SHORT_SEND)
    } else {
        len
    }
}

/// Under `ecanceled` / `eagain`: the socket ops a ring fakes (one per ring).
#[derive(Debug)]
pub struct FakeOps {
    errno: i32,
    turn: bool,
    /// `user_data` of the NOPs standing in for an op, whose CQE gets `-errno`.
    faked: Vec<u64>,
}

impl FakeOps {
    /// The fake a new ring gets: `None` unless `ecanceled` or `eagain` is asked for.
    pub fn for_ring() -> Option<FakeOps> {
        let errno = if injected("ecanceled") {
            libc::ECANCELED
        } else if injected("eagain") {
            libc::EAGAIN
        } else {
            return None;
        };
        Some(FakeOps {
            errno,
            turn: false,
            faked: Vec::new(),
        })
    }

    /// The SQE to submit for `sqe`: every other socket recv or send becomes a NOP
    /// with its `user_data` (the op itself never reaches the kernel).
    pub fn swap(&mut self, sqe: squeue::Entry) -> squeue::Entry {
        let socket_op = matches!(
            sqe.get_opcode() as u8,
            opcode::Recv::CODE | opcode::Send::CODE | opcode::RecvMsg::CODE | opcode::SendMsg::CODE
        );
        if !socket_op {
            return sqe;
        }
        self.turn = !self.turn;
        if !self.turn {
            return sqe;
        }
        let user_data = sqe.get_user_data();
        self.faked.push(user_data);
        opcode::Nop::new().build().user_data(user_data)
    }

    /// Give the completion of a faked op its result: `(result, flags)` unchanged
    /// for every other completion.
    pub fn complete(&mut self, user_data: u64, result: i32, flags: u32) -> (i32, u32) {
        match self.faked.iter().position(|&u| u == user_data) {
            Some(i) => {
                self.faked.swap_remove(i);
                (-self.errno, 0)
            }
            None => (result, flags),
        }
    }
}
