//! The deferred replies: what the engine appends once the model reports that a
//! `/sleep` ended, a static file opened, or a slice of CPU-bound work was done.

use std::time::Duration;

use super::super::date::DATE_LEN;
use super::super::handler::{FileError, FileMeta, Handler, Response, Slice};
use super::super::response::{self, HeadSpec, Persist};
use super::access::log_response;
use super::{Conn, Deferred, State};
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

    /// After `Step::File`: the file was opened (`Ok` with the metadata of a regular
    /// file) or not.
    /// Appends the response head (or a complete error response) and returns how many
    /// file bytes the model must send after `out` (0 for HEAD and errors).
    pub fn file_opened(
        &mut self,
        result: Result<FileMeta, FileError>,
        stats: &WorkerStats,
        out: &mut Vec<u8>,
    ) -> u64 {
        let State::File { d } = self.state else {
            return 0;
        };
        let d = self.late_persist(d);
        let body = match result {
            Ok(FileMeta { size, .. }) => {
                let ct = self
                    .file
                    .as_ref()
                    .map_or(&b"application/octet-stream"[..], |f| f.content_type);
                self.write_ok(stats, out, d, ct, size);
                let body = if d.head_only { 0 } else { size };
                log_response(&mut self.log, stats, None, 200, body);
                body
            }
            Err(e) => {
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
                0
            }
        };
        self.file = None;
        self.finish(d);
        body
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
