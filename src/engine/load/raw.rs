//! scaletui's own HTTP/1.1 client for plain `http://` targets, the way `wrk` sends: the request's
//! bytes are built once for the run and written with one `write` per request; the answer is read
//! into the connection's buffer and its head parsed with `httparse`. Bodies are skipped, not
//! stored (`Content-Length`, `chunked`, or until the server closes). Per request that is one write
//! and, as a rule, one read — no request object, no header map, no body frames.
//!
//! What it does not do, and hyper (`--client hyper`) does: HTTP/2, `Expect: 100-continue`
//! handshakes, streaming request bodies. 1xx answers are skipped; `Connection: close` and HTTP/1.0
//! answers without keep-alive close the connection after the answer.

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use hyper::Method;
use hyper::header::HeaderMap;

/// A request head larger than this is refused as a malformed answer.
const MAX_HEAD: usize = 64 * 1024;
/// Read buffer per connection.
const BUF: usize = 16 * 1024;

/// The target of a run: its addresses and the request's bytes.
pub struct RawTarget {
    addrs: Vec<SocketAddr>,
    request: Bytes,
    head: bool,
}

/// One keep-alive connection and its read buffer.
pub struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// Why an exchange failed.
#[derive(Debug, PartialEq)]
pub(crate) enum Failure {
    /// The server closed (or reset) before any byte of the answer: on a reused connection, the
    /// server closed it while idle, so the request is sent again on a new one.
    Stale(String),
    Other(String),
}

impl RawTarget {
    /// Build the request's bytes: `METHOD path HTTP/1.1`, Host (unless given), the headers, a
    /// Content-Length for a body (unless given), the body.
    pub fn new(
        method: &Method,
        headers: &HeaderMap,
        body: &Bytes,
        addrs: Vec<SocketAddr>,
        path: &str,
        host: &str,
    ) -> Self {
        let mut r = Vec::with_capacity(128 + body.len());
        r.extend_from_slice(method.as_str().as_bytes());
        r.push(b' ');
        r.extend_from_slice(path.as_bytes());
        r.extend_from_slice(b" HTTP/1.1\r\n");
        if !headers.contains_key(hyper::header::HOST) {
            r.extend_from_slice(b"Host: ");
            r.extend_from_slice(host.as_bytes());
            r.extend_from_slice(b"\r\n");
        }
        for (k, v) in headers {
            r.extend_from_slice(k.as_str().as_bytes());
            r.extend_from_slice(b": ");
            r.extend_from_slice(v.as_bytes());
            r.extend_from_slice(b"\r\n");
        }
        let needs_length = !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH);
        if needs_length && !headers.contains_key(hyper::header::CONTENT_LENGTH) {
            r.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        r.extend_from_slice(b"\r\n");
        r.extend_from_slice(body);
        Self { addrs, request: Bytes::from(r), head: *method == Method::HEAD }
    }

    async fn connect(&self) -> Result<RawConn, String> {
        let mut last = String::from("no address");
        for addr in &self.addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(RawConn { stream, buf: Vec::with_capacity(BUF) });
                }
                Err(e) => last = io_error(&e),
            }
        }
        Err(format!("connect: {last}"))
    }

    /// Send one request on `slot` (opening a connection if it has none) and read the whole
    /// answer. Returns the status code; on error the connection is dropped.
    pub async fn send(&self, slot: &mut Option<RawConn>, opened: &mut u64) -> Result<u16, String> {
        for attempt in 0..2 {
            let reused = slot.is_some();
            let conn = match slot {
                Some(c) => c,
                None => {
                    *opened += 1;
                    slot.insert(self.connect().await?)
                }
            };
            match conn.exchange(&self.request, self.head).await {
                Ok((status, keep)) => {
                    if !keep {
                        *slot = None;
                    }
                    return Ok(status);
                }
                Err(f) => {
                    *slot = None;
                    match f {
                        Failure::Stale(_) if reused && attempt == 0 => {}
                        Failure::Stale(e) | Failure::Other(e) => return Err(e),
                    }
                }
            }
        }
        Err("connection closed".into())
    }
}

impl RawConn {
    /// Write the request, read one answer. `(status, keep-alive)`.
    async fn exchange(&mut self, request: &[u8], head: bool) -> Result<(u16, bool), Failure> {
        if let Err(e) = self.stream.write_all(request).await {
            return Err(Failure::Stale(io_error(&e)));
        }
        self.buf.clear();
        let mut got_any = false;
        loop {
            // The head, skipping 1xx answers.
            let (status, framing, keep, used) = loop {
                if let Some(parsed) = parse_head(&self.buf, head)? {
                    break parsed;
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(Failure::Other("malformed answer (head too large)".into()));
                }
                self.fill(got_any).await?;
                got_any = true;
            };
            self.buf.drain(..used);
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            self.body(framing).await?;
            return Ok((status, keep && framing != Framing::UntilClose));
        }
    }

    /// Read more into the buffer. EOF before anything of the answer is `Stale`.
    async fn fill(&mut self, got_any: bool) -> Result<(), Failure> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(BUF);
        }
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) if !got_any && self.buf.is_empty() => {
                Err(Failure::Stale("connection closed before the answer".into()))
            }
            Ok(0) => Err(Failure::Other("connection closed before the answer".into())),
            Ok(_) => Ok(()),
            Err(e) if !got_any => Err(Failure::Stale(io_error(&e))),
            Err(e) => Err(Failure::Other(io_error(&e))),
        }
    }

    /// Skip the body (its bytes already in the buffer first).
    async fn body(&mut self, framing: Framing) -> Result<(), Failure> {
        match framing {
            Framing::Empty => Ok(()),
            Framing::Length(mut left) => {
                loop {
                    let have = self.buf.len() as u64;
                    if have >= left {
                        // Anything after the answer would be a second answer nobody asked for.
                        self.buf.clear();
                        return Ok(());
                    }
                    left -= have;
                    self.buf.clear();
                    self.fill(true).await?;
                }
            }
            Framing::Chunked => {
                let mut state = Chunks::default();
                loop {
                    let used = state.advance(&self.buf)?;
                    self.buf.drain(..used);
                    if state.done {
                        self.buf.clear();
                        return Ok(());
                    }
                    self.fill(true).await?;
                }
            }
            Framing::UntilClose => loop {
                self.buf.clear();
                if self.buf.capacity() < BUF {
                    self.buf.reserve(BUF);
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(Failure::Other(io_error(&e))),
                }
            },
        }
    }
}

/// A short name for a socket error.
pub(crate) fn io_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        ConnectionAborted => "connection aborted".into(),
        TimedOut => "timed out".into(),
        AddrNotAvailable => "address not available (out of ports?)".into(),
        _ => e.to_string(),
    }
}

/// How the body of an answer ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Parse an answer's head: `None` while incomplete, else (status, framing, keep-alive, bytes used).
pub(crate) fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<(u16, Framing, bool, usize)>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let used = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Failure::Other(format!("malformed answer ({e})"))),
    };
    let status = resp.code.unwrap_or(0);
    let mut keep = resp.version == Some(1);
    let mut length = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).ok().and_then(|s| s.trim().parse::<u64>().ok());
            match v {
                Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                _ => return Err(Failure::Other("malformed answer (bad Content-Length)".into())),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let t = token.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    keep = false;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    keep = true;
                }
            }
        }
    }
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        if n == 0 { Framing::Empty } else { Framing::Length(n) }
    } else {
        Framing::UntilClose
    };
    Ok(Some((status, framing, keep, used)))
}

/// Where a chunked body's decoding stands.
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    /// Bytes of the current chunk's data (and its CRLF) still to skip.
    skip: u64,
    /// After the last chunk: in the trailers.
    trailers: bool,
    pub done: bool,
}

impl Chunks {
    /// Consume what `buf` holds; returns the bytes used (the rest waits for more).
    pub(crate) fn advance(&mut self, buf: &[u8]) -> Result<usize, Failure> {
        let mut pos = 0usize;
        loop {
            if self.skip > 0 {
                let take = self.skip.min((buf.len() - pos) as u64);
                self.skip -= take;
                pos += take as usize;
                if self.skip > 0 {
                    return Ok(pos);
                }
            }
            let Some(eol) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
                if buf.len() - pos > 4096 {
                    return Err(Failure::Other("malformed answer (chunk line too long)".into()));
                }
                return Ok(pos);
            };
            let line = &buf[pos..pos + eol];
            pos += eol + 2;
            if self.trailers {
                if line.is_empty() {
                    self.done = true;
                    return Ok(pos);
                }
                continue;
            }
            let size = line.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(|| Failure::Other("malformed answer (bad chunk size)".into()))?;
            if size == 0 {
                self.trailers = true;
            } else {
                self.skip = size + 2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> (u16, Framing, bool, usize) {
        parse_head(s.as_bytes(), false).expect("parses").expect("complete")
    }

    #[test]
    fn heads_give_status_framing_and_keep_alive() {
        let (s, f, k, n) = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!((s, f, k, n), (200, Framing::Length(5), true, 38));
        assert_eq!(parse("HTTP/1.1 204 No Content\r\n\r\n").1, Framing::Empty);
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").1, Framing::Empty);
        assert_eq!(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").1, Framing::Chunked);
        let (_, f, k, _) = parse("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        assert_eq!((f, k), (Framing::UntilClose, false));
        assert!(!parse("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx").2);
        assert!(parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx").2);
        let head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).expect("ok").expect("complete");
        assert_eq!(head.1, Framing::Empty);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false).expect("ok"), None);
        assert!(parse_head(b"garbage\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false).is_err());
    }

    #[test]
    fn chunked_bodies_end_after_the_last_chunk_and_trailers_in_any_split() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";
        for cut in 0..body.len() {
            let mut st = Chunks::default();
            let mut buf = body[..cut].to_vec();
            let used = st.advance(&buf).expect("ok");
            buf.drain(..used);
            assert!(!st.done || cut == body.len(), "done early at {cut}");
            buf.extend_from_slice(&body[cut..]);
            let used = st.advance(&buf).expect("ok");
            assert!(st.done, "not done after all bytes (cut {cut})");
            assert_eq!(used, buf.len());
        }
        assert!(Chunks::default().advance(b"zz\r\n").is_err());
    }
}
