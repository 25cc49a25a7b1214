//! gvhttpd's load generator (`gvhttpd bench`) and model comparison
//! (`gvhttpd bench compare`).
//!
//! ```text
//!  cli ──► Plan ──► engine: N threads × (mio Poll + connections + histograms)
//!                     │  per response: parse::Inbox/Parser ─► schedule::Latencies
//!                     └─ once a second: a Tick (timeline, progress line)
//!          Outcome ──► checks (CPU, steal, RSS) ──► report (summary, JSON, .hgrm)
//!  compare: for repeat, scenario, model: start `gvhttpd serve` pinned ─► engine ─► results/
//! ```
//!
//! Two load models: closed loop (`-c N` connections as fast as the server answers,
//! wrk's model) and open loop (`--rate R`, latency from the intended send time so
//! a slow server cannot hide its backlog: see [`schedule`]).
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_debug_implementations)]

pub mod checks;
pub mod cli;
pub mod compare;
pub mod duration;
pub mod engine;
pub mod hist;
pub mod merge;
pub mod parse;
pub mod report;
pub mod schedule;
pub mod sys;
pub mod target;
pub mod threads;
