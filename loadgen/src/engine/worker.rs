//! One load thread: a mio event loop over its share of the connections.
//!
//! Hot path per response: parse it from the connection's inbox, pop its
//! [`Sample`](crate::schedule::Sample) from a preallocated queue, record into the
//! thread's own histograms, then write the next request(s) as a prefix of the
//! pre-serialised batch. No allocation, no lock, no channel send.

use super::conn::{Conn, INDEX_BITS};
use super::send_timer::{SendTimer, TIMER};
use super::{Counts, Msg, Plan};
use crate::hist::{self, Hist};
use crate::parse::Response;
use crate::schedule::{micros, Latencies, Schedule};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// How often request and connect timeouts are checked.
const TIMEOUT_SCAN: Duration = Duration::from_millis(50);
/// Pause before reconnecting after a failed connect (avoids a busy loop).
const RECONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// What a worker needs to start.
pub(super) struct Setup<'a> {
    pub plan: &'a Plan,
    pub thread: usize,
    /// Global index of this thread's first connection (spreads open-loop offsets).
    pub first_conn: usize,
    pub conns: usize,
    /// Requests this thread may send in the measured period (`-n`).
    pub budget: Option<u64>,
    pub start: Instant,
    pub measure_start: Instant,
}

/// A worker's results.
#[derive(Debug)]
pub(super) struct ThreadResult {
    pub latencies: Latencies,
    pub counts: Counts,
    /// Responses by status code: index = code (100..=999).
    pub codes: Vec<u64>,
    /// When this thread's measured period ended.
    pub measured_until: Instant,
}

/// Why a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    ConnectRefused,
    ConnectOther,
    ConnectTimeout,
    RequestTimeout,
    ResetEof,
    Write,
    Parse,
}

struct Worker<'a> {
    plan: &'a Plan,
    poll: Poll,
    conns: Vec<Conn>,
    /// The requests a connection may send in one go, back to back: `pipeline`
    /// copies of the request, or with a rotation of `m` requests its entries
    /// `0, 1, …, m + pipeline - 2` (mod `m`), so that any `k <= pipeline`
    /// consecutive ones starting at any entry are one slice. A send writes
    /// `batch[starts[j]..starts[j + k]]`: sending never allocates.
    batch: Vec<u8>,
    /// Where each request of `batch` starts, and (last) its end.
    starts: Vec<usize>,
    /// Entries of the rotation (1 without one).
    rotation_len: usize,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    lat: Latencies,
    counts: Counts,
    /// Responses by status code, indexed by the code (the parser yields 100..=999).
    codes: Vec<u64>,
    interval: Hist,
    interval_requests: u64,
    interval_errors: u64,
    measuring: bool,
    budget: Option<u64>,
    inflight_total: usize,
    /// Connections to refill once the current batch of events is handled, so
    /// the server sees requests in bursts (as from wrk) rather than one at a time.
    /// INVARIANT: holds each index at most once (guarded by `Conn::queued`), so
    /// its preallocated capacity of one slot per connection is never exceeded.
    ready: Vec<usize>,
    /// Open loop only.
    send_timer: Option<SendTimer>,
}

/// Runs one load thread until its end time or budget.
pub(super) fn run(s: Setup<'_>, tx: &Sender<Msg>) -> Result<ThreadResult, String> {
    let plan = s.plan;
    if let Some(cpus) = &plan.cpus {
        crate::sys::pin_current_thread(&[cpus[s.thread % cpus.len()]])?;
    }
    let poll = Poll::new().map_err(|e| format!("cannot create an epoll instance: {e}"))?;
    let send_timer = match plan.rate {
        Some(_) => Some(SendTimer::new(&poll)?),
        None => None,
    };
    let (batch, starts) = batch(plan);
    let rotation_len = plan.rotation.len().max(1);
    let conns = (0..s.conns)
        .map(|i| {
            let sched = plan
                .rate
                .map(|r| Schedule::new(s.start, s.first_conn + i, plan.connections, r));
            let first = (s.first_conn + i) % rotation_len;
            Conn::new(plan.pipeline, plan.head_request, sched, first)
        })
        .collect();
    let mut w = Worker {
        plan,
        poll,
        conns,
        batch,
        starts,
        rotation_len,
        timers: BinaryHeap::with_capacity(s.conns * 4 + 16),
        lat: Latencies::new(plan.rate.is_some()),
        counts: Counts::default(),
        codes: vec![0; super::STATUS_CODES],
        interval: hist::new_hist(),
        interval_requests: 0,
        interval_errors: 0,
        measuring: s.measure_start <= s.start,
        budget: s.budget,
        inflight_total: 0,
        ready: Vec::with_capacity(s.conns),
        send_timer,
    };
    let end = plan.duration.map(|d| s.measure_start + d);
    let mut events = Events::with_capacity(1024);
    let now = Instant::now();
    for i in 0..w.conns.len() {
        w.connect(i, now);
    }
    let mut next_tick = s.measure_start + Duration::from_secs(1);
    let mut tick_start = s.measure_start;
    let mut second = 0u32;
    let mut next_scan = now + TIMEOUT_SCAN;
    let measured_until = loop {
        let now = Instant::now();
        if !w.measuring && now >= s.measure_start {
            w.measuring = true;
            // Requests still in flight from the warm-up complete in the measured
            // period: they count against -n so that exactly n are recorded.
            if let Some(b) = &mut w.budget {
                *b = b.saturating_sub(w.inflight_total as u64);
            }
            w.lat.reset();
            w.counts = Counts::default();
            w.codes.fill(0);
            w.interval.reset();
            w.interval_requests = 0;
            w.interval_errors = 0;
        }
        if w.measuring && now >= next_tick {
            w.tick(tx, second, next_tick - tick_start);
            second += 1;
            tick_start = next_tick;
            next_tick += Duration::from_secs(1);
        }
        if let Some(end) = end.filter(|&e| now >= e) {
            if end > tick_start {
                w.tick(tx, second, end - tick_start);
            }
            break end;
        }
        let interrupted = super::stop_requested();
        if interrupted || (w.measuring && w.budget == Some(0) && w.inflight_total == 0) {
            if now > tick_start {
                w.tick(tx, second, now - tick_start);
            }
            break now;
        }
        if now >= next_scan {
            w.check_timeouts(now);
            next_scan = now + TIMEOUT_SCAN;
        }
        w.fire_timers(now);
        let mut wake = next_scan.min(if w.measuring {
            next_tick
        } else {
            s.measure_start
        });
        if let Some(e) = end {
            wake = wake.min(e);
        }
        if let Some(&Reverse((t, _))) = w.timers.peek() {
            wake = wake.min(t);
            if let Some(timer) = &mut w.send_timer {
                timer.arm(t, Instant::now());
            }
        }
        let timeout = wake.saturating_duration_since(Instant::now());
        if let Err(e) = w.poll.poll(&mut events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(format!("epoll_wait failed: {e}"));
            }
        }
        let now = Instant::now();
        for ev in events.iter() {
            if ev.token() == TIMER {
                if let Some(timer) = &mut w.send_timer {
                    timer.fired();
                }
                continue;
            }
            let (i, gen) = Conn::split_token(ev.token());
            if i >= w.conns.len() || w.conns[i].gen != gen || w.conns[i].stream.is_none() {
                continue;
            }
            if w.conns[i].connecting_since.is_some() {
                w.on_connect_event(i, now);
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                w.on_readable(i, now);
            }
            if ev.is_writable() && w.conns[i].gen == gen && w.conns[i].writing() {
                w.flush(i, now);
            }
        }
        let mut ready = std::mem::take(&mut w.ready);
        for &i in &ready {
            w.conns[i].queued = false;
            w.fill(i, now);
        }
        ready.clear();
        w.ready = ready;
    };
    Ok(ThreadResult {
        latencies: w.lat,
        counts: w.counts,
        codes: w.codes,
        measured_until,
    })
}

/// The worker's `batch` and the start of each request in it (see [`Worker::batch`]).
fn batch(plan: &Plan) -> (Vec<u8>, Vec<usize>) {
    let one = std::slice::from_ref(&plan.request);
    let list: &[Vec<u8>] = if plan.rotation.is_empty() {
        one
    } else {
        &plan.rotation
    };
    let count = list.len() + plan.pipeline - 1;
    let mut batch = Vec::new();
    let mut starts = Vec::with_capacity(count + 1);
    for j in 0..count {
        starts.push(batch.len());
        batch.extend_from_slice(&list[j % list.len()]);
    }
    starts.push(batch.len());
    (batch, starts)
}

impl Worker<'_> {
    /// Sends this second's share of the timeline to the coordinator.
    fn tick(&mut self, tx: &Sender<Msg>, second: u32, dur: Duration) {
        let hist = Box::new(self.interval.clone());
        self.interval.reset();
        let _ = tx.send(Msg::Tick {
            second,
            dur,
            requests: std::mem::take(&mut self.interval_requests),
            errors: std::mem::take(&mut self.interval_errors),
            hist,
        });
    }

    /// Opens a fresh non-blocking connection for slot `i`.
    fn connect(&mut self, i: usize, now: Instant) {
        let c = &mut self.conns[i];
        c.reset();
        match TcpStream::connect(self.plan.addr) {
            Ok(mut stream) => {
                let token = c.token(i);
                match self.poll.registry().register(
                    &mut stream,
                    token,
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    Ok(()) => {
                        c.stream = Some(stream);
                        c.connecting_since = Some(now);
                    }
                    Err(_) => self.fail(i, Failure::ConnectOther, now),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                self.fail(i, Failure::ConnectRefused, now)
            }
            Err(_) => self.fail(i, Failure::ConnectOther, now),
        }
    }

    /// A connecting socket became writable or failed.
    fn on_connect_event(&mut self, i: usize, now: Instant) {
        let Some(stream) = &self.conns[i].stream else {
            return;
        };
        let result = match stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => stream.peer_addr().map(|_| ()),
        };
        match result {
            Ok(()) => {
                let _ = stream.set_nodelay(true);
                if let Some(n) = self.plan.recv_buffer {
                    // Before the first request: the window it advertises for
                    // the response is this buffer's (the CLI checked that the
                    // kernel grants the size).
                    let _ = socket2::SockRef::from(stream).set_recv_buffer_size(n);
                }
                self.conns[i].connecting_since = None;
                self.fill(i, now);
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {} // not yet
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                self.fail(i, Failure::ConnectRefused, now)
            }
            Err(_) => self.fail(i, Failure::ConnectOther, now),
        }
    }

    /// Writes as many requests as the connection may have in flight now.
    fn fill(&mut self, i: usize, now: Instant) {
        let pipeline = self.plan.pipeline;
        let keepalive = self.plan.keepalive;
        let c = &mut self.conns[i];
        if c.stream.is_none() || c.connecting_since.is_some() || c.writing() {
            return;
        }
        let mut room = pipeline - c.inflight.len();
        if !keepalive && c.sent_on_socket > 0 {
            room = 0;
        }
        if let (true, Some(b)) = (self.measuring, self.budget) {
            room = room.min(b as usize);
        }
        let mut k = 0;
        match &mut c.schedule {
            Some(sched) => {
                while k < room {
                    let Some(intended) = sched.take_due(now) else {
                        break;
                    };
                    c.inflight.push_back(self.lat.on_send(intended, now));
                    k += 1;
                }
                if k < room {
                    let due = sched.next_due();
                    if c.wake_at != Some(due) {
                        c.wake_at = Some(due);
                        self.timers.push(Reverse((due, i)));
                    }
                }
            }
            None => {
                for _ in 0..room {
                    c.inflight.push_back(self.lat.on_send(now, now));
                }
                k = room;
            }
        }
        if k == 0 {
            return;
        }
        if c.sent_on_socket == 0 && self.measuring {
            self.counts.connections += 1;
        }
        c.sent_on_socket += k as u64;
        self.inflight_total += k;
        if let (true, Some(b)) = (self.measuring, &mut self.budget) {
            *b -= k as u64;
        }
        let first = c.next_request;
        c.write_from = self.starts[first];
        c.write_to = self.starts[first + k];
        c.next_request = (first + k) % self.rotation_len;
        self.flush(i, now);
    }

    /// Continues writing the current batch.
    fn flush(&mut self, i: usize, now: Instant) {
        let c = &mut self.conns[i];
        let Some(stream) = &mut c.stream else {
            return;
        };
        while c.write_from < c.write_to {
            match stream.write(&self.batch[c.write_from..c.write_to]) {
                Ok(0) => return self.fail(i, Failure::Write, now),
                Ok(n) => c.write_from += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.fail(i, Failure::Write, now),
            }
        }
        c.write_from = 0;
        c.write_to = 0;
    }

    /// Reads what arrived and completes responses.
    fn on_readable(&mut self, i: usize, now: Instant) {
        let gen = self.conns[i].gen;
        loop {
            let c = &mut self.conns[i];
            let Some(stream) = &mut c.stream else {
                return;
            };
            let spare = c.inbox.spare();
            let room = spare.len();
            match stream.read(spare) {
                Ok(0) => return self.on_eof(i, now),
                Ok(n) => {
                    c.inbox.filled(n);
                    self.counts.bytes_read += n as u64;
                    if !self.drain(i, now) || self.conns[i].gen != gen {
                        return;
                    }
                    if n < room {
                        break; // short read: the socket is drained
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.fail(i, Failure::ResetEof, now),
            }
        }
        let c = &mut self.conns[i];
        if !c.queued {
            c.queued = true;
            self.ready.push(i);
        }
    }

    /// Completes every buffered response; false if the connection was replaced.
    fn drain(&mut self, i: usize, now: Instant) -> bool {
        loop {
            let c = &mut self.conns[i];
            let resp = match c.inbox.next(&mut c.parser) {
                Ok(Some(r)) => r,
                Ok(None) => return true,
                Err(_) => {
                    self.fail(i, Failure::Parse, now);
                    return false;
                }
            };
            if !self.complete(i, resp, now) {
                return false;
            }
        }
    }

    /// One response arrived; false if the connection was replaced after it.
    fn complete(&mut self, i: usize, resp: Response, now: Instant) -> bool {
        let c = &mut self.conns[i];
        let Some(sample) = c.inflight.pop_front() else {
            // A response nobody asked for.
            self.fail(i, Failure::Parse, now);
            return false;
        };
        self.inflight_total -= 1;
        match resp.status {
            100..=199 => self.counts.status_1xx += 1,
            200..=299 => self.counts.status_2xx += 1,
            300..=399 => self.counts.status_3xx += 1,
            400..=499 => self.counts.status_4xx += 1,
            _ => self.counts.status_5xx += 1,
        }
        if let Some(n) = self.codes.get_mut(usize::from(resp.status)) {
            *n += 1;
        }
        if resp.status < 400 {
            self.lat.on_response(sample, now);
            hist::record(&mut self.interval, micros(now, sample.intended));
            self.interval_requests += 1;
        } else {
            self.interval_errors += 1;
        }
        if resp.close || !self.plan.keepalive {
            // Requests pipelined behind this response will not be answered.
            let lost = c.inflight.len() as u64;
            self.inflight_total -= c.inflight.len();
            self.counts.reset_eof += lost;
            self.interval_errors += lost;
            c.inflight.clear();
            self.connect(i, now);
            return false;
        }
        true
    }

    /// The server closed the connection.
    fn on_eof(&mut self, i: usize, now: Instant) {
        let c = &mut self.conns[i];
        if let Some(resp) = c.parser.eof() {
            if !self.complete(i, resp, now) {
                return;
            }
        }
        let c = &self.conns[i];
        if c.inflight.is_empty() && c.parser.at_boundary() && !c.inbox.has_pending() {
            self.connect(i, now); // an idle keep-alive close: not an error
        } else {
            self.fail(i, Failure::ResetEof, now);
        }
    }

    /// Counts a failure against the requests it lost, then reconnects.
    fn fail(&mut self, i: usize, f: Failure, now: Instant) {
        let c = &mut self.conns[i];
        let lost = c.inflight.len() as u64;
        self.inflight_total -= c.inflight.len();
        let n = lost.max(1);
        let slot = match f {
            Failure::ConnectRefused => &mut self.counts.connect_refused,
            Failure::ConnectOther | Failure::ConnectTimeout => &mut self.counts.connect_timeout,
            Failure::RequestTimeout => &mut self.counts.request_timeout,
            Failure::ResetEof => &mut self.counts.reset_eof,
            Failure::Write => &mut self.counts.write_error,
            Failure::Parse => &mut self.counts.parse_error,
        };
        *slot += n;
        self.interval_errors += n;
        c.reset();
        if matches!(f, Failure::ConnectRefused | Failure::ConnectOther) {
            let at = now + RECONNECT_BACKOFF;
            c.wake_at = Some(at);
            self.timers.push(Reverse((at, i)));
        } else {
            self.connect(i, now);
        }
    }

    /// Fires due timers: open-loop sends and delayed reconnects.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let c = &mut self.conns[i];
            if c.wake_at != Some(t) {
                continue; // stale
            }
            c.wake_at = None;
            if c.stream.is_none() {
                self.connect(i, now);
            } else {
                self.fill(i, now);
            }
        }
    }

    /// Fails connects and requests older than `--timeout`.
    fn check_timeouts(&mut self, now: Instant) {
        let limit = self.plan.timeout;
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            if c.connecting_since.is_some_and(|t| now - t > limit) {
                self.fail(i, Failure::ConnectTimeout, now);
            } else if c.inflight.front().is_some_and(|s| now - s.sent > limit) {
                self.fail(i, Failure::RequestTimeout, now);
            }
        }
    }
}

const _: () = assert!(INDEX_BITS <= 20);
