//! One load connection's state.

use crate::parse::{Inbox, Parser};
use crate::schedule::{Sample, Schedule};
use mio::net::TcpStream;
use mio::Token;
use std::collections::VecDeque;
use std::time::Instant;

/// Bytes of input buffer per connection (bodies are skipped, not buffered).
pub(super) const INBOX_BYTES: usize = 32 * 1024;

/// Low token bits hold the connection index (so at most 2^20 connections).
pub(super) const INDEX_BITS: u32 = 20;
/// Generation bits kept in a token (fits 32-bit usize too).
const GEN_MASK: usize = 0x7ff;

#[derive(Debug)]
pub(super) struct Conn {
    /// None between a failure and the next connect attempt.
    pub stream: Option<TcpStream>,
    /// Bumped on every new socket so events of a closed one are ignored.
    pub gen: u32,
    /// Some while a non-blocking connect is in progress.
    pub connecting_since: Option<Instant>,
    pub inbox: Inbox,
    pub parser: Parser,
    /// Requests written (or being written) whose responses have not arrived.
    /// INVARIANT: len <= pipeline depth, so pushing never reallocates.
    pub inflight: VecDeque<Sample>,
    /// Unwritten part of the current batch: `batch[write_from..write_to]`.
    pub write_from: usize,
    pub write_to: usize,
    /// Requests sent on this socket (a non-keep-alive socket carries one).
    pub sent_on_socket: u64,
    /// Open loop: this connection's intended send times.
    pub schedule: Option<Schedule>,
    /// The timer this connection waits for (stale heap entries are ignored).
    pub wake_at: Option<Instant>,
    /// Listed in the worker's refill list for this batch of events.
    pub queued: bool,
    /// The entry of the plan's rotation this connection sends next (0 without one).
    pub next_request: usize,
}

impl Conn {
    pub fn new(
        pipeline: usize,
        head_request: bool,
        schedule: Option<Schedule>,
        next_request: usize,
    ) -> Conn {
        Conn {
            stream: None,
            gen: 0,
            connecting_since: None,
            inbox: Inbox::new(INBOX_BYTES),
            parser: Parser::new(head_request),
            inflight: VecDeque::with_capacity(pipeline),
            write_from: 0,
            write_to: 0,
            sent_on_socket: 0,
            schedule,
            wake_at: None,
            queued: false,
            next_request,
        }
    }

    /// The poll token for this connection's current socket.
    pub fn token(&self, index: usize) -> Token {
        Token(index | ((self.gen as usize & GEN_MASK) << INDEX_BITS))
    }

    /// Splits a token into (connection index, socket generation).
    pub fn split_token(t: Token) -> (usize, u32) {
        (
            t.0 & ((1 << INDEX_BITS) - 1),
            ((t.0 >> INDEX_BITS) & GEN_MASK) as u32,
        )
    }

    /// Forget the socket and everything tied to it.
    pub fn reset(&mut self) {
        self.stream = None;
        self.gen = (self.gen + 1) & GEN_MASK as u32;
        self.connecting_since = None;
        self.inbox.clear();
        self.parser.reset();
        self.inflight.clear();
        self.write_from = 0;
        self.write_to = 0;
        self.sent_on_socket = 0;
    }

    pub fn writing(&self) -> bool {
        self.write_from < self.write_to
    }
}
