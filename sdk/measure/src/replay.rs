//! Replaying a log into RTMR0..3 and comparing the result with a quote.
//!
//! An RTMR starts at 48 zero bytes; each event extends it: `RTMR = SHA-384(RTMR ‖ digest)`. A
//! register that does not replay to the quoted value means some event of that register was
//! altered, dropped, added or moved; [`compare`] names the first event that breaks a rule where
//! one does (a digest that does not follow from its data, or an order the TCG PC Client profile
//! and TDVF forbid).

use serde::Serialize;
use sha2::{Digest, Sha384};

use crate::event::{Digest48, Event, types};
use crate::explain::{DigestCheck, check_digest};

/// Extends `register` with `digest`.
pub fn extend(register: &mut Digest48, digest: &Digest48) {
    let mut h = Sha384::new();
    h.update(*register);
    h.update(digest);
    *register = h.finalize().into();
}

/// Replays events into RTMR0..3 (events that extend nothing are skipped).
pub fn replay(events: &[Event]) -> [Digest48; 4] {
    let mut rtmr = [[0u8; 48]; 4];
    for e in events {
        if let Some(r) = e.rtmr {
            extend(&mut rtmr[r], &e.digest);
        }
    }
    rtmr
}

/// Replays a plain list of digests into one register.
pub fn replay_digests<'a>(digests: impl IntoIterator<Item = &'a Digest48>) -> Digest48 {
    let mut r = [0u8; 48];
    for d in digests {
        extend(&mut r, d);
    }
    r
}

/// The event found to break a register, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suspect {
    /// Position of the event in the log.
    pub index: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// One register: replayed against quoted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterCheck {
    /// RTMR number.
    pub rtmr: usize,
    /// Replayed value, hex.
    pub replayed: String,
    /// Quoted value, hex.
    pub quoted: String,
    /// Whether they are equal.
    pub matches: bool,
    /// Events of the log that extend this register.
    pub events: usize,
    /// For a mismatch: the first event that breaks a rule, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspect: Option<Suspect>,
}

/// Compares the replay of `events` with the quoted registers `quoted`, for the registers in `which`.
pub fn compare(events: &[Event], quoted: &[Digest48; 4], which: &[usize]) -> Vec<RegisterCheck> {
    let replayed = replay(events);
    which
        .iter()
        .filter(|r| **r < 4)
        .map(|&r| {
            let matches = replayed[r] == quoted[r];
            RegisterCheck {
                rtmr: r,
                replayed: hex::encode(replayed[r]),
                quoted: hex::encode(quoted[r]),
                matches,
                events: events.iter().filter(|e| e.rtmr == Some(r)).count(),
                suspect: if matches {
                    None
                } else {
                    first_suspect(events, r)
                },
            }
        })
        .collect()
}

/// The first event of register `rtmr` whose digest contradicts its data or whose position breaks
/// the boot order.
pub fn first_suspect(events: &[Event], rtmr: usize) -> Option<Suspect> {
    let of_reg: Vec<&Event> = events.iter().filter(|e| e.rtmr == Some(rtmr)).collect();
    let altered = of_reg
        .iter()
        .find(|e| check_digest(e) == DigestCheck::Differs)
        .map(|e| Suspect {
            index: e.index,
            reason: format!(
                "{}: digest is not the SHA-384 of its logged data",
                e.type_name()
            ),
        });
    altered.or_else(|| order_violation(&of_reg))
}

/// Secure Boot configuration variables in the order UEFI measures them.
const SECURE_BOOT_ORDER: [&str; 5] = ["SecureBoot", "PK", "KEK", "db", "dbx"];

fn order_violation(of_reg: &[&Event]) -> Option<Suspect> {
    use types::*;
    let suspect = |e: &Event, reason: &str| {
        Some(Suspect {
            index: e.index,
            reason: reason.to_owned(),
        })
    };
    let mut separator_seen = false;
    let mut last_sb_rank: Option<usize> = None;
    let mut exit_invoked = false;
    for (pos, e) in of_reg.iter().enumerate() {
        match e.event_type {
            EV_EFI_HANDOFF_TABLES2 if is_td_hob(e) && pos != 0 => {
                return suspect(e, "the TD HOB must be the first event of RTMR0");
            }
            EV_EFI_PLATFORM_FIRMWARE_BLOB2 if pos == 0 && of_reg.iter().any(|x| is_td_hob(x)) => {
                return suspect(e, "the configuration firmware volume precedes the TD HOB");
            }
            EV_SEPARATOR if separator_seen => {
                return suspect(e, "a second separator in one register");
            }
            EV_SEPARATOR => separator_seen = true,
            EV_EFI_VARIABLE_DRIVER_CONFIG => {
                if separator_seen {
                    return suspect(e, "a Secure Boot variable after the separator");
                }
                if let Some(rank) =
                    variable_name(e).and_then(|n| SECURE_BOOT_ORDER.iter().position(|s| *s == n))
                {
                    if last_sb_rank.is_some_and(|last| rank < last) {
                        return suspect(
                            e,
                            "Secure Boot variables out of order (SecureBoot, PK, KEK, db, dbx)",
                        );
                    }
                    last_sb_rank = Some(rank);
                }
            }
            EV_EFI_ACTION if e.data.starts_with(b"Exit Boot Services Invocation") => {
                exit_invoked = true
            }
            EV_EFI_ACTION
                if e.data.starts_with(b"Exit Boot Services Returned") && !exit_invoked =>
            {
                return suspect(e, "Exit Boot Services returned before it was invoked");
            }
            _ if exit_invoked && e.event_type != EV_EFI_ACTION => {
                return suspect(
                    e,
                    "an event after Exit Boot Services in a firmware register",
                );
            }
            _ => {}
        }
    }
    None
}

fn is_td_hob(e: &Event) -> bool {
    e.event_type == types::EV_EFI_HANDOFF_TABLES2
        && e.data.get(1..9) == Some(b"TdxTable".as_slice())
}

fn variable_name(e: &Event) -> Option<String> {
    let d = &e.data;
    let chars = usize::try_from(crate::ccel::le_u64(d, 16)?).ok()?;
    let raw = d.get(32..32 + chars.checked_mul(2)?)?;
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

/// Compares two logs register by register and names the first event of each register where they
/// part (for a measured log against a replayed one).
pub fn first_difference(
    expected: &[Event],
    actual: &[Event],
    rtmr: usize,
) -> Option<(usize, Option<usize>, String)> {
    let a: Vec<&Event> = expected.iter().filter(|e| e.rtmr == Some(rtmr)).collect();
    let b: Vec<&Event> = actual.iter().filter(|e| e.rtmr == Some(rtmr)).collect();
    for pos in 0..a.len().max(b.len()) {
        match (a.get(pos), b.get(pos)) {
            (Some(x), Some(y)) if x.digest == y.digest => continue,
            (Some(x), Some(y)) => {
                return Some((
                    pos,
                    Some(y.index),
                    format!(
                        "expected {} {}, got {} {}",
                        x.type_name(),
                        hex::encode(x.digest),
                        y.type_name(),
                        hex::encode(y.digest)
                    ),
                ));
            }
            (Some(x), None) => {
                return Some((
                    pos,
                    None,
                    format!("missing {} {}", x.type_name(), hex::encode(x.digest)),
                ));
            }
            (None, Some(y)) => {
                return Some((
                    pos,
                    Some(y.index),
                    format!("extra {} {}", y.type_name(), hex::encode(y.digest)),
                ));
            }
            (None, None) => break,
        }
    }
    None
}
