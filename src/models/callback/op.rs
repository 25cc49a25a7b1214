//! Typed op kinds: what a completion's token names. Converted to and from the
//! uring [`OpKind`] here and nowhere else.

use crate::uring::{OpKind, SlotKey, Token};

/// An op a connection can have in flight. Each has its own token kind, so a
/// connection has at most one of each, and the ring's in-flight table at most one
/// buffer per op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// Multishot recv into the provided buffers, or one recv into the driver's buffer.
    Recv,
    Send,
    /// The `/sleep` timeout.
    Sleep,
    Open,
    /// Writability before the next `sendfile(2)` of an `Action::SendFile` (the
    /// socket buffer was full).
    Writable,
    Read,
    /// `shutdown(SHUT_WR)` of a lingering close.
    Shut,
    /// Readiness before an idle single-shot recv, or (multishot paused) a watch for
    /// a reset or hang-up.
    Poll,
    /// Proxying: the connect, send and recv of the upstream connection.
    UpConnect,
    UpSend,
    UpRecv,
}

impl Op {
    const ALL: [Op; 11] = [
        Op::Recv,
        Op::Send,
        Op::Sleep,
        Op::Open,
        Op::Writable,
        Op::Read,
        Op::Shut,
        Op::Poll,
        Op::UpConnect,
        Op::UpSend,
        Op::UpRecv,
    ];

    fn bit(self) -> u16 {
        1 << (self as u8)
    }

    /// The token of this op for connection `key`.
    pub fn token(self, key: SlotKey) -> Token {
        key.token(Kind::Conn(self).op_kind())
    }
}

/// What a completion belongs to: a connection's op, or the worker's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Conn(Op),
    Accept,
    /// The shared deadline timer.
    Tick,
    /// The accept back-off after descriptor exhaustion.
    Backoff,
}

impl Kind {
    const CONN_BASE: u8 = 1;
    const ACCEPT: u8 = 16;
    const TICK: u8 = 17;
    const BACKOFF: u8 = 18;

    pub fn op_kind(self) -> OpKind {
        OpKind::new(match self {
            Kind::Conn(op) => Self::CONN_BASE + op as u8,
            Kind::Accept => Self::ACCEPT,
            Kind::Tick => Self::TICK,
            Kind::Backoff => Self::BACKOFF,
        })
    }

    /// `None` for internal kinds (wake, cancel, close) and unknown ones.
    pub fn of(kind: OpKind) -> Option<Kind> {
        match kind.get() {
            Self::ACCEPT => Some(Kind::Accept),
            Self::TICK => Some(Kind::Tick),
            Self::BACKOFF => Some(Kind::Backoff),
            k => Op::ALL
                .get(usize::from(k.checked_sub(Self::CONN_BASE)?))
                .map(|op| Kind::Conn(*op)),
        }
    }

    /// The token of a worker op (no connection).
    pub fn worker_token(self) -> Token {
        Token::new(0, 0, self.op_kind())
    }
}

/// The ops a connection has in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Ops(u16);

impl Ops {
    pub fn add(&mut self, op: Op) {
        self.0 |= op.bit();
    }
    pub fn remove(&mut self, op: Op) {
        self.0 &= !op.bit();
    }
    pub fn has(self, op: Op) -> bool {
        self.0 & op.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Op> {
        Op::ALL.into_iter().filter(move |op| self.has(*op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_internal_ones_are_not_ours() {
        let all =
            Op::ALL
                .map(Kind::Conn)
                .into_iter()
                .chain([Kind::Accept, Kind::Tick, Kind::Backoff]);
        for k in all {
            assert_eq!(Kind::of(k.op_kind()), Some(k));
        }
        assert_eq!(Kind::of(OpKind::WAKE), None);
        assert_eq!(Kind::of(OpKind::new(0)), None);
        let mut ops = Ops::default();
        ops.add(Op::Send);
        ops.add(Op::Poll);
        assert_eq!(ops.iter().collect::<Vec<_>>(), vec![Op::Send, Op::Poll]);
        ops.remove(Op::Send);
        assert!(ops.has(Op::Poll) && !ops.has(Op::Send) && !ops.is_empty());
    }
}
