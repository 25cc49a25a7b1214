//! A file under `--root` whose open would block (a FIFO with no writer) is refused
//! at once as a non-regular file, under every model, and shutdown is not held by it.

mod common;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::{read_response, Server, TempDir};
use gvhttpd::config::Variant;

/// A root holding `pipe` (a FIFO no one writes to) and `a.txt`.
fn root_with_fifo(model: Variant) -> TempDir {
    let dir = TempDir::new(&format!("fifo-{model}"));
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.0.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    std::fs::write(dir.0.join("a.txt"), "hello").unwrap();
    dir
}

/// The FIFO is a 404 (within the harness's read timeout) on a connection that stays
/// usable; with more opens of it in flight, SIGTERM ends the server cleanly within
/// its 1 s grace.
fn refuses_the_fifo_and_shuts_down(mut s: Server) {
    let mut c = s.connect();
    c.write_all(b"GET /static/pipe HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).status, 404, "the FIFO");
    c.write_all(b"GET /static/a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false);
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    let mut others: Vec<_> = (0..4).map(|_| s.connect()).collect();
    for o in &mut others {
        o.write_all(b"GET /static/pipe HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    s.signal(15);
    assert_eq!(
        s.wait_exit(Duration::from_secs(4)),
        Some(0),
        "no clean exit within the grace period"
    );
}

fn fifo_under_root_is_refused_and_shutdown_completes(model: Variant) {
    let dir = root_with_fifo(model);
    let s = Server::start_with(model, &["--root", dir.path(), "--shutdown-grace", "1s"]);
    refuses_the_fifo_and_shuts_down(s);
}

per_model!(fifo_under_root_is_refused_and_shutdown_completes);

/// The dedicated reactor's blocking pool (the fallback for kernels without the
/// ops) opens with a plain `openat2(2)`, which waited for a writer for ever.
#[test]
fn fifo_through_the_dedicated_reactors_blocking_pool() {
    common::run_case(Variant::GreenDedicated, |model| {
        let dir = root_with_fifo(model);
        let mut cmd = Command::new(common::BIN);
        cmd.env("GVHTTPD_GREEN_FALLBACK", "openat2,statx")
            .args(["serve", "--model", model.name(), "--addr", "127.0.0.1:0"])
            .args([
                "--workers",
                "2",
                "--root",
                dir.path(),
                "--shutdown-grace",
                "1s",
            ]);
        refuses_the_fifo_and_shuts_down(Server::spawn(cmd, model));
    });
}
