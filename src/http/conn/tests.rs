//! Connection state machine tests: pipelining split at every byte boundary,
//! keep-alive rules, 100-continue, HEAD, deferred replies, timeouts.

use super::*;
use crate::http::test_handler::TestHandler;
use crate::http::{FileError, FileMeta};

struct App {
    stats: WorkerStats,
}

impl App {
    fn registry(&self) -> &Self {
        self
    }
    fn worker(&self, _: usize) -> &WorkerStats {
        &self.stats
    }
}

impl Handler for App {
    fn handle<'a>(&'a self, req: &Request<'a>, body: &'a [u8]) -> Reply<'a> {
        TestHandler.handle(req, body)
    }
    fn work(&self, job: &mut crate::http::Work, budget: Option<Duration>) -> crate::http::Slice {
        TestHandler.work(job, budget)
    }
}

fn app() -> App {
    App {
        stats: WorkerStats::default(),
    }
}

/// Feed `input` in pieces of `step` bytes; run deferred replies at once. Returns
/// the output with `Date` values masked, and the last step.
fn drive(app: &App, input: &[u8], step: usize) -> (String, Step) {
    let stats = app.registry().worker(0);
    let mut conn = Conn::new(Limits::default());
    let mut out = Vec::new();
    let mut last = Step::Read;
    let pieces: Vec<&[u8]> = input.chunks(step.max(1)).collect();
    let mut i = 0;
    loop {
        last = match last {
            Step::Read if i < pieces.len() => {
                let buf = conn.read_buf();
                buf[..pieces[i].len()].copy_from_slice(pieces[i]);
                conn.filled(pieces[i].len());
                i += 1;
                conn.process(app, stats, &mut out)
            }
            Step::Read => {
                conn.peer_closed();
                let s = conn.process(app, stats, &mut out);
                assert_eq!(s, Step::Close);
                break;
            }
            Step::Sleep(_) => {
                conn.sleep_done(stats, &mut out);
                conn.process(app, stats, &mut out)
            }
            Step::File => {
                conn.file_opened(Err(FileError::NotFound), stats, &mut out);
                conn.process(app, stats, &mut out)
            }
            Step::Proxy => panic!("this handler has no upstream"),
            Step::Work => {
                while !conn.work_slice(app, Some(Duration::ZERO), stats, &mut out) {}
                conn.process(app, stats, &mut out)
            }
            Step::Close => break,
        };
    }
    (mask_dates(&out), last)
}

fn mask_dates(out: &[u8]) -> String {
    let s = String::from_utf8_lossy(out).into_owned();
    let mut masked = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find("Date: ") {
        masked.push_str(&rest[..i + 6]);
        masked.push_str("<date>");
        rest = &rest[(i + 6 + 29).min(rest.len())..];
    }
    masked.push_str(rest);
    masked
}

const PIPELINE: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/x\r\nContent-Length: 5\r\n\r\nhello\
POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;e=1\r\nde\r\n0\r\nT: x\r\n\r\n\
HEAD /json HTTP/1.1\r\nHost: a\r\n\r\n\
GET /sleep/0 HTTP/1.1\r\nHost: a\r\n\r\n\
GET /static/x HTTP/1.1\r\nHost: a\r\n\r\n\
GET /nope HTTP/1.1\r\nHost: a\r\n\r\n\
GET /json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n\
GET /ignored-after-close HTTP/1.1\r\nHost: a\r\n\r\n";

#[test]
fn pipelined_output_is_identical_at_every_split() {
    let app = app();
    let (whole, last) = drive(&app, PIPELINE, PIPELINE.len());
    assert_eq!(last, Step::Close);
    for want in [
        "HTTP/1.1 200 OK\r\n",
        "\r\n\r\nHello, World!HTTP/1.1 200 OK",
        "Content-Type: text/x\r\nContent-Length: 5\r\n\r\nhello",
        "Content-Length: 5\r\n\r\nabcde",
        "Content-Type: application/json\r\nContent-Length: 27\r\n\r\nHTTP/1.1 200 OK", // HEAD: no body
        "Content-Length: 9\r\n\r\nslept 0ms",
        "404 Not Found",
        "Connection: close\r\n\r\n{\"message\":\"Hello, World!\"}",
    ] {
        assert!(whole.contains(want), "missing {want:?} in\n{whole}");
    }
    assert!(
        whole.ends_with("{\"message\":\"Hello, World!\"}"),
        "{whole}"
    );
    assert_eq!(whole.matches("HTTP/1.1 ").count(), 8, "{whole}");
    for step in 1..PIPELINE.len() {
        let (split, last) = drive(&app, PIPELINE, step);
        assert_eq!(split, whole, "split every {step} bytes");
        assert_eq!(last, Step::Close);
    }
}

#[test]
fn keep_alive_rules() {
    let app = app();
    let cases: &[(&[u8], &str, bool)] = &[
        // (request, header expected in response, connection stays open)
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "", true),
        (b"GET / HTTP/1.0\r\n\r\n", "Connection: close", false),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            "Connection: keep-alive",
            true,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            "Connection: close",
            false,
        ),
    ];
    for (req, header, open) in cases {
        let stats = app.registry().worker(0);
        let mut conn = Conn::new(Limits::default());
        let mut out = Vec::new();
        conn.feed(req);
        let step = conn.process(&app, stats, &mut out);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(step == Step::Read, *open, "{text}");
        assert!(text.contains(header), "{text}");
        assert!(
            text.contains("Content-Length: 13") && !text.contains("chunked"),
            "{text}"
        );
    }
}

#[test]
fn expect_continue_before_body_only() {
    let app = app();
    let stats = app.registry().worker(0);
    let mut conn = Conn::new(Limits::default());
    let mut out = Vec::new();
    conn.feed(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    assert_eq!(conn.process(&app, stats, &mut out), Step::Read);
    assert_eq!(out, response::CONTINUE);
    assert_eq!(conn.phase(), Phase::Body);
    out.clear();
    conn.feed(b"hi");
    assert_eq!(conn.process(&app, stats, &mut out), Step::Read);
    assert!(out.starts_with(b"HTTP/1.1 200 OK") && out.ends_with(b"\r\n\r\nhi"));
    // Too large: 413 at once, no 100.
    let mut conn = Conn::new(Limits::default());
    out.clear();
    conn.feed(b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 99999999\r\n\r\n");
    assert_eq!(conn.process(&app, stats, &mut out), Step::Close);
    assert!(
        out.starts_with(b"HTTP/1.1 413 "),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // HTTP/1.0 never gets 100.
    let mut conn = Conn::new(Limits::default());
    out.clear();
    conn.feed(b"POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(conn.process(&app, stats, &mut out), Step::Read);
    assert!(out.is_empty());
}

#[test]
fn phases_timeouts_and_shutdown() {
    let app = app();
    let stats = app.registry().worker(0);
    let mut out = Vec::new();
    let mut conn = Conn::new(Limits::default());
    assert_eq!(conn.phase(), Phase::Idle);
    conn.feed(b"GET / HT");
    assert_eq!(conn.process(&app, stats, &mut out), Step::Read);
    assert_eq!(conn.phase(), Phase::Head);
    conn.read_timed_out(stats, &mut out);
    assert!(out.starts_with(b"HTTP/1.1 408 "));
    assert_eq!(conn.process(&app, stats, &mut out), Step::Close);
    // Idle timeout: no response.
    let mut conn = Conn::new(Limits::default());
    out.clear();
    conn.read_timed_out(stats, &mut out);
    assert!(out.is_empty());
    // Shutdown: idle closes now; busy answers with Connection: close.
    let mut conn = Conn::new(Limits::default());
    assert!(conn.shutdown());
    let mut conn = Conn::new(Limits::default());
    conn.feed(b"GET /sleep/5 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        conn.process(&app, stats, &mut out),
        Step::Sleep(Duration::from_millis(5))
    );
    assert!(!conn.shutdown());
    conn.sleep_done(stats, &mut out);
    assert!(String::from_utf8_lossy(&out).contains("Connection: close"));
    assert_eq!(conn.process(&app, stats, &mut out), Step::Close);
}

#[test]
fn half_close_after_complete_request_still_answers() {
    let app = app();
    let stats = app.registry().worker(0);
    let mut conn = Conn::new(Limits::default());
    let mut out = Vec::new();
    conn.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    conn.peer_closed();
    assert_eq!(conn.process(&app, stats, &mut out), Step::Close);
    assert!(out.ends_with(b"Hello, World!"));
    // Mid-body EOF: nothing owed.
    let mut conn = Conn::new(Limits::default());
    out.clear();
    conn.feed(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(conn.process(&app, stats, &mut out), Step::Read);
    conn.peer_closed();
    assert_eq!(conn.process(&app, stats, &mut out), Step::Close);
    assert!(out.is_empty());
}

#[test]
fn large_body_grows_then_shrinks_buffer() {
    let app = app();
    let stats = app.registry().worker(0);
    let mut conn = Conn::new(Limits::default());
    let mut out = Vec::new();
    let body = vec![b'x'; 512 * 1024];
    conn.feed(
        format!(
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let mut rest = &body[..];
    while !rest.is_empty() {
        let buf = conn.read_buf();
        let n = buf.len().min(rest.len()).min(7000);
        buf[..n].copy_from_slice(&rest[..n]);
        conn.filled(n);
        rest = &rest[n..];
    }
    assert_eq!(conn.process(&app, stats, &mut out), Step::Read);
    assert!(out.ends_with(&body));
    assert!(conn.buf.len() <= INITIAL_BUF);
}

/// A small deterministic PRNG (xorshift64*), so the fuzz test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Mutated and random input, split at random points: the core never panics,
/// always terminates, and every response it writes starts with a status line.
#[test]
fn mutation_fuzz_never_panics() {
    let app = app();
    let stats = app.registry().worker(0);
    let seeds: &[&[u8]] = &[
        PIPELINE,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n",
        b"POST /echo HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
        b"GET http://h/sleep/1 HTTP/1.1\r\nHost: [::1]:80\r\nConnection: keep-alive, close\r\n\r\n",
    ];
    let alphabet = b"\r\n :;,0123456789abcdefABCDEF\t\x00\x7f\xffGETPOSTHTP/1.chunked-length";
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..3000 {
        let mut input = seeds[round % seeds.len()].to_vec();
        for _ in 0..=rng.below(6) {
            let at = rng.below(input.len() + 1);
            match rng.below(4) {
                0 if at < input.len() => input[at] = alphabet[rng.below(alphabet.len())],
                1 if at < input.len() => {
                    input.remove(at);
                }
                2 => input.insert(at, alphabet[rng.below(alphabet.len())]),
                _ => {
                    let n = rng.below(8);
                    let dup: Vec<u8> = input[at..].iter().take(n).copied().collect();
                    input.splice(at..at, dup);
                }
            }
        }
        let mut conn = Conn::new(Limits::default());
        let mut out = Vec::new();
        let mut rest = &input[..];
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 10_000, "no progress on {input:?}");
            match conn.process(&app, stats, &mut out) {
                Step::Close => break,
                Step::Sleep(_) => conn.sleep_done(stats, &mut out),
                Step::File => {
                    conn.file_opened(Ok(FileMeta::sized(3)), stats, &mut out);
                }
                Step::Work => {
                    conn.work_slice(&app, None, stats, &mut out);
                }
                Step::Proxy => panic!("this handler has no upstream"),
                Step::Read if rest.is_empty() => conn.peer_closed(),
                Step::Read => {
                    let n = rng.below(rest.len()).max(1);
                    conn.feed(&rest[..n]);
                    rest = &rest[n..];
                }
            }
        }
        assert!(out.is_empty() || out.starts_with(b"HTTP/1.1 "), "{input:?}");
    }
}

#[test]
fn idle_buffer_is_released_only_when_nothing_is_buffered() {
    let app = app();
    let stats = app.registry().worker(0);
    let mut conn = Conn::new(Limits::default());
    let mut out = Vec::new();
    // Two pipelined requests, the second incomplete: its bytes must survive.
    conn.feed(b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /json HT");
    assert_eq!(conn.process(&app, stats, &mut out), Step::Read);
    conn.release_idle_buffer();
    assert_eq!(conn.phase(), Phase::Head);
    conn.feed(b"TP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.process(&app, stats, &mut out), Step::Read);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
    assert!(text.ends_with("{\"message\":\"Hello, World!\"}"), "{text}");
    // Now idle: the buffer goes, and the connection keeps working after it.
    assert_eq!(conn.phase(), Phase::Idle);
    conn.release_idle_buffer();
    assert!(conn.buf.is_empty());
    out.clear();
    conn.feed(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.process(&app, stats, &mut out), Step::Read);
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
}

#[test]
fn leading_empty_lines_do_not_shift_the_body() {
    let app = app();
    let input: &[u8] = b"\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
        GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    for step in 1..=input.len() {
        let (out, _) = drive(&app, input, step);
        assert!(
            out.contains("Content-Length: 5\r\n\r\nhello"),
            "step {step}: {out}"
        );
        assert!(out.ends_with("Hello, World!"), "step {step}: {out}");
        assert_eq!(out.matches("HTTP/1.1 ").count(), 2, "step {step}: {out}");
    }
}
