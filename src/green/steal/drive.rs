//! The worker loop of a runtime in a steal group: the local loop
//! (`Runtime::drive`) plus refilling from the group before it would block, and
//! the idle protocol of the module docs.

use std::io;
use std::time::Instant;

use super::refill;
use crate::green::reactor;
use crate::green::sched::{self, Ctx};

/// Drive `ctx` (a group member) until every green thread on it has finished and
/// its stealable queue is empty. `publish` runs once per turn.
///
/// There is no per-worker deadlock check here (the local loop has one): a thread
/// parked with nothing in flight on this worker may be woken from another worker
/// (a cross-worker join), so an idle worker blocks with its ring's wake armed.
pub(crate) fn drive(ctx: &Ctx, publish: impl Fn()) -> io::Result<()> {
    let Some(m) = ctx.steal.get() else {
        return Err(io::Error::other(
            "steal::drive on a runtime outside a group",
        ));
    };
    let mut busy_passes = 0u32;
    loop {
        sched::run_ready(ctx, crate::green::PASS_BUDGET);
        publish();
        let mut s = ctx.sched.borrow_mut();
        if s.runq.is_empty() && refill(m, &mut s) > 0 {
            continue;
        }
        // `refill` took back all this worker offered: nothing of it is queued.
        if s.tasks.is_empty() {
            return Ok(());
        }
        let mut r = ctx.reactor.borrow_mut();
        if !s.timers.is_empty() {
            reactor::fire_timers(&mut s, &mut r, Instant::now());
        }
        let idle = s.runq.is_empty();
        drop(s);
        if idle {
            busy_passes = 0;
            m.go_idle();
            // Look once more after announcing: an owner that published before it
            // saw our flag is found here (module docs, "Idle").
            let arrived = refill(m, &mut ctx.sched.borrow_mut());
            if arrived > 0 {
                m.end_idle();
                drop(r);
                continue;
            }
            if let Some(ring) = r.io.ring_mut() {
                ring.arm_wake();
            }
            let entered = r.enter(1);
            m.end_idle();
            entered?;
        } else if r.pushed > 0 {
            r.enter(0)?;
        } else {
            busy_passes += 1;
            if busy_passes.is_multiple_of(16) {
                r.poll()?;
            }
        }
        drop(r);
        reactor::dispatch(ctx);
    }
}
