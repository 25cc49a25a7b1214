//! `/static`: io_uring file ops. `OPENAT2` beneath the static root (with the core's
//! `OPEN_FLAGS` / `OPEN_RESOLVE`), `STATX` on the new descriptor, then `READ` into
//! `out` in bounded chunks, each sent before the next is read. The file is closed
//! with `IORING_OP_CLOSE`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use io_uring::{opcode, types};

use super::conn::{bit, Conn, Flow, Then, FILE_CHUNK};
use super::worker::{Ctx, K_OPEN, K_READ, K_STATX};
use crate::app::{FileError, OPEN_FLAGS, OPEN_RESOLVE};
use crate::uring::{OpKind, Ring, SlotKey, Token};

/// What the kernel reads or writes for one static file. Boxed, so its address is
/// stable while the `Conn` holding it moves inside the slot table.
pub(super) struct FileOp {
    /// INVARIANT: `path`, `how` and `statx` are lent to the kernel while `K_OPEN` /
    /// `K_STATX` is in the connection's `ops`; dropped only after.
    path: CString,
    how: types::OpenHow,
    statx: libc::statx,
    fd: Option<OwnedFd>,
    /// File bytes still to send, and the offset of the next read.
    left: u64,
    offset: u64,
}

impl FileOp {
    /// Close the file (if open) through the ring.
    pub fn close(&mut self, ring: &mut Ring) {
        if let Some(fd) = self.fd.take() {
            ring.push_close(fd, Token::internal(OpKind::CLOSE));
        }
    }
}

impl Conn {
    pub(super) fn start_file(&mut self, key: SlotKey, ring: &mut Ring, cx: &Ctx<'_>) -> Flow {
        let Some(root) = cx.app.static_root() else {
            return self.file_result(Err(FileError::NotFound), key, ring, cx);
        };
        let Ok(path) = CString::new(self.http.file_path()) else {
            return self.file_result(Err(FileError::NotFound), key, ring, cx);
        };
        let op = Box::new(FileOp {
            path,
            how: types::OpenHow::new()
                .flags(OPEN_FLAGS as u64)
                .resolve(OPEN_RESOLVE),
            // SAFETY: `statx` is plain old data; all-zero is valid.
            statx: unsafe { std::mem::zeroed() },
            fd: None,
            left: 0,
            offset: 0,
        });
        let sqe = opcode::OpenAt2::new(types::Fd(root.as_raw_fd()), op.path.as_ptr(), &op.how)
            .build()
            .user_data(key.token(K_OPEN).raw());
        self.ops |= bit(K_OPEN);
        // `path` and `how` live in the boxed FileOp owned by this Conn until the open's
        // CQE (FileOp INVARIANT, `ops` INVARIANT); the root descriptor is owned by the
        // App, which outlives every worker.
        // SAFETY: so everything the open points to outlives it, as `Ring::push` requires.
        unsafe { ring.push(sqe) };
        self.file = Some(op);
        Flow::Continue
    }

    pub(super) fn on_open(
        &mut self,
        res: i32,
        key: SlotKey,
        ring: &mut Ring,
        cx: &Ctx<'_>,
    ) -> Flow {
        if res < 0 {
            return self.file_result(Err(FileError::from_errno(-res)), key, ring, cx);
        }
        let Some(op) = self.file.as_mut() else {
            return Flow::Close;
        };
        // SAFETY: a successful open's result is a new descriptor that we now own.
        op.fd = Some(unsafe { OwnedFd::from_raw_fd(res) });
        let sqe = opcode::Statx::new(
            types::Fd(res),
            c"".as_ptr(),
            (&mut op.statx as *mut libc::statx).cast::<types::statx>(),
        )
        .flags(libc::AT_EMPTY_PATH)
        .mask(libc::STATX_TYPE | libc::STATX_SIZE)
        .build()
        .user_data(key.token(K_STATX).raw());
        self.ops |= bit(K_STATX);
        // SAFETY: `statx` lives in the boxed FileOp owned by this Conn until the
        // statx's CQE (FileOp INVARIANT); the path is a static empty C string.
        unsafe { ring.push(sqe) };
        Flow::Continue
    }

    pub(super) fn on_statx(
        &mut self,
        res: i32,
        key: SlotKey,
        ring: &mut Ring,
        cx: &Ctx<'_>,
    ) -> Flow {
        let Some(op) = self.file.as_ref() else {
            return Flow::Close;
        };
        let r = if res < 0 {
            Err(FileError::from_errno(-res))
        } else if u32::from(op.statx.stx_mode) & libc::S_IFMT != libc::S_IFREG {
            Err(FileError::NotFound)
        } else {
            Ok(op.statx.stx_size)
        };
        self.file_result(r, key, ring, cx)
    }

    /// Report the open to the core, then send its head and the body bytes.
    fn file_result(
        &mut self,
        r: Result<u64, FileError>,
        key: SlotKey,
        ring: &mut Ring,
        cx: &Ctx<'_>,
    ) -> Flow {
        let left = self.http.file_opened(r, cx.stats, &mut self.out);
        match self.file.as_mut() {
            Some(op) => op.left = if r.is_ok() { left } else { 0 },
            None => debug_assert_eq!(left, 0),
        }
        self.sent = 0;
        if self.out.is_empty() {
            return self.next_file_chunk(key, ring, cx);
        }
        self.send(Then::FileBody, key, ring, cx)
    }

    /// Read the next chunk into `out`, or finish the file and process again.
    pub(super) fn next_file_chunk(&mut self, key: SlotKey, ring: &mut Ring, cx: &Ctx<'_>) -> Flow {
        let Some(op) = self
            .file
            .as_mut()
            .filter(|op| op.left > 0 && op.fd.is_some())
        else {
            if let Some(mut op) = self.file.take() {
                op.close(ring);
            }
            self.out.clear();
            return self.drive(key, ring, cx);
        };
        let want = FILE_CHUNK.min(usize::try_from(op.left).unwrap_or(usize::MAX));
        self.out.clear();
        self.out.reserve(want);
        let fd = op.fd.as_ref().map_or(-1, |f| f.as_raw_fd());
        let sqe = opcode::Read::new(types::Fd(fd), self.out.as_mut_ptr(), want as u32)
            .offset(op.offset)
            .build()
            .user_data(key.token(K_READ).raw());
        self.ops |= bit(K_READ);
        // SAFETY: `out` has capacity for `want` bytes, belongs to this Conn, and is
        // neither read nor resized until the read's CQE (`out` INVARIANT).
        unsafe { ring.push(sqe) };
        Flow::Continue
    }

    pub(super) fn on_file_read(
        &mut self,
        res: i32,
        key: SlotKey,
        ring: &mut Ring,
        cx: &Ctx<'_>,
    ) -> Flow {
        let Some(op) = self.file.as_mut() else {
            return Flow::Close;
        };
        if res <= 0 {
            // Error, or the file shrank: the promised length cannot be delivered.
            return Flow::Close;
        }
        let n = (res as usize).min(self.out.capacity());
        // SAFETY: the kernel initialised `n` bytes at the start of `out`'s buffer,
        // which has at least that capacity.
        unsafe { self.out.set_len(n) };
        op.left = op.left.saturating_sub(n as u64);
        op.offset += n as u64;
        self.sent = 0;
        self.send(Then::FileBody, key, ring, cx)
    }
}
