//! The deferred replies: what the engine appends once the model reports that a
//! `/sleep` ended, a static file opened, or a slice of CPU-bound work was done.

use std::time::Duration;

use super::super::date::DATE_LEN;
use super::super::handler::{FileError, FileMeta, FileReply, Handler, Response, Slice};
use super::super::representation::{self, ETag, Outcome};
use super::super::response::{self, HeadSpec, Persist};
use super::access::log_response;
use super::{Conn, Deferred, FileNext, State};
use crate::stats::WorkerStats;

/// Append `resp` (its head, and its body unless HEAD or a status without one);
/// returns the body bytes written.
pub(super) fn write_now(
    out: &mut Vec<u8>,
    date: &[u8; DATE_LEN],
    resp: &Response<'_>,
    persist: Persist,
    head_only: bool,
) -> u64 {
    let no_length = resp.status < 200 || resp.status == 204;
    let spec = HeadSpec {
        date,
        status: resp.status,
        content_type: resp.content_type,
        content_length: (!no_length).then_some(resp.body.len() as u64),
        persist,
        allow: resp.allow,
    };
    response::write_head(out, &spec);
    if head_only || no_length {
        return 0;
    }
    out.extend_from_slice(&resp.body);
    resp.body.len() as u64
}

impl Conn {
    /// After `Step::Sleep`: append the deferred response.
    pub fn sleep_done(&mut self, stats: &WorkerStats, out: &mut Vec<u8>) {
        if let State::Sleep { ms, d } = self.state {
            let d = self.late_persist(d);
            let mut num = itoa::Buffer::new();
            let ms = num.format(ms).as_bytes();
            let len = b"slept ".len() + ms.len() + b"ms".len();
            self.write_ok(stats, out, d, b"text/plain; charset=utf-8", len as u64);
            if !d.head_only {
                out.extend_from_slice(b"slept ");
                out.extend_from_slice(ms);
                out.extend_from_slice(b"ms");
            }
            let sent = if d.head_only { 0 } else { len as u64 };
            log_response(&mut self.log, stats, None, 200, sent);
            self.finish(d);
        }
    }

    /// After `Step::File`: the candidate [`Conn::file_path`] was opened (its
    /// metadata, if a regular file) or not. A precompressed variant that is not
    /// there moves on to the next candidate ([`FileNext::Open`]); otherwise this
    /// appends the response head (or a complete error response) and says which
    /// bytes of the file the model must send after `out` (none for HEAD, 304, 416
    /// and errors).
    pub fn file_opened(
        &mut self,
        result: Result<FileMeta, FileError>,
        stats: &WorkerStats,
        out: &mut Vec<u8>,
    ) -> FileNext {
        let none = FileNext::Body { offset: 0, len: 0 };
        let State::File { d } = self.state else {
            return none;
        };
        if result == Err(FileError::NotFound) {
            if let Some(f) = self.file.as_mut() {
                if f.next_candidate() {
                    return FileNext::Open;
                }
            }
        }
        let d = self.late_persist(d);
        let next = match (result, self.file.take()) {
            (Ok(meta), Some(f)) => self.write_file(&f, meta, d, stats, out),
            (Ok(_), None) => self.write_file_error(FileError::Internal, d, stats, out),
            (Err(e), _) => self.write_file_error(e, d, stats, out),
        };
        self.finish(d);
        next
    }

    /// The head of a file response: 200, 206, 304, 412 or 416 by the request's
    /// conditions and the file's metadata ([`Conditions::evaluate`]).
    ///
    /// [`Conditions::evaluate`]: crate::http::representation::Conditions::evaluate
    fn write_file(
        &mut self,
        f: &FileReply,
        meta: FileMeta,
        d: Deferred,
        stats: &WorkerStats,
        out: &mut Vec<u8>,
    ) -> FileNext {
        let etag = ETag::of(&meta, f.coding());
        let outcome = f
            .conditions()
            .map_or(Outcome::Whole, |c| c.evaluate(&meta, &etag));
        const UNSATISFIABLE: &[u8] = b"range not satisfiable\n";
        const FAILED: &[u8] = b"precondition failed\n";
        let (status, content_type, length, offset) = match outcome {
            Outcome::Whole => (200, f.content_type(), Some(meta.size), 0),
            Outcome::Partial { start, len } => (206, f.content_type(), Some(len), start),
            Outcome::NotModified => (304, f.content_type(), None, 0),
            Outcome::Unsatisfiable => (
                416,
                &b"text/plain; charset=utf-8"[..],
                Some(UNSATISFIABLE.len() as u64),
                0,
            ),
            Outcome::PreconditionFailed => (
                412,
                &b"text/plain; charset=utf-8"[..],
                Some(FAILED.len() as u64),
                0,
            ),
        };
        let date = self.date();
        let spec = HeadSpec {
            date: &date,
            status,
            // A 304 describes the client's copy: no Content-Type nor length.
            content_type: (status != 304).then_some(content_type),
            content_length: length,
            persist: d.persist,
            allow: None,
        };
        response::write_head_with(out, &spec, |out| {
            representation::write_fields(out, outcome, &meta, &etag, f.coding());
        });
        stats.response(status);
        let mut len = if d.head_only { 0 } else { length.unwrap_or(0) };
        if let 412 | 416 = status {
            if len > 0 {
                out.extend_from_slice(if status == 412 { FAILED } else { UNSATISFIABLE });
            }
            log_response(&mut self.log, stats, None, status, len);
            len = 0; // the body is in `out`, not from the file
        } else {
            log_response(&mut self.log, stats, None, status, len);
        }
        FileNext::Body { offset, len }
    }

    fn write_file_error(
        &mut self,
        e: FileError,
        d: Deferred,
        stats: &WorkerStats,
        out: &mut Vec<u8>,
    ) -> FileNext {
        let (status, msg): (u16, &[u8]) = match e {
            FileError::NotFound => (404, b"no such file\n"),
            FileError::Internal => (500, b"cannot read the file\n"),
        };
        let date = self.date();
        let spec = HeadSpec {
            date: &date,
            status,
            content_type: Some(b"text/plain; charset=utf-8"),
            content_length: Some(msg.len() as u64),
            persist: d.persist,
            allow: None,
        };
        response::write_head(out, &spec);
        stats.response(status);
        if !d.head_only {
            out.extend_from_slice(msg);
        }
        let sent = if d.head_only { 0 } else { msg.len() as u64 };
        log_response(&mut self.log, stats, None, status, sent);
        FileNext::Body { offset: 0, len: 0 }
    }

    /// A shutdown that began while a reply was deferred turns it into the last one.
    fn late_persist(&self, mut d: Deferred) -> Deferred {
        if self.shutting_down {
            d.persist = Persist::Close;
        }
        d
    }

    fn write_ok(&self, stats: &WorkerStats, out: &mut Vec<u8>, d: Deferred, ct: &[u8], len: u64) {
        let date = self.date();
        let spec = HeadSpec {
            date: &date,
            status: 200,
            content_type: Some(ct),
            content_length: Some(len),
            persist: d.persist,
            allow: None,
        };
        response::write_head(out, &spec);
        stats.response(200);
    }

    pub(super) fn finish(&mut self, d: Deferred) {
        self.state = match d.persist {
            Persist::Close => State::Closed,
            _ => State::Head,
        };
    }

    /// After `Step::Work`: run one slice of the work, within `budget` (`None`: to
    /// the end). Returns true when it is done and its response is in `out` (then
    /// `process` again); false when there is more to do.
    pub fn work_slice<H: Handler>(
        &mut self,
        app: &H,
        budget: Option<Duration>,
        stats: &WorkerStats,
        out: &mut Vec<u8>,
    ) -> bool {
        let State::Work { job, d } = &mut self.state else {
            return true;
        };
        let d = *d;
        stats.work_slices.inc();
        let resp = match app.work(job, budget) {
            Slice::More => return false,
            Slice::Done(resp) => resp,
        };
        let d = self.late_persist(d);
        let sent = write_now(out, &self.date(), &resp, d.persist, d.head_only);
        stats.response(resp.status);
        log_response(&mut self.log, stats, None, resp.status, sent);
        self.finish(d);
        true
    }
}
