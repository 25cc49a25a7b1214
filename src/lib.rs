//! # gvhttpd
//!
//! One HTTP/1.1 handler, three ways of driving its I/O, and a load generator to
//! compare them. The models differ **only** in how bytes get between the socket and
//! the shared sans-IO core, so any difference a benchmark shows comes from the
//! concurrency model and nothing else.
//!
//! ```text
//!              events in (bytes read, sent, timer fired, file chunk read, peer closed)
//!  kernel ──► [ model: callback | tokio | green ] ─────────────► http::Driver (sans-IO)
//!    ▲                          ▲                     Env: now,  │  one State  │
//!    │                          │                     shutdown,  │  enum with  └─► Handler (app)
//!    │                          │                     counters   │  its deadline   request → Reply
//!    │                          └── next Action: Recv(deadline) ◄┘
//!    └──── executes it ─────────── Send(deadline) / Sleep(until) / Yield /
//!          with its own mechanism  Open / ReadFile / CloseFile / ShutdownWrite /
//!                                  Drain(deadline) / Close (a FIN, or a reset if cut)
//! ```
//!
//! Layers point one way (no module imports one that imports it back): `models` →
//! `accept`, `app` → `files`, `net` → `http` → `stats`, `shutdown` → `log` →
//! `config` → `green` → `uring`, with `cli` beside `models` (flags → `config`) and
//! `error` a leaf. The runtime (`green` over `uring`) is at the bottom and imports
//! nothing of the server. The driver is the only place
//! that decides anything about a connection: deadlines (each request's own read
//! deadline, the write-progress and whole-response deadlines), 408s, lingering
//! close, file chunking, work slices (and their bound after a half-close), the
//! idle-buffer policy and the process-wide buffer budget, and shutdown, which
//! reaches it as an input (the signal in [`http::Env`]) that every event applies.
//! A model only wakes a connection that waits with nothing to report.
//!
//! - [`http`]: the sans-IO core: [`http::Driver`] owns every decision about a
//!   connection (framing, keep-alive, pipelining, limits, errors, deadlines,
//!   lingering close, files, shutdown, idle buffers, memory budget);
//!   [`http::Handler`] is the trait the application implements. It depends on
//!   nothing above it.
//! - [`app`]: the one handler, request → [`http::Reply`]; [`files`]: the one
//!   open-beneath-root contract for static files.
//! - [`accept`]: the one acceptor policy (admission under `--max-conns` and the
//!   buffer budget, 503, EMFILE back-off, the shutdown sequence).
//! - [`models`]: executors of driver actions, no policy and no `unsafe`: `callback`
//!   (io_uring state machine), `tokio` (epoll), `green` (stackful coroutines over an
//!   io_uring reactor).
//! - [`uring`], [`green`]: the io_uring layer (safe op constructors over owned
//!   buffers; the buffer-lifetime contract written once) and the green-thread
//!   runtime: the bottom layer, owning the counter blocks it writes (`stats`
//!   embeds them) and knowing nothing of config, stats or logs.
//! - [`stats`] (counters, `/stats`, the buffer budget), [`shutdown`], [`net`],
//!   [`config`], [`error`], [`log`]: what every model shares (`log`: the access log
//!   and the timestamped error log); [`cli`]: the command line, flags →
//!   [`config::Config`].
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_debug_implementations)]

pub mod accept;
pub mod app;
pub mod cli;
pub mod config;
pub mod error;
pub mod files;
pub mod green;
pub mod http;
pub mod log;
pub mod models;
pub mod net;
pub mod shutdown;
pub mod stats;
pub mod uring;
