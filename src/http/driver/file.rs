//! Static files: the driver's side of `Open`, `ReadFile` and `CloseFile` (the
//! candidates opened in turn, the bytes the response owes from the open file,
//! bounded chunks at offsets, the close before the next request).

use super::{Action, After, Driver, Env, Source, State, FILE_CHUNK};
use crate::http::conn::FileNext;
use crate::http::handler::{FileError, FileMeta, Handler};
use crate::http::pool;

/// The static file being streamed.
#[derive(Debug)]
pub(super) struct FileStream {
    /// The model holds an open file (close it before answering the next request).
    pub(super) open: bool,
    pub(super) left: u64,
    pub(super) offset: u64,
    /// INVARIANT: while `State::ReadFile` or a `Send` from the file is in progress,
    /// `buf[..len]` is the chunk (possibly lent to the model).
    pub(super) buf: Vec<u8>,
    pub(super) len: usize,
}

impl Drop for FileStream {
    fn drop(&mut self) {
        // (Empty while lent to an op: that buffer goes with its completion.)
        pool::give_chunk(std::mem::take(&mut self.buf));
    }
}

impl Driver {
    /// The result of `Action::Open`: the metadata of the regular file opened, or
    /// why not. `Action::Open` may come back: the candidate was a precompressed
    /// variant that is not there, and [`Driver::file_path`] now names the next.
    pub fn file_opened<H: Handler>(
        &mut self,
        env: &Env<'_, H>,
        result: Result<FileMeta, FileError>,
    ) -> Action {
        if self.state != State::Open {
            return self.close();
        }
        self.ensure_out();
        self.conn.set_now(env.now);
        let (offset, left) = match self.conn.file_opened(result, env.stats, &mut self.out) {
            FileNext::Open => {
                let a = self.action();
                return self.observe(env, a);
            }
            FileNext::Body { offset, len } => (offset, len),
        };
        if result.is_ok() {
            // A zero-copy send needs no buffer at all.
            let chunk = match self.zero_copy {
                true => 0,
                false => usize::try_from(left).map_or(FILE_CHUNK, |l| l.min(FILE_CHUNK)),
            };
            // A whole chunk comes from the thread's pool (and goes back when the
            // stream is dropped): no allocation and no zeroing per request.
            let buf = match chunk {
                FILE_CHUNK => pool::take_chunk(),
                n => vec![0; n],
            };
            self.aux.set_file(FileStream {
                open: true,
                left,
                offset,
                buf,
                len: 0,
            });
        }
        let a = self.flush(env, After::FileChunk);
        self.observe(env, a)
    }

    /// `n` bytes were read into [`Driver::file_buf`]; 0 means the file shrank under
    /// us, so the promised length cannot be delivered: the connection is cut.
    pub fn file_read<H: Handler>(&mut self, env: &Env<'_, H>, n: usize) -> Action {
        let (State::ReadFile { .. }, Some(f)) = (self.state, self.aux.file_mut()) else {
            return self.close();
        };
        if n == 0 || n > f.len {
            return self.close();
        }
        f.len = n;
        f.left -= n as u64;
        f.offset += n as u64;
        self.sent = 0;
        let deadline = self.send_deadline(env.now);
        let a = self.set(State::Send {
            deadline,
            from: Source::File,
            after: After::FileChunk,
        });
        self.observe(env, a)
    }

    /// `n` bytes of the file went straight to the socket (`Action::SendFile`); 0
    /// means the file ended before the bytes the response promised, so the
    /// connection is cut (a reset: the client must not take it as complete).
    pub fn file_sent<H: Handler>(&mut self, env: &Env<'_, H>, n: usize) -> Action {
        let (State::SendFile { .. }, Some(f)) = (self.state, self.aux.file_mut()) else {
            return self.close();
        };
        if n == 0 || n as u64 > f.left {
            return self.close();
        }
        f.left -= n as u64;
        f.offset += n as u64;
        env.stats.bytes_out.add(n as u64);
        let a = self.next_chunk(env);
        self.observe(env, a)
    }

    /// For `Action::SendFile`: the file offset to send from and the bytes still
    /// owed from there.
    pub fn file_span(&self) -> (u64, usize) {
        self.aux.file().map_or((0, 0), |f| {
            (f.offset, usize::try_from(f.left).unwrap_or(usize::MAX))
        })
    }

    /// The file of `Action::CloseFile` is closed.
    pub fn file_closed<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        self.aux.clear();
        if self.state != State::CloseFile {
            return self.close();
        }
        let a = self.process(env);
        self.observe(env, a)
    }

    pub(super) fn next_chunk<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        if self.aux.file().is_none_or(|f| f.left == 0) {
            self.response_deadline = None; // the file is sent whole
        }
        if self.zero_copy && self.aux.file().is_some_and(|f| f.left > 0) {
            // The first bytes, or progress: the write deadline starts again (the
            // response's does not).
            let deadline = self.send_deadline(env.now);
            return self.set(State::SendFile { deadline });
        }
        match self.aux.file_mut() {
            Some(f) if f.left > 0 => {
                f.len = usize::try_from(f.left).map_or(f.buf.len(), |l| l.min(f.buf.len()));
                let (offset, len) = (f.offset, f.len);
                self.set(State::ReadFile { offset, len })
            }
            Some(f) if f.open => {
                f.open = false;
                self.set(State::CloseFile)
            }
            _ => {
                self.aux.clear();
                self.process(env)
            }
        }
    }
}
