//! # gvhttpd
//!
//! One HTTP/1.1 handler, three ways of driving its I/O, and a load generator to
//! compare them. The models differ **only** in how bytes get between the socket and
//! the shared sans-IO core, so any difference a benchmark shows comes from the
//! concurrency model and nothing else.
//!
//! ```text
//!             bytes in                                   bytes out
//!  socket ──► [ model: callback | tokio | green ] ──► http::Conn (sans-IO) ──► app::handle ──► Reply
//!                       ▲                                                                        │
//!                       └──────────── model executes Reply: now / after a timer / a file ◄───────┘
//! ```
//!
//! - [`http`]: sans-IO HTTP/1.1 (parsing, framing, keep-alive, pipelining, limits, errors).
//! - [`app`]: the one handler, request → [`app::Reply`].
//! - [`models`]: `callback` (io_uring state machine), `tokio` (epoll), `green`
//!   (stackful coroutines over an io_uring reactor).
//! - [`stats`], [`shutdown`], [`net`], [`config`], [`log`]: what every model shares.
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_debug_implementations)]

pub mod app;
pub mod config;
pub mod green;
pub mod http;
pub mod log;
pub mod models;
pub mod net;
pub mod shutdown;
pub mod stats;
pub mod uring;
