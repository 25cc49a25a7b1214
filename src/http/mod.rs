//! Sans-IO HTTP/1.1, shared by every model: bytes in → response bytes out, no
//! sockets, no clocks beyond the per-thread `Date` cache, no allocation per request
//! on the plaintext hot path (input and output buffers are reused).
//!
//! - [`parse`]: request line (ours, strict) + header fields (httparse) + the
//!   validation httparse leaves to us.
//! - [`body`]: chunked bodies, decoded in place.
//! - [`conn`]: the connection state machine: framing, keep-alive, pipelining,
//!   `Expect: 100-continue`, HEAD, limits, and every error response.
//! - [`response`], [`date`]: writing responses.
//!
//! The behaviour is specified case by case in `shared/http-behaviour.md`; the unit
//! tests here are table-driven, and `tests/` runs the same cases against every
//! model over real sockets.

pub mod body;
pub mod conn;
pub mod date;
pub mod parse;
pub mod response;

pub use crate::app::FileError;
pub use conn::{Conn, Phase, Step};
pub use parse::{Method, Version};
