//! What each event measured: its type, a one-line description decoded from the event data where
//! the format is simple, and whether the digest can be (and is) recomputed from that data.

use serde::Serialize;
use sha2::{Digest, Sha384};

use crate::ccel::{le_u16, le_u32, le_u64};
use crate::event::{Event, types};

/// Whether an event's digest follows from its logged data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestCheck {
    /// The digest is the hash of the logged data, and it matches.
    Matches,
    /// The digest should be the hash of the logged data and is not: the event was altered.
    Differs,
    /// The digest is over something not in the log (an image, a table, a command line).
    External,
}

/// One event, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// Position in the log.
    pub index: usize,
    /// RTMR extended, if any.
    pub rtmr: Option<usize>,
    /// TCG type name.
    pub type_name: String,
    /// The extended digest, hex.
    pub digest: String,
    /// What was measured, in one line.
    pub what: String,
    /// Whether the digest follows from the logged data.
    pub digest_check: DigestCheck,
}

/// Explains one event.
pub fn explain(event: &Event) -> Explanation {
    Explanation {
        index: event.index,
        rtmr: event.rtmr,
        type_name: event.type_name(),
        digest: hex::encode(event.digest),
        what: describe(event),
        digest_check: check_digest(event),
    }
}

/// Recomputes the digest where the TCG profile (or dstack) defines it over the logged data.
pub fn check_digest(event: &Event) -> DigestCheck {
    use types::*;
    let sha = |b: &[u8]| -> [u8; 48] { Sha384::digest(b).into() };
    let expected = match event.event_type {
        _ if event.rtmr.is_none() || event.data.is_empty() => return DigestCheck::External,
        EV_SEPARATOR
        | EV_EFI_ACTION
        | EV_EFI_VARIABLE_DRIVER_CONFIG
        | EV_EFI_VARIABLE_AUTHORITY => sha(&event.data),
        EV_EFI_VARIABLE_BOOT => match uefi_variable(&event.data) {
            Some(v) => sha(v.data),
            None => return DigestCheck::Differs,
        },
        DSTACK_RUNTIME_EVENT => crate::dstack::runtime_event_digest(
            event.event_type,
            event.name.as_deref().unwrap_or(""),
            &event.data,
        ),
        _ => return DigestCheck::External,
    };
    if expected == event.digest {
        DigestCheck::Matches
    } else {
        DigestCheck::Differs
    }
}

fn describe(event: &Event) -> String {
    use types::*;
    let d = &event.data;
    if d.is_empty() {
        return match &event.name {
            Some(n) => format!("runtime event {n:?}, empty payload"),
            None => "(payload not in the log)".to_owned(),
        };
    }
    let text = match event.event_type {
        EV_NO_ACTION => Some(format!("informational: {}", printable(d))),
        EV_SEPARATOR => Some(format!("separator {:#x}", le_u32(d, 0).unwrap_or(0))),
        EV_EFI_ACTION | EV_ACTION | EV_S_CRTM_VERSION | EV_POST_CODE => Some(printable(d)),
        EV_PLATFORM_CONFIG_FLAGS => Some(format!("{} (QEMU ACPI blob)", printable(d))),
        EV_EFI_VARIABLE_DRIVER_CONFIG
        | EV_EFI_VARIABLE_BOOT
        | EV_EFI_VARIABLE_BOOT2
        | EV_EFI_VARIABLE_AUTHORITY => describe_variable(d),
        EV_EFI_BOOT_SERVICES_APPLICATION
        | EV_EFI_BOOT_SERVICES_DRIVER
        | EV_EFI_RUNTIME_SERVICES_DRIVER => describe_image_load(d),
        EV_EFI_HANDOFF_TABLES2 => describe_handoff(d),
        EV_EFI_PLATFORM_FIRMWARE_BLOB2 => describe_blob2(d),
        EV_EVENT_TAG => describe_tag(d),
        EV_IPL => Some(format!("boot loader: {}", text_of(d))),
        DSTACK_RUNTIME_EVENT => Some(format!(
            "runtime event {:?} = {}",
            event.name.as_deref().unwrap_or(""),
            text_or_hex(d)
        )),
        _ => None,
    };
    text.unwrap_or_else(|| format!("{} bytes of event data", d.len()))
}

/// A UEFI_VARIABLE_DATA structure.
struct UefiVariable<'a> {
    guid: String,
    name: String,
    data: &'a [u8],
}

fn uefi_variable(d: &[u8]) -> Option<UefiVariable<'_>> {
    let name_chars = usize::try_from(le_u64(d, 16)?).ok()?;
    let data_len = usize::try_from(le_u64(d, 24)?).ok()?;
    let name_end = 32usize.checked_add(name_chars.checked_mul(2)?)?;
    Some(UefiVariable {
        guid: guid(d.get(..16)?),
        name: utf16(d.get(32..name_end)?),
        data: d.get(name_end..name_end.checked_add(data_len)?)?,
    })
}

fn describe_variable(d: &[u8]) -> Option<String> {
    let v = uefi_variable(d)?;
    let value = match v.name.as_str() {
        "SecureBoot" if v.data.len() == 1 => format!("= {}", v.data[0]),
        "BootOrder" => {
            let order: Vec<String> = v
                .data
                .chunks(2)
                .map(|c| match c {
                    [a, b] => format!("Boot{:04X}", u16::from_le_bytes([*a, *b])),
                    _ => "?".to_owned(),
                })
                .collect();
            format!("= [{}]", order.join(", "))
        }
        n if n.starts_with("Boot") && v.data.len() > 6 => {
            let desc_end = find_utf16_nul(&v.data[6..]).map(|e| 6 + e)?;
            format!("= load option {:?}", utf16(&v.data[6..desc_end]))
        }
        _ if v.data.is_empty() => "unset (empty)".to_owned(),
        _ => format!("{} bytes", v.data.len()),
    };
    Some(format!("EFI variable {}:{} {value}", v.guid, v.name))
}

fn describe_image_load(d: &[u8]) -> Option<String> {
    let addr = le_u64(d, 0)?;
    let len = le_u64(d, 8)?;
    let path_len = usize::try_from(le_u64(d, 24)?).ok()?;
    let path = d
        .get(32..32usize.checked_add(path_len)?)
        .map(device_path)
        .unwrap_or_default();
    Some(format!(
        "EFI image of {len} bytes at {addr:#x}, loaded from {path}"
    ))
}

fn device_path(mut p: &[u8]) -> String {
    let mut nodes = Vec::new();
    while p.len() >= 4 {
        let (kind, sub) = (p[0], p[1]);
        let len = le_u16(p, 2).unwrap_or(0) as usize;
        if len < 4 || len > p.len() || kind == 0x7f {
            break;
        }
        let body = &p[4..len];
        nodes.push(match (kind, sub) {
            (4, 4) => utf16(body),
            (4, 6) if body.len() >= 16 => format!("FvFile({})", guid(&body[..16])),
            (4, 7) if body.len() >= 16 => format!("Fv({})", guid(&body[..16])),
            (4, 1) => "HD(..)".to_owned(),
            (k, s) => format!("node({k},{s})"),
        });
        p = &p[len..];
    }
    if nodes.is_empty() {
        "(no device path)".to_owned()
    } else {
        nodes.join("/")
    }
}

fn describe_handoff(d: &[u8]) -> Option<String> {
    let n = *d.first()? as usize;
    let desc = printable(d.get(1..1 + n)?);
    let tables = le_u64(d, 1 + n)?;
    let addr = le_u64(d, 1 + n + 8 + 16)?;
    let what = if desc == "TdxTable" {
        "the TD HOB (VMM's memory map)"
    } else {
        "handoff table"
    };
    Some(format!(
        "{what}: {desc}, {tables} table(s), first at {addr:#x}"
    ))
}

fn describe_blob2(d: &[u8]) -> Option<String> {
    let n = *d.first()? as usize;
    let desc = printable(d.get(1..1 + n)?);
    let base = le_u64(d, 1 + n)?;
    let len = le_u64(d, 1 + n + 8)?;
    let what = if desc.starts_with("Fv(") {
        "configuration firmware volume (CFV)"
    } else {
        "firmware blob"
    };
    Some(format!("{what} {desc}, {len:#x} bytes at {base:#x}"))
}

fn describe_tag(d: &[u8]) -> Option<String> {
    let id = le_u32(d, 0)?;
    let len = le_u32(d, 4)? as usize;
    let body = d.get(8..8usize.checked_add(len)?)?;
    Some(match id {
        0x8F3B_22ED => format!("Linux EFI stub: kernel command line ({})", printable(body)),
        0x8F3B_22EC => format!("Linux EFI stub: initrd ({})", printable(body)),
        _ => format!("tagged event {id:#x}: {}", printable(body)),
    })
}

/// The bytes as text when they are printable ASCII, else as hex (binary ids, hashes).
fn text_or_hex(d: &[u8]) -> String {
    if d.iter().all(|b| (0x20..0x7f).contains(b)) {
        printable(d)
    } else {
        hex::encode(d)
    }
}

/// Text of an EV_IPL event: UTF-16 when it looks like it, else bytes up to the first NUL.
fn text_of(d: &[u8]) -> String {
    let looks_utf16 =
        d.len() >= 4 && d.len().is_multiple_of(2) && d.iter().skip(1).step_by(2).all(|b| *b == 0);
    if looks_utf16 { utf16(d) } else { printable(d) }
}

fn find_utf16_nul(d: &[u8]) -> Option<usize> {
    d.chunks(2).position(|c| c == [0, 0]).map(|i| i * 2)
}

fn utf16(d: &[u8]) -> String {
    let units: Vec<u16> = d
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
        .trim_end_matches('\0')
        .to_owned()
}

/// The data as text with non-printable bytes escaped, trailing NULs dropped, at most 160 chars.
fn printable(d: &[u8]) -> String {
    let d = match d.iter().rposition(|b| *b != 0) {
        Some(end) => &d[..=end],
        None => &[],
    };
    let s: String = d
        .iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

/// Formats a 16-byte EFI GUID (first three fields little-endian).
pub fn guid(b: &[u8]) -> String {
    match b {
        [a0, a1, a2, a3, b0, b1, c0, c1, rest @ ..] if rest.len() == 8 => format!(
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{}-{}",
            a3,
            a2,
            a1,
            a0,
            b1,
            b0,
            c1,
            c0,
            hex::encode(&rest[..2]),
            hex::encode(&rest[2..])
        ),
        _ => hex::encode(b),
    }
}
