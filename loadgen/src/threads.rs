//! A process's CPU time to the nanosecond, and its context switches, summed over
//! its threads (`/proc/PID/task/*/schedstat` and `.../status`).
//!
//! Why not `/proc/PID/stat`: its utime and stime count 10 ms clock ticks, so a
//! 3 s run of a server at 5 % CPU is 15 ticks, and "1.36× the CPU" can be five
//! ticks. The first field of a thread's `schedstat` is the time it ran on a
//! CPU, in nanoseconds, as the scheduler accounts it (updated at every context
//! switch and scheduler tick of a running thread, so a reading is exact to well
//! under a millisecond). The user/system split has no nanosecond source in
//! `/proc`: it is the tick ratio of utime to stime applied to the nanosecond
//! total, and is only as good as the ticks (say so next to it).
//!
//! Threads that exit between two readings take their time with them: the
//! servers keep their threads for the life of a run, and a thread created in
//! between counts from its start, which lies inside the window.

use serde::{Deserialize, Serialize};
use std::fs;

/// One reading of a process's threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    /// Sum of the threads' run time, ns.
    pub cpu_ns: u64,
    /// utime and stime of the whole process (exited threads included), ticks.
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub voluntary: u64,
    pub involuntary: u64,
    pub threads: usize,
}

/// What the server's threads did between two readings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadCpu {
    pub cpu_ns: u64,
    /// Share of `cpu_ns` spent in user mode, from the 10 ms tick ratio (`None`
    /// when no tick fell in the window).
    pub user_share: Option<f64>,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    /// Threads at the end.
    pub threads: usize,
}

/// The first field of a `schedstat` line: run time in ns.
pub fn parse_schedstat(s: &str) -> Option<u64> {
    s.split_whitespace().next()?.parse().ok()
}

/// (voluntary, involuntary) context switches from a `status` file.
pub fn parse_switches(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((
        field("voluntary_ctxt_switches")?,
        field("nonvoluntary_ctxt_switches")?,
    ))
}

/// utime and stime (ticks) from a `/proc/PID/stat` line.
pub fn parse_stat_ticks(stat: &str) -> Option<(u64, u64)> {
    // The command name may contain spaces; fields resume after the last ')'.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let mut f = after.split_whitespace();
    // After ')' field 0 is state (3rd overall); utime/stime are the 14th/15th.
    let utime = f.nth(11)?.parse().ok()?;
    let stime = f.next()?.parse().ok()?;
    Some((utime, stime))
}

/// Reads process `pid`'s threads now; `None` when the process or its
/// `schedstat` (a kernel without CONFIG_SCHED_INFO) cannot be read.
pub fn read(pid: u32) -> Option<Reading> {
    let base = format!("/proc/{pid}");
    let (utime_ticks, stime_ticks) =
        parse_stat_ticks(&fs::read_to_string(format!("{base}/stat")).ok()?)?;
    let mut r = Reading {
        utime_ticks,
        stime_ticks,
        ..Reading::default()
    };
    for t in fs::read_dir(format!("{base}/task")).ok()?.flatten() {
        let dir = t.path();
        // A thread that exited since the listing is simply not counted.
        let Some(ns) = fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| parse_schedstat(&s))
        else {
            continue;
        };
        r.cpu_ns += ns;
        r.threads += 1;
        if let Some((v, i)) = fs::read_to_string(dir.join("status"))
            .ok()
            .and_then(|s| parse_switches(&s))
        {
            r.voluntary += v;
            r.involuntary += i;
        }
    }
    (r.threads > 0).then_some(r)
}

impl Reading {
    /// What happened from `earlier` to `self`.
    pub fn since(&self, earlier: &Reading) -> ThreadCpu {
        let du = self.utime_ticks.saturating_sub(earlier.utime_ticks);
        let ds = self.stime_ticks.saturating_sub(earlier.stime_ticks);
        ThreadCpu {
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            user_share: (du + ds > 0).then(|| du as f64 / (du + ds) as f64),
            voluntary_switches: self.voluntary.saturating_sub(earlier.voluntary),
            involuntary_switches: self.involuntary.saturating_sub(earlier.involuntary),
            threads: self.threads,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_proc_files() {
        assert_eq!(parse_schedstat("208310 3824072 2\n"), Some(208_310));
        assert_eq!(parse_schedstat(""), None);
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(parse_switches(status), Some((12, 3)));
        assert_eq!(parse_switches("Name:\tx\n"), None);
        let stat = "42 (a) b) S 1 2 3 4 5 6 7 8 9 10 250 40 0 0 20 0 3 0";
        assert_eq!(parse_stat_ticks(stat), Some((250, 40)));
    }

    #[test]
    fn a_window_splits_the_nanoseconds_by_the_tick_ratio() {
        let a = Reading {
            cpu_ns: 1_000,
            utime_ticks: 10,
            stime_ticks: 10,
            voluntary: 5,
            involuntary: 1,
            threads: 2,
        };
        let b = Reading {
            cpu_ns: 31_000_000,
            utime_ticks: 13,
            stime_ticks: 11,
            voluntary: 9,
            involuntary: 1,
            threads: 3,
        };
        let d = b.since(&a);
        assert_eq!(d.cpu_ns, 30_999_000);
        assert_eq!(d.user_share, Some(0.75));
        assert_eq!(
            (d.voluntary_switches, d.involuntary_switches, d.threads),
            (4, 0, 3)
        );
        // No tick in the window: no split, not a made-up one.
        assert_eq!(a.since(&a).user_share, None);
    }

    #[test]
    fn this_process_can_be_read_to_the_nanosecond() {
        let before = read(std::process::id()).expect("schedstat of this process");
        // Burn a little CPU: far less than one 10 ms tick would show.
        let mut x = 0u64;
        for i in 0..200_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = read(std::process::id()).unwrap();
        let d = after.since(&before);
        assert!(d.cpu_ns > 0, "{d:?}");
        assert!(after.threads >= 1);
    }
}
