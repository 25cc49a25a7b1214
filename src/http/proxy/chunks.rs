//! A streaming scanner of chunked framing (RFC 9112 §7.1) that moves no bytes:
//! it finds where a chunked body ends, however the bytes are split, and names
//! the data bytes in it. The proxy forwards a chunked body as it came (framing
//! included) and needs only to know where it ends; a client that cannot take
//! chunked framing (HTTP/1.0) gets the data bytes alone.

/// Where the scanner is in the chunked body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum At {
    /// In the hex digits of a chunk size.
    #[default]
    Size,
    /// In a chunk extension (after `;` or whitespace), up to the CR.
    Ext,
    /// The CR of a size line was seen: an LF must follow.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    Trailer,
    /// Inside a trailer field line, up to its LF.
    TrailerLine,
    /// The CR of the final empty line was seen.
    EndLf,
    Done,
}

/// The framing is broken (a bad size line, a missing CRLF after data), or the
/// body is larger than the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkError {
    Malformed,
    TooLarge,
}

/// The scanner's state across calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Chunks {
    at: At,
    /// Data bytes left in the current chunk (or the size read so far).
    left: u64,
    /// Hex digits of the current size line.
    digits: u8,
    /// Data bytes seen in all chunks.
    total: u64,
    /// Bytes of trailer lines seen (bounded).
    trailer: u32,
}

/// Longest trailer section accepted.
const MAX_TRAILER: u32 = 16 * 1024;

impl Chunks {
    /// Whether the last chunk and the trailer section have been seen.
    pub fn done(&self) -> bool {
        self.at == At::Done
    }

    /// Scan `input`, calling `data` with each run of data bytes. Returns how many
    /// bytes of `input` belong to the body (all of them unless it ended inside
    /// `input`: bytes after the end are the next message's). `max` bounds the
    /// data bytes of the whole body.
    pub fn scan(
        &mut self,
        input: &[u8],
        max: u64,
        mut data: impl FnMut(&[u8]),
    ) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() && self.at != At::Done {
            if self.at == At::Data {
                let take = (input.len() - i).min(usize::try_from(self.left).unwrap_or(usize::MAX));
                data(&input[i..i + take]);
                i += take;
                self.left -= take as u64;
                if self.left == 0 {
                    self.at = At::DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.at = match (self.at, b) {
                (At::Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                    let d = (b as char).to_digit(16).unwrap_or(0);
                    self.digits += 1;
                    if self.digits > 15 {
                        return Err(ChunkError::TooLarge);
                    }
                    self.left = self.left * 16 + u64::from(d);
                    At::Size
                }
                (At::Size, b';' | b' ' | b'\t') if self.digits > 0 => At::Ext,
                (At::Size, b'\r') if self.digits > 0 => At::SizeLf,
                (At::Ext, b'\r') => At::SizeLf,
                (At::Ext, b'\n') => return Err(ChunkError::Malformed),
                (At::Ext, _) => At::Ext,
                (At::SizeLf, b'\n') => {
                    self.digits = 0;
                    self.total = self.total.saturating_add(self.left);
                    if self.total > max {
                        return Err(ChunkError::TooLarge);
                    }
                    if self.left == 0 {
                        At::Trailer
                    } else {
                        At::Data
                    }
                }
                (At::DataCr, b'\r') => At::DataLf,
                (At::DataLf, b'\n') => At::Size,
                (At::Trailer, b'\r') => At::EndLf,
                (At::Trailer | At::TrailerLine, b'\n') => At::Trailer,
                (At::Trailer | At::TrailerLine, _) => {
                    self.trailer += 1;
                    if self.trailer > MAX_TRAILER {
                        return Err(ChunkError::TooLarge);
                    }
                    At::TrailerLine
                }
                (At::EndLf, b'\n') => At::Done,
                _ => return Err(ChunkError::Malformed),
            };
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(parts: &[&[u8]]) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let mut c = Chunks::default();
        let mut data = Vec::new();
        let mut used = 0;
        for p in parts {
            used += c.scan(p, u64::MAX, |d| data.extend_from_slice(d))?;
        }
        Ok((data, used, c.done()))
    }

    #[test]
    fn whole_and_split_bodies() {
        let body: &[u8] = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (data, used, done) = run(&[body]).unwrap();
        assert_eq!(data, b"hello world");
        assert!(done);
        assert_eq!(used, body.len() - 4);
        // Byte by byte, the same.
        let parts: Vec<&[u8]> = body[..body.len() - 4].chunks(1).collect();
        let (data, used, done) = run(&parts).unwrap();
        assert_eq!(
            (data.as_slice(), used, done),
            (&b"hello world"[..], body.len() - 4, true)
        );
    }

    #[test]
    fn unfinished_and_malformed() {
        let (_, _, done) = run(&[b"5\r\nhel"]).unwrap();
        assert!(!done);
        assert_eq!(run(&[b"x\r\n"]), Err(ChunkError::Malformed));
        assert_eq!(run(&[b"2\r\nabX"]), Err(ChunkError::Malformed));
        assert_eq!(run(&[b"\r\n"]), Err(ChunkError::Malformed));
        assert_eq!(run(&[b"ffffffffffffffff\r\n"]), Err(ChunkError::TooLarge));
        let mut c = Chunks::default();
        assert_eq!(c.scan(b"10\r\n", 15, |_| {}), Err(ChunkError::TooLarge));
    }
}
