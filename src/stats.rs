//! Counters every model exports at `GET /stats`.
//!
//! Each worker thread owns one [`WorkerStats`] block (cache-line aligned, so workers
//! never share a line). A block has a single writer, its worker, so increments are a
//! relaxed load + store rather than a locked read-modify-write; readers (the `/stats`
//! handler on any worker) sum all blocks with relaxed loads and may see a value that
//! is a few increments old, which is fine for monitoring.
//!
//! The counter primitive ([`Counter`], with its single-writer INVARIANT) and the
//! blocks the runtime writes ([`UringCounters`], [`GreenCounters`],
//! [`ReactorCounters`]) belong to the runtime below (`uring`, `green`); this module
//! embeds them, gives them to the green runtime as a
//! [`crate::green::StatsSource`], and renders them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::config::Model;
use crate::log::{AccessLog, WorkerLog};

/// The process-wide budget for connection buffers (`--max-buffer-memory`): the
/// bytes connections hold beyond their base buffers (an input buffer grown past
/// its pooled 4 KiB, an output buffer grown past 4 KiB, a file chunk buffer).
/// Base buffers are bounded by `--max-conns` alone; what grows with a client's
/// request (a large head, a body, an `/echo` reply, a download) is bounded here.
///
/// Each connection's driver charges what it holds at the end of every event and
/// releases it when it shrinks or closes, so the plain request path, which never
/// grows a buffer, touches no shared counter. Over the limit, connections that
/// would grow their input wait (backpressure) and new connections get a 503;
/// `/stats` reports the use (`buffer_memory`).
#[derive(Debug)]
pub struct MemoryBudget {
    limit: AtomicUsize,
    used: AtomicUsize,
}

/// The one budget of this process (process-wide by definition).
pub static BUFFER_BUDGET: MemoryBudget = MemoryBudget::new(usize::MAX);

impl MemoryBudget {
    pub const fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            limit: AtomicUsize::new(limit),
            used: AtomicUsize::new(0),
        }
    }

    /// Set the limit (at start-up, from `--max-buffer-memory`).
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Relaxed);
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Relaxed)
    }

    pub fn used(&self) -> usize {
        self.used.load(Relaxed)
    }

    /// Whether connections hold the whole budget (or more: a charge is never
    /// refused, since the bytes are already in use when they are counted).
    #[inline]
    pub fn over(&self) -> bool {
        self.used() >= self.limit()
    }

    /// Account a connection now holding `held` bytes where it held `charged`.
    #[inline]
    pub fn settle(&self, charged: usize, held: usize) {
        if held > charged {
            self.used.fetch_add(held - charged, Relaxed);
        } else if held < charged {
            self.used.fetch_sub(charged - held, Relaxed);
        }
    }
}

/// The runtime's counter blocks, owned by `uring` and `green` (the layer below);
/// re-exported so the application names them from here.
pub use crate::green::counters::{GreenCounters, ReactorCounters, WorkerCounters};
/// Why a green thread parked (the runtime's own type; `/stats` counts each).
pub use crate::green::task::ParkReason;
pub use crate::uring::counters::{Counter, UringCounters};

/// A worker's reverse-proxy counters (see [`WorkerStats::upstream`]).
#[derive(Debug, Default)]
pub struct UpstreamCounters {
    pub connects: Counter,
    pub reuses: Counter,
    pub retries: Counter,
    pub bad_gateway: Counter,
    pub gateway_timeout: Counter,
}

/// One worker's counters. Aligned to two cache lines (adjacent-line prefetch).
#[derive(Default, Debug)]
#[repr(align(128))]
pub struct WorkerStats {
    pub accepted: Counter,
    pub closed: Counter,
    /// Connections refused because `--max-conns` was reached.
    pub refused: Counter,
    pub requests: Counter,
    /// Responses by status class: index 0 = 1xx … 4 = 5xx.
    pub responses: [Counter; 5],
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub uring: UringCounters,
    pub green: GreenCounters,
    /// Connections cut at the shutdown's grace deadline.
    pub grace_cuts: Counter,
    /// Slices of CPU-bound handler work run (`/work`, see `--work-slice`).
    pub work_slices: Counter,
    /// The reverse proxy (`--upstream`): new upstream connections, pooled ones
    /// reused, requests retried on a fresh connection, and the 502s and 504s
    /// it answered.
    pub upstream: UpstreamCounters,
    /// CPU time this worker's thread has used, in nanoseconds (green: refreshed
    /// every 128 loop turns and at exit; 0 where a model does not report it).
    pub cpu_ns: Counter,
    /// This worker's access-log buffer, when `--access-log` is on. A mutex so the
    /// error-log thread can flush it off the worker's hot path (uncontended but
    /// for that flush, every 100 ms).
    pub access: OnceLock<Mutex<Option<WorkerLog>>>,
}

impl WorkerStats {
    /// Whether requests are access-logged.
    #[inline]
    pub fn logs_access(&self) -> bool {
        self.access.get().is_some()
    }

    /// Run `f` on this worker's access log, if there is one.
    pub fn access_log(&self, f: impl FnOnce(&mut WorkerLog)) {
        if let Some(m) = self.access.get() {
            let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(log) = g.as_mut() {
                f(log);
            }
        }
    }

    /// The blocks of this worker that the green runtime writes.
    pub fn runtime_counters(&self) -> WorkerCounters<'_> {
        WorkerCounters {
            green: &self.green,
            uring: &self.uring,
            cpu_ns: &self.cpu_ns,
        }
    }

    /// Count one response with `status` (100..=599).
    #[inline]
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].inc();
    }
}

/// The green runtime publishes worker `worker`'s counters into its block here.
impl crate::green::StatsSource for Registry {
    fn worker_counters(&self, worker: usize) -> WorkerCounters<'_> {
        self.worker(worker).runtime_counters()
    }
}

/// All workers' counters plus what `/stats` reports about the server itself.
#[derive(Debug)]
pub struct Registry {
    pub model: Model,
    /// The row `/stats` names (`tokio+multi`, ...): the model unless set.
    label: String,
    /// How static files are sent (`/stats` `files`): `sendfile` or `read+send`
    /// ([`crate::config::Config::files_mode`]).
    files: &'static str,
    pub started: Instant,
    workers: Box<[WorkerStats]>,
    /// Shared with the dedicated reactor thread, its only writer.
    reactor: Arc<ReactorCounters>,
}

impl Registry {
    /// Every worker's counters summed now (what the error log and the exit line
    /// report).
    pub fn totals(&self) -> crate::log::Totals {
        let mut t = crate::log::Totals::default();
        for i in 0..self.workers() {
            let w = self.worker(i);
            t.accepted += w.accepted.get();
            t.refused += w.refused.get();
            t.requests += w.requests.get();
            for (acc, c) in t.responses.iter_mut().zip(&w.responses) {
                *acc += c.get();
            }
            t.bytes_in += w.bytes_in.get();
            t.bytes_out += w.bytes_out.get();
        }
        t
    }

    pub fn new(model: Model, workers: usize) -> Self {
        Registry {
            model,
            label: model.name().to_string(),
            files: "read+send",
            started: Instant::now(),
            workers: (0..workers.max(1))
                .map(|_| WorkerStats::default())
                .collect(),
            reactor: Arc::default(),
        }
    }

    /// Name the scheduling variant in `/stats` (`"model":"tokio+multi"`).
    pub fn with_label(mut self, label: String) -> Self {
        self.label = label;
        self
    }

    /// Say in `/stats` how static files are sent (`"files":"sendfile"`).
    pub fn with_files(mut self, mode: &'static str) -> Self {
        self.files = mode;
        self
    }

    /// Give every worker a buffer of `log` (before serving starts).
    pub fn attach_access_log(&self, log: &AccessLog) {
        for w in self.workers.iter() {
            let _ = w.access.set(Mutex::new(Some(log.for_worker())));
        }
    }

    /// Hand every worker's buffered lines to the writer (from any thread).
    pub fn flush_access_logs(&self) {
        for w in self.workers.iter() {
            w.access_log(|l| l.flush());
        }
    }

    /// Flush and drop the workers' buffers (after serving), so the log can finish.
    pub fn detach_access_logs(&self) {
        for w in self.workers.iter() {
            if let Some(m) = w.access.get() {
                let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(mut l) = g.take() {
                    l.flush();
                }
            }
        }
    }

    /// Connections cut at the grace deadline, all workers.
    pub fn grace_cuts(&self) -> u64 {
        self.sum(|w| &w.grace_cuts)
    }

    pub fn worker(&self, index: usize) -> &WorkerStats {
        &self.workers[index]
    }

    /// The dedicated reactor thread's counters (written by that thread only).
    pub fn reactor(&self) -> &ReactorCounters {
        &self.reactor
    }

    /// The same counters, for the reactor thread to write
    /// (`green::ReactorThread::start`).
    pub fn reactor_counters(&self) -> Arc<ReactorCounters> {
        Arc::clone(&self.reactor)
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    fn sum(&self, f: impl Fn(&WorkerStats) -> &Counter) -> u64 {
        self.workers.iter().map(|w| f(w).get()).sum()
    }

    /// Connections open right now, across all workers.
    pub fn open_connections(&self) -> u64 {
        self.sum(|w| &w.accepted)
            .saturating_sub(self.sum(|w| &w.closed))
    }

    /// `"reactor":{...}`: the dedicated reactor thread and its workers' sleeps.
    fn render_reactor(&self, out: &mut String) {
        let r = &self.reactor;
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let _ = write!(
            out,
            ",\"reactor\":{{\"queue_depth_max\":{},\"submits\":{},\"sqes\":{},\
             \"sqes_per_submit\":{:.2},\"wakes\":{},\"completions\":{},\
             \"completions_per_wake\":{:.2},\"worker_sleeps\":{},\"worker_wakes\":{},\
             \"wake_syscalls\":{},\"queue_full_parks\":{},\"fallbacks\":{}}}",
            r.queue_depth_max.get(),
            r.submits.get(),
            r.sqes.get(),
            ratio(r.sqes.get(), r.submits.get()),
            r.wakes.get(),
            r.completions.get(),
            ratio(r.completions.get(), r.wakes.get()),
            self.sum(|w| &w.green.sleeps),
            self.sum(|w| &w.green.woken),
            r.worker_wakeups.get(),
            self.sum(|w| &w.green.queue_full_parks),
            r.fallbacks.get(),
        );
    }

    /// Render the `/stats` JSON document into `out`.
    pub fn render_json(&self, out: &mut String) {
        let accepted = self.sum(|w| &w.accepted);
        let closed = self.sum(|w| &w.closed);
        let _ = write!(
            out,
            "{{\"model\":\"{}\",\"workers\":{},\"files\":\"{}\",\"uptime_s\":{:.3},\
             \"connections\":{{\"accepted\":{},\"open\":{},\"closed\":{},\"refused\":{}}},\
             \"requests\":{},\"work_slices\":{},\"responses\":{{",
            self.label,
            self.workers(),
            self.files,
            self.started.elapsed().as_secs_f64(),
            accepted,
            accepted.saturating_sub(closed),
            closed,
            self.sum(|w| &w.refused),
            self.sum(|w| &w.requests),
            self.sum(|w| &w.work_slices),
        );
        for class in 0..5 {
            let sep = if class == 0 { "" } else { "," };
            let n = self.sum(|w| &w.responses[class]);
            let _ = write!(out, "{sep}\"{}xx\":{n}", class + 1);
        }
        let _ = write!(
            out,
            "}},\"bytes_in\":{},\"bytes_out\":{},\
             \"buffer_memory\":{{\"used\":{},\"limit\":{}}}",
            self.sum(|w| &w.bytes_in),
            self.sum(|w| &w.bytes_out),
            BUFFER_BUDGET.used(),
            BUFFER_BUDGET.limit(),
        );
        let _ = write!(
            out,
            ",\"upstream\":{{\"connects\":{},\"reuses\":{},\"retries\":{},\
             \"502\":{},\"504\":{}}}",
            self.sum(|w| &w.upstream.connects),
            self.sum(|w| &w.upstream.reuses),
            self.sum(|w| &w.upstream.retries),
            self.sum(|w| &w.upstream.bad_gateway),
            self.sum(|w| &w.upstream.gateway_timeout),
        );
        if self.model.uses_io_uring() {
            let _ = write!(
                out,
                ",\"io_uring\":{{\"sqes_submitted\":{},\"cqes_reaped\":{},\"enter_calls\":{},\
                 \"sq_full\":{},\"enobufs\":{}}}",
                self.sum(|w| &w.uring.sqes_submitted) + self.reactor.uring.sqes_submitted.get(),
                self.sum(|w| &w.uring.cqes_reaped) + self.reactor.uring.cqes_reaped.get(),
                self.sum(|w| &w.uring.enter_calls) + self.reactor.uring.enter_calls.get(),
                self.sum(|w| &w.uring.sq_full) + self.reactor.uring.sq_full.get(),
                self.sum(|w| &w.uring.enobufs) + self.reactor.uring.enobufs.get(),
            );
        }
        if self.reactor.running.get() > 0 {
            self.render_reactor(out);
        }
        if self.model == Model::Green {
            let spawned = self.sum(|w| &w.green.spawned);
            let finished = self.sum(|w| &w.green.finished);
            let _ = write!(
                out,
                ",\"green\":{{\"spawned\":{spawned},\"alive\":{},\"context_switches\":{},\
                 \"panics\":{},\"parks\":{{",
                spawned.saturating_sub(finished),
                self.sum(|w| &w.green.context_switches),
                self.sum(|w| &w.green.panics),
            );
            for (i, reason) in ParkReason::ALL.into_iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let n = self.sum(|w| &w.green.parks[reason as usize]);
                let _ = write!(out, "{sep}\"{}\":{n}", reason.name());
            }
            let _ = write!(
                out,
                "}},\"stolen\":{},\"per_worker\":[",
                self.sum(|w| &w.green.stolen)
            );
            for (i, w) in self.workers.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(
                    out,
                    "{sep}{{\"stolen\":{},\"stolen_from\":{},\"cpu_ms\":{:.3}}}",
                    w.green.stolen.get(),
                    w.green.stolen_from.get(),
                    w.cpu_ns.get() as f64 / 1e6
                );
            }
            out.push_str("]}");
        }
        out.push('}');
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_budget_counts_what_connections_hold_and_says_when_it_is_spent() {
        let b = super::MemoryBudget::new(100);
        b.settle(0, 60);
        assert!(!b.over());
        b.settle(0, 40);
        assert!(b.over(), "100 of 100 held");
        b.settle(60, 10);
        assert_eq!(b.used(), 50);
        assert!(!b.over());
        b.settle(40, 0);
        b.settle(10, 0);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn totals_sum_every_worker() {
        let reg = super::Registry::new(super::Model::Green, 2);
        reg.worker(0).accepted.add(3);
        reg.worker(1).accepted.add(2);
        reg.worker(1).requests.add(7);
        reg.worker(0).response(200);
        reg.worker(1).response(404);
        reg.worker(1).refused.inc();
        let t = reg.totals();
        assert_eq!((t.accepted, t.refused, t.requests), (5, 1, 7));
        assert_eq!(t.responses, [0, 1, 0, 1, 0]);
    }

    use super::*;

    #[test]
    fn json_sums_workers_and_names_model_counters() {
        let reg = Registry::new(Model::Green, 2);
        reg.worker(0).accepted.add(3);
        reg.worker(1).accepted.add(2);
        reg.worker(1).closed.inc();
        reg.worker(0).response(200);
        reg.worker(1).response(404);
        reg.worker(1).green.parks[ParkReason::Sleep as usize].inc();
        reg.worker(1).green.stolen.add(2);
        reg.worker(0).green.stolen_from.add(2);
        reg.worker(0).cpu_ns.add(1_500_000);
        let mut s = String::new();
        reg.render_json(&mut s);
        assert!(s.contains("\"model\":\"green\""), "{s}");
        assert!(s.contains("\"accepted\":5,\"open\":4,\"closed\":1"), "{s}");
        assert!(s.contains("\"2xx\":1") && s.contains("\"4xx\":1"), "{s}");
        assert!(
            s.contains("\"io_uring\":{") && s.contains("\"sleep\":1"),
            "{s}"
        );
        assert!(
            !s.contains("reactor"),
            "no reactor thread, no reactor section: {s}"
        );
        reg.reactor().running.inc();
        reg.reactor().sqes.add(6);
        reg.reactor().submits.add(4);
        reg.reactor().fallbacks.add(2);
        reg.reactor().queue_depth_max.raise_to(9);
        reg.reactor().queue_depth_max.raise_to(3);
        reg.worker(1).green.sleeps.add(5);
        let mut s = String::new();
        reg.render_json(&mut s);
        assert!(
            s.contains("\"reactor\":{\"queue_depth_max\":9,\"submits\":4,\"sqes\":6,\"sqes_per_submit\":1.50")
                && s.contains("\"worker_sleeps\":5")
                && s.contains("\"fallbacks\":2"),
            "{s}"
        );
        assert!(
            s.contains("\"stolen\":2,\"per_worker\":[{\"stolen\":0,\"stolen_from\":2,\"cpu_ms\":1.500},{\"stolen\":2,"),
            "{s}"
        );
        let tokio = Registry::new(Model::Tokio, 1);
        let mut t = String::new();
        tokio.render_json(&mut t);
        assert!(!t.contains("io_uring") && !t.contains("green"), "{t}");
    }
}
