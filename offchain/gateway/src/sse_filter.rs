//! Hiding the usage event the gateway asked for on the app's behalf.
//!
//! The gateway always asks the engine for usage on streams (the charge must be checkable), which adds
//! a final event with `"choices": []` and the usage. An app that did not ask for it would see a chunk
//! its OpenAI SDK loop does not expect (`chunk.choices[0]` fails), so the gateway forwards every event
//! except that one. The receipt still covers the bytes exactly as the worker sent them.
//!
//! Bounded and linear: every byte is scanned for an event end once (the scan resumes where it
//! stopped), and at most [`MAX_EVENT_BYTES`] of an unfinished event are held. An event longer
//! than that cannot be the small usage event: its bytes are forwarded as they come, unfiltered,
//! up to its end.

use bytes::{Bytes, BytesMut};

/// Most bytes of one unfinished event held back; a usage event is well under 1 KiB.
pub(crate) const MAX_EVENT_BYTES: usize = 64 << 10;

/// Splits an SSE stream into events and drops usage-only ones.
#[derive(Debug, Default)]
pub(crate) struct HideUsage {
    /// The unfinished event.
    pending: BytesMut,
    /// How much of `pending` is known to hold no event end.
    scanned: usize,
    /// Inside an event longer than [`MAX_EVENT_BYTES`]: forwarded unfiltered up to its end.
    oversized: bool,
}

const END: &[u8] = b"\n\n";

fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(END.len()).position(|w| w == END)
}

/// True for an event whose only data line is a JSON chunk with empty `choices` and a `usage` object.
fn is_usage_only(event: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(event) else {
        return false;
    };
    let mut data = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim);
    let (Some(payload), None) = (data.next(), data.next()) else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(payload) else {
        return false;
    };
    v.get("choices")
        .and_then(|c| c.as_array())
        .is_some_and(|c| c.is_empty())
        && v.get("usage").is_some_and(|u| u.is_object())
}

impl HideUsage {
    /// Takes the next upstream bytes; returns what may be forwarded now (whole events, and the
    /// bytes of an oversized event as they come).
    pub(crate) fn push(&mut self, data: &[u8]) -> Bytes {
        self.pending.extend_from_slice(data);
        let mut out = BytesMut::new();
        loop {
            // An end may straddle the previous scan's last byte.
            let from = self.scanned.saturating_sub(END.len() - 1);
            let Some(i) = find_end(&self.pending[from..]) else {
                self.scanned = self.pending.len();
                break;
            };
            let event = self.pending.split_to(from + i + END.len());
            self.scanned = 0;
            if std::mem::take(&mut self.oversized) || !is_usage_only(&event) {
                out.extend_from_slice(&event);
            }
        }
        if self.pending.len() > MAX_EVENT_BYTES {
            // Keep the last byte back: it may be the first half of the end.
            let keep = END.len() - 1;
            let n = self.pending.len() - keep;
            out.extend_from_slice(&self.pending.split_to(n));
            self.scanned = self.pending.len();
            self.oversized = true;
        }
        out.freeze()
    }

    /// What is left when the stream ends (an unterminated last event, forwarded as is).
    pub(crate) fn finish(&mut self) -> Bytes {
        self.scanned = 0;
        std::mem::take(&mut self.pending).freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n",
        "data: [DONE]\n\n",
    );

    fn expected() -> String {
        STREAM
            .split_inclusive("\n\n")
            .filter(|e| !e.contains("\"usage\""))
            .collect()
    }

    #[test]
    fn the_usage_event_is_dropped_and_everything_else_kept_in_order() {
        let mut f = HideUsage::default();
        let mut out = f.push(STREAM.as_bytes()).to_vec();
        out.extend_from_slice(&f.finish());
        assert_eq!(String::from_utf8(out).expect("utf8"), expected());
    }

    #[test]
    fn events_split_across_frames_at_every_byte_give_the_same_result() {
        for cut in 1..STREAM.len() {
            let mut f = HideUsage::default();
            let mut out = f.push(&STREAM.as_bytes()[..cut]).to_vec();
            out.extend_from_slice(&f.push(&STREAM.as_bytes()[cut..]));
            out.extend_from_slice(&f.finish());
            assert_eq!(
                String::from_utf8(out).expect("utf8"),
                expected(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_huge_event_is_forwarded_unfiltered_in_bounded_memory_and_linear_time() {
        // 8 MiB of one event arriving in 1 KiB frames, then a usage event: before, every frame
        // rescanned the whole pending buffer (quadratic) and held it all.
        let mut f = HideUsage::default();
        let frame = vec![b'x'; 1024];
        let mut forwarded = 0usize;
        let mut head = b"data: ".to_vec();
        head.extend_from_slice(&frame);
        forwarded += f.push(&head).len();
        let started = std::time::Instant::now();
        for _ in 0..8192 {
            forwarded += f.push(&frame).len();
            assert!(f.pending.len() <= MAX_EVENT_BYTES + 1024, "bounded");
        }
        let tail = concat!(
            "\n\n",
            "data: {\"choices\":[],\"usage\":{\"total_tokens\":4}}\n\n",
            "data: [DONE]\n\n"
        );
        forwarded += f.push(tail.as_bytes()).len();
        forwarded += f.finish().len();
        let took = started.elapsed();
        // Everything but the usage event, in order.
        let usage = "data: {\"choices\":[],\"usage\":{\"total_tokens\":4}}\n\n".len();
        assert_eq!(forwarded, head.len() + 8192 * 1024 + tail.len() - usage);
        assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    }

    #[test]
    fn the_event_after_an_oversized_one_is_filtered_again() {
        let mut f = HideUsage::default();
        let big = format!("data: {}\n\n", "y".repeat(MAX_EVENT_BYTES + 10));
        let usage = "data: {\"choices\":[],\"usage\":{\"total_tokens\":4}}\n\n";
        let mut out = f.push(big.as_bytes()).to_vec();
        out.extend_from_slice(&f.push(usage.as_bytes()));
        out.extend_from_slice(&f.finish());
        assert_eq!(String::from_utf8(out).expect("utf8"), big);
        // An oversized event split so that it passes the bound before its end arrives.
        let mut f = HideUsage::default();
        let mut out = f.push(&big.as_bytes()[..MAX_EVENT_BYTES + 5]).to_vec();
        out.extend_from_slice(&f.push(&big.as_bytes()[MAX_EVENT_BYTES + 5..]));
        out.extend_from_slice(&f.push(usage.as_bytes()));
        out.extend_from_slice(&f.finish());
        assert_eq!(String::from_utf8(out).expect("utf8"), big);
    }

    #[test]
    fn usage_alongside_choices_is_not_dropped() {
        let ev =
            "data: {\"choices\":[{\"index\":0,\"delta\":{}}],\"usage\":{\"total_tokens\":4}}\n\n";
        let mut f = HideUsage::default();
        assert_eq!(f.push(ev.as_bytes()), Bytes::from(ev));
    }
}
