//! The gateway's receipt store: every checked response with what the proof bundle needs (the exact
//! bytes within a memory budget, the forwarded worker identity), and the worker certificates fetched
//! from the proxy.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use cocoon_audit::Hex32;
use cocoon_protocol::SignedReceipt;

/// Most bytes of request and response bodies kept in memory across all records; past it the oldest
/// records lose their bodies (their hashes stay, and a bundle then carries hashes only).
pub const BODY_BUDGET_BYTES: usize = 64 << 20;
/// Longest single body kept; a longer one is represented by its hash only.
pub const MAX_KEPT_BODY_BYTES: usize = 8 << 20;
/// Most worker certificates remembered.
const MAX_CERTIFICATES: usize = 1024;

/// One response's evidence, as kept for the proof bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReceiptRecord {
    /// Position in this gateway's store, from 1 (what bundle ranges select).
    #[serde(default)]
    pub id: u64,
    /// The `x-request-id` of the response (the app's own when it sent a sane one).
    #[serde(default)]
    pub request_id: Option<String>,
    /// The API path, e.g. `/v1/chat/completions`.
    #[serde(default)]
    pub endpoint: String,
    /// Whether the response was streamed (SSE).
    #[serde(default)]
    pub stream: bool,
    /// Unix seconds when the response ended at the gateway.
    #[serde(default)]
    pub received_at: u64,
    /// SHA-256 of the request bytes sent to the proxy (hex in JSON).
    #[serde(default)]
    pub request_sha256: Hex32,
    /// SHA-256 of the response bytes received (hex in JSON).
    #[serde(default)]
    pub response_sha256: Hex32,
    /// The worker key the proxy attested and forwarded (hex in JSON).
    #[serde(default)]
    pub worker_key: Option<Hex32>,
    /// The worker image hash the proxy forwarded, as it sent it (hex unless the proxy misbehaves;
    /// kept as text so that a bundle shows exactly what was forwarded).
    #[serde(default)]
    pub worker_image: Option<String>,
    /// Whether the proxy said the worker's attestation is simulated or absent.
    #[serde(default)]
    pub worker_insecure: Option<bool>,
    /// The verified receipt (or the one that failed).
    pub receipt: Option<SignedReceipt>,
    /// The receipt exactly as received (unpadded base64url of encoding ‖ signature).
    #[serde(default)]
    pub receipt_wire: Option<String>,
    /// `verified` or the reason it is not.
    pub status: ReceiptStatus,
    /// What the proxy charged, nanoTON (from its trailer), as a decimal string.
    pub charged_nano: Option<String>,
    /// Set when the proxy's charge is not the receipt's `cost_nano`: what differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_mismatch: Option<String>,
}

/// The gateway's verdict on a response's receipt. Written (journal, JSON, the
/// `x-cocoon-receipt-status` header, bundles) as `verified` or the reason it is not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReceiptStatus {
    /// The receipt is signed by the attested worker over these bytes, at an acceptable price.
    Verified,
    /// The response came without a receipt.
    #[default]
    NoReceipt,
    /// The proxy forwarded no attested worker key to check the receipt against.
    NoAttestedWorkerKey,
    /// The gateway could not verify the certificate and quote of the key the proxy named: the
    /// whole text, starting with `worker key not attested: `.
    WorkerNotAttested(String),
    /// The receipt verifies but prices above the client's coefficient cap.
    PriceAboveCap,
    /// The receipt does not decode or verify: why.
    Invalid(String),
}

const VERIFIED: &str = "verified";
const NO_RECEIPT: &str = "no receipt";
const NO_ATTESTED_WORKER_KEY: &str = "no attested worker key";
const PRICE_ABOVE_CAP: &str = "price above the cap";
const NOT_ATTESTED: &str = "worker key not attested: ";

impl ReceiptStatus {
    /// The receipt is signed by a key whose certificate and quote the gateway did not verify.
    pub fn not_attested(why: impl std::fmt::Display) -> Self {
        ReceiptStatus::WorkerNotAttested(format!("{NOT_ATTESTED}{why}"))
    }

    /// As written: `verified`, `no receipt`, `no attested worker key`, `price above the cap`, or
    /// the reason the receipt is invalid.
    pub fn as_str(&self) -> &str {
        match self {
            ReceiptStatus::Verified => VERIFIED,
            ReceiptStatus::NoReceipt => NO_RECEIPT,
            ReceiptStatus::NoAttestedWorkerKey => NO_ATTESTED_WORKER_KEY,
            ReceiptStatus::PriceAboveCap => PRICE_ABOVE_CAP,
            ReceiptStatus::WorkerNotAttested(text) | ReceiptStatus::Invalid(text) => text,
        }
    }

    /// Whether the receipt verified.
    pub fn is_verified(&self) -> bool {
        *self == ReceiptStatus::Verified
    }
}

impl From<&str> for ReceiptStatus {
    /// Reads the written form back (any other text is an invalid receipt's reason).
    fn from(text: &str) -> Self {
        match text {
            VERIFIED => ReceiptStatus::Verified,
            NO_RECEIPT => ReceiptStatus::NoReceipt,
            NO_ATTESTED_WORKER_KEY => ReceiptStatus::NoAttestedWorkerKey,
            PRICE_ABOVE_CAP => ReceiptStatus::PriceAboveCap,
            text if text.starts_with(NOT_ATTESTED) => {
                ReceiptStatus::WorkerNotAttested(text.to_owned())
            }
            why => ReceiptStatus::Invalid(why.to_owned()),
        }
    }
}

impl std::fmt::Display for ReceiptStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the written form (`status == "verified"`).
impl PartialEq<&str> for ReceiptStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for ReceiptStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ReceiptStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ReceiptStatus::from(String::deserialize(d)?.as_str()))
    }
}

/// A record and the bodies it covers.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub(crate) record: ReceiptRecord,
    pub(crate) request: Option<Bytes>,
    pub(crate) response: Option<Bytes>,
}

impl Kept {
    fn body_len(&self) -> usize {
        self.request.as_ref().map_or(0, Bytes::len) + self.response.as_ref().map_or(0, Bytes::len)
    }
}

/// What [`Store::push`] did: the new record's id and what it evicted to make room.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pushed {
    pub(crate) id: u64,
    /// The oldest records dropped past `receipts_kept`.
    pub(crate) dropped_records: usize,
    /// Older records whose bodies were dropped past the body budget (their hashes stay).
    pub(crate) stripped_bodies: usize,
}

/// Receipts in arrival order, bounded by count and body bytes.
#[derive(Debug, Default)]
pub(crate) struct Store {
    records: VecDeque<Kept>,
    next_id: u64,
    body_bytes: usize,
    certificates: HashMap<[u8; 32], Bytes>,
}

impl Store {
    /// Adds a record (assigning its id) and evicts what no longer fits.
    pub(crate) fn push(&mut self, mut kept: Kept, max_records: usize) -> Pushed {
        self.next_id += 1;
        kept.record.id = self.next_id;
        let mut out = Pushed {
            id: self.next_id,
            ..Pushed::default()
        };
        for body in [&mut kept.request, &mut kept.response] {
            if body.as_ref().is_some_and(|b| b.len() > MAX_KEPT_BODY_BYTES) {
                *body = None;
            }
        }
        self.body_bytes += kept.body_len();
        self.records.push_back(kept);
        while self.records.len() > max_records.max(1) {
            if let Some(old) = self.records.pop_front() {
                self.body_bytes -= old.body_len();
                out.dropped_records += 1;
            }
        }
        let mut i = 0;
        while self.body_bytes > BODY_BUDGET_BYTES && i < self.records.len() {
            if let Some(old) = self.records.get_mut(i) {
                if old.body_len() > 0 {
                    out.stripped_bodies += 1;
                }
                self.body_bytes -= old.body_len();
                old.request = None;
                old.response = None;
            }
            i += 1;
        }
        out
    }

    /// Puts back a record read from the journal (keeping its id), then evicts what no longer fits.
    pub(crate) fn restore(&mut self, kept: Kept, max_records: usize) -> Pushed {
        let id = kept.record.id;
        let before = self.next_id;
        let pushed = self.push(kept, max_records);
        if let Some(last) = self.records.back_mut() {
            last.record.id = id;
        }
        self.next_id = before.max(id);
        Pushed { id, ..pushed }
    }

    /// The number of records kept.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Every record, oldest first.
    pub(crate) fn records(&self) -> impl Iterator<Item = &Kept> {
        self.records.iter()
    }

    /// The certificate a proxy served for this worker key, if fetched.
    pub(crate) fn certificate(&self, key: &[u8; 32]) -> Option<Bytes> {
        self.certificates.get(key).cloned()
    }

    /// Remembers a worker certificate.
    pub(crate) fn set_certificate(&mut self, key: [u8; 32], der: Bytes) {
        if self.certificates.len() >= MAX_CERTIFICATES && !self.certificates.contains_key(&key) {
            self.certificates.clear();
        }
        self.certificates.insert(key, der);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(len: usize) -> Kept {
        Kept {
            record: ReceiptRecord::default(),
            request: Some(Bytes::from(vec![1u8; len])),
            response: Some(Bytes::from(vec![2u8; len])),
        }
    }

    #[test]
    fn statuses_are_written_as_before() {
        let cases = [
            (ReceiptStatus::Verified, "verified"),
            (ReceiptStatus::NoReceipt, "no receipt"),
            (ReceiptStatus::NoAttestedWorkerKey, "no attested worker key"),
            (ReceiptStatus::PriceAboveCap, "price above the cap"),
            (
                ReceiptStatus::not_attested("no quote"),
                "worker key not attested: no quote",
            ),
            (
                ReceiptStatus::Invalid("bad signature".into()),
                "bad signature",
            ),
        ];
        for (status, text) in cases {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("{text:?}"));
            assert_eq!(
                serde_json::from_str::<ReceiptStatus>(&json).unwrap(),
                status
            );
            assert_eq!(status, text);
        }
        assert!(ReceiptStatus::Verified.is_verified());
        assert!(!ReceiptStatus::PriceAboveCap.is_verified());
    }

    #[test]
    fn ids_grow_and_old_records_go_first() {
        let mut s = Store::default();
        let dropped: Vec<usize> = (0..5)
            .map(|_| s.push(kept(10), 3).dropped_records)
            .collect();
        assert_eq!(dropped, vec![0, 0, 0, 1, 1], "every eviction is reported");
        let ids: Vec<u64> = s.records().map(|k| k.record.id).collect();
        assert_eq!(ids, vec![3, 4, 5]);
        assert_eq!(s.body_bytes, 3 * 20);
    }

    #[test]
    fn the_body_budget_strips_the_oldest_bodies_and_keeps_hashes() {
        let mut s = Store::default();
        let big = MAX_KEPT_BODY_BYTES;
        let stripped: usize = (0..5).map(|_| s.push(kept(big), 100).stripped_bodies).sum();
        assert_eq!(stripped, 1);
        // 5 records of 2×big = 1.25× the budget: the first loses its bodies.
        let bodies: Vec<bool> = s.records().map(|k| k.request.is_some()).collect();
        assert_eq!(bodies, vec![false, true, true, true, true]);
        assert!(s.body_bytes <= BODY_BUDGET_BYTES);
        s.push(kept(MAX_KEPT_BODY_BYTES + 1), 100);
        assert!(s.records().last().is_some_and(|k| k.response.is_none()));
    }
}
