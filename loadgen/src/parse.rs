//! A small incremental HTTP/1.x *response* parser and the per-connection input
//! buffer that feeds it.
//!
//! The load generator only needs to know where each response ends, its status and
//! whether the server will close the connection after it, so this parser reads the
//! status line and three headers (`Content-Length`, `Transfer-Encoding`,
//! `Connection`) and then skips the body without copying it: by length, by chunks
//! (byte-wise state machine, so any split of the input works), or until EOF.
//! Pipelined responses are parsed back to back from one buffer.
//!
//! Contract: [`Inbox::next`] is called repeatedly after every read; it returns each
//! complete response once, keeps the unparsed tail, and never allocates.

use std::fmt;

/// Largest response head (status line + headers) accepted.
pub const MAX_HEAD: usize = 16 * 1024;

/// What the engine needs to know about one complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The status code (100..=999).
    pub status: u16,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// Why a response could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The status line is not `HTTP/1.x NNN ...`.
    StatusLine,
    /// A header line without a colon, or a bad `Content-Length`.
    Header,
    /// A malformed chunk size line or a missing CRLF after chunk data.
    Chunk,
    /// The head did not end within [`MAX_HEAD`] bytes.
    HeadTooLarge,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::StatusLine => "malformed status line",
            ParseError::Header => "malformed header",
            ParseError::Chunk => "malformed chunked body",
            ParseError::HeadTooLarge => "response head larger than 16 KiB",
        })
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading hex digits (`digits` so far) or an extension (`ext`).
    Size {
        size: u64,
        digits: u8,
        ext: bool,
    },
    /// Saw the CR ending the size line.
    SizeLf {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// Reading trailer lines after the last chunk; `len` bytes on this line so far.
    Trailer {
        len: usize,
    },
    TrailerLf {
        empty: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length { remaining: u64 },
    Chunked(Chunk),
    UntilEof,
}

/// Heads up to this size are remembered for [`Parser::advance`]'s fast path.
const CACHED_HEAD: usize = 512;

/// Incremental parser for a stream of responses on one connection.
#[derive(Debug, Clone)]
pub struct Parser {
    state: State,
    /// Requests are HEAD: responses carry no body whatever their headers say.
    head_request: bool,
    current: Response,
    /// The last final response head parsed, byte for byte, with the response and
    /// body state it gave. A server answers the same request with the same head
    /// but for its `Date` (once a second), so a head that repeats these bytes is
    /// recognised by one comparison instead of being scanned and split again
    /// (scanning was most of the generator's CPU per pipelined response). Equal
    /// bytes parse equally, so nothing is checked less.
    last: Option<(Vec<u8>, Response, State)>,
}

impl Parser {
    /// A parser for responses to requests with the given method.
    pub fn new(head_request: bool) -> Self {
        Parser {
            state: State::Head,
            head_request,
            current: Response {
                status: 0,
                close: false,
            },
            last: None,
        }
    }

    /// The fast path: `rest` starts with the last head parsed; enter the state it
    /// gave. Returns the head's length.
    fn repeated_head(&mut self, rest: &[u8]) -> Option<usize> {
        let (bytes, current, state) = self.last.as_ref()?;
        if !rest.starts_with(bytes) {
            return None;
        }
        self.current = *current;
        self.state = *state;
        Some(bytes.len())
    }

    /// Remember `head` (which gave `self.current` and `self.state`) for the fast path.
    fn remember(&mut self, head: &[u8]) {
        if head.len() > CACHED_HEAD {
            return;
        }
        let (current, state) = (self.current, self.state);
        match &mut self.last {
            Some((bytes, c, s)) => {
                bytes.clear();
                bytes.extend_from_slice(head);
                (*c, *s) = (current, state);
            }
            None => self.last = Some((head.to_vec(), current, state)),
        }
    }

    /// After a final head set `self.state`: the response, when it has no body.
    fn complete_if_bodiless(&mut self) -> Option<Response> {
        match self.state {
            State::Head | State::Length { remaining: 0 } => {
                self.state = State::Head;
                Some(self.current)
            }
            _ => None,
        }
    }

    /// True between responses (nothing of the next response seen yet).
    pub fn at_boundary(&self) -> bool {
        self.state == State::Head
    }

    /// Forget any partial response (after the connection was replaced).
    pub fn reset(&mut self) {
        self.state = State::Head;
    }

    /// The peer closed: completes a body delimited by EOF, if one is in progress.
    pub fn eof(&mut self) -> Option<Response> {
        if self.state == State::UntilEof {
            self.state = State::Head;
            Some(self.current)
        } else {
            None
        }
    }

    /// Consumes bytes from `buf`. Returns how many were used and the response that
    /// completed, if any; stops right after a complete response.
    pub fn advance(&mut self, buf: &[u8]) -> Result<(usize, Option<Response>), ParseError> {
        let mut used = 0;
        loop {
            let rest = &buf[used..];
            match self.state {
                State::Head => {
                    if let Some(len) = self.repeated_head(rest) {
                        used += len;
                        if let Some(r) = self.complete_if_bodiless() {
                            return Ok((used, Some(r)));
                        }
                        continue;
                    }
                    let Some(end) = find_head_end(rest) else {
                        if rest.len() >= MAX_HEAD {
                            return Err(ParseError::HeadTooLarge);
                        }
                        return Ok((used, None));
                    };
                    used += end;
                    if let Some(r) = self.head(&rest[..end])? {
                        return Ok((used, Some(r)));
                    }
                }
                State::Length { remaining } => {
                    let take = remaining.min(rest.len() as u64);
                    used += take as usize;
                    if take == remaining {
                        self.state = State::Head;
                        return Ok((used, Some(self.current)));
                    }
                    self.state = State::Length {
                        remaining: remaining - take,
                    };
                    return Ok((used, None));
                }
                State::UntilEof => return Ok((buf.len(), None)),
                State::Chunked(c) => {
                    let (n, next) = chunk_step(c, rest)?;
                    used += n;
                    match next {
                        Some(c) => {
                            // chunk_step only stops early when the body is complete.
                            self.state = State::Chunked(c);
                            return Ok((used, None));
                        }
                        None => {
                            self.state = State::Head;
                            return Ok((used, Some(self.current)));
                        }
                    }
                }
            }
        }
    }

    /// Parses a complete head (ending in CRLF CRLF). Returns the response when it
    /// has no body; otherwise sets the body state and returns None. Interim 1xx
    /// responses are skipped.
    fn head(&mut self, head: &[u8]) -> Result<Option<Response>, ParseError> {
        let mut lines = memchr::memchr_iter(b'\n', head).scan(0, |start, nl| {
            let line = &head[*start..nl];
            *start = nl + 1;
            Some(trim_cr(line))
        });
        let status_line = lines.next().ok_or(ParseError::StatusLine)?;
        let (minor, status) = status_line_parts(status_line)?;
        let mut close = minor == 0;
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut other_coding = false;
        for line in lines.filter(|l| !l.is_empty()) {
            let colon = memchr::memchr(b':', line).ok_or(ParseError::Header)?;
            let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
            if name.eq_ignore_ascii_case(b"content-length") {
                let n = parse_decimal(value).ok_or(ParseError::Header)?;
                if length.is_some_and(|l| l != n) {
                    return Err(ParseError::Header);
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                let last = value.rsplit(|&b| b == b',').next().map(trim);
                chunked = last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
                other_coding = !chunked;
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in value.split(|&b| b == b',').map(trim) {
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && minor == 0 {
                        close = false;
                    }
                }
            }
        }
        if (100..200).contains(&status) && status != 101 {
            return Ok(None); // interim response: the real one follows
        }
        self.current = Response { status, close };
        let no_body = self.head_request || status == 204 || status == 304 || status == 101;
        self.state = if no_body {
            State::Head
        } else if chunked {
            State::Chunked(Chunk::Size {
                size: 0,
                digits: 0,
                ext: false,
            })
        } else if other_coding {
            self.current.close = true;
            State::UntilEof
        } else if let Some(n) = length {
            State::Length { remaining: n }
        } else {
            self.current.close = true;
            State::UntilEof
        };
        self.remember(head);
        Ok(self.complete_if_bodiless())
    }
}

/// Runs the chunked-body state machine over `buf`. Returns the bytes used and the
/// next state, or None when the body (including trailers) is complete.
fn chunk_step(mut c: Chunk, buf: &[u8]) -> Result<(usize, Option<Chunk>), ParseError> {
    let mut i = 0;
    while i < buf.len() {
        c = if let Chunk::Data { remaining } = c {
            // Chunk data is skipped in bulk.
            let take = remaining.min((buf.len() - i) as u64);
            i += take as usize;
            if take == remaining {
                Chunk::DataCr
            } else {
                Chunk::Data {
                    remaining: remaining - take,
                }
            }
        } else {
            i += 1;
            match chunk_byte(c, buf[i - 1])? {
                Some(next) => next,
                None => return Ok((i, None)),
            }
        };
    }
    Ok((i, Some(c)))
}

/// One byte of the framing around chunk data; None when the body is complete.
fn chunk_byte(c: Chunk, b: u8) -> Result<Option<Chunk>, ParseError> {
    Ok(Some(match c {
        Chunk::Data { remaining } => Chunk::Data { remaining },
        Chunk::Size { size, digits, ext } => match b {
            b'\r' if digits > 0 => Chunk::SizeLf { size },
            _ if ext => Chunk::Size { size, digits, ext },
            b';' | b' ' | b'\t' if digits > 0 => Chunk::Size {
                size,
                digits,
                ext: true,
            },
            _ => {
                let d = (b as char).to_digit(16).ok_or(ParseError::Chunk)?;
                if digits >= 15 {
                    return Err(ParseError::Chunk);
                }
                Chunk::Size {
                    size: size * 16 + u64::from(d),
                    digits: digits + 1,
                    ext: false,
                }
            }
        },
        Chunk::SizeLf { size } => match b {
            b'\n' if size == 0 => Chunk::Trailer { len: 0 },
            b'\n' => Chunk::Data { remaining: size },
            _ => return Err(ParseError::Chunk),
        },
        Chunk::DataCr => match b {
            b'\r' => Chunk::DataLf,
            _ => return Err(ParseError::Chunk),
        },
        Chunk::DataLf => match b {
            b'\n' => Chunk::Size {
                size: 0,
                digits: 0,
                ext: false,
            },
            _ => return Err(ParseError::Chunk),
        },
        Chunk::Trailer { len } => match b {
            b'\r' => Chunk::TrailerLf { empty: len == 0 },
            _ if len >= MAX_HEAD => return Err(ParseError::HeadTooLarge),
            _ => Chunk::Trailer { len: len + 1 },
        },
        Chunk::TrailerLf { empty } => match b {
            b'\n' if empty => return Ok(None),
            b'\n' => Chunk::Trailer { len: 0 },
            _ => return Err(ParseError::Chunk),
        },
    }))
}

fn status_line_parts(line: &[u8]) -> Result<(u8, u16), ParseError> {
    if line.len() < 12 || !line.starts_with(b"HTTP/1.") || line[8] != b' ' {
        return Err(ParseError::StatusLine);
    }
    let minor = match line[7] {
        b'0' => 0,
        b'1' => 1,
        _ => return Err(ParseError::StatusLine),
    };
    let code = &line[9..12];
    if !code.iter().all(u8::is_ascii_digit) || line.get(12).is_some_and(|&b| b != b' ') {
        return Err(ParseError::StatusLine);
    }
    let status = code.iter().fold(0u16, |a, &d| a * 10 + u16::from(d - b'0'));
    if status < 100 {
        return Err(ParseError::StatusLine);
    }
    Ok((minor, status))
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |a, &d| a * 10 + u64::from(d - b'0')))
}

/// Index just past the first CRLF CRLF (the end of a head), if present: each LF
/// found by `memchr` is checked for the CR before it and the CRLF after it.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', buf)
        .find(|&i| i >= 1 && buf[i - 1] == b'\r' && buf.get(i + 1..i + 3) == Some(b"\r\n"))
        .map(|i| i + 3)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// A connection's input buffer: bytes read from the socket that the parser has not
/// consumed yet live in `buf[start..end]`.
#[derive(Debug)]
pub struct Inbox {
    /// INVARIANT: `start <= end <= buf.len()`, and `buf.len() > MAX_HEAD` so a head
    /// that fits the limit always fits after compaction.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Inbox {
    /// An inbox of `capacity` bytes (raised to just above [`MAX_HEAD`] if smaller).
    pub fn new(capacity: usize) -> Self {
        Inbox {
            buf: vec![0; capacity.max(MAX_HEAD + 1024)].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Free space to read into (never empty while the parser upholds MAX_HEAD).
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.buf.len() - self.end < 4096 {
            // Little room left: move the partial response to the front.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were written into the slice returned by [`Inbox::spare`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The next complete response in the buffered bytes, if there is one.
    pub fn next(&mut self, parser: &mut Parser) -> Result<Option<Response>, ParseError> {
        let (used, resp) = parser.advance(&self.buf[self.start..self.end])?;
        self.start += used;
        Ok(resp)
    }

    /// Unparsed bytes are waiting.
    pub fn has_pending(&self) -> bool {
        self.start < self.end
    }

    /// Drop everything (the connection was replaced).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}
