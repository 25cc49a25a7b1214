//! The per-connection protocol engine: bytes in, response bytes out, no I/O.
//!
//! [`super::driver::Driver`] wraps it with everything else a connection decides
//! (deadlines, sending, files, lingering close, shutdown); models talk to the
//! driver, never to this type. `process` answers every
//! complete request buffered (pipelining: one output buffer per read batch,
//! responses in order) and stops at a deferred reply (sleep, file) until the model
//! reports it done. Reading (head, body) and writing are separate concerns: the core
//! never holds output back and never reads past what a request needs.

use std::time::Duration;

use super::body::Chunked;
use super::date;
use super::handler::{Handler, Reply, Request, Work};
use super::parse::{Framing, Head, HeadScanner, Method, Reject, Scan, Version};
use super::response::{self, Persist};
use crate::config::Limits;
use crate::stats::WorkerStats;

/// What the model must do after [`Conn::process`]. In every case it first writes
/// the output buffer whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Read more input, then `process` again.
    Read,
    /// Close the connection.
    Close,
    /// Wait with the model's own timer, call [`Conn::sleep_done`], then `process`.
    Sleep(Duration),
    /// Open [`Conn::file_path`] beneath the static root, report it with
    /// [`Conn::file_opened`] (which may name another candidate to open), send the
    /// body bytes it says, then `process`.
    File,
    /// CPU-bound work: run [`Conn::work_slice`] until it is done, then `process`.
    Work,
    /// A request to proxy (`/proxy/`): its head is consumed, its body (if any)
    /// is the input that follows; the driver takes it with [`Conn::take_proxy`]
    /// and ends it with [`Conn::proxy_done`] or [`Conn::proxy_failed`].
    Proxy,
}

/// What the driver does after [`Conn::file_opened`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileNext {
    /// That candidate (a precompressed variant) was not there: open
    /// [`Conn::file_path`] again, which now names the next one.
    Open,
    /// Send `len` bytes of the open file from `offset` after the output (0: none,
    /// and close the file if one was opened).
    Body { offset: u64, len: u64 },
}

/// Which read timeout applies (see [`crate::config::Timeouts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Between requests: the keep-alive idle timeout.
    Idle,
    /// Part of a request head has arrived: the header timeout.
    Head,
    /// Reading a request body: the body timeout.
    Body,
    /// A reply is being produced or sent; no read timeout applies.
    Busy,
}

#[derive(Clone, Copy, Debug)]
struct Deferred {
    persist: Persist,
    head_only: bool,
}

#[derive(Debug)]
enum BodyFraming {
    Length(usize),
    /// `read` / `write`: the decoder's raw and decoded cursors, relative to `start`.
    Chunked {
        dec: Chunked,
        read: usize,
        write: usize,
    },
}

#[derive(Debug)]
enum State {
    Head,
    Body {
        head: Head,
        framing: BodyFraming,
    },
    Sleep {
        ms: u32,
        d: Deferred,
    },
    File {
        d: Deferred,
    },
    Work {
        job: Work,
        d: Deferred,
    },
    Proxy {
        d: Deferred,
        start: Option<Box<crate::http::proxy::Start>>,
    },
    Closed,
}

/// Input buffer size for a new connection and the least spare room offered to a read.
const INITIAL_BUF: usize = pool::INPUT_BUF;
const MIN_READ: usize = 1024;
/// Room beyond head + body limits, so a read can always land while a body completes.
const BUF_SLACK: usize = 64 * 1024;
/// An idle buffer bigger than this (after a large body) is shrunk back.
const SHRINK_ABOVE: usize = 64 * 1024;

/// One HTTP/1.1 connection's protocol state.
#[derive(Debug)]
pub struct Conn {
    limits: SmallLimits,
    /// INVARIANT: `start <= end <= buf.len()`; `buf[start..end]` is input not yet
    /// consumed, beginning at the first byte of the current request.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    state: State,
    scanner: HeadScanner,
    peer_closed: bool,
    shutting_down: bool,
    /// The pending static file.
    file: Option<Box<super::handler::FileReply>>,
    /// The `Date` of the current event ([`Conn::set_now`]).
    now: Option<std::time::Instant>,
    /// Access-log state, only when `--access-log` is on ([`Conn::log_peer`]).
    log: Option<Box<ConnLog>>,
    /// Requests dispatched so far (wrapping): the driver starts a new read
    /// deadline for the request after each one ([`Conn::requests`]).
    requests: u32,
}

mod access;
mod deferred;
mod support;
use super::pool;
use access::{log_defer, log_response, ConnLog};
use deferred::write_now;
use support::SmallLimits;

impl Conn {
    /// Whether the connection of a request with this head may carry another
    /// after it (`shutting_down`: the server is stopping).
    #[inline]
    fn persist(shutting_down: bool, head: &Head) -> Persist {
        if shutting_down || !head.keep_alive {
            Persist::Close
        } else if head.version == Version::Http10 {
            Persist::KeepAlive10
        } else {
            Persist::Default
        }
    }

    pub fn new(limits: Limits) -> Conn {
        Conn {
            limits: SmallLimits::from(&limits),
            buf: Vec::new(),
            start: 0,
            end: 0,
            state: State::Head,
            scanner: HeadScanner::default(),
            peer_closed: false,
            shutting_down: false,
            file: None,
            now: None,
            log: None,
            requests: 0,
        }
    }

    fn max_buf(&self) -> usize {
        self.limits.get().max_head + self.limits.get().max_body + BUF_SLACK
    }

    /// Spare input space to read into: never empty, grown or compacted as needed.
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.reserve(MIN_READ);
        &mut self.buf[self.end..]
    }

    fn reserve(&mut self, want: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end >= want {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.is_empty() && want <= INITIAL_BUF {
            self.buf = pool::take_input();
        }
        if self.buf.len() - self.end < want {
            let need = self.end + want;
            let grown = (self.buf.len() * 2)
                .max(INITIAL_BUF)
                .min(self.max_buf())
                .max(need);
            self.buf.resize(grown, 0);
        }
    }

    /// `n` bytes were read into the slice [`Conn::read_buf`] returned.
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Copy received bytes in (for models whose reads land in their own buffers).
    pub fn feed(&mut self, data: &[u8]) {
        self.reserve(data.len());
        self.buf[self.end..self.end + data.len()].copy_from_slice(data);
        self.end += data.len();
    }

    /// Free the input buffer if nothing is buffered (an idle keep-alive connection),
    /// so a connection waiting for its next request holds no input memory; the next
    /// [`Conn::read_buf`] or [`Conn::feed`] allocates again. For models that read the
    /// first bytes of the next request elsewhere (a small stack buffer, a provided
    /// buffer) and hand them over with `feed`.
    ///
    /// The buffer goes to a small per-thread pool that the next allocation takes from,
    /// so a connection that gives its buffer back before every wait costs no
    /// allocation per request.
    pub fn release_idle_buffer(&mut self) {
        if self.start == self.end && !self.buf.is_empty() {
            pool::give_input(std::mem::take(&mut self.buf));
            self.start = 0;
            self.end = 0;
        }
    }

    /// The peer shut down its write side (a read returned 0).
    pub fn peer_closed(&mut self) {
        self.peer_closed = true;
    }

    pub fn phase(&self) -> Phase {
        match self.state {
            State::Head if self.start == self.end => Phase::Idle,
            State::Head => Phase::Head,
            State::Body { .. } => Phase::Body,
            State::Sleep { .. }
            | State::File { .. }
            | State::Work { .. }
            | State::Proxy { .. }
            | State::Closed => Phase::Busy,
        }
    }

    /// Requests dispatched on this connection so far (wrapping).
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// Shutdown began. Returns true when the connection is idle and should be closed
    /// now; otherwise its next response says `Connection: close`.
    pub fn shutdown(&mut self) -> bool {
        self.shutting_down = true;
        matches!(self.phase(), Phase::Idle) || matches!(self.state, State::Closed)
    }

    /// Access-log this connection's requests as coming from `peer` (the model calls
    /// this when `--access-log` is on).
    pub fn log_peer(&mut self, peer: std::net::SocketAddr) {
        self.log = Some(Box::new(ConnLog {
            peer,
            deferred: None,
        }));
    }

    /// The time of the event being handled (responses carry its `Date`).
    #[inline]
    pub fn set_now(&mut self, now: std::time::Instant) {
        self.now = Some(now);
    }

    /// The `Date` of the event being handled (the thread's cached text for it).
    pub(super) fn date(&self) -> [u8; date::DATE_LEN] {
        self.now.map_or_else(date::now, date::at)
    }

    /// The read timeout of the current phase expired: answer 408 if a request was
    /// under way. The connection is closed after `out` is written.
    pub fn read_timed_out(&mut self, stats: &WorkerStats, out: &mut Vec<u8>) {
        if matches!(self.phase(), Phase::Head | Phase::Body) {
            response::write_error(
                out,
                &self.date(),
                408,
                "timed out reading the request",
                true,
            );
            stats.response(408);
            log_response(&mut self.log, stats, None, 408, 0);
        }
        self.state = State::Closed;
    }

    /// The relative path of the pending static file (valid after `Step::File`).
    pub fn file_path(&self) -> &str {
        self.file.as_ref().map_or("", |f| f.path())
    }

    /// Drop whatever input is buffered (lingering close discards what it reads).
    pub fn discard_input(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Lend the input buffer out whole (for an io_uring recv that must own it until
    /// its completion): the buffer, and the offset at which new bytes go. At least
    /// `MIN_READ` bytes are free behind that offset. Give it back with
    /// [`Conn::restore_buf`] before calling anything else on this connection.
    pub fn take_buf(&mut self) -> (Vec<u8>, usize) {
        self.reserve(MIN_READ);
        (std::mem::take(&mut self.buf), self.end)
    }

    /// Take the buffer back from [`Conn::take_buf`] (then report new bytes with
    /// [`Conn::filled`]).
    pub fn restore_buf(&mut self, buf: Vec<u8>) {
        self.buf = buf;
    }

    /// Input bytes held beyond the pooled base buffer (what the memory budget
    /// counts).
    pub fn extra_input(&self) -> usize {
        self.buf.len().saturating_sub(INITIAL_BUF)
    }

    /// Whether the next read needs a larger input buffer than the one held.
    pub fn must_grow(&self) -> bool {
        !self.buf.is_empty() && self.buf.len() - (self.end - self.start) < MIN_READ
    }

    /// Whether the connection holds an input buffer (for the idle-memory policy).
    pub fn holds_buffer(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Answer every complete request buffered, appending to `out`.
    pub fn process<H: Handler>(&mut self, app: &H, stats: &WorkerStats, out: &mut Vec<u8>) -> Step {
        loop {
            match &mut self.state {
                State::Closed => return Step::Close,
                State::Sleep { ms, .. } => {
                    return Step::Sleep(Duration::from_millis(u64::from(*ms)))
                }
                State::File { .. } => return Step::File,
                State::Work { .. } => return Step::Work,
                State::Proxy { .. } => return Step::Proxy,
                State::Head => {
                    if self.start == self.end {
                        if self.peer_closed || self.shutting_down {
                            self.state = State::Closed;
                            return Step::Close;
                        }
                        self.maybe_shrink();
                        return Step::Read;
                    }
                    let limits = self.limits.get();
                    match self.scanner.scan(&self.buf[self.start..self.end], &limits) {
                        Ok(Scan::Partial) if self.peer_closed => {
                            self.state = State::Closed;
                            return Step::Close;
                        }
                        Ok(Scan::Partial) => return Step::Read,
                        Err(r) => return self.fail(r, stats, out),
                        // By reference: moving the head out of the scan's result
                        // copies it in 8-byte words just after it was written a
                        // byte at a time, and that reload stalls (no store
                        // forwarding; seen in `perf annotate` of pipelined load).
                        Ok(Scan::Complete(ref head)) => {
                            self.scanner.reset();
                            if let Some(step) = self.begin_proxy(head, app, stats, out) {
                                return step;
                            }
                            if let Some(step) = self.begin_body(head, app, stats, out) {
                                return step;
                            }
                        }
                    }
                }
                State::Body { head, framing } => {
                    let limits = self.limits.get();
                    let region = &mut self.buf[self.start..self.end];
                    let done = match framing {
                        BodyFraming::Length(n) => (region.len() >= head.len + *n)
                            .then(|| (head.len..head.len + *n, head.len + *n)),
                        BodyFraming::Chunked { dec, read, write } => {
                            match dec.decode(region, read, write, &limits) {
                                Err(r) => return self.fail(r, stats, out),
                                Ok(true) => Some((head.len..*write, *read)),
                                Ok(false) => None,
                            }
                        }
                    };
                    match done {
                        Some((body, consumed)) => {
                            let State::Body { head, .. } =
                                std::mem::replace(&mut self.state, State::Head)
                            else {
                                unreachable!("state was Body")
                            };
                            if let Some(step) =
                                self.dispatch(&head, body, consumed, app, stats, out)
                            {
                                return step;
                            }
                        }
                        None if self.peer_closed => {
                            // Client went away mid-body: no response is owed (case 30).
                            self.state = State::Closed;
                            return Step::Close;
                        }
                        None => return Step::Read,
                    }
                }
            }
        }
    }

    /// A head is complete: if its target is proxied (`/proxy/` with upstreams
    /// configured), render the request for the upstream and hand the exchange to
    /// the driver (`Step::Proxy`); its body is streamed, never buffered whole.
    fn begin_proxy<H: Handler>(
        &mut self,
        head: &Head,
        app: &H,
        stats: &WorkerStats,
        out: &mut Vec<u8>,
    ) -> Option<Step> {
        use crate::http::proxy::{self, head::BodyFraming};
        app.upstream()?;
        if head.method == Method::Connect {
            return None;
        }
        let req_bytes = &self.buf[self.start..self.start + head.len];
        let target = std::str::from_utf8(&req_bytes[head.target.clone()]).ok()?;
        let up_target = proxy::upstream_target(target)?;
        let max_body = self.limits.get().max_body as u64;
        let body = match head.framing {
            Framing::None => BodyFraming::None,
            Framing::Length(n) if n > max_body => {
                return Some(self.fail(
                    Reject {
                        status: 413,
                        reason: "request body too large",
                    },
                    stats,
                    out,
                ));
            }
            Framing::Length(0) => BodyFraming::None,
            Framing::Length(n) => BodyFraming::Length(n),
            Framing::Chunked => BodyFraming::Chunked,
        };
        stats.requests.inc();
        self.requests = self.requests.wrapping_add(1);
        let persist = Self::persist(self.shutting_down, head);
        let head_only = head.method == Method::Head;
        let method_end = head.target.start.saturating_sub(1);
        let line_start = req_bytes[..method_end]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let http10 = head.version == Version::Http10;
        let peer = self.log.as_ref().map(|l| l.peer.ip().to_canonical());
        let mut request = Vec::with_capacity(head.len + 96);
        proxy::head::write_request(
            &mut request,
            &req_bytes[line_start..method_end],
            up_target,
            &req_bytes[line_start..head.len],
            http10,
            peer,
            body,
        );
        log_defer(&mut self.log, stats, req_bytes, head);
        if head.expect_continue && body != BodyFraming::None && self.end - self.start == head.len {
            out.extend_from_slice(response::CONTINUE);
            stats.response(100);
        }
        self.start += head.len;
        let start = proxy::Start {
            request,
            body,
            max_body,
            head_request: head_only,
            safe: matches!(head.method, Method::Get | Method::Head) && body == BodyFraming::None,
            http10,
            close: persist == Persist::Close,
        };
        self.state = State::Proxy {
            d: Deferred { persist, head_only },
            start: Some(Box::new(start)),
        };
        Some(Step::Proxy)
    }

    /// The exchange `Step::Proxy` announced (once).
    pub fn take_proxy(&mut self) -> Option<Box<crate::http::proxy::Start>> {
        match &mut self.state {
            State::Proxy { start, .. } => start.take(),
            _ => None,
        }
    }

    /// Input received and not yet consumed (a proxied request's body bytes).
    pub fn input(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// `n` bytes of [`Conn::input`] were used.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Whether the peer has shut down its write side.
    pub fn input_ended(&self) -> bool {
        self.peer_closed
    }

    /// A proxied response was relayed whole: record it, and go on with the next
    /// request unless the connection ends (`close`: the response said so).
    pub fn proxy_done(
        &mut self,
        stats: &WorkerStats,
        status: u16,
        bytes: u64,
        upstream: Option<Duration>,
        close: bool,
    ) {
        let State::Proxy { d, .. } = self.state else {
            return;
        };
        stats.response(status);
        access::log_proxied(&mut self.log, stats, status, bytes, upstream);
        self.state = State::Head;
        match close {
            true => self.state = State::Closed,
            false => self.finish(d),
        }
    }

    /// A proxied request failed before any of the upstream's response was sent
    /// (502, 504): the error response, then the connection closes (its request
    /// body may be unread).
    pub fn proxy_failed(
        &mut self,
        stats: &WorkerStats,
        status: u16,
        why: &str,
        upstream: Option<Duration>,
        out: &mut Vec<u8>,
    ) {
        response::write_error(out, &self.date(), status, why, true);
        stats.response(status);
        let body = response::reason(status).len() + 2 + why.len() + 1;
        access::log_proxied(&mut self.log, stats, status, body as u64, upstream);
        self.state = State::Closed;
    }

    /// A head is complete: dispatch it, or start reading its body.
    fn begin_body<H: Handler>(
        &mut self,
        head: &Head,
        app: &H,
        stats: &WorkerStats,
        out: &mut Vec<u8>,
    ) -> Option<Step> {
        let framing = match head.framing {
            Framing::None => {
                let len = head.len;
                return self.dispatch(head, len..len, len, app, stats, out);
            }
            Framing::Length(n) if n > self.limits.get().max_body as u64 => {
                return Some(self.fail(
                    Reject {
                        status: 413,
                        reason: "request body too large",
                    },
                    stats,
                    out,
                ));
            }
            Framing::Length(n) => BodyFraming::Length(n as usize),
            Framing::Chunked => BodyFraming::Chunked {
                dec: Chunked::default(),
                read: head.len,
                write: head.len,
            },
        };
        // 100 Continue only if the client is holding the body back (nothing of it yet).
        if head.expect_continue && self.end - self.start == head.len {
            out.extend_from_slice(response::CONTINUE);
            stats.response(100);
        }
        self.state = State::Body {
            head: head.clone(),
            framing,
        };
        None
    }

    /// Hand a complete request to the app; consume `consumed` bytes of input.
    fn dispatch<H: Handler>(
        &mut self,
        head: &Head,
        body: std::ops::Range<usize>,
        consumed: usize,
        app: &H,
        stats: &WorkerStats,
        out: &mut Vec<u8>,
    ) -> Option<Step> {
        stats.requests.inc();
        self.requests = self.requests.wrapping_add(1);
        let persist = Self::persist(self.shutting_down, head);
        let d = Deferred {
            persist,
            head_only: head.method == Method::Head,
        };
        let req_bytes = &self.buf[self.start..self.start + consumed];
        // The scanner admits only printable ASCII in the target.
        // The parser let only visible ASCII into the target, so this never fails;
        // `/` (most requests of a benchmark) skips even the call.
        let target = match &req_bytes[head.target.clone()] {
            b"/" => "/",
            t => std::str::from_utf8(t).unwrap_or(""),
        };
        let req = Request {
            method: head.method,
            target,
            version: head.version,
            content_type: head.content_type.clone().map(|r| &req_bytes[r]),
            fields: req_bytes.get(head.target.end..head.len).unwrap_or_default(),
        };
        let step = match app.handle(&req, &req_bytes[body]) {
            Reply::Now(resp) => {
                let sent = write_now(out, &self.date(), &resp, persist, d.head_only);
                stats.response(resp.status);
                log_response(
                    &mut self.log,
                    stats,
                    Some((req_bytes, head)),
                    resp.status,
                    sent,
                );
                self.state = State::Head;
                self.finish(d);
                (persist == Persist::Close).then_some(Step::Close)
            }
            Reply::Fixed(p) => {
                p.write(out, &self.date(), persist, d.head_only);
                stats.response(p.status());
                let sent = if d.head_only { 0 } else { p.body_len() };
                log_response(
                    &mut self.log,
                    stats,
                    Some((req_bytes, head)),
                    p.status(),
                    sent as u64,
                );
                self.state = State::Head;
                self.finish(d);
                (persist == Persist::Close).then_some(Step::Close)
            }
            Reply::Sleep(ms) => {
                log_defer(&mut self.log, stats, req_bytes, head);
                self.state = State::Sleep { ms, d };
                Some(Step::Sleep(Duration::from_millis(u64::from(ms))))
            }
            Reply::File(file) => {
                log_defer(&mut self.log, stats, req_bytes, head);
                self.file = Some(Box::new(file));
                self.state = State::File { d };
                Some(Step::File)
            }
            Reply::Work(job) => {
                log_defer(&mut self.log, stats, req_bytes, head);
                self.state = State::Work { job, d };
                Some(Step::Work)
            }
        };
        self.start += consumed;
        step
    }

    /// Refuse the request: a complete error response, then close.
    fn fail(&mut self, r: Reject, stats: &WorkerStats, out: &mut Vec<u8>) -> Step {
        response::write_error(out, &self.date(), r.status, r.reason, true);
        stats.response(r.status);
        let body = response::reason(r.status).len() + 2 + r.reason.len() + 1;
        log_response(&mut self.log, stats, None, r.status, body as u64);
        self.state = State::Closed;
        Step::Close
    }

    fn maybe_shrink(&mut self) {
        if self.buf.len() > SHRINK_ABOVE {
            self.buf = pool::take_input();
            self.start = 0;
            self.end = 0;
        }
    }
}

#[cfg(test)]
mod tests;
