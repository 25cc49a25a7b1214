//! The `downloads` scenario: what a server holds in memory per download in
//! progress, with many downloads of a large file at once.
//!
//! How the figure is made honest:
//! - every client socket gets, before it connects, a small receive buffer
//!   ([`CLIENT_RCVBUF`]) and an Ethernet-sized MSS ([`CLIENT_MSS`]): the window
//!   it advertises stays small, and the server's kernel sizes its send buffer
//!   for 1460-byte segments, as it would for a client across a network, not for
//!   loopback's 64 KiB ones (with those the server's socket took 1,024,270 of
//!   the file's 1,048,576 bytes at once, read from `/proc/net/tcp`, and every
//!   download was over for the server before the measurement). So the kernel
//!   holds a few hundred KiB of each download at most and the rest is still the
//!   server's to send;
//! - each connection sends its `GET`, reads the response head (and the body
//!   bytes that come with it), then stops reading until **all** downloads have
//!   their heads: every download has been started by the server and none can
//!   finish;
//! - after [`SETTLE`], the server's RSS is read (summed over the server's
//!   processes: the process and its descendants) and, from `/proc/net/tcp`, how
//!   many downloads the server has not finished writing: the bytes the client
//!   read, plus those queued in the client's socket, plus those queued in the
//!   server's socket, fall short of the whole response. That count is the
//!   divisor: (RSS during − RSS idle) ÷ downloads in flight;
//! - then the downloads are read to the end in waves of [`DRAIN_WAVE`] (the
//!   others stay stalled, so the kernel's TCP memory only falls from what the
//!   measurement held), and each body is compared byte for byte with the file;
//!   a refused connect, a status other than 200, a short, long or differing
//!   body, a reset, or the deadline counts as an error, and any error makes
//!   the server *not comparable* in this scenario;
//! - a download may stall for the whole scenario, so every server gets the same
//!   send timeout, [`SEND_TIMEOUT`], longer than the harness's own deadlines
//!   (the models' `--write-timeout` and `--response-timeout`, the nginx peer's
//!   `send_timeout`): a download is only ever given up by the harness;
//! - the kernel holds about [`KERNEL_BYTES_PER_DOWNLOAD`] of TCP buffers per
//!   stalled download, almost all of it the server's send buffer, which its
//!   kernel sizes from the MSS, not from the client's window (16 KiB receive
//!   buffer: 236 KiB per download; 2 KiB: 214 KiB). Past the kernel's pressure
//!   threshold (`tcp_mem`) segments are dropped and retransmitted after
//!   backed-off timeouts, and reading took 23 to 92 s per server with stalls
//!   past 30 s, so the default count is what fits under it ([`fits_tcp_memory`]).
//!
//! Kernel socket memory is not in RSS and is not counted: the figure is what the
//! server process itself holds per download.

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Receive buffer each client socket asks for before connecting (the kernel
/// doubles it for its bookkeeping): 10,000 of them are about 320 MiB of
/// kernel memory at most.
pub const CLIENT_RCVBUF: usize = 16 << 10;
/// Receive buffer asked for once the memory is measured, by the downloads of
/// the wave being read (2,000 downloads: 7.1 s to read with the small buffer,
/// 5.3 s with this). The kernel doubles it: all 10,000 at once would add up to
/// 1.25 GiB of TCP memory, hence the waves.
pub const DRAIN_RCVBUF: usize = 64 << 10;
/// Downloads read to the end at once after the measurement; the others wait
/// stalled, holding no more kernel memory than they did when measured.
pub const DRAIN_WAVE: usize = 500;
/// The send timeout every server gets in this scenario: longer than the heads'
/// deadline, the settling and the longest reading deadline together
/// ([`drain_deadline`]), so no server cuts a download the harness still waits for.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(600);
/// The longest reading to the end may take, whatever the count.
pub const MAX_DRAIN: Duration = Duration::from_secs(540);
/// Kernel TCP buffer memory per stalled download, measured on the 2-CPU VM
/// (Linux 6.18, tokio, 2,000 downloads: `/proc/net/sockstat` before and
/// stalled): 236 KiB, of which the server's send queue about 210 KiB.
pub const KERNEL_BYTES_PER_DOWNLOAD: u64 = 240 << 10;
/// Share of the kernel's TCP pressure threshold the default count may fill.
pub const TCP_MEMORY_SHARE: f64 = 0.8;
/// The MSS each client socket advertises (Ethernet's, 1500 − 40).
pub const CLIENT_MSS: u32 = 1460;
/// Wait after the last head before reading RSS, so the server has reacted to
/// every connection's request (sends begun, buffers taken).
pub const SETTLE: Duration = Duration::from_millis(500);
/// Longest the heads may take to arrive, from the first connect. gvhttpd's
/// `--write-timeout` (30 s by default) cuts a download that makes no progress
/// (every server gets [`SEND_TIMEOUT`] here).
pub const HEAD_DEADLINE: Duration = Duration::from_secs(20);
/// Bytes read per `read` while draining.
const READ_CHUNK: usize = 64 << 10;

/// The measurement of one `downloads` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownloadsResult {
    /// Connections opened (one download each).
    pub downloads: usize,
    /// Downloads the server had begun and not finished writing at the measurement.
    pub in_flight: usize,
    /// The server's RSS (all its processes) before any connection, KiB.
    pub rss_idle_kib: u64,
    /// The same with every download stalled in flight, KiB.
    pub rss_during_kib: u64,
    /// (during − idle) ÷ in flight, bytes.
    pub bytes_per_download: f64,
    /// Downloads read to the end and identical to the file.
    pub intact: usize,
    /// Downloads that failed (see `first_error`).
    pub errors: usize,
    #[serde(default)]
    pub first_error: Option<String>,
    /// The client sockets' requested receive buffer, bytes.
    pub client_rcvbuf: usize,
    /// Seconds from the first connect until every download was read.
    pub seconds: f64,
    /// The machine's TCP buffer memory at the measurement, KiB ([`kernel_tcp_kib`]).
    #[serde(default)]
    pub kernel_tcp_kib: Option<u64>,
    /// The kernel's TCP memory pressure threshold, KiB ([`tcp_pressure_kib`]).
    #[serde(default)]
    pub tcp_pressure_kib: Option<u64>,
}

/// What to download, how many times, from where.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    pub addr: SocketAddr,
    /// The server's main process: its RSS and its descendants' are summed.
    pub pid: u32,
    /// e.g. `/static/1MiB.bin`.
    pub path: &'a str,
    /// The file's exact bytes.
    pub expected: &'a [u8],
    pub downloads: usize,
    /// Longest the reading to the end may take, after the measurement.
    pub drain_deadline: Duration,
    /// Downloads read at once after the measurement ([`DRAIN_WAVE`]).
    pub drain_wave: usize,
}

#[derive(Debug)]
enum Phase {
    /// Collecting the response head.
    Head(Vec<u8>),
    /// Head seen (`len` is the Content-Length); `got` body bytes read so far.
    Body {
        len: usize,
        got: usize,
    },
    Done,
    Failed,
}

struct Conn {
    stream: TcpStream,
    /// The client's local port (to find both ends in `/proc/net/tcp`).
    port: u16,
    phase: Phase,
}

/// A failure of one download, counted once.
struct Tally {
    errors: usize,
    first: Option<String>,
}

impl Tally {
    fn fail(&mut self, c: &mut Conn, i: usize, why: impl FnOnce() -> String) {
        if !matches!(c.phase, Phase::Failed | Phase::Done) {
            c.phase = Phase::Failed;
            self.errors += 1;
            if self.first.is_none() {
                self.first = Some(format!("download {i}: {}", why()));
            }
        }
    }
}

/// Runs the scenario against a server already listening on `o.addr`.
pub fn measure(o: &Options<'_>) -> Result<DownloadsResult, String> {
    std::thread::sleep(Duration::from_millis(200));
    let rss_idle_kib = tree_rss_kib(o.pid).ok_or("cannot read the server's RSS")?;
    let started = Instant::now();
    let mut poll = Poll::new().map_err(|e| format!("cannot create an epoll instance: {e}"))?;
    let mut tally = Tally {
        errors: 0,
        first: None,
    };
    let request = format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", o.path, o.addr);
    let mut conns: Vec<Option<Conn>> = Vec::with_capacity(o.downloads);
    for i in 0..o.downloads {
        match open(o.addr, request.as_bytes()) {
            Ok((mut stream, port)) => {
                poll.registry()
                    .register(&mut stream, Token(i), Interest::READABLE)
                    .map_err(|e| format!("cannot watch a connection: {e}"))?;
                conns.push(Some(Conn {
                    stream,
                    port,
                    phase: Phase::Head(Vec::with_capacity(512)),
                }));
            }
            Err(e) => {
                tally.errors += 1;
                tally
                    .first
                    .get_or_insert_with(|| format!("download {i}: connect or send: {e}"));
                conns.push(None);
            }
        }
    }
    // Heads: read each response until its head is complete, then stop reading.
    let mut events = Events::with_capacity(1024);
    let heads_by = started + HEAD_DEADLINE;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let waiting = conns
            .iter()
            .flatten()
            .filter(|c| matches!(c.phase, Phase::Head(_)))
            .count();
        if waiting == 0 {
            break;
        }
        let now = Instant::now();
        if now >= heads_by {
            for (i, c) in conns.iter_mut().enumerate() {
                if let Some(c) = c.as_mut().filter(|c| matches!(c.phase, Phase::Head(_))) {
                    tally.fail(c, i, || {
                        format!("no response head within {}s", HEAD_DEADLINE.as_secs())
                    });
                }
            }
            break;
        }
        wait(&mut poll, &mut events, heads_by - now)?;
        for ev in events.iter() {
            let i = ev.token().0;
            if let Some(c) = conns.get_mut(i).and_then(Option::as_mut) {
                if matches!(c.phase, Phase::Head(_)) {
                    read_head(c, i, o.expected, &mut buf, &mut tally);
                }
            }
        }
    }
    // Every download has been started and none can finish: measure.
    std::thread::sleep(SETTLE);
    let rss_during_kib = tree_rss_kib(o.pid).ok_or("the server exited during the downloads")?;
    let kernel_tcp_kib = kernel_tcp_kib();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let queues = socket_queues(&table, o.addr.port());
    let in_flight = conns
        .iter()
        .flatten()
        .filter(|c| match c.phase {
            Phase::Body { len, got } => {
                let (client_rx, server_tx) = queues.get(&c.port).copied().unwrap_or((0, 0));
                (got + client_rx + server_tx) < len
            }
            _ => false,
        })
        .count();
    // Read every download to the end, a wave at a time: the downloads not yet
    // in a wave stay stalled (and unread: their events are left for later).
    let drain_by = Instant::now() + o.drain_deadline;
    let mut next = 0;
    loop {
        let open = conns
            .iter()
            .take(next)
            .flatten()
            .filter(|c| matches!(c.phase, Phase::Body { .. }))
            .count();
        if open == 0 && next >= conns.len() {
            break;
        }
        let wave = o.drain_wave.max(1);
        if open <= wave / 2 && next < conns.len() {
            // Top the wave up.
            let until = (next + wave - open).min(conns.len());
            for (i, c) in conns.iter_mut().enumerate().take(until).skip(next) {
                if let Some(c) = c.as_mut() {
                    // Measured; now a larger window, so that reading takes less time.
                    let _ = socket2::SockRef::from(&c.stream).set_recv_buffer_size(DRAIN_RCVBUF);
                    read_body(c, i, o.expected, &mut buf, &mut tally);
                }
            }
            next = until;
            continue;
        }
        let now = Instant::now();
        if now >= drain_by {
            for (i, c) in conns.iter_mut().enumerate() {
                if let Some(c) = c.as_mut().filter(|c| matches!(c.phase, Phase::Body { .. })) {
                    tally.fail(c, i, || {
                        format!("not read to the end within {}s", o.drain_deadline.as_secs())
                    });
                }
            }
            break;
        }
        wait(&mut poll, &mut events, drain_by - now)?;
        for ev in events.iter() {
            let i = ev.token().0;
            if i >= next {
                // Not in a wave yet: read when its turn comes.
                continue;
            }
            let finished = match conns.get_mut(i).and_then(Option::as_mut) {
                Some(c) => {
                    read_body(c, i, o.expected, &mut buf, &mut tally);
                    !matches!(c.phase, Phase::Body { .. })
                }
                None => false,
            };
            if finished {
                // Done or failed: close it now, freeing the server's side.
                conns[i] = None;
            }
        }
    }
    let intact = o.downloads - tally.errors;
    let grown = rss_during_kib.saturating_sub(rss_idle_kib) as f64 * 1024.0;
    Ok(DownloadsResult {
        downloads: o.downloads,
        in_flight,
        rss_idle_kib,
        rss_during_kib,
        bytes_per_download: if in_flight > 0 {
            grown / in_flight as f64
        } else {
            0.0
        },
        intact,
        errors: tally.errors,
        first_error: tally.first,
        client_rcvbuf: CLIENT_RCVBUF,
        seconds: started.elapsed().as_secs_f64(),
        kernel_tcp_kib,
        tcp_pressure_kib: tcp_pressure_kib(),
    })
}

/// The whole machine's TCP buffer memory now (`/proc/net/sockstat`, `TCP: …
/// mem PAGES`), KiB: every socket's, the client's and the server's alike.
pub fn kernel_tcp_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "mem")?;
    let pages: u64 = words.next()?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64 / 1024)
}

/// Where the kernel starts to hold TCP buffer memory back (`tcp_mem`'s middle
/// value), KiB: above it, receive queues drop segments and senders wait, and a
/// stalled download can be starved for tens of seconds.
pub fn tcp_pressure_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_mem").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64 / 1024)
}

/// How long the downloads may take to be read to the end once measured: 30 s
/// and 10 ms more per download (10,000: 130 s), at most [`MAX_DRAIN`]; far
/// beyond what a working server needs (seconds), so that only a stuck download
/// reaches it.
pub fn drain_deadline(n: usize) -> Duration {
    (Duration::from_secs(30) + Duration::from_millis(10) * n.min(1 << 24) as u32).min(MAX_DRAIN)
}

/// How many stalled downloads fit in [`TCP_MEMORY_SHARE`] of the kernel's TCP
/// pressure threshold, less what the machine's sockets hold already, at
/// [`KERNEL_BYTES_PER_DOWNLOAD`] each (`None` where `/proc` does not say).
pub fn fits_tcp_memory(pressure_kib: Option<u64>, in_use_kib: Option<u64>) -> Option<usize> {
    let room = pressure_kib? as f64 * TCP_MEMORY_SHARE - in_use_kib.unwrap_or(0) as f64;
    Some((room.max(0.0) * 1024.0 / KERNEL_BYTES_PER_DOWNLOAD as f64) as usize)
}

/// Descriptors a server needs for `n` downloads at once: a socket and the open
/// file each, and some to spare (listener, event queues, logs).
pub fn descriptors_needed(n: usize) -> u64 {
    2 * n as u64 + 128
}

fn wait(poll: &mut Poll, events: &mut Events, left: Duration) -> Result<(), String> {
    match poll.poll(events, Some(left.min(Duration::from_millis(100)))) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
        Err(e) => Err(format!("epoll_wait failed: {e}")),
    }
}

/// Connects with a small receive buffer and an Ethernet MSS (both set before
/// the handshake, which is when they count) and sends the request; (stream,
/// local port).
fn open(addr: SocketAddr, request: &[u8]) -> io::Result<(TcpStream, u16)> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_recv_buffer_size(CLIENT_RCVBUF)?;
    sock.set_tcp_mss(CLIENT_MSS)?;
    // Bounded: a full accept backlog drops SYNs, and a blocking connect would retry for minutes.
    sock.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    let mut s: std::net::TcpStream = sock.into();
    s.set_nodelay(true)?;
    s.write_all(request)?;
    s.set_nonblocking(true)?;
    let port = s.local_addr()?.port();
    Ok((TcpStream::from_std(s), port))
}

/// Reads until the head is complete (then stops: the download stalls there).
fn read_head(c: &mut Conn, i: usize, expected: &[u8], buf: &mut [u8], tally: &mut Tally) {
    loop {
        // Small reads: the point is to stop soon after the head.
        let want = 4096.min(buf.len());
        match c.stream.read(&mut buf[..want]) {
            Ok(0) => return tally.fail(c, i, || "closed before the response head".into()),
            Ok(n) => {
                let Phase::Head(h) = &mut c.phase else { return };
                h.extend_from_slice(&buf[..n]);
                let Some(end) = memchr::memmem::find(h, b"\r\n\r\n") else {
                    if h.len() > 16 << 10 {
                        return tally.fail(c, i, || "a response head over 16 KiB".into());
                    }
                    continue;
                };
                let head = String::from_utf8_lossy(&h[..end]).to_ascii_lowercase();
                let rest = h[end + 4..].to_vec();
                if !head.starts_with("http/1.1 200") && !head.starts_with("http/1.0 200") {
                    let line = head.lines().next().unwrap_or("").to_string();
                    return tally.fail(c, i, || format!("status line '{line}', not 200"));
                }
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                let Some(len) = len.filter(|&l| l == expected.len()) else {
                    return tally.fail(c, i, || {
                        format!(
                            "Content-Length {len:?}, not the file's {} bytes",
                            expected.len()
                        )
                    });
                };
                c.phase = Phase::Body { len, got: 0 };
                return take_body(c, i, expected, &rest, tally);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return tally.fail(c, i, || format!("read: {e}")),
        }
    }
}

/// Reads what has arrived of the body, checking it against the file.
fn read_body(c: &mut Conn, i: usize, expected: &[u8], buf: &mut [u8], tally: &mut Tally) {
    while let Phase::Body { len, got } = c.phase {
        match c.stream.read(buf) {
            Ok(0) => return tally.fail(c, i, || format!("closed after {got} of {len} body bytes")),
            Ok(n) => take_body(c, i, expected, &buf[..n], tally),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return tally.fail(c, i, || format!("read after {got} body bytes: {e}")),
        }
    }
}

/// Body bytes `b` arrived: compare them with the file where they belong.
fn take_body(c: &mut Conn, i: usize, expected: &[u8], b: &[u8], tally: &mut Tally) {
    let Phase::Body { len, got } = c.phase else {
        return;
    };
    if got + b.len() > len {
        return tally.fail(c, i, || format!("more than the {len} body bytes promised"));
    }
    if expected[got..got + b.len()] != *b {
        let at = got
            + b.iter()
                .zip(&expected[got..])
                .position(|(x, y)| x != y)
                .unwrap_or(0);
        return tally.fail(c, i, || format!("body differs from the file at byte {at}"));
    }
    let got = got + b.len();
    c.phase = if got == len {
        Phase::Done
    } else {
        Phase::Body { len, got }
    };
}

/// Per client port: (bytes queued in the client's receive queue, bytes queued
/// in the server's send queue), from a `/proc/net/tcp` table, for the
/// connections to `server_port` (IPv4 loopback: ports identify them).
pub fn socket_queues(
    table: &str,
    server_port: u16,
) -> std::collections::HashMap<u16, (usize, usize)> {
    let mut out: std::collections::HashMap<u16, (usize, usize)> = Default::default();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(queues)) = (f.get(1), f.get(2), f.get(4)) else {
            continue;
        };
        let port = |a: &str| {
            a.rsplit_once(':')
                .and_then(|p| u16::from_str_radix(p.1, 16).ok())
        };
        let (Some(lp), Some(rp)) = (port(local), port(remote)) else {
            continue;
        };
        let Some((tx, rx)) = queues.split_once(':') else {
            continue;
        };
        let (Ok(tx), Ok(rx)) = (usize::from_str_radix(tx, 16), usize::from_str_radix(rx, 16))
        else {
            continue;
        };
        if lp == server_port && rp != 0 {
            // The server's end: its send queue.
            out.entry(rp).or_default().1 += tx;
        } else if rp == server_port {
            // The client's end: its receive queue.
            out.entry(lp).or_default().0 += rx;
        }
    }
    out
}

/// RSS of `pid` and every descendant, KiB (`None` when `pid` is gone).
pub fn tree_rss_kib(pid: u32) -> Option<u64> {
    let mut total = crate::sys::status_kib(&pid.to_string(), "VmRSS")?;
    let mut parents = vec![pid];
    let mut seen = vec![pid];
    // /proc/*/stat: "PID (comm) STATE PPID ...".
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    while let Some(parent) = parents.pop() {
        for &(p, pp) in &all {
            if pp == parent && !seen.contains(&p) {
                seen.push(p);
                parents.push(p);
                total += crate::sys::status_kib(&p.to_string(), "VmRSS").unwrap_or(0);
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_found_for_both_ends() {
        // Server on port 0x1F90 (8080); a client on 0xC350 (50000): the server's
        // end has 0x4000 bytes to send, the client's 0x2000 unread.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:C350 01 00004000:00000000 00:00000000 00000000  1000        0 2 1 0 20 4 30 10 -1\n\
   2: 0100007F:C350 0100007F:1F90 01 00000000:00002000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1\n\
   3: 0100007F:C351 0100007F:0050 01 00000000:00000999 00:00000000 00000000  1000        0 4 1 0 20 4 30 10 -1\n";
        let q = socket_queues(table, 8080);
        assert_eq!(q.len(), 1, "{q:?}");
        assert_eq!(q[&50000], (0x2000, 0x4000));
    }

    #[test]
    fn the_default_count_fits_the_kernels_tcp_memory() {
        // The 2-CPU VM: a 1,535,508 KiB threshold, 2,000 KiB in use: 5,110.
        assert_eq!(fits_tcp_memory(Some(1_535_508), Some(2_000)), Some(5_110));
        assert_eq!(fits_tcp_memory(Some(1_000), Some(5_000)), Some(0));
        assert_eq!(fits_tcp_memory(None, Some(0)), None);
        // Reading may take 30 s + 10 ms a download, never past MAX_DRAIN, and
        // the heads, the settling and reading end inside every server's send timeout.
        assert_eq!(drain_deadline(10_000), Duration::from_secs(130));
        assert_eq!(drain_deadline(usize::MAX), MAX_DRAIN);
        assert!(HEAD_DEADLINE + SETTLE + MAX_DRAIN < SEND_TIMEOUT);
    }

    /// A thread per connection answering every `GET` with `body` (blocking
    /// writes: a download stalls while the client does not read).
    fn file_server(body: Vec<u8>) -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let body = std::sync::Arc::new(body);
        std::thread::spawn(move || {
            for s in l.incoming().map_while(Result::ok) {
                let body = body.clone();
                std::thread::spawn(move || {
                    let mut s = s;
                    let mut req = [0u8; 1024];
                    let _ = s.read(&mut req);
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                    let _ = s.write_all(head.as_bytes());
                    let _ = s.write_all(&body);
                });
            }
        });
        addr
    }

    #[test]
    fn downloads_read_in_waves_all_arrive_intact() {
        // 23 downloads of 256 KiB, read 5 at a time (the wave is topped up
        // when half of it is done): every one is read to the end and checked.
        let body = crate::compare::file_bytes(256 << 10);
        let addr = file_server(body.clone());
        let r = measure(&Options {
            addr,
            pid: std::process::id(),
            path: "/f",
            expected: &body,
            downloads: 23,
            drain_deadline: Duration::from_secs(60),
            drain_wave: 5,
        })
        .unwrap();
        assert_eq!((r.downloads, r.intact, r.errors), (23, 23, 0), "{r:?}");
        // 256 KiB is more than the kernel holds of a stalled download.
        assert!(r.in_flight > 0, "{r:?}");
        // A body that differs from what the server sends is an error, counted once each.
        let other = crate::compare::file_bytes((256 << 10) + 1)[..256 << 10].to_vec();
        let r = measure(&Options {
            expected: &other,
            downloads: 3,
            drain_wave: 1,
            ..Options {
                addr,
                pid: std::process::id(),
                path: "/f",
                expected: &body,
                downloads: 0,
                drain_deadline: Duration::from_secs(60),
                drain_wave: 1,
            }
        })
        .unwrap();
        assert_eq!((r.intact, r.errors), (0, 3), "{r:?}");
        assert!(r
            .first_error
            .unwrap()
            .contains("differs from the file at byte"));
    }

    #[test]
    fn the_rss_of_a_process_tree_adds_its_children() {
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 3 & sleep 3 & wait"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let own = crate::sys::status_kib(&sh.id().to_string(), "VmRSS").unwrap();
        let tree = tree_rss_kib(sh.id()).unwrap();
        let _ = sh.kill();
        let _ = sh.wait();
        assert!(
            tree > own,
            "the two sleeps add to the shell's {own} KiB: {tree}"
        );
        assert_eq!(tree_rss_kib(u32::MAX), None);
    }
}
