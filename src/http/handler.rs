//! The trait through which the one handler plugs into the core, and the types it
//! speaks. The core calls [`Handler::handle`] for every complete request and turns
//! the [`Reply`] into driver actions; it knows nothing else about the application.
//! A reply that is CPU-bound work ([`Reply::Work`]) is computed in slices through
//! [`Handler::work`], so one long computation does not hold its worker.

use std::borrow::Cow;
use std::time::Duration;

use super::parse::{Method, Version};
use super::representation::{Coding, Codings, Conditions};
pub use super::response::Prerendered;

/// A parsed request, borrowed from the connection's input buffer.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: Method,
    /// The request target as sent (ASCII).
    pub target: &'a str,
    pub version: Version,
    pub content_type: Option<&'a [u8]>,
    /// The rest of the head after the target: the end of the request line and the
    /// field lines, as received (for [`Request::headers`]).
    pub fields: &'a [u8],
}

impl<'a> Request<'a> {
    /// The values of every field named `name` (ASCII case-insensitive), trimmed, in
    /// order. Scans the head: for the cold paths that need a field the parser does
    /// not keep (a static file's conditions), never for every request.
    pub fn headers(&self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        super::parse::field_values(self.fields, name.as_bytes())
    }
}

/// A response ready now.
#[derive(Debug)]
pub struct Response<'a> {
    pub status: u16,
    pub content_type: Option<&'a [u8]>,
    pub body: Cow<'a, [u8]>,
    pub allow: Option<&'static str>,
}

/// A static file to send: a validated path relative to the static root, the
/// precompressed variants of it to try first, and what the request's conditional
/// and range fields ask (RFC 9110 §13, §14). The protocol engine decides the
/// response (200, 206, 304, 416) once the model has opened and stat-ed the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReply {
    /// The candidate being opened: the file itself, or it with a variant's suffix.
    path: String,
    /// The length of the file's own path at the start of `path`.
    base: usize,
    content_type: &'static [u8],
    /// The variants still to try; the first is the one `path` names.
    codings: Codings,
    /// Boxed: most requests carry no conditions, and a `Reply` stays small.
    conditions: Option<Box<Conditions>>,
}

impl FileReply {
    /// Send `path` (relative to the static root) as `content_type`.
    pub fn new(path: String, content_type: &'static [u8]) -> FileReply {
        FileReply {
            base: path.len(),
            path,
            content_type,
            codings: Codings::default(),
            conditions: None,
        }
    }

    /// Try these precompressed variants (`FILE.br`, `FILE.gz`) first, in order; a
    /// variant that is not there (not found, or not a regular file) moves on to
    /// the next, and the file itself comes last.
    pub fn with_codings(mut self, codings: Codings) -> FileReply {
        self.codings = codings;
        self.name_candidate();
        self
    }

    /// The request's conditions (`None`: it had none).
    pub fn with_conditions(mut self, conditions: Option<Box<Conditions>>) -> FileReply {
        self.conditions = conditions;
        self
    }

    /// The relative path to open now.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `Content-Type` of the file (a variant is sent as its file's type).
    pub fn content_type(&self) -> &'static [u8] {
        self.content_type
    }

    /// The content coding of the candidate being opened (`None`: the file itself).
    pub fn coding(&self) -> Option<Coding> {
        self.codings.first()
    }

    pub fn conditions(&self) -> Option<&Conditions> {
        self.conditions.as_deref()
    }

    /// The candidate was not there: name the next one. False when the file itself
    /// was the candidate (nothing is left to try).
    pub fn next_candidate(&mut self) -> bool {
        if self.codings.first().is_none() {
            return false;
        }
        self.codings.pop_first();
        self.name_candidate();
        true
    }

    fn name_candidate(&mut self) {
        self.path.truncate(self.base);
        if let Some(c) = self.codings.first() {
            self.path.push_str(c.suffix());
        }
    }
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
    /// CPU-bound work: the core calls [`Handler::work`] with a time budget (the
    /// `--work-slice`) until it answers; between slices the model gives its worker
    /// to other connections ([`crate::http::Action::Yield`]).
    Work(Work),
}

/// A computation in progress, owned by the core between slices. The core never
/// looks inside: the fields mean what the application's [`Handler::work`] says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// What was asked for (for `/work/<µs>`: the microseconds).
    pub arg: u64,
    /// What is left to do, in the application's unit.
    pub left: u64,
    /// The computation's running state.
    pub state: u64,
}

/// What one slice of [`Handler::work`] came to.
#[derive(Debug)]
pub enum Slice {
    /// More to do: call again (after the worker has served others).
    More,
    /// Finished: this is the response.
    Done(Response<'static>),
}

/// What a model's open and stat found out about a regular file: its size and the
/// validators' inputs (modification time, inode). Each model fills it from its
/// own stat (`statx` on io_uring, `fstat` on the blocking pool).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileMeta {
    pub size: u64,
    /// Seconds since the epoch of the last modification (`st_mtime`).
    pub mtime_sec: i64,
    /// Nanoseconds within that second.
    pub mtime_nsec: u32,
    pub ino: u64,
}

impl FileMeta {
    /// A file of `size` bytes with no other metadata (tests).
    pub fn sized(size: u64) -> FileMeta {
        FileMeta {
            size,
            ..FileMeta::default()
        }
    }
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

    /// Compute the next slice of `job` (from a [`Reply::Work`]) within about
    /// `budget` (`None`: no limit, finish it), always making some progress.
    fn work(&self, job: &mut Work, budget: Option<Duration>) -> Slice;

    /// The upstreams requests under `/proxy/` go to (`None`: no proxying; those
    /// targets reach [`Handler::handle`] like any other). Asked when a request
    /// head is complete, before its body is read: a proxied body is streamed.
    fn upstream(&self) -> Option<&crate::config::Upstreams> {
        None
    }
}
