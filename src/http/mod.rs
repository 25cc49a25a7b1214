//! Sans-IO HTTP/1.1, shared by every model, depending on nothing above it (no
//! application, no model, no socket). It reads no monotonic clock: the model
//! passes each event's `now` in ([`Env`]), and every deadline derives from it. The
//! one clock it does read is the wall clock for the `Date` header, once when a new
//! second begins ([`date`]); shutdown reaches it as the signal in [`Env`].
//!
//! - [`driver`]: the connection driver — every decision about a connection
//!   (deadlines, 408s, sending, files, lingering close, shutdown, idle buffers) as
//!   actions a model executes. Models talk to this and nothing else here.
//! - [`handler`]: the trait the application implements, and its request/reply types.
//! - [`conn`]: the protocol engine inside the driver: framing, keep-alive,
//!   pipelining, `Expect: 100-continue`, HEAD, limits, and every error response.
//! - [`parse`]: request line (ours, strict) + header fields (httparse) + the
//!   validation httparse leaves to us; [`body`]: chunked bodies, decoded in place.
//! - [`response`], [`date`]: writing responses; [`representation`]: what a static
//!   file's response depends on (validators, conditions, ranges, precompressed
//!   variants), decided once the model has stat-ed the file.
//!
//! The behaviour is specified case by case in `docs/http-behaviour.md`; the unit
//! tests here are table-driven, and `tests/` runs the same cases against every
//! model over real sockets.

pub mod body;
pub mod conn;
pub mod date;
pub mod driver;
pub mod handler;
pub mod parse;
mod pool;
pub mod proxy;
pub mod representation;
pub mod response;
#[cfg(test)]
pub(crate) mod test_handler;

pub use conn::Phase;
pub use driver::{Action, Driver, Env};
pub use handler::{
    FileError, FileMeta, FileReply, Handler, Prerendered, Reply, Request, Response, Slice, Work,
};
pub use parse::{Method, Version};
