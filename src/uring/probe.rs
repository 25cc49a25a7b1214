//! What this kernel's io_uring can do, and building a ring with the best setup flags
//! it accepts.
//!
//! Setup flags are tried best-first and dropped on `EINVAL` (an older kernel that
//! does not know them): `SINGLE_ISSUER | DEFER_TASKRUN` (6.1; completions are only
//! processed when the worker asks for them, in its one `io_uring_enter` per turn),
//! then `COOP_TASKRUN` (5.19; no IPI to interrupt the worker for task work), then
//! none. Per-op features come from `IORING_REGISTER_PROBE` plus the kernel version
//! (multishot accept/recv are flags on opcodes the probe cannot tell apart), and the
//! provided-buffer ring is confirmed by actually registering one ([`super::BufRing`]).

use std::io;

use io_uring::{opcode, IoUring, Probe};

/// io_uring knobs for the callback and green models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UringOptions {
    /// Submission queue entries per ring (power of two).
    pub entries: u32,
    /// Ask for a kernel SQ polling thread (`IORING_SETUP_SQPOLL`).
    pub sqpoll: bool,
}

impl Default for UringOptions {
    fn default() -> Self {
        UringOptions {
            entries: 1024,
            sqpoll: false,
        }
    }
}

/// What the ring in hand supports; decided once per ring, read by the models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// `IORING_SETUP_SINGLE_ISSUER` was accepted.
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN` was accepted.
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN` was accepted.
    pub coop_taskrun: bool,
    /// `IORING_SETUP_SQPOLL` is on (only when asked for with `--uring-sqpoll`).
    pub sqpoll: bool,
    /// `IORING_ACCEPT_MULTISHOT` (5.19): one SQE keeps accepting.
    pub multishot_accept: bool,
    /// Multishot recv with buffer selection (6.0); needs a provided-buffer ring.
    pub multishot_recv: bool,
    /// `IORING_REGISTER_PBUF_RING` (5.19) registers.
    pub pbuf_ring: bool,
    /// Sparse registered (fixed) file tables (5.19).
    pub registered_files: bool,
    /// `IORING_OP_OPENAT2`, `IORING_OP_STATX`, `IORING_OP_READ` (5.6).
    pub file_ops: bool,
    /// `IORING_OP_ASYNC_CANCEL` with `IORING_ASYNC_CANCEL_ALL/ANY` flags (5.19).
    pub cancel_flags: bool,
    /// `IORING_FEAT_NODROP`: completions are never dropped on CQ overflow.
    pub nodrop: bool,
    /// `IORING_FEAT_EXT_ARG`: `io_uring_enter` takes a timeout.
    pub ext_arg: bool,
    /// Kernel `(major, minor)` from `uname`.
    pub kernel: (u32, u32),
}

impl Features {
    /// One line for logs: `kernel 6.8, defer_taskrun, multishot accept ...`.
    pub fn summary(&self) -> String {
        let mut s = format!("kernel {}.{}", self.kernel.0, self.kernel.1);
        let flags = [
            (self.sqpoll, "sqpoll"),
            (self.single_issuer, "single_issuer"),
            (self.defer_taskrun, "defer_taskrun"),
            (self.coop_taskrun, "coop_taskrun"),
            (self.multishot_accept, "multishot_accept"),
            (
                self.multishot_recv && self.pbuf_ring,
                "multishot_recv+pbuf_ring",
            ),
            (self.registered_files, "registered_files"),
            (self.file_ops, "file_ops"),
        ];
        for (on, name) in flags {
            if on {
                s.push_str(", ");
                s.push_str(name);
            }
        }
        s
    }
}

/// The running kernel's `(major, minor)`, `(0, 0)` when `uname` is unreadable.
pub fn kernel_version() -> (u32, u32) {
    parse_release(&rustix::system::uname().release().to_string_lossy())
}

fn parse_release(release: &str) -> (u32, u32) {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Build a ring of `opts.entries` with the best setup flags this kernel accepts.
pub fn build_ring(opts: &UringOptions) -> io::Result<(IoUring, Features)> {
    if super::fault::injected("setup-enomem") {
        return Err(io::Error::from_raw_os_error(libc::ENOMEM));
    }
    let entries = opts.entries.max(1).next_power_of_two();
    let mut f = Features {
        kernel: kernel_version(),
        ..Features::default()
    };
    // (single_issuer, defer_taskrun, coop_taskrun), best first.
    let attempts: &[(bool, bool, bool)] = if opts.sqpoll {
        // DEFER_TASKRUN needs the submitter to reap; SQPOLL submits from a kernel thread.
        &[(true, false, false), (false, false, false)]
    } else {
        &[
            (true, true, false),
            (true, false, true),
            (false, false, true),
            (false, false, false),
        ]
    };
    let mut last_err = None;
    for &(single, defer, coop) in attempts {
        let mut b = IoUring::builder();
        // A CQ twice the SQ: multishot ops post many CQEs per SQE.
        b.setup_cqsize(entries * 2);
        if opts.sqpoll {
            b.setup_sqpoll(1000);
        }
        if single {
            b.setup_single_issuer();
        }
        if defer {
            b.setup_defer_taskrun();
        }
        if coop {
            b.setup_coop_taskrun();
            b.setup_taskrun_flag();
        }
        match b.build(entries) {
            Ok(ring) => {
                f.single_issuer = single;
                f.defer_taskrun = defer;
                f.coop_taskrun = coop;
                f.sqpoll = opts.sqpoll;
                f.nodrop = ring.params().is_feature_nodrop();
                f.ext_arg = ring.params().is_feature_ext_arg();
                probe_ops(&ring, &mut f);
                return Ok((ring, f));
            }
            // EINVAL: a flag this kernel does not know; try the next set.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)))
}

fn probe_ops(ring: &IoUring, f: &mut Features) {
    let mut probe = Probe::new();
    if ring.submitter().register_probe(&mut probe).is_err() {
        return; // pre-5.6 kernel: none of the optional ops.
    }
    let at_least = |maj: u32, min: u32| f.kernel >= (maj, min);
    let has = |code: u8| probe.is_supported(code);
    f.multishot_accept = has(opcode::Accept::CODE) && at_least(5, 19);
    f.pbuf_ring = at_least(5, 19);
    f.multishot_recv = has(opcode::Recv::CODE) && at_least(6, 0);
    f.cancel_flags = has(opcode::AsyncCancel::CODE) && at_least(5, 19);
    f.file_ops = has(opcode::OpenAt2::CODE) && has(opcode::Statx::CODE) && has(opcode::Read::CODE);
    f.registered_files = at_least(5, 19) && ring.submitter().register_files_sparse(1).is_ok() && {
        // Only probing: leave the ring without a file table.
        ring.submitter().unregister_files().is_ok()
    };
}

/// Can the io_uring models send static files zero-copy here? They call
/// `sendfile(2)` on their own thread with the socket in `O_NONBLOCK` mode, and wait
/// for writability with an `IORING_OP_POLL_ADD` when it would block. That mode is
/// only safe where io_uring arms a poll for a socket op that finds nothing to do
/// (`IORING_FEAT_FAST_POLL`, Linux 5.7): before, a recv or send on an `O_NONBLOCK`
/// socket could complete with `EAGAIN`, and the models would issue it again in a
/// loop. Decided once per process (a short-lived ring, as [`check_available`]);
/// `Err` names what is missing, for the start-up line. `GVHTTPD_URING_FAULT=no-fast-poll`
/// makes it missing, so that the fallback (read + send) runs on demand.
pub fn zero_copy_sends() -> Result<(), &'static str> {
    static PROBED: std::sync::OnceLock<Result<(), &'static str>> = std::sync::OnceLock::new();
    *PROBED.get_or_init(|| {
        if super::fault::injected("no-fast-poll") {
            return Err("io_uring without IORING_FEAT_FAST_POLL, forced by \
                        GVHTTPD_URING_FAULT=no-fast-poll");
        }
        let fast_poll = std::thread::Builder::new()
            .name("gvhttpd-uring-probe".into())
            .spawn(|| IoUring::new(8).map(|r| r.params().is_feature_fast_poll()))
            .ok()
            .and_then(|t| t.join().ok());
        match fast_poll {
            Some(Ok(true)) => Ok(()),
            Some(Ok(false)) => Err("io_uring without IORING_FEAT_FAST_POLL (Linux 5.7)"),
            _ => Err("no io_uring"),
        }
    })
}

/// Can this process set up an io_uring at all? `Err` is one line naming the cause
/// and the fix, for `gvhttpd serve` to print before exiting with status 2.
///
/// The probe ring is created and dropped on a short-lived thread: tearing a ring
/// down makes the kernel queue task work (`TWA_SIGNAL`) to every thread that used
/// it, which interrupts that thread's next blocking syscall — a read with
/// `SO_RCVTIMEO` then fails with `EINTR` instead of restarting. The caller's thread
/// (a test, `main`) must not inherit that.
pub fn check_available() -> Result<(), String> {
    let probe = std::thread::Builder::new()
        .name("gvhttpd-uring-probe".into())
        .spawn(|| {
            IoUring::new(8)
                .map(drop)
                .map_err(|e| explain_setup_error(&e))
        });
    match probe {
        Ok(t) => t
            .join()
            .unwrap_or_else(|_| Err("io_uring probe thread panicked".into())),
        Err(e) => Err(format!("cannot start the io_uring probe thread: {e}")),
    }
}

/// Turn an `io_uring_setup` error into "cause; fix".
pub fn explain_setup_error(e: &io::Error) -> String {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let (maj, min) = kernel_version();
    match e.raw_os_error() {
        Some(libc::ENOSYS) => format!(
            "io_uring_setup failed: ENOSYS, kernel {maj}.{min} was built without io_uring \
             (CONFIG_IO_URING) or it is hidden by a container/seccomp filter; run on a kernel \
             >= 5.10 with io_uring enabled, or use --model tokio"
        ),
        Some(libc::EPERM) | Some(libc::EACCES) if disabled == 2 => format!(
            "io_uring_setup failed: {e}: the sysctl kernel.io_uring_disabled=2 disables \
             io_uring for everyone; fix with `sysctl -w kernel.io_uring_disabled=0`, or use \
             --model tokio"
        ),
        Some(libc::EPERM) | Some(libc::EACCES) if disabled == 1 => format!(
            "io_uring_setup failed: {e}: the sysctl kernel.io_uring_disabled=1 allows io_uring \
             only for the group in kernel.io_uring_group; fix with `sysctl -w \
             kernel.io_uring_disabled=0` or add this user to that group, or use --model tokio"
        ),
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            "io_uring_setup failed: {e}: blocked by a seccomp profile (Docker's default \
             blocks io_uring); fix by running with a profile that allows io_uring_setup/enter/\
             register (e.g. `docker run --security-opt seccomp=unconfined`), or use --model tokio"
        ),
        Some(libc::ENOMEM) => format!(
            "io_uring_setup failed: ENOMEM: kernel {maj}.{min} charges rings to \
             RLIMIT_MEMLOCK (kernels before 5.12) and the limit is too low; fix with \
             `ulimit -l unlimited` (or a larger memlock limit), or lower --uring-entries"
        ),
        Some(libc::EINVAL) => format!(
            "io_uring_setup failed: EINVAL: kernel {maj}.{min} rejects the ring parameters; \
             try a smaller power-of-two --uring-entries or drop --uring-sqpoll"
        ),
        _ => format!("io_uring_setup failed: {e}; use --model tokio where io_uring is unavailable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_strings_parse() {
        assert_eq!(parse_release("6.8.0-45-generic"), (6, 8));
        assert_eq!(parse_release("5.19.17"), (5, 19));
        assert_eq!(parse_release("garbage"), (0, 0));
    }

    #[test]
    fn setup_errors_name_cause_and_fix() {
        let m = explain_setup_error(&io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(
            m.contains("RLIMIT_MEMLOCK") && m.contains("ulimit -l"),
            "{m}"
        );
        let m = explain_setup_error(&io::Error::from_raw_os_error(libc::ENOSYS));
        assert!(m.contains("ENOSYS") && m.contains("--model tokio"), "{m}");
        let m = explain_setup_error(&io::Error::from_raw_os_error(libc::EPERM));
        assert!(
            m.contains("io_uring_disabled") || m.contains("seccomp"),
            "{m}"
        );
    }

    #[test]
    fn ring_builds_with_a_feature_set() {
        if crate::uring::skip_if_unavailable() {
            return;
        }
        let (ring, f) = build_ring(&UringOptions {
            entries: 8,
            sqpoll: false,
        })
        .expect("ring");
        assert!(ring.params().sq_entries() >= 8);
        assert!(!f.summary().is_empty());
        assert!(f.kernel.0 >= 5, "{f:?}");
    }
}
