//! The green runtime's counter blocks: what a worker's runtime and the dedicated
//! reactor thread publish. The runtime owns these types; the application's `stats`
//! module embeds them in its `/stats` blocks and hands them to the runtime through
//! [`super::StatsSource`]. Each block has one writer (the [`Counter`] INVARIANT).

use crate::uring::{Counter, UringCounters};

/// Green-thread runtime counters (one block per worker; its writer is that worker).
#[derive(Default, Debug)]
pub struct GreenCounters {
    pub spawned: Counter,
    pub finished: Counter,
    pub context_switches: Counter,
    pub panics: Counter,
    /// Parks by [`super::ParkReason`] (indexed by `reason as usize`).
    pub parks: [Counter; 4],
    /// `--green-reactor dedicated`: times the worker slept on its futex, and how
    /// many of those sleeps a delivery ended (the rest reached their timer).
    pub sleeps: Counter,
    pub woken: Counter,
    /// `--green-reactor dedicated`: submitters that parked on a full queue.
    pub queue_full_parks: Counter,
    /// Green threads this worker took from other workers (`--green-sched steal`).
    pub stolen: Counter,
    /// Green threads other workers took from this one.
    pub stolen_from: Counter,
}

/// The dedicated green reactor thread's counters (`--green-reactor dedicated`).
/// Single writer: the reactor thread (so the [`Counter`] INVARIANT holds).
#[derive(Default, Debug)]
pub struct ReactorCounters {
    /// 1 once a reactor thread runs (only then does `/stats` show `reactor`).
    pub running: Counter,
    /// Submission-queue depth high-water mark (requests waiting when it looked).
    pub queue_depth_max: Counter,
    /// `io_uring_enter` calls that submitted something, and the SQEs they carried.
    pub submits: Counter,
    pub sqes: Counter,
    /// Loop turns that reaped completions, and the completions reaped.
    pub wakes: Counter,
    pub completions: Counter,
    /// `FUTEX_WAKE`s for workers that had said they sleep (no syscall otherwise).
    pub worker_wakeups: Counter,
    /// Ops run on the blocking pool (Tier 2: the ring lacks them, or forced).
    pub fallbacks: Counter,
    pub uring: UringCounters,
}

/// The counter blocks one worker's runtime publishes into (all written by that
/// worker only): what a [`super::StatsSource`] hands the runtime.
#[derive(Clone, Copy, Debug)]
pub struct WorkerCounters<'a> {
    pub green: &'a GreenCounters,
    /// The worker's ring (per-worker reactor; unused with the dedicated one).
    pub uring: &'a UringCounters,
    /// CPU time the worker's thread has used, in nanoseconds.
    pub cpu_ns: &'a Counter,
}
