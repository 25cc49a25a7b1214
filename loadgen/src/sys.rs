//! Linux facts the self-checks need: CPU time of this process and of the server
//! (`/proc/PID/stat`), peak and current RSS (`/proc/PID/status`), machine-wide CPU
//! accounting including steal (`/proc/stat`), thread pinning and the fd limit.

use std::fs;
use std::time::Duration;

/// Clock ticks per second used by `/proc/*/stat`.
pub fn clock_ticks() -> u64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100,
        t => t,
    }
}

/// utime + stime of process `pid` ("self" for this one).
pub fn process_cpu(pid: &str) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields resume after the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split_whitespace();
    // After ')' field 0 is state (3rd overall); utime/stime are the 14th/15th overall.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = clock_ticks();
    Some(Duration::from_micros((utime + stime) * 1_000_000 / ticks))
}

/// A `kB` field (e.g. `VmHWM`, `VmRSS`) of `/proc/PID/status`, in KiB.
pub fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Number of CPUs process `pid` may run on (`Cpus_allowed_list`).
pub fn allowed_cpus(pid: &str) -> Option<usize> {
    allowed_cpu_list(pid).map(|v| v.len())
}

/// The CPUs a process (`"self"` or a PID) may run on (`Cpus_allowed_list`).
pub fn allowed_cpu_list(pid: &str) -> Option<Vec<usize>> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    parse_cpu_list(list.trim()).ok()
}

/// Machine-wide CPU time from the first line of `/proc/stat`, in ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MachineCpu {
    /// All time, idle included.
    pub total: u64,
    /// Non-idle time (user, nice, system, irq, softirq), steal excluded.
    pub busy: u64,
    pub steal: u64,
}

impl MachineCpu {
    /// Reads `/proc/stat` now (zeros if unreadable).
    pub fn now() -> MachineCpu {
        fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| Self::parse(&s))
            .unwrap_or_default()
    }

    fn parse(s: &str) -> Option<MachineCpu> {
        let line = s.lines().next()?.strip_prefix("cpu ")?;
        let v: Vec<u64> = line
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let get = |i: usize| v.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal (guest is inside user).
        let busy = get(0) + get(1) + get(2) + get(5) + get(6);
        let steal = get(7);
        Some(MachineCpu {
            total: busy + get(3) + get(4) + steal,
            busy,
            steal,
        })
    }

    /// Difference `self - earlier`.
    pub fn since(&self, earlier: &MachineCpu) -> MachineCpu {
        MachineCpu {
            total: self.total.saturating_sub(earlier.total),
            busy: self.busy.saturating_sub(earlier.busy),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }
}

/// Kernel release (`uname -r`).
pub fn kernel() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Host name.
pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// CPU model name from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// CPUs on the machine (not just those this thread may use).
pub fn cpu_count() -> usize {
    fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Parses a CPU list like `1`, `0,2` or `0-3,6`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim) {
        let bad = || format!("bad CPU list '{s}': expected e.g. 1 or 0,2 or 0-3");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b >= 1024 {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    if cpus.iter().any(|&c| c >= 1024) {
        return Err(format!(
            "bad CPU list '{s}': CPU numbers must be below 1024"
        ));
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Pins the calling thread to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> Result<(), String> {
    let mut set = rustix::thread::CpuSet::new();
    for &c in cpus {
        if c >= rustix::thread::CpuSet::MAX_CPU {
            return Err(format!(
                "cannot pin to CPU {c}: CPU numbers must be below {}",
                rustix::thread::CpuSet::MAX_CPU
            ));
        }
        set.set(c);
    }
    rustix::thread::sched_setaffinity(None, &set)
        .map_err(|e| format!("cannot pin to CPUs {cpus:?}: {e}"))
}

/// Raises the soft open-files limit to at least `want` (up to the hard limit);
/// returns the soft limit now in force (`u64::MAX` for no limit).
pub fn raise_nofile(want: u64) -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let cur = lim.current.unwrap_or(u64::MAX);
    if cur < want {
        let new = want.min(lim.maximum.unwrap_or(u64::MAX));
        let raised = Rlimit {
            current: Some(new),
            maximum: lim.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return new;
        }
    }
    cur
}

/// The hard open-files limit (`u64::MAX` for none): how far
/// [`raise_nofile`] can go.
pub fn nofile_hard_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX)
}

/// Processes with a TCP socket listening on `port` (IPv4 or IPv6, any local
/// address), found by matching the socket inodes of `/proc/net/tcp{,6}` against
/// `/proc/*/fd`. Processes whose descriptors this user cannot read are missed.
pub fn listening_pids(port: u16) -> Vec<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        return Vec::new();
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let mut pids = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return pids;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            fs::read_link(fd.path())
                .ok()
                .and_then(|t| t.to_str().map(|t| wanted.iter().any(|w| w == t)))
                .unwrap_or(false)
        });
        if holds {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

/// Inodes of the sockets in LISTEN state on `port` in one `/proc/net/tcp`-style table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = f.get(1)?;
            let state = f.get(3)?;
            let inode: u64 = f.get(9)?.parse().ok()?;
            let p = u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()?;
            (p == port && *state == LISTEN && inode != 0).then_some(inode)
        })
        .collect()
}

/// The command name of process `pid` (`/proc/PID/comm`).
pub fn process_name(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_inodes_match_port_and_state() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0 20 4 30 10 -1\n\
   2: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4444 1 0 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 8080), vec![4242]);
        assert_eq!(listening_inodes(table, 8081), vec![4444]);
        assert!(listening_inodes(table, 80).is_empty());
    }

    #[test]
    fn finds_this_process_listening() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(listening_pids(port), vec![std::process::id()]);
        drop(l);
        assert!(listening_pids(port).is_empty());
    }
}
