//! Self-checks: is the generator, not the server, the bottleneck, and was the
//! machine quiet? CPU figures are sampled at the end of warm-up and at the end.

use crate::sys::{self, MachineCpu};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// A run is generator-bound when the generator used more than this share of its
/// cores (and the server did not).
pub const BOUND_SHARE: f64 = 0.90;
/// A run is noisy when steal or other processes' CPU exceeds this share.
pub const NOISY_SHARE: f64 = 0.05;

/// The server's side of the checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerCheck {
    pub pid: u32,
    pub cpu_s: f64,
    /// Server CPU time per completed request, in microseconds.
    pub cpu_us_per_request: f64,
    /// Share of the server's allowed cores it used (1.0 = all of them).
    pub cpu_share: f64,
    pub cores: usize,
    /// Peak resident set size (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// Resident set size at the end (VmRSS), KiB.
    pub rss_kib: u64,
}

/// The checks' results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checks {
    /// Generator CPU time (user + system) in the measured period.
    pub generator_cpu_s: f64,
    /// Generator CPU per completed request, in microseconds.
    pub generator_cpu_us_per_request: f64,
    /// Share of the generator's cores it used.
    pub generator_cpu_share: f64,
    pub generator_cores: usize,
    pub server: Option<ServerCheck>,
    /// Steal time as a share of all CPU time on the machine.
    pub steal_share: f64,
    /// CPU used by processes other than generator and server, as a share of all.
    pub foreign_share: f64,
    pub generator_bound: bool,
    pub noisy: bool,
}

/// Readings taken at the start of the measured period.
#[derive(Debug, Clone)]
pub struct Probe {
    at: Instant,
    own: Duration,
    server_pid: Option<u32>,
    server: Option<Duration>,
    machine: MachineCpu,
}

impl Probe {
    /// Takes the starting readings.
    pub fn start(server_pid: Option<u32>) -> Probe {
        Probe {
            at: Instant::now(),
            own: sys::process_cpu("self").unwrap_or_default(),
            server_pid,
            server: server_pid.and_then(|p| sys::process_cpu(&p.to_string())),
            machine: MachineCpu::now(),
        }
    }

    /// Takes the final readings and judges the run.
    pub fn finish(&self, requests: u64, load_cores: usize, server_cores: Option<usize>) -> Checks {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let own = sys::process_cpu("self")
            .unwrap_or_default()
            .saturating_sub(self.own)
            .as_secs_f64();
        let machine = MachineCpu::now().since(&self.machine);
        let per_req = |cpu_s: f64| {
            if requests == 0 {
                0.0
            } else {
                cpu_s * 1e6 / requests as f64
            }
        };
        let server = self.server_pid.and_then(|pid| {
            let p = pid.to_string();
            let cpu = sys::process_cpu(&p)?
                .saturating_sub(self.server?)
                .as_secs_f64();
            let cores = server_cores
                .or_else(|| sys::allowed_cpus(&p))
                .unwrap_or(1)
                .max(1);
            Some(ServerCheck {
                pid,
                cpu_s: cpu,
                cpu_us_per_request: per_req(cpu),
                cpu_share: cpu / (wall * cores as f64),
                cores,
                peak_rss_kib: sys::status_kib(&p, "VmHWM").unwrap_or(0),
                rss_kib: sys::status_kib(&p, "VmRSS").unwrap_or(0),
            })
        });
        let ticks = sys::clock_ticks() as f64;
        let total_s = machine.total as f64 / ticks;
        let (steal_share, foreign_share) = if total_s > 0.0 {
            let busy_s = machine.busy as f64 / ticks;
            let ours = own + server.as_ref().map_or(0.0, |s| s.cpu_s);
            (
                machine.steal as f64 / ticks / total_s,
                ((busy_s - ours) / total_s).max(0.0),
            )
        } else {
            (0.0, 0.0)
        };
        let cores = load_cores.max(1);
        let generator_cpu_share = own / (wall * cores as f64);
        let server_saturated = server.as_ref().is_some_and(|s| s.cpu_share > BOUND_SHARE);
        Checks {
            generator_cpu_s: own,
            generator_cpu_us_per_request: per_req(own),
            generator_cpu_share,
            generator_cores: cores,
            generator_bound: generator_cpu_share > BOUND_SHARE && !server_saturated,
            noisy: steal_share > NOISY_SHARE || foreign_share > NOISY_SHARE,
            server,
            steal_share,
            foreign_share,
        }
    }
}
