//! The worker's accept side: one (multishot) accept on its listener, the
//! acceptor's admission and EMFILE back-off, and each new connection's start.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use super::conn::Conn;
use super::op::Kind;
use super::worker::Worker;
use crate::accept::Retry;
use crate::uring::{Completion, OpKind, Token};

impl Worker {
    pub(super) fn arm_accept(&mut self) {
        let Some(l) = self.listener.as_ref().filter(|_| !self.accept_armed) else {
            return;
        };
        let multi = self.ring.features().multishot_accept;
        if self
            .ring
            .accept(
                l.as_fd(),
                multi,
                self.zero_copy,
                Kind::Accept.worker_token(),
            )
            .is_ok()
        {
            self.accept_armed = true;
        }
    }

    pub(super) fn on_accept(&mut self, mut c: Completion) {
        if !c.more() {
            self.accept_armed = false;
        }
        if let Some(fd) = c.take_fd() {
            self.admit(fd);
            if !c.more() {
                self.arm_accept();
            }
            return;
        }
        if self.stopping {
            if !self.accept_armed {
                self.listener = None; // the cancelled accept is done: close it now
            }
            return;
        }
        if c.result == -libc::ECANCELED {
            return; // stopped for a back-off
        }
        match self
            .acceptor
            .failed(&io::Error::from_raw_os_error(-c.result))
        {
            Retry::Now if !c.more() => self.arm_accept(),
            Retry::Now => {}
            Retry::After(pause) => {
                // Out of descriptors: keep serving, accept again after a back-off.
                if c.more() {
                    self.ring
                        .push_cancel(Kind::Accept.worker_token(), Token::internal(OpKind::CANCEL));
                }
                self.ring.push_timeout(pause, Kind::Backoff.worker_token());
            }
        }
    }

    /// A new connection: admitted (or refused, and closed) by the acceptor.
    pub(super) fn admit(&mut self, fd: OwnedFd) {
        let Some((admission, driver)) = self.acceptor.admit(&fd) else {
            return; // dropping `fd` closes it
        };
        let key = self
            .conns
            .insert(Box::new(Conn::new(fd, driver, admission, self.multishot)));
        self.with_conn(key, |conn, cx| {
            let a = conn.driver.start(&cx.env);
            conn.perform(key, a, cx);
        });
    }
}
