//! The CCEL ACPI table and the TCG crypto-agile event log it points at.
//!
//! The log starts with one TCG_PCClientPCREvent (SHA-1 format) carrying the "Spec ID Event03"
//! structure, which lists the digest algorithms and their sizes; every later event is a
//! TCG_PCR_EVENT2 with one digest per algorithm. In a CC event log the "PCR index" is the CC
//! measurement register index: 0 is MRTD, 1..=4 are RTMR0..=RTMR3.

use crate::event::{Digest48, Event, types};
use crate::{MeasureError, Result};

/// TCG algorithm id of SHA-384.
const TPM_ALG_SHA384: u16 = 0x000c;
/// Size of the fixed part of the CCEL table.
const CCEL_TABLE_LEN: usize = 56;
/// CC type of Intel TDX in the CCEL table.
pub const CC_TYPE_TDX: u8 = 2;

/// The CCEL ACPI table: where the firmware put its event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcelTable {
    /// CC type (2 = TDX).
    pub cc_type: u8,
    /// CC subtype.
    pub cc_subtype: u8,
    /// Log area minimum length (LAML), bytes.
    pub log_area_len: u64,
    /// Log area start address (LASA), guest-physical.
    pub log_area_start: u64,
    /// OEM id, as printed.
    pub oem_id: String,
}

impl CcelTable {
    /// Parses the table as read from `/sys/firmware/acpi/tables/CCEL`; checks signature, length and
    /// checksum.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let bad = |m: &str| MeasureError::CcelTable(m.to_owned());
        if bytes.len() < CCEL_TABLE_LEN {
            return Err(bad(&format!(
                "{} bytes, need {CCEL_TABLE_LEN}",
                bytes.len()
            )));
        }
        if &bytes[..4] != b"CCEL" {
            return Err(bad("signature is not \"CCEL\""));
        }
        let length = le_u32(bytes, 4).unwrap_or(0) as usize;
        if length < CCEL_TABLE_LEN || length > bytes.len() {
            return Err(bad(&format!(
                "header length {length} does not fit the {} bytes",
                bytes.len()
            )));
        }
        let sum = bytes[..length].iter().fold(0u8, |a, b| a.wrapping_add(*b));
        if sum != 0 {
            return Err(bad("checksum does not sum to zero"));
        }
        Ok(Self {
            cc_type: bytes[36],
            cc_subtype: bytes[37],
            log_area_len: le_u64(bytes, 40).unwrap_or(0),
            log_area_start: le_u64(bytes, 48).unwrap_or(0),
            oem_id: String::from_utf8_lossy(&bytes[10..16]).trim().to_owned(),
        })
    }
}

/// Digest algorithms the log header declares: (TCG algorithm id, digest size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecId {
    /// The algorithms, in header order.
    pub algorithms: Vec<(u16, u16)>,
}

/// Parses a CC event log area (the bytes at LASA). Trailing unused log area (all 0xFF or all
/// 0x00) ends the log.
pub fn parse_log(bytes: &[u8]) -> Result<(SpecId, Vec<Event>)> {
    let (spec, mut offset) = parse_header(bytes)?;
    let mut events = Vec::new();
    while offset < bytes.len() {
        if log_ends_at(bytes, offset) {
            break;
        }
        let index = events.len();
        let (event, next) =
            parse_event2(bytes, offset, &spec).map_err(|reason| MeasureError::Event {
                index,
                offset,
                reason,
            })?;
        events.push(Event { index, ..event });
        offset = next;
    }
    Ok((spec, events))
}

fn log_ends_at(bytes: &[u8], offset: usize) -> bool {
    let rest = &bytes[offset..];
    rest.len() < 8 || rest.iter().all(|b| *b == 0xff) || rest.iter().all(|b| *b == 0)
}

fn parse_header(bytes: &[u8]) -> Result<(SpecId, usize)> {
    let bad = |m: String| MeasureError::LogHeader(m);
    let event_type = le_u32(bytes, 4).ok_or_else(|| bad("shorter than 8 bytes".into()))?;
    if event_type != types::EV_NO_ACTION {
        return Err(bad(format!(
            "first event has type {event_type:#x}, not EV_NO_ACTION"
        )));
    }
    let size = le_u32(bytes, 28).ok_or_else(|| bad("truncated".into()))? as usize;
    let body = bytes
        .get(32..32usize.saturating_add(size))
        .ok_or_else(|| bad(format!("event size {size} runs past the log")))?;
    if body.len() < 28 || !body.starts_with(b"Spec ID Event03") {
        return Err(bad("not a crypto-agile log (no \"Spec ID Event03\")".into()));
    }
    let count = le_u32(body, 24).unwrap_or(0) as usize;
    let mut algorithms = Vec::new();
    for i in 0..count {
        let at = 28 + 4 * i;
        match (le_u16(body, at), le_u16(body, at + 2)) {
            (Some(alg), Some(len)) => algorithms.push((alg, len)),
            _ => return Err(bad(format!("algorithm {i} of {count} truncated"))),
        }
    }
    if !algorithms
        .iter()
        .any(|(alg, len)| *alg == TPM_ALG_SHA384 && *len == 48)
    {
        return Err(bad("the log carries no SHA-384 digests".into()));
    }
    Ok((SpecId { algorithms }, 32 + size))
}

fn parse_event2(bytes: &[u8], offset: usize, spec: &SpecId) -> Result<(Event, usize), String> {
    let truncated = || "truncated".to_owned();
    let mr_index = le_u32(bytes, offset).ok_or_else(truncated)?;
    let event_type = le_u32(bytes, offset + 4).ok_or_else(truncated)?;
    let count = le_u32(bytes, offset + 8).ok_or_else(truncated)? as usize;
    if count > spec.algorithms.len() {
        return Err(format!(
            "{count} digests, the header declares {}",
            spec.algorithms.len()
        ));
    }
    let mut at = offset + 12;
    let mut sha384: Option<Digest48> = None;
    for _ in 0..count {
        let alg = le_u16(bytes, at).ok_or_else(truncated)?;
        let len = spec
            .algorithms
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, l)| *l as usize)
            .ok_or_else(|| format!("digest algorithm {alg:#06x} not declared in the header"))?;
        let digest = bytes.get(at + 2..at + 2 + len).ok_or_else(truncated)?;
        if alg == TPM_ALG_SHA384 {
            sha384 = digest.try_into().ok();
        }
        at += 2 + len;
    }
    let size = le_u32(bytes, at).ok_or_else(truncated)? as usize;
    let data = bytes
        .get(at + 4..(at + 4).saturating_add(size))
        .ok_or_else(|| format!("event size {size} runs past the end of the log"))?;
    let rtmr = match (event_type, mr_index) {
        (types::EV_NO_ACTION, _) | (_, 0) => None,
        (_, 1..=4) => Some(mr_index as usize - 1),
        _ => {
            return Err(format!(
                "CC measurement register index {mr_index} (valid: 0..=4)"
            ));
        }
    };
    let digest = match (sha384, rtmr) {
        (Some(d), _) => d,
        (None, None) => [0u8; 48],
        (None, Some(_)) => return Err("no SHA-384 digest".to_owned()),
    };
    let event = Event {
        index: 0,
        rtmr,
        event_type,
        digest,
        data: data.to_vec(),
        name: None,
    };
    Ok((event, at + 4 + size))
}

pub(crate) fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

pub(crate) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub(crate) fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}
