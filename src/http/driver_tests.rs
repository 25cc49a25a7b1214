//! Driver tests, sans-IO: feed bytes and events, check the actions.

use std::time::{Duration, Instant};

use super::*;
use crate::http::test_handler::TestHandler;

fn driver() -> Driver {
    Driver::new(Limits::default(), Timeouts::default())
}

/// A keep-alive connection that served one `GET /` and waits for the next request.
fn idle_after_one_request(d: &mut Driver, env: &Env<'_, TestHandler>) {
    assert!(matches!(d.start(env), Action::Recv { idle: true, .. }));
    let a = d.feed(env, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(matches!(a, Action::Send { .. }), "{a:?}");
    let n = d.pending().len();
    assert!(matches!(d.sent(env, n), Action::Recv { idle: true, .. }));
    assert!(!d.holds_buffers(), "an idle connection holds no buffer");
}

#[test]
fn shutdown_lingers_on_an_idle_connection_instead_of_closing_it() {
    let stats = WorkerStats::default();
    let now = Instant::now();
    let env = Env::new(&TestHandler, &stats, now);
    let mut d = driver();
    idle_after_one_request(&mut d, &env);
    let grace = now + Duration::from_secs(5);
    // A request that raced with the shutdown may sit unread in the socket: a
    // close now would answer it with a RST. Shut the write side and drain.
    assert_eq!(d.shutdown(&env, grace), Action::ShutdownWrite);
    let a = d.write_shut(&env);
    let Action::Drain { deadline } = a else {
        panic!("{a:?}");
    };
    assert!(deadline <= grace && deadline <= now + LINGER);
    // Whatever arrives now is discarded; the peer's EOF ends it.
    assert!(matches!(
        d.feed(&env, b"GET / HTTP/1.1\r\n\r\n"),
        Action::Drain { .. }
    ));
    assert_eq!(d.eof(&env), Action::Close);
}

#[test]
fn shutdown_during_a_response_makes_it_the_last_and_then_lingers() {
    let stats = WorkerStats::default();
    let now = Instant::now();
    let env = Env::new(&TestHandler, &stats, now);
    let mut d = driver();
    d.start(&env);
    assert!(matches!(
        d.feed(&env, b"GET /sleep/10 HTTP/1.1\r\nHost: t\r\n\r\n"),
        Action::Sleep { .. }
    ));
    let grace = now + Duration::from_secs(5);
    assert!(matches!(d.shutdown(&env, grace), Action::Sleep { until } if until <= grace));
    let later = Env::new(&TestHandler, &stats, now + Duration::from_millis(20));
    assert!(matches!(d.slept(&later), Action::Send { .. }));
    assert!(String::from_utf8_lossy(d.pending()).contains("onnection: close"));
    let n = d.pending().len();
    assert_eq!(d.sent(&later, n), Action::ShutdownWrite);
}
