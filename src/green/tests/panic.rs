//! Panics that escape what a green thread's `catch_unwind` covers: a panic report
//! written to a dead stderr, and a payload whose `Drop` panics outside the thread.
//! Either way the thread-locals are reset and the runtime stays usable.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::green::*;
use crate::uring::skip_if_unavailable;

fn rt() -> Runtime {
    Runtime::new(&RuntimeOptions::default()).expect("green runtime")
}

/// Run this test binary again, only the ignored test `name`, with stderr a pipe
/// whose reading end is closed at once (a dead log reader).
fn child_with_dead_stderr(name: &str) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--ignored", "--nocapture"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    child.wait_with_output().unwrap()
}

#[test]
fn green_panic_with_a_dead_stderr_is_still_contained() {
    // Issue 14, item 6: the panic report ran outside the task's catch_unwind and used
    // `eprintln!`, which panics on a broken stderr; that panic escaped the scheduler
    // and left CURRENT / YIELDER pointing at the dead coroutine.
    if skip_if_unavailable() {
        return;
    }
    let name = "green::tests::panic::child_panics_with_a_dead_stderr";
    let out = child_with_dead_stderr(name);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child: {:?}\n{stdout}",
        out.status
    );
}

#[test]
#[ignore = "run as a child process by green_panic_with_a_dead_stderr_is_still_contained"]
fn child_panics_with_a_dead_stderr() {
    // Wait until the parent has closed the pipe: from then on writes fail (EPIPE).
    let until = Instant::now() + Duration::from_secs(10);
    while std::io::stderr().write_all(b".").is_ok() {
        assert!(Instant::now() < until, "stderr never broke");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut r = rt();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        r.block_on(|| {
            let bad = spawn(|| -> u32 { panic!("boom with nobody reading stderr") });
            bad.join().is_err()
        })
    }));
    assert!(
        !in_green_thread(),
        "a dead green thread is still marked running"
    );
    assert!(
        matches!(outcome, Ok(Ok(Ok(true)))),
        "the panic was not contained in its green thread"
    );
    // The worker is still usable.
    assert_eq!(rt().block_on(|| 5).unwrap().unwrap(), 5);
}

/// A panic payload whose `Drop` panics: dropped outside every `catch_unwind` once
/// a detached green thread's result goes away.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("a panic payload that panics when dropped");
        }
    }
}

#[test]
fn a_panic_escaping_the_scheduler_leaves_nothing_running() {
    // Issue 14, item 6: whatever escapes `run_ready`, the thread-locals are reset and
    // the runtime uninstalled, so a later `yield_now` cannot reach a dead Yielder.
    if skip_if_unavailable() {
        return;
    }
    let mut r = rt();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        r.block_on(|| {
            // Detached: its result (the payload) is dropped when the thread ends.
            drop(spawn(|| std::panic::panic_any(PanicOnDrop)));
            yield_now();
            yield_now();
        })
    }));
    assert!(outcome.is_err(), "the payload's panic should have escaped");
    assert!(
        !in_green_thread(),
        "a dead green thread is still marked running"
    );
    yield_now(); // a no-op outside green threads, not a jump into a dead coroutine
                 // The same runtime runs again: its context was uninstalled, the dead task removed.
    assert_eq!(r.block_on(|| 6).unwrap().unwrap(), 6);
}
