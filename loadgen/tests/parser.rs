//! The response parser over every split of the input: whatever byte boundaries the
//! reads fall on, the same responses come out.

use loadgen::parse::{Inbox, ParseError, Parser, Response};

/// Feeds `chunks` through an Inbox as the engine does; returns the responses.
fn feed(chunks: &[&[u8]], head: bool) -> Result<Vec<Response>, ParseError> {
    let mut inbox = Inbox::new(0);
    let mut parser = Parser::new(head);
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = *chunk;
        while !rest.is_empty() {
            let spare = inbox.spare();
            let n = spare.len().min(rest.len());
            spare[..n].copy_from_slice(&rest[..n]);
            inbox.filled(n);
            rest = &rest[n..];
            while let Some(r) = inbox.next(&mut parser)? {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// Every two-way split, and byte-by-byte, gives `expected`.
fn check_all_splits(input: &[u8], expected: &[Response]) {
    assert_eq!(feed(&[input], false).unwrap(), expected, "whole input");
    for cut in 0..=input.len() {
        let (a, b) = input.split_at(cut);
        assert_eq!(
            feed(&[a, b], false).unwrap(),
            expected,
            "split at byte {cut}"
        );
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(feed(&bytes, false).unwrap(), expected, "byte by byte");
}

fn ok(status: u16) -> Response {
    Response {
        status,
        close: false,
    }
}

#[test]
fn content_length_bodies_pipelined_at_every_split() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n\
HTTP/1.1 201 Created\r\nServer: x\r\nContent-Length:  12 \r\n\r\nHTTP/1.1 200";
    check_all_splits(input, &[ok(200), ok(404), ok(201)]);
}

#[test]
fn chunked_bodies_with_extensions_and_trailers_at_every_split() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n\
HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
3\r\nabc\r\n0\r\nX-Trailer: yes\r\n\r\n\
HTTP/1.1 503 Busy\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx";
    check_all_splits(
        input,
        &[
            ok(200),
            ok(200),
            Response {
                status: 503,
                close: true,
            },
        ],
    );
}

#[test]
fn bodiless_statuses_interim_responses_and_head() {
    // 204 and 304 have no body even with a Content-Length; 100 Continue is skipped.
    let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n\
HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    check_all_splits(input, &[ok(204), ok(304), ok(200)]);
    // Responses to HEAD carry no body whatever Content-Length says.
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    assert_eq!(feed(&[head], true).unwrap(), vec![ok(200), ok(200)]);
}

#[test]
fn keep_alive_rules_by_version_and_connection_header() {
    let r = feed(&[b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"], false).unwrap();
    assert!(r[0].close, "HTTP/1.0 closes by default");
    let r = feed(
        &[b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"],
        false,
    )
    .unwrap();
    assert!(!r[0].close);
    let r = feed(
        &[b"HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n"],
        false,
    )
    .unwrap();
    assert!(r[0].close);
}

#[test]
fn body_until_eof_completes_on_eof_only() {
    let mut inbox = Inbox::new(0);
    let mut parser = Parser::new(false);
    let data = b"HTTP/1.1 200 OK\r\n\r\nsome body bytes";
    inbox.spare()[..data.len()].copy_from_slice(data);
    inbox.filled(data.len());
    assert_eq!(inbox.next(&mut parser).unwrap(), None);
    assert!(!parser.at_boundary());
    assert_eq!(
        parser.eof(),
        Some(Response {
            status: 200,
            close: true
        })
    );
}

#[test]
fn malformed_responses_are_errors_not_panics() {
    let cases: &[(&[u8], ParseError)] = &[
        (b"HTTX/1.1 200 OK\r\n\r\n", ParseError::StatusLine),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", ParseError::StatusLine),
        (b"HTTP/1.1 200OK\r\n\r\n", ParseError::StatusLine),
        (b"HTTP/2.0 200 OK\r\n\r\n", ParseError::StatusLine),
        (b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", ParseError::Header),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            ParseError::Header,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            ParseError::Header,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            ParseError::Chunk,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX",
            ParseError::Chunk,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
            ParseError::Chunk,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            feed(&[input], false),
            Err(*want),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    let huge = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(20_000));
    assert_eq!(
        feed(&[huge.as_bytes()], false),
        Err(ParseError::HeadTooLarge)
    );
}

#[test]
fn long_pipelined_streams_survive_buffer_compaction() {
    // 3,000 responses (~200 KiB) through a ~17 KiB inbox in awkward read sizes,
    // so partial heads and bodies sit at the buffer's end and get moved.
    let one = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n";
    let stream: Vec<u8> = one.repeat(1_500);
    for read_size in [1_000, 4_095, 4_097, 17_000] {
        let chunks: Vec<&[u8]> = stream.chunks(read_size).collect();
        let got = feed(&chunks, false).unwrap();
        assert_eq!(got.len(), 3_000, "read size {read_size}");
        assert!(got.iter().all(|r| *r == ok(200)));
    }
}

#[test]
fn a_repeated_head_parses_as_the_first_and_a_changed_one_is_parsed_afresh() {
    // The parser recognises a head identical to the previous one by comparison;
    // a head that differs anywhere (Date, length, status, Connection) must still
    // be read for what it says, at every split.
    let same =
        b"HTTP/1.1 200 OK\r\nDate: Mon, 07 Dec 2026 12:00:00 GMT\r\nContent-Length: 5\r\n\r\nhello";
    let later =
        b"HTTP/1.1 200 OK\r\nDate: Mon, 07 Dec 2026 12:00:01 GMT\r\nContent-Length: 5\r\n\r\nhello";
    let longer = b"HTTP/1.1 200 OK\r\nDate: Mon, 07 Dec 2026 12:00:01 GMT\r\nContent-Length: 7\r\n\r\nhello!!";
    let closing = b"HTTP/1.1 503 Busy\r\nDate: Mon, 07 Dec 2026 12:00:01 GMT\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    let input = [&same[..], same, later, later, longer, longer, same, closing].concat();
    let closed = Response {
        status: 503,
        close: true,
    };
    check_all_splits(
        &input,
        &[
            ok(200),
            ok(200),
            ok(200),
            ok(200),
            ok(200),
            ok(200),
            ok(200),
            closed,
        ],
    );
    // The body length comes from each head: a repeated 7-byte head after a
    // 5-byte one would desync the stream if the old state were reused.
    let mut desync = [&longer[..], same].concat();
    desync.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
    check_all_splits(&desync, &[ok(200), ok(200), ok(204)]);
}
