//! A server-sent events decoder that takes bytes as they arrive (an event may be split across
//! reads, lines end in `\n` or `\r\n`; `:` lines are comments and keep-alives). Lines that are not
//! SSE fields are counted, not fatal.

/// One event: its `event:` name (empty when absent) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    /// Lines that were neither a field, a comment nor blank.
    pub malformed_lines: u32,
}

/// Longest line kept (bytes); a longer one is cut (and will fail to parse as JSON).
const MAX_LINE: usize = 1 << 20;

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; returns the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(i) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + i;
            let mut line = &self.buf[start..end];
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            let line = String::from_utf8_lossy(line).into_owned();
            self.line(&line, &mut out);
            start = end + 1;
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE {
            self.buf.truncate(MAX_LINE);
        }
        out
    }

    /// The stream ended: an event without its final blank line still counts.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8_lossy(rest.strip_suffix(b"\r").unwrap_or(&rest)).into_owned();
            self.line(&line, &mut out);
        }
        self.dispatch(&mut out);
        out
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent { event: std::mem::take(&mut self.event), data: std::mem::take(&mut self.data) });
        }
        self.event.clear();
        self.has_data = false;
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let Some((field, value)) = line.split_once(':') else {
            self.malformed_lines += 1;
            return;
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = value.to_string(),
            "id" | "retry" => {}
            _ => self.malformed_lines += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn events_split_across_reads_and_crlf() {
        let mut d = SseDecoder::new();
        assert!(d.push(b"data: {\"a\"").is_empty());
        assert!(d.push(b":1}\r").is_empty());
        let ev = d.push(b"\n\r\ndata: [DONE]\n\n");
        assert_eq!(data(&ev), ["{\"a\":1}", "[DONE]"]);
        assert_eq!(d.malformed_lines, 0);
    }

    #[test]
    fn comments_blank_lines_and_event_names() {
        let mut d = SseDecoder::new();
        let ev = d.push(b": keep-alive\n\n\nevent: error\ndata: x\ndata: y\n\nid: 3\ndata:z\n\n");
        assert_eq!(ev.len(), 2);
        assert_eq!((ev[0].event.as_str(), ev[0].data.as_str()), ("error", "x\ny"));
        assert_eq!((ev[1].event.as_str(), ev[1].data.as_str()), ("", "z"));
    }

    #[test]
    fn malformed_lines_are_counted_and_skipped() {
        let mut d = SseDecoder::new();
        let ev = d.push(b"this is not sse\nfoo: bar\ndata: ok\n\n");
        assert_eq!(data(&ev), ["ok"]);
        assert_eq!(d.malformed_lines, 2);
    }

    #[test]
    fn unterminated_last_event_is_kept() {
        let mut d = SseDecoder::new();
        assert!(d.push(b"data: last").is_empty());
        assert_eq!(data(&d.finish()), ["last"]);
    }

    #[test]
    fn multibyte_characters_split_across_reads() {
        let mut d = SseDecoder::new();
        let bytes = "data: héllo\n\n".as_bytes();
        let (a, b) = bytes.split_at(8);
        assert!(d.push(a).is_empty());
        assert_eq!(data(&d.push(b)), ["héllo"]);
    }
}
