//! The trait through which the one handler plugs into the core, and the types it
//! speaks. The core calls [`Handler::handle`] for every complete request and turns
//! the [`Reply`] into driver actions; it knows nothing else about the application.

use std::borrow::Cow;

use super::parse::{Method, Version};
pub use super::response::Prerendered;

/// A parsed request, borrowed from the connection's input buffer.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: Method,
    /// The request target as sent (ASCII).
    pub target: &'a str,
    pub version: Version,
    pub content_type: Option<&'a [u8]>,
}

/// A response ready now.
#[derive(Debug)]
pub struct Response<'a> {
    pub status: u16,
    pub content_type: Option<&'a [u8]>,
    pub body: Cow<'a, [u8]>,
    pub allow: Option<&'static str>,
}

/// A static file to send: a validated path relative to the static root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReply {
    pub path: String,
    pub content_type: &'static [u8],
}

/// What the handler asks the model to do.
#[derive(Debug)]
pub enum Reply<'a> {
    Now(Response<'a>),
    /// A fixed response rendered once (see [`Prerendered`]).
    Fixed(&'a Prerendered),
    /// Wait this many milliseconds with the model's own timer, then answer
    /// `slept <ms>ms`.
    Sleep(u32),
    /// Send this file, opened and read with the model's own file I/O.
    File(FileReply),
}

/// Why a static file could not be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileError {
    /// Missing, a directory, outside the root, or not a regular file: 404.
    NotFound,
    /// The server could not open or read it (EMFILE, EIO, ...): 500.
    Internal,
}

impl FileError {
    /// Classify an `errno` from opening or stat-ing a static file.
    pub fn from_errno(errno: i32) -> FileError {
        match errno {
            libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EIO | libc::EAGAIN => {
                FileError::Internal
            }
            _ => FileError::NotFound,
        }
    }
}

/// The application behind the core. One instance serves every connection of every
/// worker, so it takes `&self`.
pub trait Handler {
    /// Route one complete request; `body` is its whole (decoded) body.
    fn handle<'a>(&'a self, req: &Request<'a>, body: &'a [u8]) -> Reply<'a>;
}
