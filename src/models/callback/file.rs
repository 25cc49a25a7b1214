//! Static files as io_uring ops: `OPENAT2` beneath the root, `STATX`, and reads
//! into the driver's lent chunk buffer; their completions go back to the driver.

use std::ffi::CString;
use std::os::fd::AsFd;

use super::conn::{Conn, Cx};
use super::events::errno;
use super::op::Op;
use crate::files::{self, OPEN_FLAGS, OPEN_RESOLVE};
use crate::http::{Action, Driver, FileError, FileMeta};
use crate::uring::{Completion, SlotKey, Stat};

impl Conn {
    /// `OPENAT2` beneath the static root; `STATX` follows on its completion.
    pub(super) fn open(&mut self, key: SlotKey, cx: &mut Cx<'_>) -> Option<Action> {
        let handler = cx.env.handler;
        let root = handler.static_root();
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
    /// `OPENAT2` done: stat the new descriptor (which the completion carries).
    pub(super) fn open_done(
        &mut self,
        key: SlotKey,
        c: &mut Completion,
        cx: &mut Cx<'_>,
    ) -> Option<Action> {
        let Some(fd) = c.take_fd() else {
            let e = FileError::from_errno(errno(c.result));
            return Some(self.driver.file_opened(&cx.env, Err(e)));
        };
        match cx.ring.statx(fd.as_fd(), Op::Stat.token(key)) {
            Ok(()) => {
                self.ops.add(Op::Stat);
                self.file = Some(fd);
                None
            }
            Err(_) => Some(self.driver.file_opened(&cx.env, Err(FileError::Internal))),
        }
    }

    pub(super) fn stat_done(
        &mut self,
        res: i32,
        st: Option<Stat>,
        cx: &mut Cx<'_>,
    ) -> Option<Action> {
        let r = match (st, &self.file) {
            (Some(st), Some(f)) => {
                let meta = FileMeta {
                    size: st.size,
                    mtime_sec: st.mtime_sec,
                    mtime_nsec: st.mtime_nsec,
                    ino: st.ino,
                };
                files::check_stat(st.mode, meta)
                    .and_then(|meta| files::clear_nonblock(f.as_fd()).map(|()| meta))
            }
            (Some(_), None) => Err(FileError::Internal),
            (None, _) => Err(FileError::from_errno(errno(res))),
        };
        if r.is_err() {
            self.file = None; // not served: close it now
        }
        Some(self.driver.file_opened(&cx.env, r))
    }
}
