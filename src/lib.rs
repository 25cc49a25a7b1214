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
//!    ▲                          ▲                                  │        │
//!    │                          └── next Action: Recv(deadline) ◄──┘        └─► Handler (app)
//!    └──── executes it ─────────── Send(deadline) / Sleep(until) /            request → Reply
//!          with its own mechanism  Open / ReadFile / CloseFile / Drain / Close
//! ```
//!
//! - [`http`]: the sans-IO core: [`http::Driver`] owns every decision about a
//!   connection (framing, keep-alive, pipelining, limits, errors, deadlines,
//!   lingering close, files, shutdown, idle buffers); [`http::Handler`] is the trait
//!   the application implements. It depends on nothing above it.
//! - [`app`]: the one handler, request → [`http::Reply`]; [`files`]: the one
//!   open-beneath-root contract for static files.
//! - [`accept`]: the one acceptor policy (admission, 503, EMFILE back-off, the
//!   shutdown sequence).
//! - [`models`]: executors of driver actions, no policy and no `unsafe`: `callback`
//!   (io_uring state machine), `tokio` (epoll), `green` (stackful coroutines over an
//!   io_uring reactor).
//! - [`uring`], [`green`]: the io_uring layer (safe op constructors over owned
//!   buffers; the buffer-lifetime contract written once) and the green-thread runtime.
//! - [`stats`], [`shutdown`], [`net`], [`config`], [`error`], [`log`]: what every model
//!   shares (`log`: the access log and the timestamped error log); [`cli`]: the
//!   command line, flags → [`config::Config`].
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
