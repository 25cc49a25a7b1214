//! The open-loop send timer of a load thread: a timerfd in its poll set.

use mio::unix::SourceFd;
use mio::{Interest, Poll, Token};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// The poll token of the open-loop timer (connection tokens stay below 2^31).
pub(super) const TIMER: Token = Token(usize::MAX);

/// A timerfd in the worker's poll set. `epoll_wait` sleeps in whole
/// milliseconds (mio rounds a timeout up), which would make open-loop sends up
/// to a millisecond late and add that to every latency measured from the
/// intended send time; the timerfd wakes the loop when the next send is due.
pub(super) struct SendTimer {
    fd: OwnedFd,
    /// The instant it is armed for.
    armed: Option<Instant>,
}

impl SendTimer {
    pub(super) fn new(poll: &Poll) -> Result<SendTimer, String> {
        use rustix::time::{timerfd_create, TimerfdClockId, TimerfdFlags};
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .map_err(|e| format!("cannot create a timerfd: {e}"))?;
        poll.registry()
            .register(&mut SourceFd(&fd.as_raw_fd()), TIMER, Interest::READABLE)
            .map_err(|e| format!("cannot register the timerfd: {e}"))?;
        Ok(SendTimer { fd, armed: None })
    }

    /// Fire at `at` (`Instant` is CLOCK_MONOTONIC too); no syscall if already armed for it.
    pub(super) fn arm(&mut self, at: Instant, now: Instant) {
        use rustix::time::{timerfd_settime, Itimerspec, TimerfdTimerFlags, Timespec};
        if self.armed == Some(at) {
            return;
        }
        // A zero it_value would disarm it: at least a microsecond.
        let d = at
            .saturating_duration_since(now)
            .max(Duration::from_micros(1));
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: i64::from(d.subsec_nanos()),
            },
        };
        if timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &spec).is_ok() {
            self.armed = Some(at);
        }
    }

    /// It fired: consume the expiry so the next one is a new edge.
    pub(super) fn fired(&mut self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut buf);
        self.armed = None;
    }
}
