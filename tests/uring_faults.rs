//! Fault injection into the io_uring layer (`GVHTTPD_URING_FAULT`, see
//! `gvhttpd::uring::fault`): each fault gives its documented behaviour, with no
//! hang and no panic.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{read_responses, Server, TempDir};
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

/// `short-send`: every send asks the kernel for at most 7 bytes. A file, an echo
/// and a small reply, pipelined, arrive byte for byte (on tokio, which has no
/// ring, the fault does nothing: the same check).
fn short_sends_are_resumed(model: Variant) {
    file_echo_and_reply_under(model, "short-send");
}

/// `eintr`: every other `io_uring_enter` is interrupted. The same exchange, byte
/// for byte.
fn interrupted_enters_are_retried(model: Variant) {
    file_echo_and_reply_under(model, "eintr");
}

/// `ecanceled`: every other socket recv and send ends with `-ECANCELED`, nothing
/// moved, as if cancelled from elsewhere. Each is issued again: the same exchange,
/// byte for byte (before, callback closed on such a send and green on either).
fn cancelled_socket_ops_are_reissued(model: Variant) {
    file_echo_and_reply_under(model, "ecanceled");
}

/// `eagain`: every other socket recv and send ends with `-EAGAIN`, nothing moved.
/// The same exchange, byte for byte.
fn eagain_socket_ops_are_reissued(model: Variant) {
    file_echo_and_reply_under(model, "eagain");
}

/// A file, an echo and a small reply, pipelined, under `fault`: byte for byte.
fn file_echo_and_reply_under(model: Variant, fault: &str) {
    let dir = TempDir::new(&format!("{fault}-{model}"));
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.0.join("big.bin"), &big).unwrap();
    let mut cmd = Command::new(common::BIN);
    cmd.env("GVHTTPD_URING_FAULT", fault)
        .args(["serve", "--model", model.name(), "--addr", "127.0.0.1:0"])
        .args(["--workers", "2", "--root", dir.path()]);
    let s = Server::spawn(cmd, model);
    let body: Vec<u8> = (0..20_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut req = b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
    req.extend_from_slice(
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    req.extend_from_slice(&body);
    req.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let mut c = s.connect();
    c.write_all(&req).unwrap();
    let r = read_responses(&mut c, &[false, false, false]);
    assert_eq!(r[0].status, 200);
    assert!(r[0].body == big, "{model}: the file differs");
    assert_eq!(r[1].status, 200);
    assert!(r[1].body == body, "{model}: the echo differs");
    assert_eq!((r[2].status, r[2].text().as_str()), (200, "Hello, World!"));
}

/// `tiny-bufring`: two receive buffers for the whole worker. Clients sending at
/// once run the pool dry (ENOBUFS, counted in `/stats`, on the model that uses it:
/// callback), and every pipelined request is still answered, in order.
fn exhausted_buffer_ring_is_rearmed(model: Variant) {
    let mut cmd = Command::new(common::BIN);
    cmd.env("GVHTTPD_URING_FAULT", "tiny-bufring")
        .args(["serve", "--model", model.name(), "--addr", "127.0.0.1:0"])
        .args(["--workers", "1"]);
    let s = Server::spawn(cmd, model);
    let addr = s.addr;
    let clients: Vec<_> = (0..24)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
                let body = vec![b'a' + (i % 26) as u8; 3000];
                let mut req = Vec::new();
                for _ in 0..4 {
                    req.extend_from_slice(
                        format!(
                            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    );
                    req.extend_from_slice(&body);
                }
                c.write_all(&req).unwrap();
                let r = read_responses(&mut c, &[false; 4]);
                assert!(
                    r.iter().all(|r| r.status == 200 && r.body == body),
                    "client {i}"
                );
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    if model.model() == gvhttpd::config::Model::Callback {
        assert!(
            s.stat("enobufs") > 0,
            "{model}: the buffer ring never ran dry"
        );
    }
}

per_model!(
    ring_setup_enomem_is_a_clear_startup_error,
    short_sends_are_resumed,
    interrupted_enters_are_retried,
    cancelled_socket_ops_are_reissued,
    eagain_socket_ops_are_reissued,
    exhausted_buffer_ring_is_rearmed
);
