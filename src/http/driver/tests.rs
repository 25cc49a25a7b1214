//! Driver policy tests, sans-IO: feed bytes and events, check the actions.

use std::time::{Duration, Instant};

use super::*;
use crate::http::test_handler::TestHandler;
use crate::http::{FileError, FileMeta};
use crate::shutdown::Shutdown;

const T: Timeouts = Timeouts {
    header: Duration::from_secs(10),
    body: Duration::from_secs(30),
    idle: Duration::from_secs(60),
    write: Duration::from_secs(30),
    response: Duration::from_secs(120),
    shutdown_grace: Duration::from_secs(5),
};

struct Rig {
    d: Driver,
    /// Leaked (a few hundred bytes per test) so events can borrow it while the
    /// driver is borrowed mutably.
    stats: &'static WorkerStats,
    /// The server's shutdown signal (grace zero: a test triggers it as of the
    /// grace deadline it wants, [`Rig::shutdown`]).
    stop: &'static Shutdown,
    t0: Instant,
}

impl Rig {
    fn new() -> Rig {
        Rig {
            d: Driver::new(Limits::default(), T),
            stats: Box::leak(Box::default()),
            stop: Box::leak(Box::new(Shutdown::new(Duration::ZERO))),
            t0: Instant::now(),
        }
    }
    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }
    fn env(&self, ms: u64) -> Env<'static, TestHandler> {
        Env::new(&TestHandler, self.stats, self.stop, self.at(ms))
    }
    /// Trigger shutdown with its grace deadline at `grace_ms`, and tell the
    /// driver at `ms` (as a model's wake-up on the trigger does).
    fn shutdown(&mut self, ms: u64, grace_ms: u64) -> Action {
        self.stop.trigger_at(self.at(grace_ms));
        let e = self.env(ms);
        self.d.shutdown(&e)
    }
    fn start(&mut self) -> Action {
        let e = self.env(0);
        self.d.start(&e)
    }
    fn feed(&mut self, ms: u64, bytes: &[u8]) -> Action {
        let e = self.env(ms);
        self.d.feed(&e, bytes)
    }
    /// Send everything pending in one go; returns the bytes and the next action.
    fn send_all(&mut self, ms: u64) -> (String, Action) {
        let out = String::from_utf8_lossy(self.d.pending()).into_owned();
        let n = self.d.pending().len();
        let e = self.env(ms);
        (out, self.d.sent(&e, n))
    }
    fn timed_out(&mut self, ms: u64) -> Action {
        let e = self.env(ms);
        self.d.timed_out(&e)
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

#[test]
fn keep_alive_round_trip_and_idle_connections_hold_no_buffers() {
    let mut r = Rig::new();
    let a = r.start();
    assert_eq!(
        a,
        Action::Recv {
            deadline: r.at(0) + T.idle,
            idle: true
        }
    );
    assert!(!r.d.holds_buffers());
    let a = r.feed(1, GET);
    assert_eq!(
        a,
        Action::Send {
            deadline: r.at(1) + T.write,
            more: false,
        }
    );
    let (out, a) = r.send_all(2);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\nHello, World!"), "{out}");
    assert_eq!(
        a,
        Action::Recv {
            deadline: r.at(2) + T.idle,
            idle: true
        }
    );
    assert!(!r.d.holds_buffers(), "an idle connection holds no buffer");
}

#[test]
fn a_partial_send_continues_with_a_fresh_write_deadline() {
    let mut r = Rig::new();
    r.start();
    r.feed(0, GET);
    let total = r.d.pending().len();
    let e = r.env(100);
    let a = r.d.sent(&e, 10);
    assert_eq!(
        a,
        Action::Send {
            deadline: r.at(100) + T.write,
            more: false,
        }
    );
    assert_eq!(r.d.pending().len(), total - 10);
    // An owned-buffer model lends the buffer whole and gets it back.
    let (buf, range) = r.d.lend_pending();
    assert_eq!(range, 10..total);
    r.d.restore_pending(buf);
    let e = r.env(101);
    assert!(matches!(
        r.d.sent(&e, total - 10),
        Action::Recv { idle: true, .. }
    ));
}

#[test]
fn header_timeout_answers_408_then_lingers() {
    let mut r = Rig::new();
    r.start();
    let a = r.feed(5, b"GET / HTTP/1.1\r\nHo");
    let head_deadline = r.at(5) + T.header;
    assert_eq!(
        a,
        Action::Recv {
            deadline: head_deadline,
            idle: false
        }
    );
    // More bytes do not move the header deadline (a trickle cannot extend it).
    assert_eq!(
        r.feed(3000, b"st"),
        Action::Recv {
            deadline: head_deadline,
            idle: false
        }
    );
    // A timer that fires early changes nothing.
    assert_eq!(
        r.timed_out(4000),
        Action::Recv {
            deadline: head_deadline,
            idle: false
        }
    );
    assert!(matches!(r.timed_out(10_005), Action::Send { .. }));
    let (out, a) = r.send_all(10_006);
    assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    assert!(out.contains("Connection: close"), "{out}");
    assert_eq!(a, Action::ShutdownWrite);
    let e = r.env(10_006);
    let a = r.d.write_shut(&e);
    assert_eq!(
        a,
        Action::Drain {
            deadline: r.at(10_006) + LINGER
        }
    );
    let e = r.env(10_007);
    assert_eq!(r.d.eof(&e), Action::Close);
}

#[test]
fn an_idle_timeout_closes_without_a_response() {
    let mut r = Rig::new();
    r.start();
    assert_eq!(r.timed_out(60_000), Action::Close);
}

#[test]
fn the_body_phase_gets_the_body_timeout() {
    let mut r = Rig::new();
    r.start();
    let a = r.feed(
        7,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
    );
    assert_eq!(
        a,
        Action::Recv {
            deadline: r.at(7) + T.body,
            idle: false
        }
    );
    assert!(matches!(r.timed_out(30_007), Action::Send { .. }));
    let (out, _) = r.send_all(30_008);
    assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
}

#[test]
fn sleep_waits_until_its_end_even_if_the_timer_fires_early() {
    let mut r = Rig::new();
    r.start();
    let a = r.feed(10, b"GET /sleep/50 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(a, Action::Sleep { until: r.at(60) });
    let e = r.env(30);
    assert_eq!(r.d.slept(&e), Action::Sleep { until: r.at(60) });
    let e = r.env(60);
    assert!(matches!(r.d.slept(&e), Action::Send { .. }));
    let (out, _) = r.send_all(61);
    assert!(out.ends_with("slept 50ms"), "{out}");
}

#[test]
fn a_file_streams_in_chunks_at_offsets_then_closes() {
    let mut r = Rig::new();
    r.start();
    assert_eq!(
        r.feed(0, b"GET /static/x HTTP/1.1\r\nHost: a\r\n\r\n"),
        Action::Open
    );
    assert_eq!(r.d.file_path(), "x");
    let size = (FILE_CHUNK + 1000) as u64;
    let e = r.env(1);
    assert!(matches!(
        r.d.file_opened(&e, Ok(FileMeta::sized(size))),
        Action::Send { .. }
    ));
    let (head, a) = r.send_all(1);
    assert!(
        head.contains(&format!("Content-Length: {size}\r\n")),
        "{head}"
    );
    assert_eq!(
        a,
        Action::ReadFile {
            offset: 0,
            len: FILE_CHUNK
        }
    );
    r.d.file_buf().fill(b'a');
    let e = r.env(2);
    assert!(matches!(r.d.file_read(&e, FILE_CHUNK), Action::Send { .. }));
    assert_eq!(r.d.pending().len(), FILE_CHUNK);
    let (_, a) = r.send_all(2);
    assert_eq!(
        a,
        Action::ReadFile {
            offset: FILE_CHUNK as u64,
            len: 1000
        }
    );
    // A short read is fine: the rest comes at the next offset.
    let e = r.env(3);
    r.d.file_read(&e, 400);
    let (_, a) = r.send_all(3);
    assert_eq!(
        a,
        Action::ReadFile {
            offset: FILE_CHUNK as u64 + 400,
            len: 600
        }
    );
    let e = r.env(4);
    r.d.file_read(&e, 600);
    let (_, a) = r.send_all(4);
    assert_eq!(a, Action::CloseFile);
    let e = r.env(5);
    assert!(matches!(
        r.d.file_closed(&e),
        Action::Recv { idle: true, .. }
    ));
    assert!(!r.d.holds_buffers());
}

#[test]
fn a_file_that_shrank_cuts_the_connection() {
    let mut r = Rig::new();
    r.start();
    r.feed(0, b"GET /static/x HTTP/1.1\r\nHost: a\r\n\r\n");
    let e = r.env(1);
    r.d.file_opened(&e, Ok(FileMeta::sized(10)));
    r.send_all(1);
    let e = r.env(2);
    assert_eq!(r.d.file_read(&e, 0), Action::Close);
}

#[test]
fn zero_copy_sends_the_file_from_its_offsets_with_no_buffer_then_closes() {
    let mut r = Rig::new();
    r.d.set_zero_copy(true);
    r.start();
    let req = b"GET /static/x HTTP/1.1\r\nHost: a\r\nRange: bytes=100-\r\n\r\n";
    assert_eq!(r.feed(0, req), Action::Open);
    let e = r.env(1);
    r.d.file_opened(&e, Ok(FileMeta::sized(1100)));
    let (head, a) = r.send_all(1);
    assert!(head.contains("\r\nContent-Length: 1000\r\n"), "{head}");
    let Action::SendFile { deadline } = a else {
        panic!("{a:?}")
    };
    assert_eq!(r.d.file_span(), (100, 1000));
    assert!(
        r.d.file_buf().is_empty(),
        "a zero-copy send reads into no buffer"
    );
    // A partial send: the rest from the next offset, with a fresh write deadline.
    let e = r.env(500);
    let a = r.d.file_sent(&e, 600);
    let Action::SendFile { deadline: later } = a else {
        panic!("{a:?}")
    };
    assert_eq!(r.d.file_span(), (700, 400));
    assert!(later > deadline);
    assert_eq!(r.stats.bytes_out.get() as usize, head.len() + 600);
    let e = r.env(501);
    assert_eq!(r.d.file_sent(&e, 400), Action::CloseFile);
    let e = r.env(502);
    assert!(matches!(
        r.d.file_closed(&e),
        Action::Recv { idle: true, .. }
    ));
}

#[test]
fn only_a_head_that_a_zero_copy_body_follows_is_sent_with_more() {
    // (zero copy, request, file size) -> `more` of the head's Send.
    let cases: [(bool, &[u8], u64, bool); 7] = [
        (
            true,
            b"GET /static/x HTTP/1.1\r\nHost: a\r\n\r\n",
            1100,
            true,
        ),
        (
            true,
            b"GET /static/x HTTP/1.1\r\nHost: a\r\n\r\n",
            CORK_MAX,
            true,
        ),
        // A larger body is not worth its pages off their boundaries.
        (
            true,
            b"GET /static/x HTTP/1.1\r\nHost: a\r\n\r\n",
            CORK_MAX + 1,
            false,
        ),
        (
            true,
            b"HEAD /static/x HTTP/1.1\r\nHost: a\r\n\r\n",
            1100,
            false,
        ),
        (true, b"GET /static/x HTTP/1.1\r\nHost: a\r\n\r\n", 0, false),
        (
            true,
            b"GET /static/x HTTP/1.1\r\nHost: a\r\nRange: bytes=5000-\r\n\r\n",
            1100,
            false,
        ),
        // Read and send: the body waits for a read first.
        (
            false,
            b"GET /static/x HTTP/1.1\r\nHost: a\r\n\r\n",
            1100,
            false,
        ),
    ];
    for (zero_copy, req, size, more) in cases {
        let mut r = Rig::new();
        r.d.set_zero_copy(zero_copy);
        r.start();
        assert_eq!(r.feed(0, req), Action::Open);
        let e = r.env(1);
        let a = r.d.file_opened(&e, Ok(FileMeta::sized(size)));
        let Action::Send { more: got, .. } = a else {
            panic!("{a:?}")
        };
        let what = String::from_utf8_lossy(req);
        assert_eq!(got, more, "zero copy {zero_copy}, {size} bytes: {what}");
        // A partial send of the head keeps asking for more; the body follows.
        let e = r.env(2);
        let a = r.d.sent(&e, 5);
        assert!(
            matches!(a, Action::Send { more: m, .. } if m == more),
            "{a:?}"
        );
    }
    // Any other response: no more.
    let mut r = Rig::new();
    r.d.set_zero_copy(true);
    r.start();
    assert!(matches!(r.feed(0, GET), Action::Send { more: false, .. }));
}

#[test]
fn zero_copy_of_a_file_that_shrank_or_stalled_cuts_the_connection_with_a_reset() {
    for stalled in [false, true] {
        let mut r = Rig::new();
        r.d.set_zero_copy(true);
        r.start();
        r.feed(0, b"GET /static/x HTTP/1.1\r\nHost: a\r\n\r\n");
        let e = r.env(1);
        r.d.file_opened(&e, Ok(FileMeta::sized(10)));
        let (_, a) = r.send_all(1);
        let a = match stalled {
            // No write progress until the deadline.
            true => r.timed_out(a.deadline().unwrap().duration_since(r.t0).as_millis() as u64),
            // The file ended before its promised length.
            false => {
                let e = r.env(2);
                r.d.file_sent(&e, 0)
            }
        };
        assert_eq!(a, Action::Close, "stalled: {stalled}");
        assert!(
            r.d.resets(),
            "bytes owed: the client must not take it as complete"
        );
    }
}

#[test]
fn a_range_streams_only_its_bytes_from_its_offset() {
    let mut r = Rig::new();
    r.start();
    let req = b"GET /static/x HTTP/1.1\r\nHost: a\r\nRange: bytes=70000-70009\r\n\r\n";
    assert_eq!(r.feed(0, req), Action::Open);
    let e = r.env(1);
    let size = 2 * FILE_CHUNK as u64;
    r.d.file_opened(&e, Ok(FileMeta::sized(size)));
    let (head, a) = r.send_all(1);
    assert!(
        head.starts_with("HTTP/1.1 206 Partial Content\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nContent-Length: 10\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nContent-Range: bytes 70000-70009/{size}\r\n")),
        "{head}"
    );
    assert_eq!(
        a,
        Action::ReadFile {
            offset: 70000,
            len: 10
        }
    );
    let e = r.env(2);
    r.d.file_read(&e, 10);
    let (_, a) = r.send_all(2);
    assert_eq!(a, Action::CloseFile);
}

#[test]
fn no_body_for_304_and_416_but_the_file_is_closed() {
    for (field, status) in [
        ("If-None-Match: *", "304 Not Modified"),
        ("Range: bytes=10-", "416 Range Not Satisfiable"),
    ] {
        let mut r = Rig::new();
        r.start();
        let req = format!("GET /static/x HTTP/1.1\r\nHost: a\r\n{field}\r\n\r\n");
        r.feed(0, req.as_bytes());
        let e = r.env(1);
        r.d.file_opened(&e, Ok(FileMeta::sized(10)));
        let (out, a) = r.send_all(1);
        assert!(out.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{out}");
        assert_eq!(a, Action::CloseFile, "{field}");
        let e = r.env(2);
        assert!(matches!(
            r.d.file_closed(&e),
            Action::Recv { idle: true, .. }
        ));
    }
}

#[test]
fn precompressed_candidates_are_opened_in_turn() {
    let mut r = Rig::new();
    r.start();
    let req = b"GET /static/x.css HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip, br\r\n\r\n";
    assert_eq!(r.feed(0, req), Action::Open);
    assert_eq!(r.d.file_path(), "x.css.br");
    let e = r.env(1);
    // Not there: the next candidate, with nothing written yet.
    assert_eq!(r.d.file_opened(&e, Err(FileError::NotFound)), Action::Open);
    assert_eq!(r.d.file_path(), "x.css.gz");
    assert!(r.d.pending().is_empty());
    let e = r.env(2);
    r.d.file_opened(&e, Ok(FileMeta::sized(5)));
    let (head, _) = r.send_all(2);
    assert!(head.contains("\r\nContent-Encoding: gzip\r\n"), "{head}");
    assert!(head.contains("\r\nVary: Accept-Encoding\r\n"), "{head}");

    // None there: the file itself, last, and its 404 when it is missing too.
    let mut r = Rig::new();
    r.start();
    r.feed(0, req);
    for want in ["x.css.gz", "x.css"] {
        let e = r.env(1);
        assert_eq!(r.d.file_opened(&e, Err(FileError::NotFound)), Action::Open);
        assert_eq!(r.d.file_path(), want);
    }
    let e = r.env(1);
    r.d.file_opened(&e, Err(FileError::NotFound));
    let (out, _) = r.send_all(1);
    assert!(out.starts_with("HTTP/1.1 404 "), "{out}");

    // A variant that cannot be read is an error, not a fallback.
    let mut r = Rig::new();
    r.start();
    r.feed(0, req);
    let e = r.env(1);
    r.d.file_opened(&e, Err(FileError::Internal));
    let (out, _) = r.send_all(1);
    assert!(out.starts_with("HTTP/1.1 500 "), "{out}");
}

#[test]
fn a_missing_file_is_a_404_and_nothing_to_close() {
    let mut r = Rig::new();
    r.start();
    r.feed(0, b"GET /static/x HTTP/1.1\r\nHost: a\r\n\r\n");
    let e = r.env(1);
    r.d.file_opened(&e, Err(FileError::NotFound));
    let (out, a) = r.send_all(1);
    assert!(out.starts_with("HTTP/1.1 404 "), "{out}");
    assert!(matches!(a, Action::Recv { idle: true, .. }));
}

#[test]
fn shutdown_closes_idle_connections_and_caps_every_deadline() {
    let mut r = Rig::new();
    r.start();
    assert_eq!(r.shutdown(1, 5000), Action::ShutdownWrite);
    let e = r.env(2);
    assert_eq!(
        r.d.write_shut(&e),
        Action::Drain {
            deadline: r.at(2) + LINGER
        }
    );

    let mut r = Rig::new();
    r.start();
    r.feed(0, b"GET / HTTP/1.1\r\n");
    assert_eq!(
        r.shutdown(1, 5000),
        Action::Recv {
            deadline: r.at(5000),
            idle: false
        }
    );
    // At the grace deadline the connection is cut, without a 408.
    assert_eq!(r.timed_out(5000), Action::Close);
}

#[test]
fn shutdown_during_a_sleep_makes_it_the_last_response_or_cuts_it_at_grace() {
    let mut r = Rig::new();
    r.start();
    r.feed(0, b"GET /sleep/100 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.shutdown(10, 5000), Action::Sleep { until: r.at(100) });
    let e = r.env(100);
    r.d.slept(&e);
    let (out, a) = r.send_all(100);
    assert!(out.contains("Connection: close"), "{out}");
    assert_eq!(a, Action::ShutdownWrite);

    let mut r = Rig::new();
    r.start();
    r.feed(0, b"GET /sleep/60000 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.shutdown(10, 5000), Action::Sleep { until: r.at(5000) });
    let e = r.env(5000);
    assert_eq!(r.d.slept(&e), Action::Close);
}

#[test]
fn a_file_reply_during_shutdown_says_connection_close() {
    let mut r = Rig::new();
    r.start();
    r.feed(0, b"GET /static/x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.shutdown(1, 5000), Action::Open);
    let e = r.env(2);
    r.d.file_opened(&e, Ok(FileMeta::sized(3)));
    let (head, _) = r.send_all(2);
    assert!(head.contains("Connection: close"), "{head}");
}

#[test]
fn input_buffered_while_busy_is_answered_when_the_send_completes() {
    let mut r = Rig::new();
    r.start();
    r.feed(0, GET);
    assert!(r.d.buffer(r.stats, GET));
    let (_, a) = r.send_all(1);
    assert!(matches!(a, Action::Send { .. }), "{a:?}");
    let (out, a) = r.send_all(2);
    assert!(out.ends_with("Hello, World!"));
    assert!(matches!(a, Action::Recv { idle: true, .. }));
}

#[test]
fn too_much_input_while_busy_asks_the_model_to_pause() {
    let mut r = Rig::new();
    r.start();
    r.feed(0, b"GET /sleep/10 HTTP/1.1\r\nHost: a\r\n\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    let mut keep = true;
    for _ in 0..5 {
        keep = r.d.buffer(r.stats, &chunk);
    }
    assert!(!keep, "beyond MAX_BUFFERED the model must stop receiving");
}

#[test]
fn lingering_drains_a_bounded_amount() {
    let mut r = Rig::new();
    r.start();
    r.feed(0, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    let (_, a) = r.send_all(1);
    assert_eq!(a, Action::ShutdownWrite);
    let e = r.env(1);
    r.d.write_shut(&e);
    let mut a = Action::ShutdownWrite;
    for i in 0..(LINGER_BYTES / 4096 + 1) {
        let n = r.d.recv_buf().len().min(4096);
        let e = r.env(2 + i as u64 / 1000);
        a = r.d.drained(&e, n);
        if a == Action::Close {
            break;
        }
    }
    assert_eq!(a, Action::Close);
}

#[test]
fn lingering_ends_at_its_deadline() {
    let mut r = Rig::new();
    r.start();
    r.feed(0, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    r.send_all(1);
    let e = r.env(1);
    r.d.write_shut(&e);
    assert!(matches!(r.timed_out(1000), Action::Drain { .. }));
    assert_eq!(r.timed_out(2001), Action::Close);
}

#[test]
fn a_lent_recv_buffer_comes_back_with_its_bytes() {
    let mut r = Rig::new();
    r.start();
    let (mut buf, at) = r.d.lend_recv_buf();
    buf[at..at + GET.len()].copy_from_slice(GET);
    r.d.restore_recv_buf(buf);
    let e = r.env(1);
    assert!(matches!(r.d.received(&e, GET.len()), Action::Send { .. }));
    assert!(r.d.pending().ends_with(b"Hello, World!"));
}

#[test]
fn pipelined_requests_are_answered_in_one_send() {
    let mut r = Rig::new();
    r.start();
    let many: Vec<u8> = GET.repeat(16);
    r.feed(0, &many);
    let (out, _) = r.send_all(1);
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 16);
}

// ----- CPU-bound work in slices (`Action::Yield`) -------------------------------

impl Rig {
    fn resumed(&mut self, ms: u64) -> Action {
        let e = self.env(ms);
        self.d.resumed(&e)
    }
}

#[test]
fn work_yields_between_slices_then_answers() {
    let mut r = Rig::new();
    r.start();
    // TestHandler: `/work/3` takes three slices whatever the budget.
    assert_eq!(
        r.feed(1, b"GET /work/3 HTTP/1.1\r\nHost: a\r\n\r\n"),
        Action::Yield
    );
    assert_eq!(r.d.action().deadline(), None, "a yield has no deadline");
    // A timer firing meanwhile changes nothing.
    assert_eq!(r.timed_out(2), Action::Yield);
    assert_eq!(r.resumed(3), Action::Yield);
    assert!(matches!(r.resumed(4), Action::Send { .. }));
    let (out, a) = r.send_all(5);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\n3 slices"), "{out}");
    assert!(matches!(a, Action::Recv { idle: true, .. }));
    assert_eq!(r.stats.work_slices.get(), 3);
    assert_eq!(r.stats.requests.get(), 1);
}

#[test]
fn earlier_pipelined_replies_go_out_before_the_worker_is_given_back() {
    let mut r = Rig::new();
    r.start();
    let a = r.feed(
        1,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /work/2 HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert!(matches!(a, Action::Send { .. }), "{a:?}");
    let (out, a) = r.send_all(2);
    assert!(out.ends_with("Hello, World!"), "{out}");
    assert_eq!(a, Action::Yield);
    assert!(matches!(r.resumed(3), Action::Send { .. }));
    let (out, _) = r.send_all(4);
    assert!(out.ends_with("2 slices"), "{out}");
}

#[test]
fn work_done_in_one_slice_keeps_the_pipeline_batched_and_zero_means_one_slice() {
    let mut r = Rig::new();
    r.start();
    let a = r.feed(
        1,
        b"GET /work/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /work/1 HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert!(matches!(a, Action::Send { .. }), "{a:?}");
    let (out, _) = r.send_all(2);
    assert_eq!(out.matches("1 slices").count(), 2, "{out}");

    let mut r = Rig::new();
    r.d.set_work_slice(Duration::ZERO);
    r.start();
    // No budget: the handler finishes in one slice, and nothing yields.
    let a = r.feed(1, b"GET /work/50 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(matches!(a, Action::Send { .. }), "{a:?}");
    let (out, _) = r.send_all(2);
    assert!(out.ends_with("1 slices"), "{out}");
    assert_eq!(r.stats.work_slices.get(), 1);
}

#[test]
fn shutdown_mid_work_makes_it_the_last_response_or_cuts_it_at_grace() {
    let mut r = Rig::new();
    r.start();
    assert_eq!(
        r.feed(1, b"GET /work/3 HTTP/1.1\r\nHost: a\r\n\r\n"),
        Action::Yield
    );
    assert_eq!(r.shutdown(2, 100), Action::Yield);
    assert_eq!(r.resumed(3), Action::Yield);
    assert!(matches!(r.resumed(4), Action::Send { .. }));
    let (out, a) = r.send_all(5);
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert_eq!(a, Action::ShutdownWrite);

    let mut r = Rig::new();
    r.start();
    assert_eq!(
        r.feed(1, b"GET /work/3 HTTP/1.1\r\nHost: a\r\n\r\n"),
        Action::Yield
    );
    r.shutdown(2, 100);
    assert_eq!(r.resumed(100), Action::Close, "cut at the grace deadline");
    assert_eq!(r.stats.grace_cuts.get(), 1);
}

#[test]
fn a_half_close_mid_work_still_gets_the_response() {
    let mut r = Rig::new();
    r.start();
    assert_eq!(
        r.feed(1, b"GET /work/2 HTTP/1.1\r\nHost: a\r\n\r\n"),
        Action::Yield
    );
    let e = r.env(2);
    assert_eq!(r.d.eof(&e), Action::Yield);
    assert!(matches!(r.resumed(3), Action::Send { .. }));
    let (out, a) = r.send_all(4);
    assert!(out.ends_with("2 slices"), "{out}");
    assert_eq!(
        a,
        Action::ShutdownWrite,
        "then closed: the peer sends nothing more"
    );
}

#[test]
fn every_event_applies_a_shutdown_the_model_did_not_report() {
    // A response is being sent when shutdown is triggered; the model never calls
    // `shutdown`: the next event applies it (the next request is not awaited).
    let mut r = Rig::new();
    r.start();
    assert!(matches!(r.feed(1, GET), Action::Send { .. }));
    r.stop.trigger_at(r.at(5000));
    let (_, a) = r.send_all(2);
    assert_eq!(a, Action::ShutdownWrite, "idle after the response: closed");
    assert!(r.d.shutting_down());

    // A partial request when the trigger comes: its read deadline is capped at the
    // grace deadline by the next event, which cuts it there without a 408.
    let mut r = Rig::new();
    r.start();
    r.feed(1, b"GET / HTTP/1.1\r\n");
    r.stop.trigger_at(r.at(300));
    assert_eq!(
        r.feed(2, b"Host: a\r\n"),
        Action::Recv {
            deadline: r.at(300),
            idle: false
        }
    );
    assert_eq!(r.timed_out(300), Action::Close);
    assert_eq!(r.stats.grace_cuts.get(), 1);
}

#[test]
fn an_interrupted_wait_applies_shutdown_once_then_counts_as_a_timeout() {
    let mut r = Rig::new();
    r.start();
    r.feed(0, b"GET /sleep/60000 HTTP/1.1\r\nHost: a\r\n\r\n");
    r.stop.trigger_at(r.at(5000));
    let e = r.env(10);
    assert_eq!(r.d.interrupted(&e), Action::Sleep { until: r.at(5000) });
    let e = r.env(20);
    assert_eq!(
        r.d.interrupted(&e),
        Action::Sleep { until: r.at(5000) },
        "before the grace deadline an interrupt only repeats the wait"
    );
    let e = r.env(5000);
    assert_eq!(r.d.interrupted(&e), Action::Close, "the hard stop cuts");
}

#[test]
fn shutdown_before_the_trigger_changes_nothing() {
    let mut r = Rig::new();
    let a = r.start();
    let e = r.env(1);
    assert_eq!(r.d.shutdown(&e), a);
    assert!(!r.d.shutting_down());
}

#[test]
fn a_pipelined_request_gets_its_own_header_deadline_from_its_first_bytes() {
    // Request 1 starts at 0; its end and the first bytes of request 2 arrive
    // together at 1500 ms: request 2's header deadline runs from 1500 ms.
    let mut r = Rig::new();
    r.start();
    assert!(matches!(
        r.feed(0, b"GET / HTTP/1.1\r\n"),
        Action::Recv { idle: false, .. }
    ));
    assert!(matches!(
        r.feed(1500, b"Host: a\r\n\r\nGET / HTTP/1.1\r\n"),
        Action::Send { .. }
    ));
    let (_, a) = r.send_all(1600);
    assert_eq!(
        a,
        Action::Recv {
            deadline: r.at(1500) + T.header,
            idle: false
        }
    );
    // Dribbling more of the same head does not move its deadline.
    assert_eq!(
        r.feed(2000, b"Host: a\r\n"),
        Action::Recv {
            deadline: r.at(1500) + T.header,
            idle: false
        }
    );
}

#[test]
fn work_after_a_half_close_is_bounded() {
    // 500 us slices: WORK_AFTER_EOF (1 s) is 2000 unfinished slices.
    let slices = (WORK_AFTER_EOF.as_micros() / 500) as u64;
    let mut r = Rig::new();
    r.start();
    let work = format!("GET /work/{} HTTP/1.1\r\nHost: a\r\n\r\n", slices / 2);
    assert_eq!(r.feed(1, work.as_bytes()), Action::Yield);
    let e = r.env(2);
    assert_eq!(r.d.eof(&e), Action::Yield, "the response is still owed");
    let mut a = Action::Yield;
    while a == Action::Yield {
        a = r.resumed(3);
    }
    let (out, _) = r.send_all(4);
    assert!(out.ends_with(&format!("{} slices", slices / 2)), "{out}");

    let mut r = Rig::new();
    r.start();
    let work = format!("GET /work/{} HTTP/1.1\r\nHost: a\r\n\r\n", slices * 3);
    assert_eq!(r.feed(1, work.as_bytes()), Action::Yield);
    r.d.peer_half_closed();
    let mut resumed = 0;
    let mut a = Action::Yield;
    while a == Action::Yield {
        a = r.resumed(3);
        resumed += 1;
    }
    assert_eq!(a, Action::Close, "cut once the allowance is spent");
    assert!(resumed <= slices, "{resumed} slices after the half-close");
}

#[test]
fn a_response_has_a_deadline_that_progress_does_not_restart() {
    // The write timeout (30 s) restarts on progress; the response timeout (120 s)
    // runs from the response's first send, whatever the client reads meanwhile.
    let mut r = Rig::new();
    r.start();
    assert!(matches!(r.feed(0, GET), Action::Send { .. }));
    let mut ms = 0;
    let mut a = r.d.action();
    while ms < 120_000 {
        ms += 20_000;
        let e = r.env(ms);
        a = r.d.sent(&e, 1); // one byte every 20 s: progress
        if !matches!(a, Action::Send { .. }) {
            break;
        }
        assert!(a.deadline().unwrap() <= r.at(120_000), "{a:?} at {ms} ms");
    }
    assert_eq!(
        a,
        Action::Send {
            deadline: r.at(120_000),
            more: false,
        }
    );
    assert_eq!(
        r.timed_out(120_000),
        Action::Close,
        "cut at the response deadline"
    );

    // The next response gets its own deadline.
    let mut r = Rig::new();
    r.start();
    r.feed(0, GET);
    r.send_all(50_000);
    let a = r.feed(100_000, GET);
    assert_eq!(
        a,
        Action::Send {
            deadline: r.at(100_000) + T.write,
            more: false,
        }
    );
}

#[test]
fn a_file_is_sent_whole_within_the_response_deadline() {
    let mut r = Rig::new();
    r.start();
    r.feed(0, b"GET /static/x HTTP/1.1\r\nHost: a\r\n\r\n");
    let e = r.env(0);
    r.d.file_opened(&e, Ok(FileMeta::sized(100 * FILE_CHUNK as u64)));
    r.send_all(0);
    let mut ms = 0;
    loop {
        ms += 10_000;
        let e = r.env(ms);
        let a = r.d.file_read(&e, FILE_CHUNK);
        let Action::Send { deadline, .. } = a else {
            panic!("{a:?}")
        };
        assert!(deadline <= r.at(120_000), "chunk at {ms} ms: {a:?}");
        if ms >= 120_000 {
            break;
        }
        r.send_all(ms);
    }
    assert_eq!(r.timed_out(120_000), Action::Close);
}

#[test]
fn a_failure_while_the_send_buffer_is_lent_is_no_panic() {
    // callback lends the buffer to its send op; a reset seen meanwhile fails the
    // connection before the buffer comes back.
    let mut r = Rig::new();
    r.start();
    r.feed(0, b"GET /static/x HTTP/1.1\r\nHost: a\r\n\r\n");
    let e = r.env(1);
    r.d.file_opened(&e, Ok(FileMeta::sized(2 * FILE_CHUNK as u64)));
    r.send_all(1);
    let e = r.env(2);
    r.d.file_read(&e, FILE_CHUNK);
    let (lent, range) = r.d.lend_pending();
    assert_eq!(range.len(), FILE_CHUNK);
    assert!(r.d.pending().is_empty(), "nothing to borrow while lent");
    assert_eq!(r.d.failed(), Action::Close);
    assert!(r.d.resets(), "cut with a chunk unsent");
    r.d.restore_pending(lent);

    // Cut at a write timeout with the reply unsent: a reset as well.
    let mut r = Rig::new();
    r.start();
    r.feed(0, GET);
    assert_eq!(r.timed_out(0), r.d.action(), "early: nothing happens");
    assert_eq!(r.timed_out(30_000), Action::Close);
    assert!(r.d.resets());
}

/// Every connection allocates one driver, and the allocator rounds it up to a
/// size class (512, then 640 bytes): past 512 every idle connection costs 128
/// bytes more (measured: tokio 1474 -> 1603 B per idle connection at 552 bytes).
#[test]
fn the_driver_fits_a_512_byte_allocation() {
    let size = std::mem::size_of::<Driver>();
    assert!(size <= 512, "Driver is {size} bytes");
    // Every model holds an Action per connection (tokio in each connection's
    // future): 24 bytes, as a deadline and a tag.
    let size = std::mem::size_of::<Action>();
    assert!(size <= 24, "Action is {size} bytes");
}

/// The proxied exchange's policy, sans-IO: retries, errors, release before the
/// error response, the cut after a relayed head.
mod proxy_policy {
    use super::*;
    use crate::config::Upstreams;
    use crate::http::handler::{Reply, Request, Slice, Work};

    struct Proxying(Upstreams);

    impl Handler for Proxying {
        fn handle<'a>(&'a self, req: &Request<'a>, body: &'a [u8]) -> Reply<'a> {
            TestHandler.handle(req, body)
        }
        fn work(&self, job: &mut Work, budget: Option<Duration>) -> Slice {
            TestHandler.work(job, budget)
        }
        fn upstream(&self) -> Option<&Upstreams> {
            Some(&self.0)
        }
    }

    struct P {
        d: Driver,
        h: &'static Proxying,
        stats: &'static WorkerStats,
        stop: &'static Shutdown,
        t0: Instant,
    }

    impl P {
        fn new() -> P {
            let mut up = Upstreams::new(vec!["127.0.0.1:1".parse().unwrap()]);
            up.timeout = Duration::from_secs(2);
            let mut p = P {
                d: Driver::new(Limits::default(), T),
                h: Box::leak(Box::new(Proxying(up))),
                stats: Box::leak(Box::default()),
                stop: Box::leak(Box::new(Shutdown::new(Duration::ZERO))),
                t0: Instant::now(),
            };
            let e = p.env(0);
            p.d.start(&e);
            p
        }
        fn env(&self, ms: u64) -> Env<'static, Proxying> {
            Env::new(
                self.h,
                self.stats,
                self.stop,
                self.t0 + Duration::from_millis(ms),
            )
        }
        fn feed(&mut self, bytes: &[u8]) -> Action {
            let e = self.env(0);
            self.d.feed(&e, bytes)
        }
        /// Send the upstream request whole; returns it and the next action.
        fn up_send_all(&mut self) -> (String, Action) {
            let out = String::from_utf8_lossy(self.d.up_pending()).into_owned();
            let e = self.env(0);
            let a = self.d.up_sent(&e, out.len());
            (out, a)
        }
        fn up_receive(&mut self, bytes: &[u8]) -> Action {
            self.d.up_recv_buf()[..bytes.len()].copy_from_slice(bytes);
            let e = self.env(0);
            self.d.up_received(&e, bytes.len())
        }
        fn send_all(&mut self) -> (String, Action) {
            let out = String::from_utf8_lossy(self.d.pending()).into_owned();
            let e = self.env(0);
            let a = self.d.sent(&e, out.len());
            (out, a)
        }
    }

    const PROXIED_GET: &[u8] = b"GET /proxy/x?y HTTP/1.1\r\nHost: a\r\n\r\n";

    #[test]
    fn a_get_whose_pooled_connection_closed_goes_again_once_on_a_fresh_one() {
        let mut p = P::new();
        assert!(matches!(
            p.feed(PROXIED_GET),
            Action::UpConnect { fresh: false, .. }
        ));
        let e = p.env(0);
        assert!(matches!(p.d.up_connected(&e, true), Action::UpSend { .. }));
        let (sent, a) = p.up_send_all();
        assert!(
            sent.starts_with("GET /x?y HTTP/1.1\r\nHost: a\r\n"),
            "{sent}"
        );
        assert!(matches!(a, Action::UpRecv { .. }));
        // Closed before any byte of the answer: once more, on a fresh connection.
        let e = p.env(0);
        assert!(matches!(
            p.d.up_eof(&e),
            Action::UpConnect { fresh: true, .. }
        ));
        assert_eq!(p.stats.upstream.retries.get(), 1);
        assert!(matches!(p.d.up_connected(&e, false), Action::UpSend { .. }));
        let (again, _) = p.up_send_all();
        assert_eq!(again, sent);
        let a = p.up_receive(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!(a, Action::UpRelease { keep: true });
        let e = p.env(0);
        assert!(matches!(p.d.up_released(&e), Action::Send { .. }));
        let (out, a) = p.send_all();
        assert!(
            out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\nhi"),
            "{out}"
        );
        assert!(out.contains("\r\nVia: 1.1 gvhttpd\r\n"), "{out}");
        assert!(matches!(a, Action::Recv { idle: true, .. }));
        assert!(!p.d.holds_buffers());
        // A second failure of the same kind is not retried again within one
        // exchange, and a fresh connection's failure never is.
        p.feed(PROXIED_GET);
        let e = p.env(0);
        p.d.up_connected(&e, false);
        p.up_send_all();
        assert!(matches!(p.d.up_eof(&e), Action::Send { .. }));
        assert!(String::from_utf8_lossy(p.d.pending()).starts_with("HTTP/1.1 502 "));
        assert_eq!(p.stats.upstream.retries.get(), 1);
        assert_eq!(p.stats.upstream.bad_gateway.get(), 1);
    }

    #[test]
    fn a_post_is_never_sent_again() {
        let mut p = P::new();
        p.feed(b"POST /proxy/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
        let e = p.env(0);
        p.d.up_connected(&e, true);
        let (sent, _) = p.up_send_all();
        assert!(sent.ends_with("Content-Length: 3\r\n\r\nabc"), "{sent}");
        let e = p.env(0);
        assert!(matches!(p.d.up_failed(&e), Action::Send { .. }));
        let (out, a) = p.send_all();
        assert!(
            out.starts_with("HTTP/1.1 502 ") && out.contains("Connection: close"),
            "{out}"
        );
        assert_eq!(a, Action::ShutdownWrite);
        assert_eq!(p.stats.upstream.retries.get(), 0);
    }

    #[test]
    fn no_head_in_time_releases_the_connection_then_answers_504() {
        let mut p = P::new();
        p.feed(PROXIED_GET);
        let e = p.env(0);
        p.d.up_connected(&e, false);
        let (_, a) = p.up_send_all();
        let Action::UpRecv { deadline } = a else {
            panic!("{a:?}")
        };
        assert_eq!(deadline, p.t0 + Duration::from_secs(2));
        let e = p.env(1000);
        assert_eq!(p.d.timed_out(&e), a, "early: nothing happens");
        let e = p.env(2000);
        assert_eq!(p.d.timed_out(&e), Action::UpRelease { keep: false });
        assert!(matches!(p.d.up_released(&e), Action::Send { .. }));
        assert!(String::from_utf8_lossy(p.d.pending()).starts_with("HTTP/1.1 504 "));
        assert_eq!(p.stats.upstream.gateway_timeout.get(), 1);
    }

    #[test]
    fn a_response_that_breaks_after_its_head_cuts_the_client() {
        let mut p = P::new();
        p.feed(PROXIED_GET);
        let e = p.env(0);
        p.d.up_connected(&e, false);
        p.up_send_all();
        let a = p.up_receive(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        assert!(matches!(a, Action::Send { .. }));
        let (_, a) = p.send_all();
        assert!(matches!(a, Action::UpRecv { .. }));
        let e = p.env(0);
        assert_eq!(p.d.up_failed(&e), Action::Close);
        assert!(p.d.resets(), "a truncated body must not look complete");
    }
}
