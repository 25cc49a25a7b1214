//! The CLI flags and subcommands that shape a server, through the real binary:
//! `--root` on a non-directory, `gvhttpd models`, the default `--workers` under
//! `taskset`, `--uring-entries`, `--uring-sqpoll` and `--green-stack-size`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{read_response, Server, TempDir, BIN};
use gvhttpd::config::{Model, Variant};

/// `gvhttpd serve` with `args` must refuse to start: exit status 2 and one
/// `gvhttpd:` or clap `error:` line on stderr naming `mention`, never a panic.
fn refuses_to_start(model: Variant, args: &[&str], mention: &str) {
    let mut child = Command::new(BIN)
        .args(["serve", "--model", model.name(), "--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a server that starts anyway is killed and fails the test.
    let until = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve {args:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?} printed a readiness line");
    let first = err.lines().next().unwrap_or("");
    // clap's `error: ...`, or the error log's `<RFC 3339 time> gvhttpd[PID] error: ...`.
    assert!(
        first.starts_with("error: ") || first.contains(" error: "),
        "{args:?}: {err}"
    );
    assert!(first.contains(mention), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

fn root_must_be_a_directory(model: Variant) {
    let dir = TempDir::new(&format!("root-{model}"));
    let file = dir.0.join("file.txt");
    std::fs::write(&file, "not a directory").unwrap();
    let file = file.to_str().unwrap();
    refuses_to_start(model, &["--root", file], "Not a directory");
    let missing = dir.0.join("missing");
    refuses_to_start(
        model,
        &["--root", missing.to_str().unwrap()],
        "No such file or directory",
    );
}

#[test]
fn models_lists_every_model_and_its_availability() {
    let out = Command::new(BIN).arg("models").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut all_ok = true;
    for model in Variant::ALL {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(model.name()))
            .unwrap_or_else(|| panic!("{model} not listed: {stdout}"));
        let available = gvhttpd::models::check_variant(model).is_ok();
        all_ok &= available;
        let word = line.split_whitespace().nth(1);
        assert_eq!(word == Some("available"), available, "{line}");
    }
    assert_eq!(stdout.lines().count(), Variant::ALL.len(), "{stdout}");
    // Exit 1 exactly when some model cannot run here.
    assert_eq!(
        out.status.code(),
        Some(if all_ok { 0 } else { 1 }),
        "{stdout}"
    );
}

/// Without `--workers`, one worker per CPU the process may run on (`taskset`).
fn default_workers_respect_taskset(model: Variant) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if Command::new("taskset").arg("-V").output().is_err() {
        gvhttpd::uring::record_skip("taskset(1) is not installed");
        return;
    }
    let serve = ["serve", "--model", model.name(), "--addr", "127.0.0.1:0"];
    let mut pinned = Command::new("taskset");
    pinned.args(["-c", "0", BIN]).args(serve);
    let s = Server::spawn(pinned, model);
    assert_eq!(s.stat("workers"), 1, "under taskset -c 0");
    let mut free = Command::new(BIN);
    free.args(serve);
    let s = Server::spawn(free, model);
    assert_eq!(s.stat("workers"), cpus as u64, "with {cpus} CPUs allowed");
}

/// Many connections at once on the smallest ring still all get answered (the
/// submission queue overflows into the backlog); bad sizes are refused; the size
/// given is the size of the ring the kernel set up.
fn small_uring_entries_still_serve(model: Variant) {
    let s = Server::start_with(model, &["--uring-entries", "8"]);
    let conns: Vec<_> = (0..64)
        .map(|_| {
            let mut c = s.connect();
            c.write_all(b"GET /sleep/100 HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            c
        })
        .collect();
    for mut c in conns {
        assert_eq!(read_response(&mut c, false).text(), "slept 100ms");
    }
    for bad in ["0", "12", "65536"] {
        refuses_to_start(model, &["--uring-entries", bad], "--uring-entries");
    }
    // The size reaches the ring: the kernel maps the SQE array of `entries`
    // 64-byte SQEs, visible as an `[io_uring]` mapping of the server.
    let sqe_arrays = |s: &Server| -> Vec<usize> {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", s.pid())).unwrap();
        maps.lines()
            .filter(|l| l.contains("io_uring"))
            .filter_map(|l| {
                let (a, b) = l.split_whitespace().next()?.split_once('-')?;
                Some(usize::from_str_radix(b, 16).ok()? - usize::from_str_radix(a, 16).ok()?)
            })
            .collect()
    };
    let small = Server::start_with(model, &["--uring-entries", "512"]);
    let default = Server::start(model);
    assert_eq!(small.get("/").status, 200);
    assert_eq!(default.get("/").status, 200);
    let (small, default) = (sqe_arrays(&small), sqe_arrays(&default));
    if model.uses_io_uring() {
        assert!(
            small.contains(&(512 * 64)) && !small.contains(&(1024 * 64)),
            "--uring-entries 512: io_uring mappings {small:?}"
        );
        assert!(default.contains(&(1024 * 64)), "default: {default:?}");
    } else {
        assert!(
            small.is_empty() && default.is_empty(),
            "{small:?} {default:?}"
        );
    }
}

/// The io_uring models run a kernel SQ polling thread with `--uring-sqpoll`, and
/// only then; tokio has no ring and no such thread.
fn uring_sqpoll_starts_a_polling_thread(model: Variant) {
    let sq_threads = |s: &Server| -> usize {
        std::fs::read_dir(format!("/proc/{}/task", s.pid()))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.starts_with("iou-sqp"))
            .count()
    };
    let plain = Server::start(model);
    assert_eq!(plain.get("/").status, 200);
    assert_eq!(sq_threads(&plain), 0, "an SQ thread without --uring-sqpoll");
    let s = Server::start_with(model, &["--uring-sqpoll"]);
    for _ in 0..20 {
        assert_eq!(s.get("/json").status, 200);
    }
    if model.uses_io_uring() {
        assert!(
            sq_threads(&s) >= 1,
            "no SQ polling thread with --uring-sqpoll"
        );
    } else {
        assert_eq!(sq_threads(&s), 0, "tokio has no ring");
    }
}

/// `--green-stack-size` sizes the green model's stack slabs (one mapping of
/// `STACKS_PER_SLAB` stacks plus their guard pages); bad sizes are refused.
fn green_stack_size_reaches_the_runtime(model: Variant) {
    let size = 1024 * 1024;
    let s = Server::start_with(model, &["--green-stack-size", &size.to_string()]);
    assert_eq!(s.get("/").status, 200);
    let guard = gvhttpd::green::stack::GUARD_SIZE;
    let slab = gvhttpd::green::stack::STACKS_PER_SLAB * (size + guard);
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", s.pid())).unwrap();
    let slabs = maps
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_whitespace().next()?.split_once('-')?;
            Some(usize::from_str_radix(b, 16).ok()? - usize::from_str_radix(a, 16).ok()?)
        })
        // Two workers' slabs may sit side by side and merge into one mapping.
        .filter(|&len| len % slab == 0)
        .count();
    let want = usize::from(model.model() == Model::Green);
    assert!(
        slabs >= want && (model.model() == Model::Green || slabs == 0),
        "{slabs} mappings of {slab} bytes (1 MiB stacks) in the {model} server"
    );
    for bad in ["100", "0", "134217728"] {
        refuses_to_start(model, &["--green-stack-size", bad], "--green-stack-size");
    }
}

per_model!(
    root_must_be_a_directory,
    default_workers_respect_taskset,
    small_uring_entries_still_serve,
    uring_sqpoll_starts_a_polling_thread,
    green_stack_size_reaches_the_runtime,
);
