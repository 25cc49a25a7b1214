//! The floor of a tokio HTTP server, for side-by-side runs (`scripts/cpu-per-request.sh`,
//! `bench compare --peer`): one `current_thread` runtime, one task per connection,
//! `httparse` to find each request, and a fixed `200 Hello, World!` for every one
//! (pipelined requests answered in one write). No validation, no routes, no
//! timeouts, no shutdown: what gvhttpd's tokio model costs beyond this is the price
//! of being a real server.
//!
//! Build and run: `cargo build --release --example raw_tokio &&
//! taskset -c 0 target/release/examples/raw_tokio 127.0.0.1:0` — it prints
//! `listening on http://ADDR` like gvhttpd.

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BODY: &[u8] = b"Hello, World!";

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        let mut out = std::io::stdout();
        writeln!(out, "listening on http://{}", listener.local_addr()?)?;
        out.flush()?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(stream));
        }
    })
}

/// `Date` for the current second (formatted once a second, per thread).
fn date() -> [u8; 29] {
    thread_local! {
        static CACHE: std::cell::Cell<(u64, [u8; 29])> = const { std::cell::Cell::new((0, [0; 29])) };
    }
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    CACHE.with(|c| {
        let (at, text) = c.get();
        if at == secs {
            return text;
        }
        let mut t = [0u8; 29];
        t.copy_from_slice(&httpdate::fmt_http_date(now).as_bytes()[..29]);
        c.set((secs, t));
        t
    })
}

async fn connection(mut stream: TcpStream) {
    let mut buf = vec![0u8; 8192];
    let mut out = Vec::with_capacity(4096);
    let mut filled = 0;
    loop {
        let n = match stream.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        filled += n;
        let mut at = 0;
        let date = date();
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[at..filled]) {
                Ok(httparse::Status::Complete(len)) => {
                    at += len;
                    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nServer: raw\r\nDate: ");
                    out.extend_from_slice(&date);
                    out.extend_from_slice(
                        b"\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n",
                    );
                    out.extend_from_slice(BODY);
                }
                Ok(httparse::Status::Partial) => break,
                Err(_) => return,
            }
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        if filled == buf.len() {
            return; // a head larger than the buffer: not this server's job
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}
