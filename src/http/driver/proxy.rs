//! The reverse proxy's exchange (`/proxy/` with `--upstream`): the driver's
//! side of `UpConnect`, `UpSend`, `UpRecv` and `UpRelease`. Every decision of
//! an exchange is here: when to connect (a pooled connection or, on a retry, a
//! fresh one), what to send upstream and when to read the client's body, how
//! the response is relayed, when an upstream connection may go back to the
//! pool, the timeouts, the one retry, and the errors.
//!
//! The exchange alternates, so client and upstream I/O are never both
//! outstanding and every buffer is bounded: the request head, then the body in
//! chunks of at most [`UP_OUT_CHUNK`] bytes (read from the client only when the
//! last chunk is sent upstream), then the response, one upstream read of at
//! most [`UP_IN_LARGE`] bytes relayed to the client before the next read. A
//! slow client therefore holds the upstream (its socket buffers fill and it
//! stops), never the server's memory; a slow upstream holds the client's body.
//!
//! ```text
//!  UpConnect ──► UpSend (head, body chunk) ◄──► Recv (client body) ──► UpRecv ◄──► Send ──► UpRelease ──► (next request)
//!      │ refused / reset before the head: 502      no head in time: 504 │         │ breaks mid-body: the client's connection is cut
//!      └─ a pooled connection closed before any byte, GET/HEAD: once more on a fresh one
//! ```

use std::time::Instant;

use super::{Action, After, Driver, Env, State};
use crate::http::conn::Phase;
use crate::http::handler::Handler;
use crate::http::proxy::chunks::{ChunkError, Chunks};
use crate::http::proxy::head::{self, BodyFraming, Parsed, RespFraming, RespHead};
use crate::http::proxy::Start;

/// Bytes of the upstream read buffer at first: a response head and a small
/// body fit. It grows to [`UP_IN_LARGE`] when a read fills it (a large body, or
/// a response head that does not fit; a head larger than that is a 502).
const UP_IN_SMALL: usize = 4096;
/// The upstream read buffer once a response body fills the small one.
pub const UP_IN_LARGE: usize = 64 * 1024;
/// Most request body bytes sent upstream at once.
pub const UP_OUT_CHUNK: usize = 64 * 1024;

/// How an exchange ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The response was relayed whole.
    Done,
    /// Nothing of the response reached the client: this error instead.
    Error(u16, &'static str),
    /// The response broke off after its head was relayed: the client's
    /// connection is cut (a reset), so it cannot take a truncated body for a
    /// complete one.
    Cut,
}

#[derive(Debug)]
enum ReqBody {
    Length(u64),
    Chunked(Chunks),
    Done,
}

#[derive(Debug)]
enum RespBody {
    Length(u64),
    Chunked(Chunks),
    Close,
    Done,
}

/// One proxied request in flight (boxed in the driver: most connections never
/// proxy, and an idle one holds none).
#[derive(Debug)]
pub(super) struct Exchange {
    /// What goes upstream: the request head, then body chunks.
    up_out: Vec<u8>,
    up_sent: usize,
    /// INVARIANT: `up_in[..in_len]` are received bytes not yet relayed.
    pub(super) up_in: Vec<u8>,
    in_len: usize,
    req: ReqBody,
    resp: Option<(RespHead, RespBody)>,
    /// When the response head is due (`--upstream-timeout` from the request
    /// sent whole).
    head_deadline: Option<Instant>,
    /// The model holds an upstream connection for this exchange.
    holding: bool,
    reused: bool,
    retried: bool,
    got_bytes: bool,
    /// The last upstream read filled the buffer (grow it for the body).
    last_full: bool,
    end: Option<End>,
    since: Instant,
    status: u16,
    bytes: u64,
    max_body: u64,
    safe: bool,
    head_request: bool,
    http10: bool,
    close: bool,
}

impl Exchange {
    fn new(s: Start, now: Instant) -> Exchange {
        Exchange {
            up_out: s.request,
            up_sent: 0,
            up_in: Vec::new(),
            in_len: 0,
            req: match s.body {
                BodyFraming::None => ReqBody::Done,
                BodyFraming::Length(n) => ReqBody::Length(n),
                BodyFraming::Chunked => ReqBody::Chunked(Chunks::default()),
            },
            resp: None,
            head_deadline: None,
            holding: false,
            reused: false,
            retried: false,
            got_bytes: false,
            last_full: false,
            end: None,
            since: now,
            status: 0,
            bytes: 0,
            max_body: s.max_body,
            safe: s.safe,
            head_request: s.head_request,
            http10: s.http10,
            close: s.close,
        }
    }

    /// Memory the exchange holds (for the buffer budget).
    pub(super) fn held(&self) -> usize {
        self.up_in.capacity() + self.up_out.capacity()
    }

    /// The upstream connection may serve another exchange: the response ended
    /// where its framing said, its head allowed it, and nothing followed it.
    fn reusable(&self) -> bool {
        matches!(&self.resp, Some((h, RespBody::Done)) if h.keep) && self.in_len == 0
    }

    /// Move the response bytes received so far to `out` (the client's head,
    /// rewritten, then body bytes as they came, or dechunked for HTTP/1.0).
    fn relay(&mut self, out: &mut Vec<u8>) -> Result<(), End> {
        let mut pos = 0;
        loop {
            let avail = &self.up_in[pos..self.in_len];
            match &mut self.resp {
                None => {
                    if avail.is_empty() {
                        break;
                    }
                    match head::read_response(
                        avail,
                        self.head_request,
                        self.http10,
                        self.close,
                        out,
                    ) {
                        Parsed::Partial if self.in_len >= UP_IN_LARGE && pos == 0 => {
                            return Err(End::Error(502, "upstream response head too large"))
                        }
                        Parsed::Partial => break,
                        Parsed::Interim(n) => pos += n,
                        Parsed::Bad => return Err(End::Error(502, "bad upstream response")),
                        Parsed::Head(h) => {
                            pos += h.len;
                            self.status = h.status;
                            let body = match h.framing {
                                RespFraming::None | RespFraming::Length(0) => RespBody::Done,
                                RespFraming::Length(n) => RespBody::Length(n),
                                RespFraming::Chunked => RespBody::Chunked(Chunks::default()),
                                RespFraming::Close => RespBody::Close,
                            };
                            self.resp = Some((h, body));
                        }
                    }
                }
                Some((h, body)) => {
                    match body {
                        RespBody::Done => {
                            // Bytes after the response: the connection is not
                            // reused, and they are dropped.
                            if !avail.is_empty() {
                                h.keep = false;
                                pos = self.in_len;
                            }
                        }
                        RespBody::Length(left) => {
                            let n = avail
                                .len()
                                .min(usize::try_from(*left).unwrap_or(usize::MAX));
                            out.extend_from_slice(&avail[..n]);
                            self.bytes += n as u64;
                            *left -= n as u64;
                            pos += n;
                            if *left == 0 {
                                *body = RespBody::Done;
                                continue;
                            }
                        }
                        RespBody::Chunked(c) => {
                            let dechunk = h.dechunk;
                            let mut data = 0u64;
                            let n = c
                                .scan(avail, u64::MAX, |d| {
                                    if dechunk {
                                        out.extend_from_slice(d);
                                        data += d.len() as u64;
                                    }
                                })
                                .map_err(|_| End::Cut)?;
                            if !dechunk {
                                out.extend_from_slice(&avail[..n]);
                                data = n as u64;
                            }
                            self.bytes += data;
                            pos += n;
                            if c.done() {
                                *body = RespBody::Done;
                                continue;
                            }
                        }
                        RespBody::Close => {
                            out.extend_from_slice(avail);
                            self.bytes += avail.len() as u64;
                            pos = self.in_len;
                        }
                    }
                    break;
                }
            }
        }
        if pos >= self.in_len {
            self.in_len = 0;
        } else if pos > 0 {
            self.up_in.copy_within(pos..self.in_len, 0);
            self.in_len -= pos;
        }
        Ok(())
    }
}

impl Driver {
    // ----- events of the upstream side -------------------------------------------

    /// `UpConnect` succeeded: the model holds a connection to the upstream,
    /// `reused` from its pool or newly connected.
    pub fn up_connected<H: Handler>(&mut self, env: &Env<'_, H>, reused: bool) -> Action {
        let a = match (self.state, self.aux.proxy_mut()) {
            (State::UpConnect { .. }, Some(p)) => {
                p.holding = true;
                p.reused = reused;
                match reused {
                    true => env.stats.upstream.reuses.inc(),
                    false => env.stats.upstream.connects.inc(),
                }
                self.proxy_step(env)
            }
            _ => self.close(),
        };
        self.observe(env, a)
    }

    /// `n > 0` bytes of [`Driver::up_pending`] went upstream.
    pub fn up_sent<H: Handler>(&mut self, env: &Env<'_, H>, n: usize) -> Action {
        let a = match (self.state, self.aux.proxy_mut()) {
            (State::UpSend { .. }, Some(p)) => {
                p.up_sent = (p.up_sent + n).min(p.up_out.len());
                env.stats.bytes_out.add(n as u64);
                self.proxy_step(env)
            }
            _ => self.close(),
        };
        self.observe(env, a)
    }

    /// `n > 0` bytes from the upstream were received into [`Driver::up_recv_buf`].
    pub fn up_received<H: Handler>(&mut self, env: &Env<'_, H>, n: usize) -> Action {
        let a = match (self.state, self.aux.proxy_mut()) {
            (State::UpRecv { .. }, Some(p)) => {
                p.in_len = (p.in_len + n).min(p.up_in.len());
                p.got_bytes = true;
                p.last_full = p.in_len == p.up_in.len();
                env.stats.bytes_in.add(n as u64);
                self.proxy_step(env)
            }
            _ => self.close(),
        };
        self.observe(env, a)
    }

    /// The upstream closed its connection (a receive returned 0). The model has
    /// closed its side already (the connection is no longer held).
    pub fn up_eof<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        let a = self.up_lost(env, true);
        self.observe(env, a)
    }

    /// Connecting, sending or receiving upstream failed (refused, reset, broken
    /// pipe). The model has closed the upstream socket already.
    pub fn up_failed<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        let a = self.up_lost(env, false);
        self.observe(env, a)
    }

    /// `UpRelease` is done: the connection is back in the pool or closed.
    pub fn up_released<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        let a = match (self.state, self.aux.proxy_mut()) {
            (State::UpRelease { .. }, Some(p)) => {
                p.holding = false;
                self.proxy_step(env)
            }
            _ => self.close(),
        };
        self.observe(env, a)
    }

    // ----- buffers of the upstream side ------------------------------------------

    /// The bytes `UpSend` still has to send.
    pub fn up_pending(&self) -> &[u8] {
        self.aux
            .proxy()
            .and_then(|p| p.up_out.get(p.up_sent..))
            .unwrap_or(&[])
    }

    /// Where `UpRecv` receives (never empty while `UpRecv` is asked).
    pub fn up_recv_buf(&mut self) -> &mut [u8] {
        match self.aux.proxy_mut() {
            Some(p) => &mut p.up_in[p.in_len..],
            None => &mut [],
        }
    }

    /// Lend the buffer of `UpSend` whole, with the range still to send; give it
    /// back with [`Driver::restore_up_pending`] before the next event.
    pub fn lend_up_pending(&mut self) -> (Vec<u8>, std::ops::Range<usize>) {
        match self.aux.proxy_mut() {
            Some(p) => {
                let end = p.up_out.len();
                (std::mem::take(&mut p.up_out), p.up_sent.min(end)..end)
            }
            None => (Vec::new(), 0..0),
        }
    }

    pub fn restore_up_pending(&mut self, buf: Vec<u8>) {
        if let Some(p) = self.aux.proxy_mut() {
            p.up_out = buf;
        }
    }

    /// Lend the buffer of `UpRecv` whole, with the offset where received bytes
    /// go; give it back with [`Driver::restore_up_recv_buf`] before the next event.
    pub fn lend_up_recv_buf(&mut self) -> (Vec<u8>, usize) {
        match self.aux.proxy_mut() {
            Some(p) => (std::mem::take(&mut p.up_in), p.in_len),
            None => (Vec::new(), 0),
        }
    }

    pub fn restore_up_recv_buf(&mut self, buf: Vec<u8>) {
        if let Some(p) = self.aux.proxy_mut() {
            p.up_in = buf;
        }
    }

    // ----- decisions ---------------------------------------------------------------

    /// The upstream connection is gone (EOF, or an error); `eof`: it closed cleanly.
    fn up_lost<H: Handler>(&mut self, env: &Env<'_, H>, eof: bool) -> Action {
        if !matches!(
            self.state,
            State::UpConnect { .. } | State::UpSend { .. } | State::UpRecv { .. }
        ) {
            return self.close();
        }
        let Some(p) = self.aux.proxy_mut() else {
            return self.close();
        };
        p.holding = false;
        if p.resp.is_none() && !p.got_bytes && p.reused && p.safe && !p.retried {
            // A pooled connection the upstream had closed: the request is safe
            // to send again, once, on a fresh connection.
            p.retried = true;
            p.up_sent = 0;
            p.in_len = 0;
            p.head_deadline = None;
            env.stats.upstream.retries.inc();
            return self.proxy_step(env);
        }
        let why = match (self.state, eof) {
            (State::UpConnect { .. }, _) => "cannot connect to the upstream",
            (_, true) => "the upstream closed the connection",
            (_, false) => "the upstream connection failed",
        };
        p.end = Some(match &mut p.resp {
            None => End::Error(502, why),
            Some((_, body @ RespBody::Close)) if eof => {
                *body = RespBody::Done;
                End::Done
            }
            Some(_) => End::Cut,
        });
        self.proxy_step(env)
    }

    /// A deadline of the exchange passed (connect, send, or the response).
    pub(super) fn proxy_timed_out<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        let Some(p) = self.aux.proxy_mut() else {
            return self.close();
        };
        p.end = Some(match p.resp {
            None => End::Error(504, "the upstream did not answer in time"),
            Some(_) => End::Cut,
        });
        self.proxy_step(env)
    }

    /// What the exchange does next, nothing being outstanding.
    pub(super) fn proxy_step<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        if self.aux.proxy().is_none() {
            // The protocol engine announced an exchange: take it.
            match self.conn.take_proxy() {
                Some(start) => self.aux.set_proxy(Exchange::new(*start, env.now)),
                None => return self.close(),
            }
        }
        let Some(up) = env.handler.upstream() else {
            return self.close();
        };
        let (connect_t, up_t) = (up.connect_timeout, up.timeout);
        let body_t = self.timeouts.read(Phase::Body);
        let grace = self.grace;
        let cap = |t: Instant| grace.map_or(t, |g| t.min(g));
        let Some(p) = self.aux.proxy_mut() else {
            return self.close();
        };
        if let Some(end) = p.end {
            if p.holding {
                let keep = end == End::Done && p.reusable();
                return self.set(State::UpRelease { keep });
            }
            if end == End::Done && !self.out.is_empty() {
                return self.flush(env, After::Proxy);
            }
            return self.proxy_end(env, end);
        }
        if !p.holding {
            let deadline = cap(env.now + connect_t);
            let fresh = p.retried;
            return self.set(State::UpConnect { deadline, fresh });
        }
        // The request: its head, then its body as the client sends it.
        // (Body bytes already here go with the head, in its first send.)
        if !matches!(p.req, ReqBody::Done) && (p.up_sent == p.up_out.len() || p.up_sent == 0) {
            if p.up_sent > 0 {
                p.up_out.clear();
                p.up_sent = 0;
            }
            let input = self.conn.input();
            let room = UP_OUT_CHUNK.saturating_sub(p.up_out.len());
            let input = &input[..input.len().min(room)];
            let used = match &mut p.req {
                ReqBody::Length(left) => {
                    let n = input
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    p.up_out.extend_from_slice(&input[..n]);
                    *left -= n as u64;
                    if *left == 0 {
                        p.req = ReqBody::Done;
                    }
                    n
                }
                ReqBody::Chunked(c) => match c.scan(input, p.max_body, |_| {}) {
                    Ok(n) => {
                        p.up_out.extend_from_slice(&input[..n]);
                        if c.done() {
                            p.req = ReqBody::Done;
                        }
                        n
                    }
                    Err(e) => {
                        p.end = Some(match e {
                            ChunkError::Malformed => End::Error(400, "bad chunked body"),
                            ChunkError::TooLarge => End::Error(413, "request body too large"),
                        });
                        return self.proxy_step(env);
                    }
                },
                ReqBody::Done => 0,
            };
            self.conn.consume(used);
        }
        if p.up_sent < p.up_out.len() {
            let deadline = cap(env.now + up_t);
            return self.set(State::UpSend { deadline });
        }
        if !matches!(p.req, ReqBody::Done) {
            if self.conn.input_ended() {
                // The client went away mid-body: nothing is owed to it.
                p.end = Some(End::Cut);
                return self.proxy_step(env);
            }
            let deadline = cap(env.now + body_t);
            return self.set(State::Recv {
                deadline,
                idle: false,
            });
        }
        // The response.
        let head_deadline = *p.head_deadline.get_or_insert_with(|| cap(env.now + up_t));
        if self.out.capacity() == 0 {
            self.out = super::pool::take_output();
        }
        if let Err(end) = p.relay(&mut self.out) {
            p.end = Some(end);
            if end == End::Cut {
                self.out.clear();
            }
            return self.proxy_step(env);
        }
        if matches!(p.resp, Some((_, RespBody::Done))) {
            p.end = Some(End::Done);
            return self.proxy_step(env);
        }
        if !self.out.is_empty() {
            return self.flush(env, After::Proxy);
        }
        // Room to read: a small buffer first, a large one once a body fills it.
        if p.up_in.is_empty() {
            p.up_in = vec![0; UP_IN_SMALL];
        } else if p.last_full && p.up_in.len() < UP_IN_LARGE {
            p.up_in.resize(UP_IN_LARGE, 0);
        }
        p.last_full = false;
        let deadline = match p.resp {
            None => head_deadline,
            Some(_) => cap(env.now + up_t),
        };
        self.set(State::UpRecv { deadline })
    }

    fn proxy_end<H: Handler>(&mut self, env: &Env<'_, H>, end: End) -> Action {
        let Some(p) = self.aux.take_proxy() else {
            return self.close();
        };
        let took = Some(env.now.saturating_duration_since(p.since));
        self.response_deadline = None;
        self.conn.set_now(env.now);
        match end {
            End::Done => {
                let close = p.close || p.resp.as_ref().is_some_and(|(h, _)| h.close_client);
                self.conn
                    .proxy_done(env.stats, p.status, p.bytes, took, close);
                self.process(env)
            }
            End::Error(status, why) => {
                match status {
                    502 => env.stats.upstream.bad_gateway.inc(),
                    504 => env.stats.upstream.gateway_timeout.inc(),
                    _ => {}
                }
                self.ensure_out();
                self.out.clear();
                self.conn
                    .proxy_failed(env.stats, status, why, took, &mut self.out);
                self.flush(env, After::Linger)
            }
            End::Cut => {
                self.reset = true;
                self.close()
            }
        }
    }
}
