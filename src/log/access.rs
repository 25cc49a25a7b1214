//! The access log: one line per request in the combined log format, buffered
//! per worker and written by one thread (see the parent module for why).

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::SystemTime;

use super::{clf_time, event, since_epoch, Level};
use crate::config::LogTarget;

/// A worker hands its buffer to the writer once it holds this many bytes.
pub const FLUSH_AT: usize = 64 * 1024;
/// Most bytes a worker keeps while the writer is behind; beyond, lines are dropped.
pub const MAX_PENDING: usize = 4 * 1024 * 1024;
/// Buffers in flight between the workers and the writer thread.
const CHANNEL_DEPTH: usize = 64;

/// The access log: a writer thread owning the destination, fed whole buffers
/// by every worker's [`WorkerLog`].
#[derive(Debug)]
pub struct AccessLog {
    tx: SyncSender<Vec<u8>>,
    writer: JoinHandle<io::Result<()>>,
    dropped: Arc<AtomicU64>,
}

/// Opens `target` for appending (creating a file if needed).
pub fn open_target(target: &LogTarget) -> io::Result<Box<dyn io::Write + Send>> {
    Ok(match target {
        LogTarget::Stdout => Box::new(io::stdout()),
        LogTarget::File(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
    })
}

impl AccessLog {
    /// Opens `target` and starts the writer thread.
    pub fn open(target: &LogTarget) -> io::Result<AccessLog> {
        let out = open_target(target)?;
        AccessLog::to_writer(out)
    }

    /// An access log written to `out` (tests use an in-memory pipe).
    pub fn to_writer(mut out: Box<dyn io::Write + Send>) -> io::Result<AccessLog> {
        let (tx, rx): (SyncSender<Vec<u8>>, Receiver<Vec<u8>>) = mpsc::sync_channel(CHANNEL_DEPTH);
        let writer = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut result = Ok(());
                // Ends when every sender (the AccessLog and all WorkerLogs) is gone.
                for buf in rx {
                    if result.is_ok() {
                        result = out.write_all(&buf).and_then(|()| out.flush());
                        if let Err(e) = &result {
                            event(
                                Level::Error,
                                format_args!("access log write failed, logging stops: {e}"),
                            );
                        }
                    }
                }
                result
            })?;
        Ok(AccessLog {
            tx,
            writer,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A buffer for one worker; it must be dropped (or flushed) before [`AccessLog::finish`]
    /// can return.
    pub fn for_worker(&self) -> WorkerLog {
        WorkerLog {
            buf: Vec::with_capacity(FLUSH_AT + 1024),
            tx: self.tx.clone(),
            dropped: Arc::clone(&self.dropped),
            clock_secs: u64::MAX,
            clock: String::new(),
        }
    }

    /// Waits until every worker's log is dropped and everything is written;
    /// returns how many lines were dropped because the writer fell behind.
    pub fn finish(self) -> io::Result<u64> {
        drop(self.tx);
        let written = self
            .writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the access-log writer panicked")));
        written.map(|()| self.dropped.load(Ordering::Relaxed))
    }
}

/// One request, as the access log records it. Byte strings are what the client
/// sent; they are escaped on the way in.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    pub peer: SocketAddr,
    pub method: &'a [u8],
    pub target: &'a [u8],
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: &'a str,
    pub status: u16,
    /// Body bytes sent (`-` when 0, as Apache's `%b`).
    pub bytes: u64,
    pub referer: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    /// A proxied request (`/proxy/`): the time from asking for an upstream
    /// connection to the upstream response's end (or its failure), logged as a
    /// last field `upstream=SECONDS` (millisecond resolution).
    pub upstream: Option<std::time::Duration>,
}

/// One worker's access-log buffer. Single-threaded, owned by its event loop.
#[derive(Debug)]
pub struct WorkerLog {
    buf: Vec<u8>,
    tx: SyncSender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
    /// The second `clock` was formatted for.
    clock_secs: u64,
    clock: String,
}

impl WorkerLog {
    /// Appends one line in the combined log format:
    /// `HOST - - [TIME] "METHOD TARGET VERSION" STATUS BYTES "REFERER" "USER-AGENT"`.
    pub fn record(&mut self, e: &Entry<'_>) {
        self.record_at(e, since_epoch(SystemTime::now()).as_secs());
    }

    fn record_at(&mut self, e: &Entry<'_>, secs: u64) {
        if self.buf.len() >= MAX_PENDING {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.flush();
            return;
        }
        if secs != self.clock_secs {
            self.clock_secs = secs;
            self.clock = clf_time(secs);
        }
        let b = &mut self.buf;
        let _ = write!(b, "{} - - {} \"", e.peer.ip(), self.clock);
        escape_into(b, e.method);
        b.push(b' ');
        escape_into(b, e.target);
        b.push(b' ');
        escape_into(b, e.version.as_bytes());
        let _ = write!(b, "\" {} ", e.status);
        if e.bytes == 0 {
            b.push(b'-');
        } else {
            let _ = write!(b, "{}", e.bytes);
        }
        for field in [e.referer, e.user_agent] {
            b.extend_from_slice(b" \"");
            match field {
                Some(v) if !v.is_empty() => escape_into(b, v),
                _ => b.push(b'-'),
            }
            b.push(b'"');
        }
        if let Some(t) = e.upstream {
            let _ = write!(b, " upstream={:.3}", t.as_secs_f64());
        }
        b.push(b'\n');
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Hands the buffered lines to the writer thread, without blocking: when the
    /// writer is behind they stay here and go with a later flush.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let buf = std::mem::replace(&mut self.buf, Vec::with_capacity(FLUSH_AT + 1024));
        match self.tx.try_send(buf) {
            Ok(()) => {}
            Err(TrySendError::Full(back)) => {
                if back.len() >= MAX_PENDING {
                    // Give up on this backlog rather than grow without bound.
                    let lines = back.iter().filter(|&&c| c == b'\n').count() as u64;
                    self.dropped.fetch_add(lines, Ordering::Relaxed);
                } else {
                    self.buf = back;
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Bytes waiting in this worker's buffer.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

impl Drop for WorkerLog {
    fn drop(&mut self) {
        // The event loop is gone: waiting for room is fine now.
        if !self.buf.is_empty() {
            let _ = self.tx.send(std::mem::take(&mut self.buf));
        }
    }
}

/// Appends `v`, escaped as Apache does: `"` and `\` get a backslash, and control
/// or non-ASCII bytes become `\xHH`, so a client cannot forge log lines.
fn escape_into(out: &mut Vec<u8>, v: &[u8]) {
    for &c in v {
        match c {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', c]),
            0x20..=0x7e => out.push(c),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'x',
                    HEX[usize::from(c >> 4)],
                    HEX[usize::from(c & 15)],
                ]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An in-memory destination the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn entry<'a>(target: &'a [u8], ua: Option<&'a [u8]>) -> Entry<'a> {
        Entry {
            upstream: None,
            peer: "127.0.0.1:50000".parse().unwrap(),
            method: b"GET",
            target,
            version: "HTTP/1.1",
            status: 200,
            bytes: 13,
            referer: None,
            user_agent: ua,
        }
    }

    #[test]
    fn combined_log_format_lines() {
        let sink = Sink::default();
        let log = AccessLog::to_writer(Box::new(sink.clone())).unwrap();
        let mut w = log.for_worker();
        let secs = 1_796_118_791;
        w.record_at(&entry(b"/json", Some(b"curl/8.5.0")), secs);
        let mut e = entry(b"/x", None);
        e.peer = "[::1]:1".parse().unwrap();
        e.method = b"POST";
        e.status = 404;
        e.bytes = 0;
        e.referer = Some(b"http://a/");
        e.version = "HTTP/1.0";
        w.record_at(&e, secs);
        drop(w);
        assert_eq!(log.finish().unwrap(), 0);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "127.0.0.1 - - [01/Dec/2026:09:53:11 +0000] \"GET /json HTTP/1.1\" 200 13 \"-\" \"curl/8.5.0\"\n\
             ::1 - - [01/Dec/2026:09:53:11 +0000] \"POST /x HTTP/1.0\" 404 - \"http://a/\" \"-\"\n"
        );
    }

    #[test]
    fn clients_cannot_forge_lines_or_break_quotes() {
        let sink = Sink::default();
        let log = AccessLog::to_writer(Box::new(sink.clone())).unwrap();
        let mut w = log.for_worker();
        w.record(&entry(b"/a\"b\\c", Some(b"x\n1.2.3.4 - - \xff")));
        drop(w);
        log.finish().unwrap();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(r#""GET /a\"b\\c HTTP/1.1""#), "{text}");
        assert!(text.contains(r#""x\x0a1.2.3.4 - - \xff""#), "{text}");
    }

    #[test]
    fn flush_hands_over_whole_buffers_and_never_blocks() {
        // A writer that blocks until released: the channel fills up, and the
        // worker keeps recording without waiting.
        struct Gate(Arc<Mutex<()>>, Sink);
        impl io::Write for Gate {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                let _held = self.0.lock().unwrap();
                self.1.write(b)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new(Mutex::new(()));
        let sink = Sink::default();
        let held = gate.lock().unwrap();
        let log = AccessLog::to_writer(Box::new(Gate(Arc::clone(&gate), sink.clone()))).unwrap();
        let mut w = log.for_worker();
        // The writer holds at most one buffer and the channel CHANNEL_DEPTH more;
        // flushing beyond that returns at once and keeps the lines here.
        let n = CHANNEL_DEPTH + 8;
        for _ in 0..n {
            w.record(&entry(b"/", None));
            w.flush();
        }
        assert!(w.pending() > 0, "a full channel keeps lines in the buffer");
        drop(held);
        drop(w);
        assert_eq!(log.finish().unwrap(), 0);
        let lines = sink
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|&&c| c == b'\n')
            .count();
        assert_eq!(lines, n);
    }

    #[test]
    fn a_stuck_writer_costs_dropped_lines_not_memory() {
        let gate = Arc::new(Mutex::new(()));
        struct Stuck(Arc<Mutex<()>>);
        impl io::Write for Stuck {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                let _held = self.0.lock().unwrap();
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let held = gate.lock().unwrap();
        let log = AccessLog::to_writer(Box::new(Stuck(Arc::clone(&gate)))).unwrap();
        let mut w = log.for_worker();
        let long = vec![b'a'; 1000];
        // More than the channel (64 x 64 KiB) and one full buffer can hold.
        let lines = 20_000;
        for _ in 0..lines {
            w.record(&entry(&long, None));
            assert!(w.pending() <= MAX_PENDING + 2048);
        }
        drop(held);
        drop(w);
        let dropped = log.finish().unwrap();
        assert!(dropped > 0, "nothing dropped");
        assert!(dropped < lines as u64);
    }
}
