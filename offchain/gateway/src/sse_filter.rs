//! Hiding the usage event the gateway asked for on the app's behalf.
//!
//! The gateway always asks the engine for usage on streams (the charge must be checkable), which adds
//! a final event with `"choices": []` and the usage. An app that did not ask for it would see a chunk
//! its OpenAI SDK loop does not expect (`chunk.choices[0]` fails), so the gateway forwards every event
//! except that one. The receipt still covers the bytes exactly as the worker sent them.

use bytes::{Bytes, BytesMut};

/// Splits an SSE stream into events and drops usage-only ones.
#[derive(Debug, Default)]
pub(crate) struct HideUsage {
    pending: BytesMut,
}

const END: &[u8] = b"\n\n";

fn last_event_end(buf: &[u8]) -> Option<usize> {
    buf.windows(END.len())
        .rposition(|w| w == END)
        .map(|i| i + END.len())
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
    /// Takes the next upstream bytes; returns what may be forwarded now (whole events only).
    pub(crate) fn push(&mut self, data: &[u8]) -> Bytes {
        self.pending.extend_from_slice(data);
        let Some(end) = last_event_end(&self.pending) else {
            return Bytes::new();
        };
        let complete = self.pending.split_to(end);
        let mut out = BytesMut::with_capacity(complete.len());
        let mut rest: &[u8] = &complete;
        while let Some(i) = rest.windows(END.len()).position(|w| w == END) {
            let (event, tail) = rest.split_at(i + END.len());
            if !is_usage_only(event) {
                out.extend_from_slice(event);
            }
            rest = tail;
        }
        out.freeze()
    }

    /// What is left when the stream ends (an unterminated last event, forwarded as is).
    pub(crate) fn finish(&mut self) -> Bytes {
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
    fn usage_alongside_choices_is_not_dropped() {
        let ev =
            "data: {\"choices\":[{\"index\":0,\"delta\":{}}],\"usage\":{\"total_tokens\":4}}\n\n";
        let mut f = HideUsage::default();
        assert_eq!(f.push(ev.as_bytes()), Bytes::from(ev));
    }
}
