//! Chunked request bodies (RFC 9112 §7.1), decoded in place.
//!
//! The decoder reads framing from `buf[read..]` and moves chunk data down to
//! `buf[write..]` (`write <= read` always), so a chunked body ends up contiguous
//! right after the request head without a second buffer. Framing is strict: CRLF
//! only, 1–16 hex digits per size, no sign, no `0x`. Extensions must follow RFC 9112
//! §7.1.1 (`;` BWS token [BWS `=` BWS (token / quoted-string)], so `5;` with an
//! empty name is a 400) and are then ignored; extensions and trailers are counted
//! against the header-size limit.

use super::parse::{is_tchar, Reject};
use crate::config::Limits;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Size {
        digits: u8,
        value: u64,
    },
    /// Whitespace after the size; only `;` may follow.
    SizeWs,
    Ext(Ext),
    SizeLf {
        last: bool,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
    Done,
}

/// Where the decoder is inside a chunk extension (RFC 9112 §7.1.1):
/// `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`,
/// `chunk-ext-name = token`, `chunk-ext-val = token / quoted-string`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ext {
    /// After `;`: whitespace, then the name's first character.
    BeforeName,
    Name,
    /// Whitespace after the name: `=`, `;` or CR may follow.
    AfterName,
    /// After `=`: whitespace, then a token or a quoted string.
    BeforeValue,
    Token,
    Quoted,
    /// After a backslash inside a quoted string.
    Escape,
    /// After the value: whitespace, then `;` or CR.
    AfterValue,
}

/// Incremental in-place chunked decoder.
#[derive(Clone, Debug)]
pub struct Chunked {
    state: State,
    /// Extension and trailer bytes seen so far (bounded by `Limits::max_head`).
    meta: usize,
    /// Decoded body bytes so far (bounded by `Limits::max_body`).
    decoded: u64,
    /// Size of the chunk whose size line is being read.
    pending: u64,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size {
                digits: 0,
                value: 0,
            },
            meta: 0,
            decoded: 0,
            pending: 0,
        }
    }
}

const fn bad(reason: &'static str) -> Reject {
    Reject {
        status: 400,
        reason,
    }
}

impl Chunked {
    /// Decode what `buf[*read..]` holds. Returns `Ok(true)` once the last chunk and
    /// trailer section are complete; decoded data is `buf[start..*write]` where
    /// `start` was `*write` on the first call.
    pub fn decode(
        &mut self,
        buf: &mut [u8],
        read: &mut usize,
        write: &mut usize,
        limits: &Limits,
    ) -> Result<bool, Reject> {
        while *read < buf.len() {
            if let State::Data { left } = self.state {
                let n = (buf.len() - *read).min(usize::try_from(left).unwrap_or(usize::MAX));
                buf.copy_within(*read..*read + n, *write);
                *read += n;
                *write += n;
                let left = left - n as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data { left }
                };
                continue;
            }
            let b = buf[*read];
            *read += 1;
            self.state = self.step(b, limits)?;
            if self.state == State::Done {
                return Ok(true);
            }
        }
        Ok(self.state == State::Done)
    }

    fn step(&mut self, b: u8, limits: &Limits) -> Result<State, Reject> {
        Ok(match self.state {
            State::Size { digits, value } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if digits == 16 {
                        return Err(bad("chunk size has more than 16 hex digits"));
                    }
                    let d = (b as char).to_digit(16).unwrap_or(0);
                    State::Size {
                        digits: digits + 1,
                        value: value << 4 | u64::from(d),
                    }
                }
                _ if digits == 0 => return Err(bad("missing or malformed chunk size")),
                b';' => self.size_done(value, State::Ext(Ext::BeforeName), limits)?,
                b' ' | b'\t' => self.size_done(value, State::SizeWs, limits)?,
                b'\r' => self.size_done(value, State::SizeLf { last: value == 0 }, limits)?,
                _ => return Err(bad("malformed chunk size")),
            },
            State::SizeWs => match b {
                b' ' | b'\t' => State::SizeWs,
                b';' => State::Ext(Ext::BeforeName),
                _ => return Err(bad("malformed chunk extension")),
            },
            State::Ext(e) => {
                self.meta_byte(limits)?;
                self.ext_step(e, b)?
            }
            State::SizeLf { last } => match (b, last) {
                (b'\n', true) => State::TrailerStart,
                (b'\n', false) => State::Data { left: self.pending },
                _ => return Err(bad("chunk size line not ended by CRLF")),
            },
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err(bad("chunk data longer than its size")),
            },
            State::DataLf => match b {
                b'\n' => State::Size {
                    digits: 0,
                    value: 0,
                },
                _ => return Err(bad("chunk data not followed by CRLF")),
            },
            State::TrailerStart => match b {
                b'\r' => State::EndLf,
                b'\n' => return Err(bad("bare LF in trailer section")),
                _ => self.trailer_byte(b, limits)?,
            },
            State::Trailer => match b {
                b'\r' => State::TrailerLf,
                _ => self.trailer_byte(b, limits)?,
            },
            State::TrailerLf | State::EndLf => match b {
                b'\n' if self.state == State::EndLf => State::Done,
                b'\n' => State::TrailerStart,
                _ => return Err(bad("bare CR in trailer section")),
            },
            State::Data { .. } | State::Done => self.state,
        })
    }

    /// One byte of a chunk extension (grammar on [`Ext`]).
    fn ext_step(&self, e: Ext, b: u8) -> Result<State, Reject> {
        let ws = b == b' ' || b == b'\t';
        let end = State::SizeLf {
            last: self.pending == 0,
        };
        Ok(State::Ext(match (e, b) {
            (_, b'\r')
                if matches!(e, Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterValue) =>
            {
                return Ok(end)
            }
            (Ext::BeforeName, _) if ws => Ext::BeforeName,
            (Ext::BeforeName | Ext::Name, _) if is_tchar(b) => Ext::Name,
            (Ext::BeforeName, _) => return Err(bad("chunk extension without a name")),
            (Ext::Name | Ext::AfterName, _) if ws => Ext::AfterName,
            (Ext::Name | Ext::AfterName, b'=') => Ext::BeforeValue,
            (Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterValue, b';') => Ext::BeforeName,
            (Ext::BeforeValue, _) if ws => Ext::BeforeValue,
            (Ext::BeforeValue, b'"') => Ext::Quoted,
            (Ext::BeforeValue | Ext::Token, _) if is_tchar(b) => Ext::Token,
            (Ext::BeforeValue, _) => return Err(bad("chunk extension without a value")),
            (Ext::Token | Ext::AfterValue, _) if ws => Ext::AfterValue,
            (Ext::Quoted, b'"') => Ext::AfterValue,
            (Ext::Quoted, b'\\') => Ext::Escape,
            // qdtext and quoted-pair: HTAB, SP, VCHAR (but `"` and `\` unescaped), obs-text.
            (Ext::Quoted | Ext::Escape, b'\t' | 0x20..=0x7e | 0x80..=0xff) => Ext::Quoted,
            _ => return Err(bad("malformed chunk extension")),
        }))
    }

    fn size_done(&mut self, size: u64, next: State, limits: &Limits) -> Result<State, Reject> {
        let total = self.decoded.saturating_add(size);
        if total > limits.max_body as u64 {
            return Err(Reject {
                status: 413,
                reason: "request body too large",
            });
        }
        self.decoded = total;
        self.pending = size;
        Ok(next)
    }

    fn meta_byte(&mut self, limits: &Limits) -> Result<(), Reject> {
        self.meta += 1;
        if self.meta > limits.max_head {
            return Err(Reject {
                status: 431,
                reason: "chunk extensions or trailers too large",
            });
        }
        Ok(())
    }

    fn trailer_byte(&mut self, b: u8, limits: &Limits) -> Result<State, Reject> {
        if b == b'\n' || b == 0 || (b < 0x20 && b != b'\t') || b == 0x7f {
            return Err(bad("invalid byte in trailer section"));
        }
        self.meta_byte(limits)?;
        Ok(State::Trailer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode `raw` fed in pieces of `step` bytes; returns the body or the reject.
    fn decode(raw: &[u8], step: usize, limits: &Limits) -> Result<Option<Vec<u8>>, Reject> {
        let mut buf = Vec::new();
        let (mut read, mut write) = (0, 0);
        let mut c = Chunked::default();
        for piece in raw.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            if c.decode(&mut buf, &mut read, &mut write, limits)? {
                assert_eq!(read, buf.len(), "decoder must stop exactly at the end");
                return Ok(Some(buf[..write].to_vec()));
            }
        }
        Ok(None)
    }

    #[test]
    fn decodes_valid_bodies_at_every_split() {
        let l = Limits::default();
        let cases: &[(&[u8], &[u8])] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", b"abcdefg"),
            (b"A;name=val\r\n0123456789\r\n0;x\r\n\r\n", b"0123456789"),
            (
                b"3 ;ext\r\nabc\r\n0\r\nTrailer: yes\r\nX: y\r\n\r\n",
                b"abc",
            ),
            (b"0\r\n\r\n", b""),
            (b"1;a;b=c;d = \"q \\\" ;\"\r\nx\r\n0\r\n\r\n", b"x"),
            (b"1 ; a = b ;c\t\r\nx\r\n0;last=\"\"\r\n\r\n", b"x"),
            (
                b"000000000000000f\r\n0123456789abcde\r\n0\r\n\r\n",
                b"0123456789abcde",
            ),
        ];
        for (raw, body) in cases {
            for step in 1..=raw.len() {
                let got = decode(raw, step, &l).unwrap_or_else(|e| panic!("{raw:?}: {e:?}"));
                assert_eq!(got.as_deref(), Some(*body), "{raw:?} step {step}");
            }
        }
    }

    #[test]
    fn rejects_bad_framing() {
        let l = Limits::default();
        let cases: &[(&[u8], u16)] = &[
            (b"\r\nabc\r\n0\r\n\r\n", 400),     // empty size
            (b"0x1\r\na\r\n0\r\n\r\n", 400),    // 0x prefix
            (b"-1\r\na\r\n0\r\n\r\n", 400),     // negative
            (b"+1\r\na\r\n0\r\n\r\n", 400),     // sign
            (b"g\r\n", 400),                    // not hex
            (b"00000000000000001\r\n", 400),    // 17 digits
            (b"ffffffffffffffff\r\n", 413),     // overflow-sized
            (b"3\r\nabcd\r\n0\r\n\r\n", 400),   // data longer than size
            (b"3\r\nab\r\n\r\n", 400),          // data shorter than size
            (b"3\nabc\r\n0\r\n\r\n", 400),      // bare LF after size
            (b"3\r\nabc\n0\r\n\r\n", 400),      // bare LF after data
            (b"3\r\nabcXY0\r\n\r\n", 400),      // missing CRLF
            (b"0\r\n\n", 400),                  // bare LF ending trailers
            (b"1 x\r\n", 400),                  // junk after size
            (b"1;\x00\r\n", 400),               // NUL in extension
            (b"5;\r\nhello\r\n0\r\n\r\n", 400), // empty extension name (issue 14)
            (b"5; \r\n", 400),                  // only whitespace as a name
            (b"5;=v\r\n", 400),                 // a value without a name
            (b"5;a=\r\n", 400),                 // a name with `=` but no value
            (b"5;a b\r\n", 400),                // two tokens without `=`
            (b"5;a=b c\r\n", 400),              // two tokens as a value
            (b"5;a(b)\r\n", 400),               // non-token character in a name
            (b"5;a=\"x\r\n", 400),              // unterminated quoted string
            (b"5;a=\"x\"y\r\n", 400),           // junk after a quoted string
            (b"5;a;\r\n", 400),                 // empty name after a second `;`
            (b"0;\r\n\r\n", 400),               // also on the last chunk
        ];
        for (raw, status) in cases {
            let got = decode(raw, raw.len(), &l);
            assert_eq!(
                got.map_err(|e| e.status),
                Err(*status),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn limits_body_and_metadata() {
        let l = Limits {
            max_body: 4,
            max_head: 8,
            ..Limits::default()
        };
        assert_eq!(decode(b"5\r\nhello\r\n", 100, &l).unwrap_err().status, 413);
        assert_eq!(
            decode(b"2\r\nab\r\n3\r\n", 100, &l).unwrap_err().status,
            413
        );
        assert_eq!(decode(b"1;aaaaaaaaa\r\n", 100, &l).unwrap_err().status, 431);
        assert_eq!(
            decode(b"0\r\nX: aaaaaaaa\r\n", 100, &l).unwrap_err().status,
            431
        );
        assert_eq!(
            decode(b"2\r\nab\r\n0\r\n\r\n", 1, &l).unwrap(),
            Some(b"ab".to_vec())
        );
    }

    #[test]
    fn incomplete_body_asks_for_more() {
        assert_eq!(decode(b"5\r\nhel", 3, &Limits::default()).unwrap(), None);
    }
}
