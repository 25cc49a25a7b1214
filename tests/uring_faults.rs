//! Fault injection into the io_uring layer (`GVHTTPD_URING_FAULT`, see
//! `gvhttpd::uring::probe::fault_injected`): each fault gives its documented
//! behaviour, with no hang and no panic.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use gvhttpd::config::Variant;

/// `setup-enomem`: every worker's ring fails to set up after the start-up probe
/// passed. An io_uring row exits with status 2 and one line naming the cause and
/// the fix (RLIMIT_MEMLOCK); tokio, which sets up no ring, serves as usual.
fn ring_setup_enomem_is_a_clear_startup_error(model: Variant) {
    let mut cmd = Command::new(common::BIN);
    cmd.env("GVHTTPD_URING_FAULT", "setup-enomem")
        .args(["serve", "--model", model.name(), "--addr", "127.0.0.1:0"])
        .args(["--workers", "2"]);
    if !model.uses_io_uring() {
        let s = Server::spawn(cmd, model);
        assert_eq!(s.get("/").status, 200);
        return;
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("{model}: still running 10 s after its rings failed to set up");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{model}: {err}");
    assert!(
        err.contains("io_uring_setup failed: ENOMEM") && err.contains("ulimit -l"),
        "{model}: no clear start-up error: {err}"
    );
    assert!(!err.contains("panicked"), "{model}: {err}");
}

per_model!(ring_setup_enomem_is_a_clear_startup_error);
