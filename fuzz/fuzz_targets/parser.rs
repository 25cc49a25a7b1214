//! The request parser under libFuzzer: the head scanner and the chunked decoder
//! never panic, give the same verdict however the input is split, and a head the
//! scanner accepts is one httparse accepts with the same length and target
//! (gvhttpd's `HTTP/1.x` for x >= 2 given to httparse as `HTTP/1.1`). The
//! differential oracle with every documented difference is the property test,
//! tests/parser_props.rs; this target adds coverage guidance.
//!
//! Input: byte 0 picks the split point (low 7 bits) and the limits (high bit:
//! small ones, to reach them); the rest is the request.
#![no_main]

use gvhttpd::config::Limits;
use gvhttpd::http::body::Chunked;
use gvhttpd::http::parse::{HeadScanner, Scan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let limits = if ctl & 0x80 != 0 {
        Limits {
            max_target: 24,
            max_headers: 5,
            max_head: 160,
            max_body: 64,
        }
    } else {
        Limits::default()
    };
    let cut = usize::from(ctl & 0x7f).min(input.len());

    let whole = HeadScanner::default().scan(input, &limits);
    let mut s = HeadScanner::default();
    let split = match (cut > 0).then(|| s.scan(&input[..cut], &limits)) {
        None | Some(Ok(Scan::Partial)) => s.scan(input, &limits),
        Some(r) => r,
    };
    match (&whole, &split) {
        // `split-limit-first` (docs/http-behaviour.md): a head both over a size
        // limit and malformed may be refused for either, depending on the reads.
        (Err(a), Err(b)) if a != b && [a.status, b.status].iter().any(|s| [414, 431].contains(s)) => {}
        _ => assert_eq!(whole, split, "the verdict depends on a split at {cut}"),
    }
    if let Ok(Scan::Complete(h)) = &whole {
        let mut fixed = input.to_vec();
        let minor = h.target.end + 8;
        if fixed.get(h.target.end + 1..minor) == Some(&b"HTTP/1."[..]) {
            fixed[minor] = b'1';
        }
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&fixed) {
            Ok(httparse::Status::Complete(n)) => {
                assert_eq!(n, h.len, "head length");
                assert_eq!(req.path.map(str::as_bytes), Some(&input[h.target.clone()]));
            }
            other => panic!("gvhttpd accepted a head httparse does not: {other:?}"),
        }
    }

    // The same bytes as a chunked body, whole and split.
    let decode = |cuts: &[usize]| {
        let mut buf = Vec::new();
        let (mut read, mut write) = (0, 0);
        let mut dec = Chunked::default();
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            buf.extend_from_slice(&input[buf.len()..end]);
            match dec.decode(&mut buf, &mut read, &mut write, &limits) {
                Ok(true) => return Ok(Some((buf[..write].to_vec(), read))),
                Ok(false) => {}
                Err(r) => return Err(r),
            }
        }
        Ok(None)
    };
    assert_eq!(decode(&[]), decode(&[cut]), "chunked: split at {cut}");
});
