//! Open-loop scheduling and the two latency views it produces.
//!
//! In open-loop mode (`--rate R`) every connection owns a fixed schedule of
//! *intended* send times: connection `i` of `C` sends at `start + i/R + k*C/R`
//! for `k = 0, 1, 2, ...`, so the connections together offer exactly `R`
//! requests per second, evenly spread. A connection that is still waiting for an
//! earlier response cannot send on time; it sends as soon as it is free, and the
//! request counts as *late*.
//!
//! Latency is recorded twice:
//! - **corrected** (from the intended send time): what a user arriving on schedule
//!   would have seen, including the time spent queued behind a slow response.
//!   This is the number that does not suffer from *coordinated omission*.
//! - **uncorrected** (from the actual send time): what wrk-style tools report; it
//!   hides the backlog because a stalled connection simply stops asking.
//!
//! In closed-loop mode the two coincide (each request is intended when it is sent),
//! so only one histogram is kept.

use crate::hist::{self, Hist};
use std::time::{Duration, Instant};

/// A send counts as late when it leaves more than this after its intended time.
/// (Open-loop workers wake on a timerfd, so sends normally leave within tens of
/// microseconds; this threshold leaves room for scheduling noise and counts
/// backlog, not jitter.)
pub const LATE_AFTER: Duration = Duration::from_millis(2);

/// One connection's fixed schedule of intended send times.
#[derive(Debug, Clone)]
pub struct Schedule {
    first: Instant,
    /// INVARIANT: > 0 ns.
    interval_ns: u64,
    /// Index of the next send.
    next: u64,
}

impl Schedule {
    /// The schedule of connection `index` out of `conns`, together offering `rate`
    /// requests per second from `start`.
    pub fn new(start: Instant, index: usize, conns: usize, rate: f64) -> Self {
        let per_request_ns = 1e9 / rate.max(1e-9);
        let interval_ns = ((per_request_ns * conns as f64) as u64).max(1);
        let offset = Duration::from_nanos((per_request_ns * index as f64) as u64);
        Schedule {
            first: start + offset,
            interval_ns,
            next: 0,
        }
    }

    /// The intended time of the next send.
    pub fn next_due(&self) -> Instant {
        self.first + Duration::from_nanos(self.next.saturating_mul(self.interval_ns))
    }

    /// If the next send is due at `now`, takes it and returns its intended time.
    pub fn take_due(&mut self, now: Instant) -> Option<Instant> {
        let due = self.next_due();
        if due <= now {
            self.next += 1;
            Some(due)
        } else {
            None
        }
    }
}

/// When one in-flight request was meant to go and when it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub intended: Instant,
    pub sent: Instant,
}

/// Latency recording for one load thread.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// From the intended send time (identical to the actual one in closed loop).
    pub corrected: Hist,
    /// From the actual send time; only kept in open loop.
    pub uncorrected: Option<Hist>,
    /// Requests sent.
    pub sends: u64,
    /// Requests sent more than [`LATE_AFTER`] after their intended time.
    pub late: u64,
}

impl Latencies {
    /// Empty recorders; `open_loop` keeps the uncorrected view too.
    pub fn new(open_loop: bool) -> Self {
        Latencies {
            corrected: hist::new_hist(),
            uncorrected: open_loop.then(hist::new_hist),
            sends: 0,
            late: 0,
        }
    }

    /// A request left at `sent`, intended for `intended`.
    pub fn on_send(&mut self, intended: Instant, sent: Instant) -> Sample {
        self.sends += 1;
        if sent.saturating_duration_since(intended) > LATE_AFTER {
            self.late += 1;
        }
        Sample { intended, sent }
    }

    /// The response to `s` completed at `done`.
    pub fn on_response(&mut self, s: Sample, done: Instant) {
        hist::record(&mut self.corrected, micros(done, s.intended));
        if let Some(u) = &mut self.uncorrected {
            hist::record(u, micros(done, s.sent));
        }
    }

    /// Forget everything recorded so far (end of warm-up).
    pub fn reset(&mut self) {
        self.corrected.reset();
        if let Some(u) = &mut self.uncorrected {
            u.reset();
        }
        self.sends = 0;
        self.late = 0;
    }
}

/// Whole microseconds from `from` to `to` (0 if `to` is earlier).
pub fn micros(to: Instant, from: Instant) -> u64 {
    to.saturating_duration_since(from).as_micros() as u64
}
