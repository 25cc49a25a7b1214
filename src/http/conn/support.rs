//! Small pieces of the protocol engine: compact limits.

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
