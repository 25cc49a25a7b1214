//! Graceful shutdown shared by every model (`http-behaviour.md` case 43).
//!
//! A [`Shutdown`] is triggered once, by SIGINT/SIGTERM (see [`Shutdown::install_signal_handlers`])
//! or by code. Triggering sets a flag and runs every registered waker, so each model
//! can wake its event loop in its own way: an eventfd write for an io_uring worker,
//! a `Notify` for tokio. After the trigger a model stops accepting, closes idle
//! connections, lets responses in flight finish (marked `Connection: close`) and
//! returns; [`Shutdown::deadline`] bounds how long that may take.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

type Waker = Box<dyn Fn() + Send + Sync>;

pub struct Shutdown {
    /// INVARIANT: becomes true once and never false again; `at` is set before it.
    triggered: AtomicBool,
    at: OnceLock<Instant>,
    grace: Duration,
    wakers: Mutex<Vec<Waker>>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .field("grace", &self.grace)
            .finish()
    }
}

impl Shutdown {
    pub fn new(grace: Duration) -> Arc<Self> {
        Arc::new(Shutdown {
            triggered: AtomicBool::new(false),
            at: OnceLock::new(),
            grace,
            wakers: Mutex::new(Vec::new()),
        })
    }

    #[inline]
    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::Acquire)
    }

    /// When in-flight work must be abandoned: trigger time + grace.
    pub fn deadline(&self) -> Option<Instant> {
        self.at.get().map(|t| *t + self.grace)
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Start shutting down; idempotent.
    pub fn trigger(&self) {
        self.trigger_at(Instant::now());
    }

    /// Start shutting down as of `at` (the grace deadline is `at` + grace);
    /// idempotent: only the first trigger counts. [`Shutdown::trigger`] is this
    /// with the current time; tests of the connection policy choose the instant.
    pub fn trigger_at(&self, at: Instant) {
        let _ = self.at.set(at);
        if !self.triggered.swap(true, Ordering::AcqRel) {
            let wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
            for w in wakers.iter() {
                w();
            }
        }
    }

    /// Run `waker` on trigger (at once if already triggered).
    pub fn on_trigger(&self, waker: impl Fn() + Send + Sync + 'static) {
        let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_triggered() {
            waker();
        }
        wakers.push(Box::new(waker));
    }

    /// Trigger on SIGINT or SIGTERM, from a small dedicated thread.
    pub fn install_signal_handlers(self: &Arc<Self>) -> std::io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("gvhttpd-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    // Trigger first: nothing below may keep the server from stopping.
                    me.trigger();
                    let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                    // The error log never panics on a closed stderr.
                    crate::log::event(
                        crate::log::Level::Info,
                        format_args!("{name} received, shutting down (grace {:?})", me.grace),
                    );
                }
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn trigger_runs_wakers_once_and_late_wakers_immediately() {
        let s = Shutdown::new(Duration::from_secs(1));
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        s.on_trigger(move || {
            h.fetch_add(1, Ordering::SeqCst);
        });
        assert!(!s.is_triggered() && s.deadline().is_none());
        s.trigger();
        s.trigger();
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let h = hits.clone();
        s.on_trigger(move || {
            h.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(hits.load(Ordering::SeqCst), 11);
        assert!(s.deadline().unwrap() > Instant::now());
    }
}
