//! # gvhttpd (foundation in progress)
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_debug_implementations)]

pub mod config;
pub mod net;
pub mod shutdown;
pub mod stats;
pub mod uring;
