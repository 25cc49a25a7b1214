//! Small pieces of the driver: compact timeouts.

use std::time::Duration;

use crate::config::Timeouts;
use crate::http::conn::Phase;

/// The connection timeouts in milliseconds (a quarter of [`Timeouts`]' size: every
/// open connection carries them).
#[derive(Clone, Copy, Debug)]
pub(super) struct Timers {
    header: u32,
    body: u32,
    idle: u32,
    write: u32,
    response: u32,
}

impl From<&Timeouts> for Timers {
    fn from(t: &Timeouts) -> Timers {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        Timers {
            header: ms(t.header),
            body: ms(t.body),
            idle: ms(t.idle),
            write: ms(t.write),
            response: ms(t.response),
        }
    }
}

impl Timers {
    /// The read timeout of a phase (`Busy` uses the idle timeout as a backstop).
    pub(super) fn read(&self, p: Phase) -> Duration {
        Duration::from_millis(u64::from(match p {
            Phase::Idle | Phase::Busy => self.idle,
            Phase::Head => self.header,
            Phase::Body => self.body,
        }))
    }

    pub(super) fn write(&self) -> Duration {
        Duration::from_millis(u64::from(self.write))
    }

    pub(super) fn response(&self) -> Duration {
        Duration::from_millis(u64::from(self.response))
    }
}
