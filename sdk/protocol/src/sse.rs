//! Reading usage out of a response without touching its bytes.
//!
//! For a stream, the engine reports usage in the last data event (OpenAI's `stream_options.include_usage`);
//! [`UsageScanner`] watches the SSE lines go by and keeps the last `usage` it saw. For a whole JSON body,
//! [`usage_of_body`] reads the top-level `usage`.

use crate::pricing::Usage;

/// Incremental SSE scanner that remembers the last reported usage.
#[derive(Debug, Default)]
pub struct UsageScanner {
    line: Vec<u8>,
    usage: Option<Usage>,
    model: Option<String>,
    saw_done: bool,
}

/// Longest SSE line the scanner keeps; longer lines are skipped (they are content, not usage).
const MAX_LINE: usize = 1 << 20;

impl UsageScanner {
    /// A fresh scanner.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(pos) = bytes.iter().position(|&b| b == b'\n') {
            if self.line.len() + pos <= MAX_LINE {
                self.line.extend_from_slice(&bytes[..pos]);
                let line = std::mem::take(&mut self.line);
                self.on_line(&line);
            }
            self.line.clear();
            bytes = &bytes[pos + 1..];
        }
        if self.line.len() + bytes.len() <= MAX_LINE {
            self.line.extend_from_slice(bytes);
        }
    }

    fn on_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let data = data.strip_prefix(b" ").unwrap_or(data);
        if data == b"[DONE]" {
            self.saw_done = true;
            return;
        }
        // Only parse events that can carry usage; content chunks are skipped cheaply.
        if !contains(data, b"\"usage\"") {
            return;
        }
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
            if let Some(u) = v.get("usage").and_then(Usage::from_openai) {
                self.usage = Some(u);
            }
            if let Some(m) = v.get("model").and_then(|m| m.as_str()) {
                self.model = Some(m.to_owned());
            }
        }
    }

    /// The last usage reported so far.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The model named by the usage event.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Whether `data: [DONE]` was seen (the stream ended normally).
    pub fn saw_done(&self) -> bool {
        self.saw_done
    }
}

/// Usage of a non-streamed JSON response.
pub fn usage_of_body(body: &[u8]) -> Option<Usage> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    Usage::from_openai(v.get("usage")?)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_usage_in_any_chunking() {
        let stream = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"usage\"}}]}\n\n",
            "data: {\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\r\n\r\n",
            "data: [DONE]\n\n"
        )
        .as_bytes();
        for split in 1..stream.len() {
            let mut s = UsageScanner::new();
            for chunk in stream.chunks(split) {
                s.feed(chunk);
            }
            assert_eq!(
                s.usage(),
                Some(Usage {
                    prompt: 3,
                    cached: 0,
                    completion: 4,
                    reasoning: 0
                })
            );
            assert!(s.saw_done());
            assert_eq!(s.model(), Some("m"));
        }
        let mut s = UsageScanner::new();
        s.feed(b"data: {\"choices\":[]}\n\n");
        assert_eq!(s.usage(), None);
        assert!(!s.saw_done());
        assert_eq!(
            usage_of_body(br#"{"usage":{"prompt_tokens":1,"completion_tokens":2}}"#)
                .map(|u| u.total()),
            Some(3)
        );
    }
}
