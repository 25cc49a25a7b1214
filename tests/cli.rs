//! What a new user meets at the command line, through the real binary: one
//! duration syntax and one wording of its errors for `serve` and `bench`, and
//! help texts that say what a thing is.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::BIN;

/// Runs `gvhttpd ARGS` to its end (killed after 20 s: a test failure).
fn run_to_exit(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gvhttpd");
    let until = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gvhttpd {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn serve_and_bench_word_a_bad_duration_alike() {
    for (bad, words) in [
        (
            "10 parsecs",
            loadgen::duration::parse("10 parsecs").unwrap_err(),
        ),
        ("soon", loadgen::duration::parse("soon").unwrap_err()),
        ("0", loadgen::duration::NOT_ZERO.to_string()),
    ] {
        let serve = run_to_exit(&["serve", "--addr", "127.0.0.1:0", "--idle-timeout", bad]);
        let err = stderr(&serve);
        assert_eq!(serve.status.code(), Some(2), "{err}");
        assert!(
            err.contains("--idle-timeout") && err.contains(&words),
            "serve {bad:?}: {err}"
        );
        // Port 9 (discard) is never reached: flags are checked before any connection.
        let bench = run_to_exit(&["bench", "http://127.0.0.1:9/", "-d", bad]);
        let err = stderr(&bench);
        assert_eq!(bench.status.code(), Some(2), "{err}");
        assert!(
            err.contains("-d/--duration") && err.contains(&words),
            "bench {bad:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // The same forms are accepted by both (bench's only reaches the URL check).
    // (clap checks flags in order: the duration passes, then --max-conns fails.)
    let serve = run_to_exit(&["serve", "--idle-timeout", "1m30s", "--max-conns", "0"]);
    assert!(stderr(&serve).contains("--max-conns"), "{}", stderr(&serve));
    assert!(
        !stderr(&serve).contains("--idle-timeout"),
        "{}",
        stderr(&serve)
    );
    let bench = run_to_exit(&["bench", "--url", "ftp://x/", "-d", "1m30s"]);
    assert!(!stderr(&bench).contains("--duration"), "{}", stderr(&bench));
}

#[test]
fn help_says_what_a_thing_is_not_where_it_came_from() {
    for args in [
        &["serve", "--help"][..],
        &["bench", "--help"],
        &["bench", "compare", "--help"],
        &["--help"],
    ] {
        let out = run_to_exit(args);
        let help = String::from_utf8_lossy(&out.stdout).to_lowercase();
        for word in ["seed", "tier 2", "issue "] {
            assert!(!help.contains(word), "{args:?} says {word:?}:\n{help}");
        }
    }
    let out = run_to_exit(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("a bare number is seconds"), "{help}");
}
