//! Small pieces of the protocol engine: compact limits and the per-thread pool of
//! idle input buffers.

use crate::config::Limits;

/// [`Limits`] in half the space (every open connection carries them).
#[derive(Clone, Copy, Debug)]
pub(super) struct SmallLimits([u32; 4]);

impl From<&Limits> for SmallLimits {
    fn from(l: &Limits) -> SmallLimits {
        let c = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        SmallLimits([
            c(l.max_target),
            c(l.max_headers),
            c(l.max_head),
            c(l.max_body),
        ])
    }
}

impl SmallLimits {
    #[inline]
    pub(super) fn get(self) -> Limits {
        let [max_target, max_headers, max_head, max_body] = self.0.map(|v| v as usize);
        Limits {
            max_target,
            max_headers,
            max_head,
            max_body,
        }
    }
}

/// The per-thread pool of idle input buffers (`INITIAL_BUF` bytes each).
pub(super) mod pool {
    use super::super::INITIAL_BUF;
    use crate::http::pool::INPUT;

    #[inline(never)] // thread-local access from green stacks: see `green::tls`
    pub(in crate::http::conn) fn take() -> Vec<u8> {
        INPUT
            .with(|p| p.take())
            .unwrap_or_else(|| vec![0; INITIAL_BUF])
    }

    #[inline(never)] // thread-local access from green stacks: see `green::tls`
    pub(in crate::http::conn) fn give(buf: Vec<u8>) {
        if buf.len() == INITIAL_BUF {
            INPUT.with(|p| p.give(buf));
        }
    }
}
