//! Green `sleep` (an `IORING_OP_TIMEOUT`) and `nop` (an `IORING_OP_NOP` round trip,
//! the cheapest park-on-I/O + wake there is; the benchmarks use it).

use std::io;
use std::time::Duration;

use io_uring::{opcode, types};

use super::reactor::{submit, GivesWay};
use super::task::ParkReason;

/// Park the calling green thread for `d` (the worker keeps running others).
/// Only a hard interrupt cuts it short (`Interrupted`).
pub fn sleep(d: Duration) -> io::Result<()> {
    sleep_giving_way(d, GivesWay::OnHard)
}

/// Like [`sleep`], but a soft interrupt ("stop waiting", e.g. shutdown) also cuts
/// it short (`Interrupted`), so the caller can re-decide how long to wait.
pub fn sleep_or_interrupted(d: Duration) -> io::Result<()> {
    sleep_giving_way(d, GivesWay::OnSoft)
}

fn sleep_giving_way(d: Duration, gives_way: GivesWay) -> io::Result<()> {
    let ts = types::Timespec::from(d);
    let sqe = opcode::Timeout::new(&ts).build();
    // SAFETY: `ts` lives in this frame, and `submit` returns only after the
    // timeout's CQE (the kernel copies it at submission anyway).
    match unsafe { submit(sqe, None, gives_way, ParkReason::Sleep) } {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Submit a NOP and park until its completion wakes this green thread.
pub fn nop() -> io::Result<()> {
    let sqe = opcode::Nop::new().build();
    // SAFETY: a NOP references no memory.
    unsafe { submit(sqe, None, GivesWay::OnHard, ParkReason::Io) }.map(|_| ())
}
