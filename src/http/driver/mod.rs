//! The connection driver: every decision about one connection, sans-IO.
//!
//! In the spirit of quinn-proto's or rustls's `Connection`: the driver never touches
//! a socket, a file or a clock. A model asks it what to do next — an [`Action`] —
//! performs that action with its own mechanism (an io_uring op, a tokio future, a
//! parked green thread) and reports what happened through one event method, which
//! returns the next action. The driver owns:
//!
//! - read, write and keep-alive state (through the protocol engine [`Conn`]);
//! - the phase deadlines (idle / header / body), the write-progress deadline, every
//!   timeout and its 408;
//! - the deferred replies: `/sleep` (a wait until an instant) and static files
//!   (open + stat of each candidate in turn — precompressed variants, then the
//!   file — then reads of bounded chunks at offsets, then close);
//! - lingering close (shut the write side, drain at most [`LINGER_BYTES`] for at
//!   most [`LINGER`]);
//! - shutdown: idle connections close at once (FIN after a lingering drain), a response in flight becomes the last
//!   one (`Connection: close`), and every deadline is capped at the grace deadline,
//!   where the connection is cut;
//! - CPU-bound replies (`/work`): the handler computes at most one `--work-slice`
//!   at a time ([`crate::http::Handler::work`]); between slices the driver asks the
//!   model to give its worker to other connections ([`Action::Yield`]) and to call
//!   [`Driver::resumed`] when this connection's turn comes again. A zero slice
//!   means one slice: the work runs to its end;
//! - the idle-buffer policy: while a keep-alive connection waits for its next
//!   request ([`Action::Recv`] with `idle: true`) it holds neither an input nor an
//!   output buffer (both go back to small per-thread pools).
//!
//! ```text
//!  Recv ──bytes──► (process) ──out──► Send ──all sent──► Recv (keep-alive)
//!   │  deadline: 408 → Send → linger      ├──► Sleep ──► (process)
//!   │  idle + shutdown: Close             ├──► Open ──► Send head ──► (ReadFile → Send | SendFile)* ──► CloseFile ──► (process)
//!   │                                     ├──► slice ──more──► [Send earlier replies] ──► Yield ──► slice …done──► (process)
//!   └── EOF ──► (process) ──► …           └──► ShutdownWrite ──► Drain* ──► Close
//! ```
//!
//! Contract for models:
//! - Call [`Driver::start`] once, then loop: perform the action, report the outcome
//!   with the matching event method, perform what it returns, until
//!   [`Action::Close`] (then close the socket and any file the model still holds).
//! - A deadline in an action is absolute; when the model's timer for it fires, call
//!   [`Driver::timed_out`]. A timer that fires early is harmless (the driver returns
//!   the same action, and the model re-arms it), so timers may be lazy.
//! - An I/O error on the socket (reset, broken pipe) ends the connection: call
//!   [`Driver::failed`] and close, no lingering.
//! - Models whose input arrives while the connection is busy (a multishot recv)
//!   hand it over with [`Driver::buffer`] / [`Driver::buffer_eof`]; the driver
//!   processes it when it next wants to read.
//! - [`Action::Yield`] has no deadline and no I/O: the model lets its other
//!   connections run (its own yield), then calls [`Driver::resumed`]. Shutdown
//!   reaches a yielded connection as any other; past the grace deadline `resumed`
//!   cuts it. A model that notices a reset while yielded calls [`Driver::failed`].
//! - Buffers can be borrowed (`recv_buf`, `pending`, `file_buf`) or, for an
//!   io_uring op that must own its memory until the completion, lent out whole and
//!   given back (`lend_*` / `restore_*`) before the next event.

use std::time::{Duration, Instant};

use super::conn::{Conn, Phase, Step};
use super::handler::Handler;
use crate::config::{Limits, Timeouts};
use crate::stats::{WorkerStats, BUFFER_BUDGET};

/// A lingering close discards input for at most this long, so the kernel does not
/// answer unread bytes with a RST that destroys the last response before the
/// client has read it.
pub const LINGER: Duration = Duration::from_secs(2);
/// At most this many bytes are discarded during a lingering close.
pub const LINGER_BYTES: usize = 2 * 1024 * 1024;
/// Bytes of a static file read (and then sent) at once.
pub const FILE_CHUNK: usize = 64 * 1024;

/// The largest zero-copy file body whose response head is sent with `MSG_MORE`
/// (`Action::Send { more }`), to leave in one segment with the body's first
/// pages. It saves a segment and a wake-up of the client per response: 7-17 %
/// of the server's CPU per MB for 64 KiB files and the 3-300 KB mix, +8-20 %
/// MB/s, every model. But the body then no longer starts on a page boundary, so
/// every later segment spans one page more, which over loopback's 64 KiB
/// segments cost a 1 MiB file ~5 % more CPU on both sides (tokio 1.10x
/// [1.02-1.18]); so only bodies up to this size (results/2026-12-07-vm-cork).
pub const CORK_MAX: u64 = 256 * 1024;
/// Input a busy connection may buffer ([`Driver::buffer`]) before the model should
/// stop receiving until the driver reads again (backpressure).
pub const MAX_BUFFERED: usize = 256 * 1024;
/// CPU-bound work (`/work`) a connection may still be given once its peer has
/// half-closed: enough for the longest single request, not for a pipeline of them
/// that nobody may be waiting for. Past it the connection is closed.
pub const WORK_AFTER_EOF: Duration = Duration::from_secs(1);
/// While the buffer budget is spent, a connection that needs a larger input
/// buffer waits this long before it looks again (backpressure).
pub const BUDGET_BACKOFF: Duration = Duration::from_millis(10);

mod action;
pub use action::{Action, Env};

/// What happens once the pending output has been sent whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    Read,
    Linger,
    Sleep(Duration),
    File,
    FileChunk,
    /// Give the worker back between two slices of work.
    Yield,
    /// The next step of a proxied exchange (`driver/proxy.rs`).
    Proxy,
}

/// Where the bytes of a `Send` are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// `out[sent..]`.
    Out,
    /// The file chunk `file.buf[sent..len]`.
    File,
}

/// The one connection state: what the driver waits for, with its deadline. The
/// model's [`Action`] is a view of it ([`Driver::action`]), so the two cannot
/// disagree, and a deadline exists exactly where the state has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for (more of) a request.
    Recv {
        deadline: Instant,
        idle: bool,
    },
    /// Sending; `deadline` is the write-progress deadline.
    Send {
        deadline: Instant,
        from: Source,
        after: After,
    },
    /// `/sleep`: the reply is due at `end`; the model waits until `until`
    /// (`end`, or the grace deadline if that comes first).
    Sleep {
        end: Instant,
        until: Instant,
    },
    /// Mid-request with a full input buffer while the buffer budget is spent:
    /// wait (a model's `Sleep`) until `until`, then try to read again.
    Backoff {
        until: Instant,
    },
    /// Between two slices of CPU-bound work (`Action::Yield`).
    Work,
    Open,
    ReadFile {
        offset: u64,
        len: usize,
    },
    /// Sending the file's next bytes straight from the file (zero-copy); the
    /// offset and length are the file stream's.
    SendFile {
        deadline: Instant,
    },
    CloseFile,
    /// Proxying: get an upstream connection (`fresh`: not a pooled one).
    UpConnect {
        deadline: Instant,
        fresh: bool,
    },
    UpSend {
        deadline: Instant,
    },
    UpRecv {
        deadline: Instant,
    },
    UpRelease {
        keep: bool,
    },
    ShutWrite,
    Drain {
        deadline: Instant,
    },
    Closed,
}

/// The read phase whose deadline runs (header, body, idle), and that deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ReadClock {
    phase: Phase,
    deadline: Instant,
}

/// One connection: protocol state plus every connection decision.
#[derive(Debug)]
pub struct Driver {
    conn: Conn,
    timeouts: Timers,
    /// Response bytes waiting to be sent (`out[sent..]` while sending from `out`).
    out: Vec<u8>,
    /// Bytes of the current `Send` already sent.
    sent: usize,
    state: State,
    /// The deadline of the current read phase (none before the first read).
    read: Option<ReadClock>,
    /// When the response being sent must be complete (`--response-timeout`),
    /// from its first `Send` until it is sent whole (a file's last chunk).
    response_deadline: Option<Instant>,
    /// The static file being sent, or the proxied exchange in flight. Boxed,
    /// and one box for both: most connections do neither, and every byte of a
    /// driver counts (keeps idle connections small).
    aux: Aux,
    lingered: u32,
    /// Input arrived through `buffer` since the last `process`.
    fresh: bool,
    /// Bytes handed over with `buffer` since the last `process`.
    unprocessed: u32,
    /// Shutdown began; connections are cut at this instant.
    grace: Option<Instant>,
    /// The longest slice of CPU-bound work (`--work-slice`); zero: no limit.
    work_slice_us: u32,
    /// Microseconds of [`WORK_AFTER_EOF`] not yet given to unfinished slices.
    work_after_eof_us: u32,
    /// The peer half-closed ([`Driver::eof`], [`Driver::buffer_eof`], or
    /// [`Driver::peer_half_closed`]): work is bounded by [`WORK_AFTER_EOF`].
    half_closed: bool,
    /// Bytes charged to [`BUFFER_BUDGET`] (settled at the end of every event).
    charged: u32,
    /// The connection was closed mid-response: reset it ([`Driver::resets`]).
    reset: bool,
    /// The model sends files with `Action::SendFile` ([`Driver::set_zero_copy`]).
    zero_copy: bool,
}

impl Drop for Driver {
    fn drop(&mut self) {
        BUFFER_BUDGET.settle(self.charged as usize, 0);
    }
}

impl Driver {
    /// A driver with the default `--work-slice` (see [`Driver::set_work_slice`]).
    pub fn new(limits: Limits, timeouts: Timeouts) -> Driver {
        Driver {
            conn: Conn::new(limits),
            timeouts: Timers::from(&timeouts),
            out: Vec::new(),
            sent: 0,
            state: State::Closed,
            read: None,
            response_deadline: None,
            aux: Aux(None),
            lingered: 0,
            fresh: false,
            unprocessed: 0,
            grace: None,
            work_slice_us: micros(crate::config::DEFAULT_WORK_SLICE),
            work_after_eof_us: WORK_AFTER_EOF.as_micros() as u32,
            half_closed: false,
            charged: 0,
            reset: false,
            zero_copy: false,
        }
    }

    /// Send static files with `Action::SendFile` (the model moves file bytes to
    /// the socket itself) instead of `ReadFile` + `Send` through a buffer.
    pub fn set_zero_copy(&mut self, on: bool) {
        self.zero_copy = on;
    }

    /// The longest slice of CPU-bound handler work before the model gives its
    /// worker back (`--work-slice`); zero: never (the work runs in one slice).
    pub fn set_work_slice(&mut self, slice: Duration) {
        self.work_slice_us = micros(slice);
    }

    /// The first action of a new connection (wait for its first request).
    pub fn start<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        let a = self.await_request(env);
        self.observe(env, a)
    }

    /// Access-log this connection's requests as coming from `peer`.
    pub fn log_peer(&mut self, peer: std::net::SocketAddr) {
        self.conn.log_peer(peer);
    }

    /// The action the driver is waiting on.
    #[inline]
    pub fn action(&self) -> Action {
        match self.state {
            State::Recv { deadline, idle } => Action::Recv { deadline, idle },
            State::Send {
                deadline, after, ..
            } => Action::Send {
                deadline,
                more: after == After::FileChunk
                    && self.zero_copy
                    && self
                        .aux
                        .file()
                        .is_some_and(|f| f.left > 0 && f.left <= CORK_MAX),
            },
            State::Sleep { until, .. } | State::Backoff { until } => Action::Sleep { until },
            State::Work => Action::Yield,
            State::Open => Action::Open,
            State::ReadFile { offset, len } => Action::ReadFile { offset, len },
            State::SendFile { deadline } => Action::SendFile { deadline },
            State::CloseFile => Action::CloseFile,
            State::UpConnect { deadline, fresh } => Action::UpConnect { deadline, fresh },
            State::UpSend { deadline } => Action::UpSend { deadline },
            State::UpRecv { deadline } => Action::UpRecv { deadline },
            State::UpRelease { keep } => Action::UpRelease { keep },
            State::ShutWrite => Action::ShutdownWrite,
            State::Drain { deadline } => Action::Drain { deadline },
            State::Closed => Action::Close,
        }
    }

    /// Whether the connection holds input or output memory (the idle policy says an
    /// idle connection holds none).
    pub fn holds_buffers(&self) -> bool {
        self.conn.holds_buffer()
            || self.out.capacity() > 0
            || self.aux.file().is_some()
            || self.aux.proxy().is_some()
    }

    // ----- events ----------------------------------------------------------------

    /// `n > 0` bytes were received into [`Driver::recv_buf`].
    pub fn received<H: Handler>(&mut self, env: &Env<'_, H>, n: usize) -> Action {
        let a = if self.draining() {
            self.drain_step(env, n)
        } else {
            self.conn.filled(n);
            env.stats.bytes_in.add(n as u64);
            self.process(env)
        };
        self.observe(env, a)
    }

    /// Bytes were received into the model's own buffer: copy them in and act.
    pub fn feed<H: Handler>(&mut self, env: &Env<'_, H>, bytes: &[u8]) -> Action {
        let a = if self.draining() {
            self.drain_step(env, bytes.len())
        } else {
            self.conn.feed(bytes);
            env.stats.bytes_in.add(bytes.len() as u64);
            self.process(env)
        };
        self.observe(env, a)
    }

    /// Bytes arrived while the connection is not reading (a multishot recv): keep
    /// them for when it reads again. Returns whether the model may keep receiving
    /// (false: pause until the driver asks for `Recv` or `Drain` again).
    pub fn buffer(&mut self, stats: &WorkerStats, bytes: &[u8]) -> bool {
        stats.bytes_in.add(bytes.len() as u64);
        if self.draining() {
            self.lingered = self.lingered.saturating_add(len32(bytes.len()));
            return (self.lingered as usize) < LINGER_BYTES;
        }
        if self.state == State::Closed {
            return false;
        }
        self.conn.feed(bytes);
        self.fresh = true;
        self.unprocessed = self.unprocessed.saturating_add(len32(bytes.len()));
        self.settle();
        self.unprocessed as usize <= MAX_BUFFERED && !BUFFER_BUDGET.over()
    }

    /// The peer's EOF arrived while the connection is not reading.
    pub fn buffer_eof(&mut self) {
        self.conn.peer_closed();
        self.half_closed = true;
        self.fresh = true;
    }

    /// The model saw the peer's half-close (`POLLRDHUP`) while its input may still
    /// hold unread requests: they are all still answered, but the CPU-bound work
    /// spent on them from now on is bounded by [`WORK_AFTER_EOF`].
    pub fn peer_half_closed(&mut self) {
        self.half_closed = true;
    }

    /// A receive returned 0: the peer shut down its write side. The driver never
    /// asks for `Recv` after this; a `Drain` may follow, which a model whose
    /// input has ended answers with `eof` again.
    pub fn eof<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        let a = match self.state {
            State::Drain { .. } | State::Closed => self.close(),
            State::Work => {
                // A half-close mid-work: the response is still owed (case 36).
                self.buffer_eof();
                self.action()
            }
            _ => {
                self.conn.peer_closed();
                self.half_closed = true;
                match self.process(env) {
                    // Nothing more can arrive: never wait for input after EOF
                    // (the protocol engine ends every read phase on it; this
                    // makes it the contract models rely on).
                    Action::Recv { .. } => self.close(),
                    a => a,
                }
            }
        };
        self.observe(env, a)
    }

    /// `n > 0` bytes of [`Driver::pending`] were sent (a model that sent nothing
    /// must not call this: a zero-byte send is no progress, see
    /// [`Driver::timed_out`] and [`Driver::failed`]).
    pub fn sent<H: Handler>(&mut self, env: &Env<'_, H>, n: usize) -> Action {
        let State::Send { from, after, .. } = self.state else {
            return self.close();
        };
        env.stats.bytes_out.add(n as u64);
        self.sent += n;
        let a = if !self.pending().is_empty() {
            // Progress: the write deadline starts again (the response's does not).
            let deadline = self.send_deadline(env.now);
            self.set(State::Send {
                deadline,
                from,
                after,
            })
        } else {
            self.sent = 0;
            if from == Source::Out {
                self.out.clear();
            }
            if after != After::FileChunk && after != After::Proxy {
                self.response_deadline = None; // sent whole
            }
            self.then(env, after)
        };
        self.observe(env, a)
    }

    /// The timer for `Action::Sleep` fired.
    pub fn slept<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        let a = self.sleep_step(env);
        self.observe(env, a)
    }

    /// The model gave its worker back after `Action::Yield` and this connection's
    /// turn came again: the next slice of work runs now. Past the shutdown's grace
    /// deadline the connection is cut instead.
    pub fn resumed<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        let a = if self.state != State::Work {
            self.action()
        } else if self.past_grace(env.now) {
            self.cut(env)
        } else {
            self.process(env)
        };
        self.observe(env, a)
    }

    /// The write side is shut down (`Action::ShutdownWrite`).
    pub fn write_shut<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        self.lingered = 0;
        self.conn.discard_input();
        let deadline = self.cap(env.now + LINGER);
        let a = self.set(State::Drain { deadline });
        self.observe(env, a)
    }

    /// `n` bytes were received and discarded while lingering (0: EOF).
    pub fn drained<H: Handler>(&mut self, env: &Env<'_, H>, n: usize) -> Action {
        let a = self.drain_step(env, n);
        self.observe(env, a)
    }

    /// The deadline of the current action passed (early calls are harmless: the
    /// current action comes back, to be re-armed).
    pub fn timed_out<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        let a = self.timeout_step(env);
        self.observe(env, a)
    }

    /// Tell the driver that shutdown may have begun: the model's wake-up on the
    /// shutdown trigger, for a connection that waits with nothing else to report.
    /// The grace deadline comes from [`Env::shutdown`]; before the trigger, and
    /// once applied, this returns the current action. Applied, it returns what to
    /// do now: a lingering close (`ShutdownWrite`) for an idle connection, else the
    /// current action with its deadline capped at the grace deadline (a model whose
    /// op is still in flight just moves its timer). Every other event method
    /// applies shutdown by itself, so a model that misses the wake-up loses nothing
    /// but time.
    pub fn shutdown<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        if self.grace.is_some() {
            return self.action();
        }
        let Some(grace) = env.shutdown.deadline() else {
            return self.action();
        };
        self.begin_shutdown(env, grace)
    }

    /// The model's wait was interrupted because of shutdown (green's soft
    /// interrupt, or its hard stop at the grace deadline): the first time, shutdown
    /// applies ([`Driver::shutdown`]); after that it is a timeout, which cuts the
    /// connection past the grace deadline and otherwise repeats the action.
    pub fn interrupted<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        match self.grace {
            None => self.shutdown(env),
            Some(_) => self.timed_out(env),
        }
    }

    /// A socket error (reset, broken pipe) or an unrecoverable model error.
    pub fn failed(&mut self) -> Action {
        self.close()
    }

    /// Whether the current `Sleep` is the buffer budget's backoff (no read is in
    /// flight meanwhile): a model that can look at the socket should, when the
    /// sleep ends, report a reset or hang-up with [`Driver::failed`], since a
    /// connection that waits for memory would otherwise notice neither.
    pub fn backing_off(&self) -> bool {
        matches!(self.state, State::Backoff { .. })
    }

    /// After [`Action::Close`]: whether to close with a reset (`SO_LINGER` 0)
    /// rather than a FIN. True when the connection was cut with response bytes
    /// unsent (a write or response timeout, the grace deadline): a plain close
    /// would leave the kernel sending what its buffers hold to a client that
    /// does not read, for as long as that client likes.
    pub fn resets(&self) -> bool {
        self.reset
    }

    /// When the driver cuts every connection still open during shutdown (the
    /// grace deadline), once shutdown is triggered. For a model's wait that no
    /// event can end (a file open on a blocking pool): it gives up then, as the
    /// driver would cut the connection anyway.
    pub fn cut_deadline<H>(env: &Env<'_, H>) -> Option<Instant> {
        Driver::cut_at(env.shutdown)
    }

    /// [`Driver::cut_deadline`] for a worker's wait outside any connection (the
    /// green worker's last resort: threads still running then are interrupted).
    pub fn cut_at(shutdown: &crate::shutdown::Shutdown) -> Option<Instant> {
        shutdown.deadline()
    }

    /// Whether a proxied exchange is in flight (its client `Send` and `Recv`
    /// belong to it).
    pub fn proxying(&self) -> bool {
        self.aux.proxy().is_some()
    }

    /// Whether shutdown has begun for this connection.
    pub fn shutting_down(&self) -> bool {
        self.grace.is_some()
    }

    // ----- internals ---------------------------------------------------------------

    /// Apply shutdown if it was triggered since this connection last looked (one
    /// atomic load on every event).
    #[inline]
    fn observe<H: Handler>(&mut self, env: &Env<'_, H>, a: Action) -> Action {
        self.settle();
        if self.grace.is_none() && env.shutdown.is_triggered() {
            return self.shutdown(env);
        }
        a
    }

    /// Settle what the connection holds beyond its base buffers with the buffer
    /// budget (no shared write unless that changed).
    #[inline]
    fn settle(&mut self) {
        let file = self.aux.file().map_or(0, |f| f.buf.capacity())
            + self.aux.proxy().map_or(0, |p| p.held());
        let held =
            self.conn.extra_input() + self.out.capacity().saturating_sub(pool::OUT_CAP) + file;
        let held = len32(held);
        if held != self.charged {
            BUFFER_BUDGET.settle(self.charged as usize, held as usize);
            self.charged = held;
        }
    }

    #[cold]
    fn begin_shutdown<H: Handler>(&mut self, env: &Env<'_, H>, grace: Instant) -> Action {
        self.grace = Some(grace);
        let idle = self.conn.shutdown();
        if matches!(self.state, State::Recv { .. }) && idle && !self.fresh {
            // Close an idle connection with a FIN after a lingering drain, so a
            // request the client sent meanwhile does not turn into a RST.
            return self.then(env, After::Linger);
        }
        if self.past_grace(env.now) {
            return self.close();
        }
        let capped = match self.state {
            State::Recv { deadline, idle } => State::Recv {
                deadline: self.cap(deadline),
                idle,
            },
            State::Send {
                deadline,
                from,
                after,
            } => State::Send {
                deadline: self.cap(deadline),
                from,
                after,
            },
            State::Drain { deadline } => State::Drain {
                deadline: self.cap(deadline),
            },
            State::SendFile { deadline } => State::SendFile {
                deadline: self.cap(deadline),
            },
            State::UpConnect { deadline, fresh } => State::UpConnect {
                deadline: self.cap(deadline),
                fresh,
            },
            State::UpSend { deadline } => State::UpSend {
                deadline: self.cap(deadline),
            },
            State::UpRecv { deadline } => State::UpRecv {
                deadline: self.cap(deadline),
            },
            State::Sleep { end, until } => State::Sleep {
                end,
                until: self.cap(until),
            },
            State::Backoff { until } => State::Backoff {
                until: self.cap(until),
            },
            other => other,
        };
        if let Some(r) = self.read.as_mut() {
            r.deadline = r.deadline.min(grace);
        }
        self.set(capped)
    }

    /// Whether the current `Send` has bytes left (by the lengths alone: the
    /// buffer itself may be lent to an op right now).
    fn unsent(&self) -> bool {
        match self.state {
            State::Send {
                from: Source::Out, ..
            } => self.out.len() > self.sent,
            State::Send {
                from: Source::File, ..
            } => self.aux.file().is_some_and(|f| f.len > self.sent),
            State::SendFile { .. } => self.aux.file().is_some_and(|f| f.left > 0),
            _ => false,
        }
    }

    fn draining(&self) -> bool {
        matches!(self.state, State::Drain { .. })
    }

    fn set(&mut self, s: State) -> Action {
        self.state = s;
        self.action()
    }

    /// Cut at the shutdown's grace deadline (counted for the error log).
    fn cut<H>(&mut self, env: &Env<'_, H>) -> Action {
        if !matches!(
            self.state,
            State::Drain { .. } | State::ShutWrite | State::Closed
        ) {
            env.stats.grace_cuts.inc();
        }
        self.close()
    }

    fn close(&mut self) -> Action {
        if self.unsent() {
            // Cut mid-response (a write or response timeout, the grace deadline):
            // what the kernel still holds for this client goes too.
            self.reset = true;
        }
        self.set(State::Closed)
    }

    fn cap(&self, t: Instant) -> Instant {
        self.grace.map_or(t, |g| t.min(g))
    }

    fn past_grace(&self, now: Instant) -> bool {
        self.grace.is_some_and(|g| now >= g)
    }

    /// Take an output buffer from the per-thread pool if the connection was idle.
    fn ensure_out(&mut self) {
        if self.out.capacity() == 0 {
            self.out = pool::take_output();
        }
    }

    fn sleep_step<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        if let State::Backoff { until } = self.state {
            if env.now < until {
                return self.action();
            }
            // Read again, or answer the read deadline if it passed meanwhile.
            let a = self.await_request(env);
            return match self.read {
                Some(r) if env.now >= r.deadline && matches!(a, Action::Recv { .. }) => {
                    self.timeout_step(env)
                }
                _ => a,
            };
        }
        let State::Sleep { end, .. } = self.state else {
            return self.action();
        };
        if env.now >= end {
            self.ensure_out();
            self.conn.set_now(env.now);
            self.conn.sleep_done(env.stats, &mut self.out);
            return self.process(env);
        }
        if self.past_grace(env.now) {
            return self.cut(env);
        }
        self.set(State::Sleep {
            end,
            until: self.cap(end),
        })
    }

    fn drain_step<H: Handler>(&mut self, env: &Env<'_, H>, n: usize) -> Action {
        let State::Drain { deadline } = self.state else {
            return self.action();
        };
        self.conn.discard_input();
        self.lingered = self.lingered.saturating_add(len32(n));
        if n == 0 || self.lingered as usize >= LINGER_BYTES || env.now >= deadline {
            return self.close();
        }
        self.action()
    }

    fn timeout_step<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        if self.past_grace(env.now) {
            return self.cut(env); // the shutdown's hard stop
        }
        match self.action().deadline() {
            Some(d) if env.now < d => return self.action(),
            None => return self.action(),
            Some(_) => {}
        }
        match self.state {
            State::Sleep { .. } | State::Backoff { .. } => self.sleep_step(env),
            State::UpConnect { .. } | State::UpSend { .. } | State::UpRecv { .. } => {
                self.proxy_timed_out(env)
            }
            State::Recv { .. } => {
                // A request under way gets a 408; an idle connection just closes.
                self.ensure_out();
                self.conn.set_now(env.now);
                self.conn.read_timed_out(env.stats, &mut self.out);
                if self.out.is_empty() {
                    return self.close();
                }
                self.flush(env, After::Linger)
            }
            _ => self.close(), // no write progress, lingering done
        }
    }

    fn process<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        self.fresh = false;
        self.unprocessed = 0;
        self.ensure_out();
        self.conn.set_now(env.now);
        let served = self.conn.requests();
        loop {
            let step = self.conn.process(env.handler, env.stats, &mut self.out);
            if self.conn.requests() != served {
                // A request was answered: the next one's read deadline runs from
                // the time its first bytes are seen (now, if they came with this
                // one's end), never from the earlier request's.
                self.read = None;
            }
            if step != Step::Work {
                return self.after_step(env, step);
            }
            // A slice of CPU-bound work: if it finishes, answer what follows it
            // (pipelined requests) in the same batch; otherwise send what is
            // ready (earlier replies) and give the worker back.
            let budget = self.slice_budget(env.now);
            if !self
                .conn
                .work_slice(env.handler, budget, env.stats, &mut self.out)
            {
                if self.half_closed {
                    // Charge the unfinished slice to the allowance after EOF.
                    let spent = budget.map_or(u32::MAX, |b| b.as_micros() as u32);
                    self.work_after_eof_us = self.work_after_eof_us.saturating_sub(spent);
                    if self.work_after_eof_us == 0 {
                        return self.close();
                    }
                }
                return self.flush(env, After::Yield);
            }
        }
    }

    /// The time the next slice of work may take: the `--work-slice` (none when
    /// zero), never past the shutdown's grace deadline, and once the peer has
    /// half-closed, never past what is left of [`WORK_AFTER_EOF`].
    fn slice_budget(&self, now: Instant) -> Option<Duration> {
        let slice = Duration::from_micros(u64::from(self.work_slice_us));
        let mut budget = (!slice.is_zero()).then_some(slice);
        let mut bound = |limit: Duration| {
            budget = Some(budget.map_or(limit, |b| b.min(limit)));
        };
        if let Some(g) = self.grace {
            bound(g.saturating_duration_since(now));
        }
        if self.half_closed {
            bound(Duration::from_micros(u64::from(self.work_after_eof_us)));
        }
        budget
    }

    fn after_step<H: Handler>(&mut self, env: &Env<'_, H>, step: Step) -> Action {
        let after = match step {
            Step::Read => {
                // Start the read clock of a partial request now, at the event
                // that brought its first bytes, even if earlier replies are
                // sent first.
                self.read_clock(env.now);
                After::Read
            }
            Step::Close => After::Linger,
            Step::Sleep(d) => After::Sleep(d),
            Step::File => After::File,
            Step::Work => After::Yield,
            Step::Proxy => After::Proxy,
        };
        self.flush(env, after)
    }

    /// The deadline of a `Send` starting or progressing now: the write-progress
    /// timeout, never past the response's own deadline (started by its first
    /// `Send`) nor the shutdown's grace deadline.
    pub(super) fn send_deadline(&mut self, now: Instant) -> Instant {
        let response = *self
            .response_deadline
            .get_or_insert_with(|| now + self.timeouts.response());
        self.cap((now + self.timeouts.write()).min(response))
    }

    /// Send what is in `out`, then go on with `after`.
    fn flush<H: Handler>(&mut self, env: &Env<'_, H>, after: After) -> Action {
        if !self.out.is_empty() {
            self.sent = 0;
            let deadline = self.send_deadline(env.now);
            return self.set(State::Send {
                deadline,
                from: Source::Out,
                after,
            });
        }
        self.then(env, after)
    }

    fn then<H: Handler>(&mut self, env: &Env<'_, H>, after: After) -> Action {
        match after {
            After::Read => self.await_request(env),
            After::Linger => self.set(State::ShutWrite),
            After::Sleep(d) => {
                let end = env.now + d;
                self.set(State::Sleep {
                    end,
                    until: self.cap(end),
                })
            }
            After::File => self.set(State::Open),
            After::FileChunk => self.next_chunk(env),
            After::Yield => self.set(State::Work),
            After::Proxy => self.proxy_step(env),
        }
    }

    /// The read deadline of the current phase, started now if the phase changed
    /// (the idle phase restarts at every wait).
    fn read_clock(&mut self, now: Instant) -> (Phase, Instant) {
        let phase = self.conn.phase();
        match self.read {
            Some(r) if r.phase == phase && phase != Phase::Idle => (phase, r.deadline),
            _ => {
                let deadline = self.cap(now + self.timeouts.read(phase));
                self.read = Some(ReadClock { phase, deadline });
                (phase, deadline)
            }
        }
    }

    /// Wait for (more of) a request, with the deadline of the read phase.
    fn await_request<H: Handler>(&mut self, env: &Env<'_, H>) -> Action {
        if self.fresh {
            return self.process(env);
        }
        if self.grace.is_some() && self.conn.shutdown() {
            return self.then(env, After::Linger); // idle during shutdown
        }
        let (phase, deadline) = self.read_clock(env.now);
        let idle = phase == Phase::Idle;
        if !idle && self.conn.must_grow() && BUFFER_BUDGET.over() {
            // The buffer budget is spent: no more input memory for now.
            let until = self.cap((env.now + BUDGET_BACKOFF).min(deadline));
            return self.set(State::Backoff { until });
        }
        if idle {
            // The idle policy: hold no memory between requests.
            self.conn.release_idle_buffer();
            if self.out.capacity() > 0 {
                pool::give_output(std::mem::take(&mut self.out));
            }
        }
        self.set(State::Recv { deadline, idle })
    }
}

mod buffers;
mod file;
mod proxy;
pub use proxy::{UP_IN_LARGE, UP_OUT_CHUNK};
mod support;
use super::pool;

/// What a connection may hold beyond its buffers: a file being sent, or a
/// proxied exchange (one box, see [`Driver`]'s `aux`).
#[derive(Debug)]
enum Ext {
    File(FileStream),
    Proxy(proxy::Exchange),
}

#[derive(Debug)]
struct Aux(Option<Box<Ext>>);

impl Aux {
    fn file(&self) -> Option<&FileStream> {
        match self.0.as_deref() {
            Some(Ext::File(f)) => Some(f),
            _ => None,
        }
    }

    fn file_mut(&mut self) -> Option<&mut FileStream> {
        match self.0.as_deref_mut() {
            Some(Ext::File(f)) => Some(f),
            _ => None,
        }
    }

    fn proxy(&self) -> Option<&proxy::Exchange> {
        match self.0.as_deref() {
            Some(Ext::Proxy(p)) => Some(p),
            _ => None,
        }
    }

    fn proxy_mut(&mut self) -> Option<&mut proxy::Exchange> {
        match self.0.as_deref_mut() {
            Some(Ext::Proxy(p)) => Some(p),
            _ => None,
        }
    }

    fn set_file(&mut self, f: FileStream) {
        self.0 = Some(Box::new(Ext::File(f)));
    }

    fn set_proxy(&mut self, p: proxy::Exchange) {
        self.0 = Some(Box::new(Ext::Proxy(p)));
    }

    fn take_proxy(&mut self) -> Option<proxy::Exchange> {
        match self.0.take().map(|b| *b) {
            Some(Ext::Proxy(p)) => Some(p),
            other => {
                self.0 = other.map(Box::new);
                None
            }
        }
    }

    fn clear(&mut self) {
        self.0 = None;
    }
}
use file::FileStream;
use support::Timers;

#[cfg(test)]
mod tests;

/// A byte count kept in 32 bits (saturating): the driver is allocated per
/// connection, and a few bytes decide its allocation size class.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A duration in whole microseconds, 32 bits (saturating at about 71 minutes).
fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}
