//! dstack's guest-agent quote response: a hex TDX quote, an event log as JSON (one object per event:
//! `imr` 0..=3, `event_type`, hex `digest`, `event` name, hex `event_payload`) and the VM config.
//!
//! dstack's own RTMR3 events (type 0x08000001) may be logged without a digest: it is then
//! SHA-384(event type, little-endian u32 ‖ ":" ‖ name ‖ ":" ‖ payload).

use serde::Deserialize;
use sha2::{Digest, Sha384};

use crate::event::{Digest48, Event, types};
use crate::{MeasureError, Result};

/// A parsed quote response.
#[derive(Debug, Clone)]
pub struct QuoteResponse {
    /// The raw quote.
    pub quote: Vec<u8>,
    /// The events, in log order.
    pub events: Vec<Event>,
    /// The VM config the response carried, as JSON (`memory_size`, `cpu_count`, `qemu_version`, ...).
    pub vm_config: serde_json::Value,
}

impl QuoteResponse {
    /// Guest memory in bytes, from the VM config.
    pub fn memory_size(&self) -> Option<u64> {
        self.vm_config.get("memory_size")?.as_u64()
    }
}

#[derive(Deserialize)]
struct Raw {
    quote: String,
    event_log: String,
    #[serde(default)]
    vm_config: Option<String>,
}

#[derive(Deserialize)]
struct RawEvent {
    imr: u32,
    event_type: u32,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    event_payload: String,
}

/// Parses a quote response (the JSON document dstack's `GetQuote` returns).
pub fn parse_quote_response(json: &[u8]) -> Result<QuoteResponse> {
    let raw: Raw = serde_json::from_slice(json).map_err(|e| MeasureError::Json(e.to_string()))?;
    let quote = hex::decode(raw.quote.trim_start_matches("0x"))
        .map_err(|e| MeasureError::Json(format!("quote is not hex: {e}")))?;
    let events = parse_event_log(raw.event_log.as_bytes())?;
    let vm_config = match raw.vm_config {
        Some(s) => {
            serde_json::from_str(&s).map_err(|e| MeasureError::Json(format!("vm_config: {e}")))?
        }
        None => serde_json::Value::Null,
    };
    Ok(QuoteResponse {
        quote,
        events,
        vm_config,
    })
}

/// Parses a JSON event log (an array of dstack event objects).
pub fn parse_event_log(json: &[u8]) -> Result<Vec<Event>> {
    let raw: Vec<RawEvent> =
        serde_json::from_slice(json).map_err(|e| MeasureError::Json(format!("event_log: {e}")))?;
    raw.into_iter()
        .enumerate()
        .map(|(index, e)| to_event(index, e))
        .collect()
}

fn to_event(index: usize, e: RawEvent) -> Result<Event> {
    let fail = |reason: String| MeasureError::Event {
        index,
        offset: 0,
        reason,
    };
    if e.imr > 3 {
        return Err(fail(format!("imr {} (valid: 0..=3)", e.imr)));
    }
    let data = hex::decode(&e.event_payload).map_err(|err| fail(format!("payload: {err}")))?;
    let digest: Digest48 = if e.digest.is_empty() && e.event_type == types::DSTACK_RUNTIME_EVENT {
        runtime_event_digest(e.event_type, &e.event, &data)
    } else {
        hex::decode(&e.digest)
            .ok()
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| fail(format!("digest {:?} is not 48 hex bytes", e.digest)))?
    };
    Ok(Event {
        index,
        rtmr: Some(e.imr as usize),
        event_type: e.event_type,
        digest,
        data,
        name: (!e.event.is_empty()).then_some(e.event),
    })
}

/// The digest dstack extends into RTMR3 for a runtime event.
pub fn runtime_event_digest(event_type: u32, name: &str, payload: &[u8]) -> Digest48 {
    let mut h = Sha384::new();
    h.update(event_type.to_le_bytes());
    h.update(b":");
    h.update(name.as_bytes());
    h.update(b":");
    h.update(payload);
    h.finalize().into()
}
