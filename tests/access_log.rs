//! `--access-log`: every response of every model is written in the combined log
//! format, deferred replies (sleep, file) and refusals included, and the error
//! log's final line carries the totals.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use gvhttpd::config::Variant;

fn access_log_records_every_response(model: Variant) {
    let dir = TempDir::new("access-log");
    std::fs::write(format!("{}/f.txt", dir.path()), b"0123456789").unwrap();
    let log = format!("{}/access.log", dir.path());
    let mut s = Server::start_with(model, &["--root", dir.path(), "--access-log", &log]);
    let mut c = s.connect();
    c.write_all(
        b"GET /?q=1 HTTP/1.1\r\nHost: t\r\nReferer: http://r.example/\r\nUser-Agent: probe \"1\"\r\n\r\n\
          GET /sleep/5 HTTP/1.1\r\nHost: t\r\nUser-Agent: sleeper\r\n\r\n\
          HEAD /static/f.txt HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /static/f.txt HTTP/1.0\r\n\r\n",
    )
    .unwrap();
    let (out, _) = read_to_close(&mut c);
    let got = parse_sequence(&out, &[false, false, true, false]);
    assert_eq!(got.iter().map(|r| r.status).collect::<Vec<_>>(), [200; 4]);
    assert_eq!(s.get("/nope").status, 404);
    let no_host = s.exchange(b"GET / HTTP/1.1\r\n\r\n");
    assert!(no_host.starts_with(b"HTTP/1.1 400 "), "no Host: 400");
    s.signal(15);
    assert_eq!(s.wait_exit(Duration::from_secs(5)), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let find = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{model}: no line with {needle:?} in\n{text}"))
    };
    let first = find("\"GET /?q=1 HTTP/1.1\" 200 13 ");
    assert!(first.starts_with("127.0.0.1 - - ["), "{first}");
    assert!(
        first.ends_with(" \"http://r.example/\" \"probe \\\"1\\\"\""),
        "referer and escaped user agent: {first}"
    );
    assert!(find("\"GET /sleep/5 HTTP/1.1\" 200 9 ").ends_with("\"-\" \"sleeper\""));
    find("\"HEAD /static/f.txt HTTP/1.1\" 200 - ");
    find("\"GET /static/f.txt HTTP/1.0\" 200 10 ");
    find("\"GET /nope HTTP/1.1\" 404 ");
    find("\"- - -\" 400 ");
    assert_eq!(lines.len(), 6, "{model}: one line per response:\n{text}");
}

per_model!(access_log_records_every_response);
