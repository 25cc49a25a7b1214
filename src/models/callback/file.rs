//! Static files: the open beneath the root (inline from the lookup cache, else an
//! `OPENAT2` op, then an inline `fstat`), reads into the driver's lent chunk
//! buffer, and zero-copy sends (`sendfile(2)` on the non-blocking socket, a
//! `POLL_ADD` for writability when its buffer is full); their results go back to
//! the driver.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use super::conn::{Conn, Cx};
use super::events::errno;
use super::op::Op;
use crate::files::{self, OPEN_FLAGS, OPEN_RESOLVE};
use crate::http::{Action, Driver, FileError};
use crate::uring::{Completion, SlotKey};

impl Conn {
    /// Open beneath the static root: at once when the path is in the kernel's
    /// lookup cache (`RESOLVE_CACHED`: no wait for the disk, no loop turn), else
    /// an `OPENAT2` op, whose completion stats the file.
    pub(super) fn open(&mut self, key: SlotKey, cx: &mut Cx<'_>) -> Option<Action> {
        let handler = cx.env.handler;
        let root = handler.static_root();
        if let Some(opened) = files::open_cached(root, self.driver.file_path()) {
            let r = opened.map(|(f, meta)| {
                self.file = Some(OwnedFd::from(f));
                meta
            });
            return Some(self.driver.file_opened(&cx.env, r));
        }
        let path = CString::new(self.driver.file_path()).ok();
        let (Some(root), Some(path)) = (root, path) else {
            return Some(self.driver.file_opened(&cx.env, Err(FileError::NotFound)));
        };
        let token = Op::Open.token(key);
        match cx
            .ring
            .openat2(root.fd(), path, OPEN_FLAGS, OPEN_RESOLVE, token)
        {
            Ok(()) => {
                self.ops.add(Op::Open);
                None
            }
            Err(_) => Some(self.driver.file_opened(&cx.env, Err(FileError::Internal))),
        }
    }

    pub(super) fn read(
        &mut self,
        key: SlotKey,
        offset: u64,
        len: usize,
        cx: &mut Cx<'_>,
    ) -> Option<Action> {
        let Some(file) = self.file.as_ref() else {
            return Some(self.driver.failed());
        };
        let buf = self.driver.lend_file_buf();
        let r = cx
            .ring
            .read_at(file.as_fd(), buf, len, offset, Op::Read.token(key));
        self.lent(Op::Read, r, Driver::restore_file_buf)
    }

    /// `OPENAT2` done: stat the new descriptor (which the completion carries) on
    /// this thread (see [`files::finish_open`]).
    pub(super) fn open_done(&mut self, c: &mut Completion, cx: &mut Cx<'_>) -> Option<Action> {
        let r = match c.take_fd() {
            None => Err(FileError::from_errno(errno(c.result))),
            Some(fd) => files::finish_open(fd).map(|(f, meta)| {
                self.file = Some(OwnedFd::from(f));
                meta
            }),
        };
        Some(self.driver.file_opened(&cx.env, r))
    }

    /// `Action::SendFile`: one `sendfile(2)` of the span the driver names, from
    /// the open file to the socket (`O_NONBLOCK`: accepted so when the worker
    /// sends files this way). The kernel moves the file's page-cache pages into
    /// the socket, no copy through this process. A full socket buffer arms a
    /// `POLL_ADD` for writability, whose completion tries again; the deadline is
    /// the worker's (nothing is lent, so it just tells the driver, and the close
    /// that follows cancels the poll).
    pub(super) fn send_file(&mut self, key: SlotKey, cx: &mut Cx<'_>) -> Option<Action> {
        if self.ops.has(Op::Writable) {
            return None; // its completion tries again
        }
        let Some(file) = self.file.as_ref() else {
            return Some(self.driver.file_sent(&cx.env, 0));
        };
        let (offset, len) = self.driver.file_span();
        let mut at = offset;
        match rustix::fs::sendfile(&self.fd, file, Some(&mut at), len) {
            // 0: the file ended before the promised length (the driver cuts).
            Ok(n) => Some(self.driver.file_sent(&cx.env, n)),
            Err(e) if e == rustix::io::Errno::AGAIN => {
                self.ops.add(Op::Writable);
                cx.ring.poll(
                    self.fd.as_fd(),
                    libc::POLLOUT as u32,
                    Op::Writable.token(key),
                );
                None
            }
            Err(e) if e == rustix::io::Errno::INTR => Some(self.driver.action()),
            Err(_) => Some(self.driver.failed()), // EPIPE, ECONNRESET, EIO
        }
    }

    /// The socket became writable (or failed: the next `sendfile` says how), or
    /// the poll was cancelled from elsewhere: send again if the driver still wants.
    pub(super) fn writable(&mut self, key: SlotKey, cx: &mut Cx<'_>) -> Option<Action> {
        match self.driver.action() {
            Action::SendFile { .. } => self.send_file(key, cx),
            _ => None,
        }
    }
}
