//! A worker's keep-alive connections to its upstreams: one per worker thread,
//! owned by the model's event loop (no lock), generic over the model's socket
//! type. It holds at most `--upstream-pool` idle connections in all; the most
//! recently used is reused first (the one least likely to have been closed by
//! its upstream's idle timeout). It also picks the upstream of each new
//! exchange: round robin over `--upstream`.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::thread::LocalKey;

/// A worker thread's pool, built at its first exchange: each model keeps one in
/// a `thread_local!` (one event loop per thread, so no lock).
pub type LocalPool<S> = RefCell<Option<UpstreamPool<S>>>;

/// The upstream for a new exchange (round robin over `addrs`), and an idle
/// connection to it from the thread's pool unless `fresh`.
pub fn checkout<S: 'static>(
    pool: &'static LocalKey<LocalPool<S>>,
    addrs: &[SocketAddr],
    cap: usize,
    fresh: bool,
) -> Option<(usize, SocketAddr, Option<S>)> {
    pool.with(|p| {
        let mut p = p.borrow_mut();
        let pool = p.get_or_insert_with(|| UpstreamPool::new(addrs, cap));
        let (i, addr) = pool.pick()?;
        let s = if fresh { None } else { pool.take(i) };
        Some((i, addr, s))
    })
}

/// Keep `s` (a connection to upstream `i`) in the thread's pool for another
/// exchange; a connection the full pool pushes out comes back, to be closed.
pub fn checkin<S: 'static>(pool: &'static LocalKey<LocalPool<S>>, i: usize, s: S) -> Option<S> {
    pool.with(|p| match p.borrow_mut().as_mut() {
        Some(pool) => pool.put(i, s),
        None => Some(s),
    })
}

/// Idle upstream connections of one worker, and its round robin.
#[derive(Debug)]
pub struct UpstreamPool<S> {
    addrs: Vec<SocketAddr>,
    /// Idle connections, by upstream (index into `addrs`), most recent last.
    idle: Vec<Vec<S>>,
    held: usize,
    cap: usize,
    next: usize,
}

impl<S> UpstreamPool<S> {
    /// A pool for `addrs` keeping at most `cap` idle connections.
    pub fn new(addrs: &[SocketAddr], cap: usize) -> Self {
        UpstreamPool {
            addrs: addrs.to_vec(),
            idle: addrs.iter().map(|_| Vec::new()).collect(),
            held: 0,
            cap,
            next: 0,
        }
    }

    /// The upstream for a new exchange (round robin), as an index and address.
    pub fn pick(&mut self) -> Option<(usize, SocketAddr)> {
        if self.addrs.is_empty() {
            return None;
        }
        let i = self.next % self.addrs.len();
        self.next = self.next.wrapping_add(1);
        Some((i, self.addrs[i]))
    }

    /// An idle connection to upstream `i`, if one is kept.
    pub fn take(&mut self, i: usize) -> Option<S> {
        let s = self.idle.get_mut(i)?.pop()?;
        self.held -= 1;
        Some(s)
    }

    /// Keep `s` (a connection to upstream `i` whose exchange ended cleanly) for
    /// the next exchange; when the pool is full the oldest idle connection is
    /// handed back to be closed.
    pub fn put(&mut self, i: usize, s: S) -> Option<S> {
        if self.cap == 0 || i >= self.idle.len() {
            return Some(s);
        }
        self.idle[i].push(s);
        self.held += 1;
        if self.held <= self.cap {
            return None;
        }
        // Evict the oldest connection of the longest list.
        let longest = (0..self.idle.len()).max_by_key(|&j| self.idle[j].len())?;
        self.held -= 1;
        Some(self.idle[longest].remove(0))
    }

    /// Idle connections held.
    pub fn len(&self) -> usize {
        self.held
    }

    pub fn is_empty(&self) -> bool {
        self.held == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_lifo_and_bounded() {
        let a: Vec<SocketAddr> = vec![
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        ];
        let mut p = UpstreamPool::new(&a, 2);
        assert_eq!(p.pick().map(|x| x.0), Some(0));
        assert_eq!(p.pick().map(|x| x.0), Some(1));
        assert_eq!(p.pick().map(|x| x.0), Some(0));
        assert_eq!(p.put(0, 10), None);
        assert_eq!(p.put(0, 11), None);
        assert_eq!(p.put(1, 20), Some(10)); // full: the oldest goes
        assert_eq!(p.len(), 2);
        assert_eq!(p.take(0), Some(11));
        assert_eq!(p.take(0), None);
        assert_eq!(p.take(1), Some(20));
        assert!(p.is_empty());
        let mut none = UpstreamPool::new(&a, 0);
        assert_eq!(none.put(0, 1), Some(1));
    }
}
