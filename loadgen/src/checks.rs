//! Self-checks: is the generator, not the server, the bottleneck, and was the
//! machine quiet? CPU figures are sampled at the end of warm-up and at the end.

use crate::sys::{self, MachineCpu};
use crate::threads::{self, ThreadCpu};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// A run is generator-bound when the generator used more than this share of its
/// cores (and the server did not).
pub const BOUND_SHARE: f64 = 0.90;
/// A run is noisy when steal or other processes' CPU exceeds this share.
pub const NOISY_SHARE: f64 = 0.05;

/// Open loop: the generator fell behind its schedule when more than this share
/// of its sends left late (more than 2 ms after their intended time)...
pub const LATE_SHARE: f64 = 0.01;
/// ... or it sent at under this share of the target rate.
pub const SEND_RATE_SHARE: f64 = 0.95;

/// Whether an open-loop run was generator-bound: judged by its schedule, not its
/// CPU (a load thread may wait or poll between sends at any load, and at a 25 %
/// load used 0.98 of its core while keeping every send on time). The schedule
/// slipped (late sends or a short send rate) while the server had CPU to spare.
pub fn open_loop_bound(
    late_sends: u64,
    sends: u64,
    send_rate: f64,
    target_rate: f64,
    server_saturated: bool,
) -> bool {
    let late = late_sends as f64 > LATE_SHARE * sends as f64;
    let short = send_rate < SEND_RATE_SHARE * target_rate;
    (late || short) && !server_saturated
}

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
    /// The server's threads to the nanosecond (`cpu_s` comes from here when
    /// present), with the user share and context switches.
    #[serde(default)]
    pub threads: Option<ThreadCpu>,
}

impl ServerCheck {
    /// Where `cpu_s` came from, and its resolution.
    pub fn cpu_source(&self) -> &'static str {
        if self.threads.is_some() {
            "per-thread schedstat, ns"
        } else {
            "/proc/PID/stat, 10 ms clock ticks"
        }
    }
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
    /// The backend the server forwarded requests to (`proxy` scenario), measured
    /// as the server is; its CPU is neither the server's nor noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<ServerCheck>,
    /// With a backend on (some of) the load CPUs: the generator's CPU and the
    /// backend's share of its CPU spent there, as a share of the load cores.
    /// Above [`BOUND_SHARE`] the load CPUs were saturated and the run is
    /// generator-bound, whichever of the two used them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_cpu_share: Option<f64>,
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
    server: Option<Watched>,
    backend: Option<Watched>,
    machine: MachineCpu,
}

impl Probe {
    /// Takes the starting readings.
    pub fn start(server_pid: Option<u32>) -> Probe {
        Self::start_with_backend(server_pid, None)
    }

    /// Also watches a backend the server forwards requests to (the `proxy`
    /// scenario's): its CPU is reported apart and is not counted as noise.
    pub fn start_with_backend(server_pid: Option<u32>, backend_pid: Option<u32>) -> Probe {
        Probe {
            at: Instant::now(),
            own: sys::process_cpu("self").unwrap_or_default(),
            server: server_pid.and_then(Watched::start),
            backend: backend_pid.and_then(Watched::start),
            machine: MachineCpu::now(),
        }
    }

    /// Takes the final readings and judges the run. `load_cpus`: the CPUs the
    /// load threads are pinned to (else this process's own), to find a backend
    /// sharing them.
    pub fn finish(
        &self,
        requests: u64,
        load_cores: usize,
        server_cores: Option<usize>,
        load_cpus: Option<&[usize]>,
    ) -> Checks {
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
        let server = self
            .server
            .as_ref()
            .and_then(|w| w.check(wall, per_req, server_cores));
        let backend = self
            .backend
            .as_ref()
            .and_then(|w| w.check(wall, per_req, None));
        let load_list = load_cpus
            .map(<[usize]>::to_vec)
            .or_else(|| sys::allowed_cpu_list("self"));
        let backend_on_load = match (&self.backend, load_list) {
            (Some(b), Some(load)) => sys::allowed_cpu_list(&b.pid.to_string())
                .map_or(0.0, |cpus| overlap_share(&cpus, &load)),
            _ => 0.0,
        };
        judge(
            Readings {
                own_s: own,
                wall_s: wall,
                requests,
                load_cores,
                machine,
                ticks_per_s: sys::clock_ticks() as f64,
                backend_on_load,
            },
            server,
            backend,
        )
    }
}

/// A watched process's starting readings.
#[derive(Debug, Clone)]
struct Watched {
    pid: u32,
    ticks: Duration,
    threads: Option<threads::Reading>,
}

impl Watched {
    fn start(pid: u32) -> Option<Watched> {
        Some(Watched {
            pid,
            ticks: sys::process_cpu(&pid.to_string())?,
            threads: threads::read(pid),
        })
    }

    /// Its CPU since the start (per-thread schedstat when readable, else clock
    /// ticks), per request, its share of its cores and its memory.
    fn check(
        &self,
        wall: f64,
        per_req: impl Fn(f64) -> f64,
        cores: Option<usize>,
    ) -> Option<ServerCheck> {
        let pid = self.pid;
        let p = pid.to_string();
        let ticks = sys::process_cpu(&p)?
            .saturating_sub(self.ticks)
            .as_secs_f64();
        let threads = self
            .threads
            .as_ref()
            .and_then(|a| Some(threads::read(pid)?.since(a)));
        let cpu = threads.as_ref().map_or(ticks, |t| t.cpu_ns as f64 / 1e9);
        let cores = cores.or_else(|| sys::allowed_cpus(&p)).unwrap_or(1).max(1);
        Some(ServerCheck {
            pid,
            cpu_s: cpu,
            cpu_us_per_request: per_req(cpu),
            cpu_share: cpu / (wall * cores as f64),
            cores,
            peak_rss_kib: sys::status_kib(&p, "VmHWM").unwrap_or(0),
            rss_kib: sys::status_kib(&p, "VmRSS").unwrap_or(0),
            threads,
        })
    }
}

/// The share of `cpus` that are also in `load` (a process on `cpus` spends
/// about that share of its CPU on the load CPUs).
pub fn overlap_share(cpus: &[usize], load: &[usize]) -> f64 {
    if cpus.is_empty() {
        return 0.0;
    }
    cpus.iter().filter(|c| load.contains(c)).count() as f64 / cpus.len() as f64
}

/// What [`Probe::finish`] measured over the run.
#[derive(Debug, Clone, Copy)]
struct Readings {
    /// Generator CPU time (user + system), seconds.
    own_s: f64,
    wall_s: f64,
    requests: u64,
    load_cores: usize,
    /// Machine-wide CPU ticks over the run.
    machine: MachineCpu,
    ticks_per_s: f64,
    /// Share of the backend's CPU spent on the load CPUs ([`overlap_share`]).
    backend_on_load: f64,
}

/// Judges a run from its readings and the server's check (if watched).
fn judge(r: Readings, server: Option<ServerCheck>, backend: Option<ServerCheck>) -> Checks {
    let Readings {
        own_s,
        wall_s,
        requests,
        load_cores,
        machine,
        ticks_per_s,
        backend_on_load,
    } = r;
    let total_s = machine.total as f64 / ticks_per_s;
    let (steal_share, foreign_share) = if total_s > 0.0 {
        let busy_s = machine.busy as f64 / ticks_per_s;
        let ours = own_s
            + server.as_ref().map_or(0.0, |s| s.cpu_s)
            + backend.as_ref().map_or(0.0, |s| s.cpu_s);
        (
            machine.steal as f64 / ticks_per_s / total_s,
            ((busy_s - ours) / total_s).max(0.0),
        )
    } else {
        (0.0, 0.0)
    };
    let cores = load_cores.max(1);
    let generator_cpu_share = own_s / (wall_s.max(1e-9) * cores as f64);
    // A backend beside the load (the proxy scenario's default) takes its CPU
    // from the same cores: the generator alone may be under the bound while
    // the cores are saturated.
    let load_cpu_share = backend
        .as_ref()
        .filter(|_| backend_on_load > 0.0)
        .map(|b| (own_s + b.cpu_s * backend_on_load) / (wall_s.max(1e-9) * cores as f64));
    let server_saturated = server.as_ref().is_some_and(|s| s.cpu_share > BOUND_SHARE);
    Checks {
        generator_cpu_s: own_s,
        generator_cpu_us_per_request: if requests == 0 {
            0.0
        } else {
            own_s * 1e6 / requests as f64
        },
        generator_cpu_share,
        generator_cores: cores,
        generator_bound: load_cpu_share
            .unwrap_or(generator_cpu_share)
            .max(generator_cpu_share)
            > BOUND_SHARE
            && !server_saturated,
        load_cpu_share,
        noisy: steal_share > NOISY_SHARE || foreign_share > NOISY_SHARE,
        server,
        backend,
        steal_share,
        foreign_share,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 ticks a second on a 2-core machine over a 10 s run: 2000 ticks in all.
    const TICKS: f64 = 100.0;

    fn readings(own_s: f64, busy: u64, steal: u64) -> Readings {
        Readings {
            own_s,
            wall_s: 10.0,
            requests: 1_000_000,
            load_cores: 1,
            machine: MachineCpu {
                total: 2000,
                busy,
                steal,
            },
            ticks_per_s: TICKS,
            backend_on_load: 0.0,
        }
    }

    fn server(cpu_s: f64, cores: usize) -> ServerCheck {
        ServerCheck {
            pid: 1,
            cpu_s,
            cpu_us_per_request: cpu_s,
            cpu_share: cpu_s / (10.0 * cores as f64),
            cores,
            peak_rss_kib: 1,
            rss_kib: 1,
            threads: None,
        }
    }

    #[test]
    fn a_busy_generator_with_an_idle_server_is_generator_bound() {
        // 9.5 s of CPU in 10 s on one load core; the server at 50 %.
        let c = judge(readings(9.5, 1450, 0), Some(server(5.0, 1)), None);
        assert!(c.generator_bound, "{c:?}");
        assert!((c.generator_cpu_share - 0.95).abs() < 1e-9);
        assert!((c.generator_cpu_us_per_request - 9.5).abs() < 1e-9);
        assert!(!c.noisy, "{c:?}");
    }

    #[test]
    fn a_saturated_server_means_the_run_is_not_generator_bound() {
        let c = judge(readings(9.5, 1900, 0), Some(server(9.5, 1)), None);
        assert!(!c.generator_bound, "{c:?}");
        // Exactly at the bound is not over it.
        let c = judge(readings(9.0, 900, 0), None, None);
        assert!(!c.generator_bound, "{c:?}");
        // The share is per load core: 9.5 s on 2 cores is under half.
        let mut r = readings(9.5, 950, 0);
        r.load_cores = 2;
        let c = judge(r, None, None);
        assert!(!c.generator_bound && (c.generator_cpu_share - 0.475).abs() < 1e-9);
    }

    #[test]
    fn open_loop_is_generator_bound_only_when_its_schedule_slips() {
        // On schedule at 25 % load: not bound, whatever the generator's CPU.
        assert!(!open_loop_bound(10, 100_000, 35_490.0, 35_490.0, false));
        // Exactly 1 % late is not over it; just over is.
        assert!(!open_loop_bound(1_000, 100_000, 35_490.0, 35_490.0, false));
        assert!(open_loop_bound(1_001, 100_000, 35_490.0, 35_490.0, false));
        // Sending at 94 % of the target rate.
        assert!(open_loop_bound(0, 100_000, 94.0, 100.0, false));
        assert!(!open_loop_bound(0, 100_000, 95.0, 100.0, false));
        // A saturated server explains late sends: not the generator's fault.
        assert!(!open_loop_bound(50_000, 100_000, 50.0, 100.0, true));
    }

    #[test]
    fn steal_or_other_processes_make_a_run_noisy() {
        // Generator 5 s + server 5 s = 1000 ticks; the machine was busy 1000.
        let quiet = judge(readings(5.0, 1000, 0), Some(server(5.0, 1)), None);
        assert!(!quiet.noisy && quiet.foreign_share == 0.0, "{quiet:?}");
        // 5 % steal is the limit; above it the run is noisy.
        let at = judge(readings(5.0, 1000, 100), Some(server(5.0, 1)), None);
        assert!(!at.noisy && (at.steal_share - 0.05).abs() < 1e-9, "{at:?}");
        let stolen = judge(readings(5.0, 1000, 120), Some(server(5.0, 1)), None);
        assert!(stolen.noisy, "{stolen:?}");
        // 150 ticks (7.5 %) of someone else's CPU.
        let foreign = judge(readings(5.0, 1150, 0), Some(server(5.0, 1)), None);
        assert!(foreign.noisy && (foreign.foreign_share - 0.075).abs() < 1e-9);
        // Without --server-pid the server's CPU counts as foreign: noisy.
        let unwatched = judge(readings(5.0, 1000, 0), None, None);
        assert!(unwatched.noisy && (unwatched.foreign_share - 0.25).abs() < 1e-9);
        // A watched backend's 150 ticks are its own, not noise.
        let proxied = judge(
            readings(5.0, 1150, 0),
            Some(server(5.0, 1)),
            Some(server(1.5, 1)),
        );
        assert!(
            !proxied.noisy && proxied.foreign_share == 0.0,
            "{proxied:?}"
        );
        assert_eq!(proxied.backend.map(|b| b.cpu_s), Some(1.5));
    }

    #[test]
    fn a_backend_on_the_load_cpus_counts_towards_a_saturated_load() {
        // The generator at 60 % of its core, the backend at 35 % of the same
        // core: 95 %, the load CPU saturated, while the server is at 50 %.
        let mut r = readings(6.0, 1500, 0);
        r.backend_on_load = overlap_share(&[1], &[1]);
        let c = judge(r, Some(server(5.0, 1)), Some(server(3.5, 1)));
        assert!(c.generator_bound, "{c:?}");
        assert!((c.load_cpu_share.unwrap() - 0.95).abs() < 1e-9, "{c:?}");
        assert!((c.generator_cpu_share - 0.6).abs() < 1e-9);
        // The same backend on a CPU of its own: the load is not saturated.
        r.backend_on_load = overlap_share(&[2], &[1]);
        let c = judge(r, Some(server(5.0, 1)), Some(server(3.5, 1)));
        assert!(!c.generator_bound && c.load_cpu_share.is_none(), "{c:?}");
        // Half its CPUs shared: half its CPU counts (6 + 1.75 of 10 s).
        r.backend_on_load = overlap_share(&[1, 2], &[1]);
        let c = judge(r, Some(server(5.0, 1)), Some(server(3.5, 1)));
        assert!((c.load_cpu_share.unwrap() - 0.775).abs() < 1e-9, "{c:?}");
        assert!(!c.generator_bound);
        // A saturated server still explains it.
        r.backend_on_load = 1.0;
        let c = judge(r, Some(server(9.5, 1)), Some(server(3.5, 1)));
        assert!(!c.generator_bound, "{c:?}");
    }

    #[test]
    fn no_machine_readings_and_no_requests_give_zeros_not_nan() {
        let mut r = readings(1.0, 0, 0);
        r.machine = MachineCpu::default();
        r.requests = 0;
        let c = judge(r, None, None);
        assert_eq!((c.steal_share, c.foreign_share), (0.0, 0.0));
        assert_eq!(c.generator_cpu_us_per_request, 0.0);
        assert!(!c.noisy && !c.generator_bound);
    }

    #[test]
    fn a_probe_of_a_real_idle_process_reports_its_own_figures() {
        let mut idle = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let probe = Probe::start(Some(idle.id()));
        std::thread::sleep(Duration::from_millis(200));
        let c = probe.finish(100, 1, Some(1), None);
        let _ = idle.kill();
        let _ = idle.wait();
        let s = c.server.expect("server readings");
        assert_eq!((s.pid, s.cores), (idle.id(), 1));
        assert!(s.cpu_s < 0.05 && s.cpu_share < 0.25, "{s:?}");
        assert!(s.peak_rss_kib >= s.rss_kib && s.rss_kib > 0, "{s:?}");
        // A sleeping process: nanosecond readings, almost no CPU, one thread.
        let t = s.threads.as_ref().expect("schedstat readings");
        assert_eq!(t.threads, 1);
        assert!(t.cpu_ns < 50_000_000, "{t:?}");
        assert_eq!(s.cpu_source(), "per-thread schedstat, ns");
        assert_eq!(c.generator_cores, 1);
    }
}
