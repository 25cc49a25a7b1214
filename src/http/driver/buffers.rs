//! The driver's buffers, borrowed by models that read and write in place, or lent
//! out whole to an io_uring op that must own its memory until the completion.

use super::{Action, Driver, Source, State};

impl Driver {
    /// Where to receive for `Recv` and `Drain` (never empty).
    pub fn recv_buf(&mut self) -> &mut [u8] {
        if self.draining() {
            self.conn.discard_input();
        }
        self.conn.read_buf()
    }

    /// Lend the input buffer whole, with the offset where received bytes go; give it
    /// back with [`Driver::restore_recv_buf`] before the next event.
    pub fn lend_recv_buf(&mut self) -> (Vec<u8>, usize) {
        if self.draining() {
            self.conn.discard_input();
        }
        self.conn.take_buf()
    }

    pub fn restore_recv_buf(&mut self, buf: Vec<u8>) {
        self.conn.restore_buf(buf);
    }

    /// Whether the current `Send` sends the file chunk.
    fn sending_file(&self) -> bool {
        matches!(
            self.state,
            State::Send {
                from: Source::File,
                ..
            }
        )
    }

    /// The bytes the current `Send` still has to send.
    pub fn pending(&self) -> &[u8] {
        if self.sending_file() {
            self.aux
                .file()
                .and_then(|f| f.buf.get(self.sent.min(f.len)..f.len))
                .unwrap_or(&[])
        } else {
            // Empty (never a panic) while the buffer is lent to an op.
            self.out.get(self.sent..).unwrap_or(&[])
        }
    }

    /// Lend the buffer of the current `Send` whole, with the range still to send;
    /// give it back with [`Driver::restore_pending`] before the next event.
    pub fn lend_pending(&mut self) -> (Vec<u8>, std::ops::Range<usize>) {
        if self.sending_file() {
            match self.aux.file_mut() {
                Some(f) => (std::mem::take(&mut f.buf), self.sent.min(f.len)..f.len),
                None => (Vec::new(), 0..0),
            }
        } else {
            let end = self.out.len();
            (std::mem::take(&mut self.out), self.sent..end)
        }
    }

    pub fn restore_pending(&mut self, buf: Vec<u8>) {
        let from_file = self.sending_file();
        match self.aux.file_mut() {
            Some(f) if from_file => f.buf = buf,
            _ => self.out = buf,
        }
    }

    /// The relative path of the file to open (after `Action::Open`).
    pub fn file_path(&self) -> &str {
        self.conn.file_path()
    }

    /// Where `ReadFile` reads to (exactly its `len` bytes).
    pub fn file_buf(&mut self) -> &mut [u8] {
        match self.aux.file_mut() {
            Some(f) => &mut f.buf[..f.len],
            None => &mut [],
        }
    }

    /// Lend the file chunk buffer whole (read `len` bytes to its start); give it
    /// back with [`Driver::restore_file_buf`] before the next event.
    pub fn lend_file_buf(&mut self) -> Vec<u8> {
        self.aux
            .file_mut()
            .map_or_else(Vec::new, |f| std::mem::take(&mut f.buf))
    }

    pub fn restore_file_buf(&mut self, buf: Vec<u8>) {
        if let Some(f) = self.aux.file_mut() {
            f.buf = buf;
        }
    }

    /// A model that took [`Driver::recv_buf`] for an idle `Recv` and found nothing
    /// to read gives the buffers back (the idle policy).
    pub fn release_idle_buffers(&mut self) {
        if matches!(self.action(), Action::Recv { idle: true, .. }) {
            self.conn.release_idle_buffer();
        }
    }
}
