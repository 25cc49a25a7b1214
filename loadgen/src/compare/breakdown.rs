//! Where a server's cost goes, beyond its CPU time: system calls (counted by
//! `perf stat -e raw_syscalls:sys_enter` on the server's process, where the
//! kernel lets us), and for the io_uring models their SQEs and `io_uring_enter`
//! calls from `/stats`. CPU user/system and context switches come with every
//! run's server check ([`crate::threads`]).
//!
//! Counting syscalls puts a tracepoint on every one of them, which costs the
//! server CPU (more for the models that make more syscalls): so it is done only
//! in the `cost` scenario's separate `syscalls` point, never in a run whose CPU
//! figure is compared.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The syscall and io_uring figures of one run, per request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extra {
    pub syscalls_per_request: Option<f64>,
    /// Why there is no syscall count.
    pub syscalls_na: Option<String>,
    pub uring_sqes_per_request: Option<f64>,
    pub uring_enters_per_request: Option<f64>,
}

/// Whether `perf` can count the tracepoint: `Err` is the reason it cannot.
pub fn perf_allowed(perf_found: bool, paranoid: Option<i64>, root: bool) -> Result<(), String> {
    if !perf_found {
        return Err("perf is not installed (linux-perf)".into());
    }
    match paranoid {
        _ if root => Ok(()),
        Some(p) if p <= -1 => Ok(()),
        Some(p) => Err(format!(
            "kernel.perf_event_paranoid is {p}: tracepoints need -1, root or CAP_PERFMON"
        )),
        None => {
            Err("no /proc/sys/kernel/perf_event_paranoid: no perf events in this kernel".into())
        }
    }
}

fn perf_facts() -> Result<(), String> {
    let found = Command::new("perf")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    perf_allowed(found, paranoid, rustix::process::geteuid().is_root())
}

/// Parses `perf stat -x, --per-thread` output for `raw_syscalls:sys_enter`
/// and `duration_time`: (syscalls of all threads, seconds). With `-p`, perf
/// sums `duration_time` over the threads unless asked `--per-thread` (a
/// five-thread server read as a 4.9 s window for a 1 s run), so the counts are
/// per thread and summed here, and the window is one thread's duration.
/// A thread that never ran in the window is `<not counted>`: zero syscalls.
pub fn parse_perf(text: &str) -> Result<(u64, f64), String> {
    let mut count: Option<u64> = None;
    let mut ns: Option<f64> = None;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.split(',').collect();
        // The value is two fields before the event name (value, unit, event).
        let Some(i) = f
            .iter()
            .position(|x| *x == "raw_syscalls:sys_enter" || *x == "duration_time")
            .filter(|&i| i >= 2)
        else {
            continue;
        };
        let value = f[i - 2];
        if f[i] == "duration_time" {
            if let Ok(v) = value.parse::<f64>() {
                ns = Some(ns.map_or(v, |n| n.max(v)));
            }
        } else if value == "<not counted>" {
            count.get_or_insert(0);
        } else {
            let v = value
                .parse::<u64>()
                .map_err(|_| format!("perf could not count raw_syscalls:sys_enter: {value}"))?;
            *count.get_or_insert(0) += v;
        }
    }
    match (count, ns) {
        (Some(c), Some(ns)) if ns > 0.0 => Ok((c, ns / 1e9)),
        (None, _) => Err(format!(
            "perf reported no raw_syscalls:sys_enter count: {}",
            text.lines()
                .find(|l| !l.starts_with('#') && !l.trim().is_empty())
                .unwrap_or("(no output)")
        )),
        _ => Err("perf reported no duration_time".into()),
    }
}

/// A running `perf stat` on one process.
#[derive(Debug)]
pub struct Tracer {
    child: Child,
    out: PathBuf,
}

impl Tracer {
    /// Starts counting the syscalls of process `pid`'s threads.
    pub fn start(pid: u32) -> Result<Tracer, String> {
        perf_facts()?;
        let out = std::env::temp_dir().join(format!(
            "gvhttpd-compare-perf-{}-{pid}.txt",
            std::process::id()
        ));
        let child = Command::new("perf")
            .args([
                "stat",
                "-x,",
                "--per-thread",
                "-e",
                "raw_syscalls:sys_enter,duration_time",
            ])
            .arg("-p")
            .arg(pid.to_string())
            .arg("-o")
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start perf: {e}"))?;
        Ok(Tracer { child, out })
    }

    /// Stops counting: (syscalls, seconds counted).
    pub fn finish(mut self) -> Result<(u64, f64), String> {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32)
            .ok_or("perf has no process id")?;
        // perf stat writes its counts when interrupted.
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        let status = self.child.wait().map_err(|e| format!("perf: {e}"))?;
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let _ = std::fs::remove_file(&self.out);
        if text.trim().is_empty() {
            let mut err = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(format!(
                "perf wrote no counts ({status}): {}",
                err.lines().next().unwrap_or("")
            ));
        }
        parse_perf(&text)
    }
}

/// `requests` and the io_uring counters of a `/stats` document:
/// (requests, SQEs submitted, `io_uring_enter` calls); `None` without io_uring.
pub fn parse_stats(json: &str) -> Option<(u64, u64, u64)> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let u = v.get("io_uring")?;
    Some((
        v.get("requests")?.as_u64()?,
        u.get("sqes_submitted")?.as_u64()?,
        u.get("enter_calls")?.as_u64()?,
    ))
}

/// Per request between two `/stats` readings: (SQEs, enters).
pub fn uring_per_request(before: (u64, u64, u64), after: (u64, u64, u64)) -> Option<(f64, f64)> {
    let req = after.0.checked_sub(before.0)?;
    (req > 0).then(|| {
        (
            after.1.saturating_sub(before.1) as f64 / req as f64,
            after.2.saturating_sub(before.2) as f64 / req as f64,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscalls_are_na_with_the_reason() {
        assert_eq!(perf_allowed(true, Some(2), true), Ok(()));
        assert_eq!(perf_allowed(true, Some(-1), false), Ok(()));
        let e = perf_allowed(true, Some(2), false).unwrap_err();
        assert!(e.contains("perf_event_paranoid is 2"), "{e}");
        assert!(perf_allowed(false, Some(-1), true)
            .unwrap_err()
            .contains("not installed"));
        assert!(perf_allowed(true, None, false)
            .unwrap_err()
            .contains("no perf events"));
        // perf ran but could not count the tracepoint.
        let e = parse_perf(
            "<not supported>,,raw_syscalls:sys_enter,0,100.00,,\n5,ns,duration_time,5,100.00,,\n",
        )
        .unwrap_err();
        assert!(
            e.contains("could not count") && e.contains("<not supported>"),
            "{e}"
        );
        assert!(parse_perf("").unwrap_err().contains("no raw_syscalls"));
    }

    #[test]
    fn per_thread_counts_are_summed_over_one_window() {
        // What perf printed for a tokio server with five threads, one second.
        let text = "# started on Mon Dec  7 06:52:59 2026\n\n\
            gvhttpd-tokio-0-21457,4897,,raw_syscalls:sys_enter,24421757,100.00,,\n\
            gvhttpd-logs-21456,10,,raw_syscalls:sys_enter,486201,100.00,,\n\
            gvhttpd-21452,<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n\
            gvhttpd-21452,969759276,ns,duration_time,969759276,100.00,,\n\
            gvhttpd-logs-21456,969759276,ns,duration_time,969759276,100.00,,\n\
            gvhttpd-tokio-0-21457,969759276,ns,duration_time,969759276,100.00,,\n";
        let (n, s) = parse_perf(text).unwrap();
        assert_eq!(n, 4_907);
        assert!((s - 0.969759276).abs() < 1e-12, "{s}");
    }

    #[test]
    fn perf_output_and_stats_parse() {
        let text = "# started on Mon Dec  7 06:15:53 2026\n\n\
                    360906,,raw_syscalls:sys_enter,369787066,100.00,,\n\
                    900220863,ns,duration_time,900220863,100.00,,\n";
        let (n, s) = parse_perf(text).unwrap();
        assert_eq!(n, 360_906);
        assert!((s - 0.900220863).abs() < 1e-12);
        let stats = r#"{"model":"callback","requests":1000,"io_uring":{"sqes_submitted":2500,"cqes_reaped":2400,"enter_calls":700,"sq_full":0,"enobufs":0}}"#;
        assert_eq!(parse_stats(stats), Some((1000, 2500, 700)));
        assert_eq!(parse_stats(r#"{"model":"tokio","requests":5}"#), None);
        let per = uring_per_request((1000, 2500, 700), (3000, 6500, 1200)).unwrap();
        assert_eq!(per, (2.0, 0.25));
        assert_eq!(uring_per_request((5, 0, 0), (5, 1, 1)), None);
    }
}
