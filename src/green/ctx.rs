//! [`Ctx`]: everything one worker's green threads share — its task table, its
//! reactor, its place in a steal group. Installed in the worker's thread-locals
//! ([`super::tls`]) while its loop runs.

use std::cell::{Cell, OnceCell, RefCell};

use super::backend::Reactor;
use super::steal::group::Member;
use super::task::Sched;

/// Everything one worker's green threads share.
pub(crate) struct Ctx {
    pub sched: RefCell<Sched>,
    pub reactor: RefCell<Reactor>,
    /// This worker's place in its steal group (`Runtime::with_steal`), if any.
    pub steal: OnceCell<Member>,
    /// Unique per runtime in the process (a join wake-up names the joiner's runtime).
    pub id: u64,
    /// The worker index this runtime reports as (`Runtime::with_stats` / `with_steal`).
    pub worker: Cell<usize>,
}
