//! The one error type of `serve`: what went wrong, where (the flag, path or step),
//! and the source error.

use std::fmt;
use std::io;

/// Why `serve` could not run, or stopped.
#[derive(Debug)]
pub enum ServeError {
    /// The model cannot run on this system (e.g. io_uring disabled); exit status 2.
    Unavailable(String),
    /// Bad configuration: the flag or path, and the problem; exit status 2.
    Config(String),
    /// An I/O error while setting up or running: the step, and the source; exit 1.
    Io(String, io::Error),
    /// A worker thread panicked (named by the string); exit status 1.
    Panic(String),
}

impl ServeError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ServeError::Unavailable(_) | ServeError::Config(_) => 2,
            ServeError::Io(..) | ServeError::Panic(_) => 1,
        }
    }

    pub(crate) fn io(context: impl Into<String>, e: io::Error) -> ServeError {
        ServeError::Io(context.into(), e)
    }
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Unavailable(m) | ServeError::Config(m) => f.write_str(m),
            ServeError::Io(ctx, e) => write!(f, "{ctx}: {e}"),
            ServeError::Panic(who) => write!(f, "{who} panicked"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Io(_, e) => Some(e),
            _ => None,
        }
    }
}
