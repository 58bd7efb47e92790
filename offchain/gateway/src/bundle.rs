//! Proof bundles: everything an auditor needs to check, offline, that responses came from an attested
//! worker and that the bytes are the ones the worker signed for.
//!
//! A bundle is one JSON document (format `cocoon-proof-bundle`, version [`BUNDLE_VERSION`]; the
//! fields are described in docs/protocol.md, "Proof bundles"). It carries, per response, the
//! receipt exactly as the worker sent it, the request and response bytes (or only their hashes) and
//! what the proxy forwarded; per worker, the RA-TLS certificate the worker presented to the proxy
//! (the quote is inside it) and, for DCAP quotes, the collateral that verifies the quote. Nothing in
//! it is trusted by the verifier ([`verify_bundle`]): every statement is re-derived from the signed
//! receipt, the bytes and the quote.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cocoon_attestation::dcap::QuoteCollateralV3;
use cocoon_attestation::provider::EvidenceKind;
use cocoon_protocol::SignedReceipt;
use serde::{Deserialize, Serialize};

pub use crate::bundle_verify::{
    BundleReport, Check, CheckResult, ResponseReport, Verdict, VerifyOptions, verify_bundle,
};
use crate::{Gateway, parse_key};

/// The `format` field of every bundle.
pub const BUNDLE_FORMAT: &str = "cocoon-proof-bundle";
/// The bundle version this code writes and reads.
pub const BUNDLE_VERSION: u32 = 1;

/// A proof bundle (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofBundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// [`BUNDLE_VERSION`].
    pub version: u32,
    /// Unix seconds when the bundle was exported.
    pub created_at: u64,
    /// The attestation evidence of every worker that signed a receipt in the bundle.
    pub workers: Vec<WorkerEvidence>,
    /// The responses, in the gateway's order.
    pub responses: Vec<ResponseEvidence>,
}

/// One worker's attestation evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerEvidence {
    /// The worker's Ed25519 key, hex (what its receipts name and its quote must bind).
    pub worker_key: String,
    /// The certificate the worker presented to the proxy (DER, standard base64), as the proxy
    /// forwarded it; `null` when the gateway could not get it.
    pub certificate: Option<String>,
    /// For a DCAP quote: the collateral that verifies it (dcap-qvl `QuoteCollateralV3` JSON).
    pub collateral: Option<serde_json::Value>,
}

/// One response's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseEvidence {
    /// The gateway's record id.
    pub id: u64,
    /// The response's `x-request-id` (informational: nothing signs it).
    #[serde(default)]
    pub request_id: Option<String>,
    /// The API path.
    pub endpoint: String,
    /// Whether the response was streamed (the hash covers every SSE byte in order).
    pub stream: bool,
    /// Unix seconds when the response ended at the gateway.
    pub received_at: u64,
    /// The worker's receipt exactly as received: unpadded base64url of `encoding ‖ signature`.
    pub receipt: Option<String>,
    /// The same receipt decoded, for reading; the verifier requires it to equal the decoded `receipt`.
    pub receipt_decoded: Option<SignedReceipt>,
    /// The request bytes as the gateway sent them.
    pub request: BodyEvidence,
    /// The response bytes as the gateway received them.
    pub response: BodyEvidence,
    /// What the proxy said about the worker (response headers).
    pub forwarded: Forwarded,
    /// The gateway's own verdict when the response arrived (`verified` or why not).
    pub gateway_status: String,
    /// What the proxy charged for this response.
    pub charge: ChargeEvidence,
}

/// A body: its hash, and the bytes unless the export left them out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyEvidence {
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// The bytes, standard base64; `null` in a hashes-only bundle or when the gateway no longer
    /// kept them.
    pub bytes: Option<String>,
}

/// The worker identity the proxy forwarded with the response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarded {
    /// `x-cocoon-worker-key`, hex.
    pub worker_key: Option<String>,
    /// `x-cocoon-worker-image`, hex.
    pub image_hash: Option<String>,
    /// `x-cocoon-worker-insecure`.
    pub insecure: Option<bool>,
}

/// What the proxy charged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeEvidence {
    /// The `x-cocoon-charged-nanoton` trailer, nanoTON as a decimal string.
    pub charged_nano: Option<String>,
    /// The proxy's signed cumulative charge covering this response. Always `null` in version 1:
    /// the proxy does not send its signed charges to the gateway yet.
    pub signed_charge: Option<serde_json::Value>,
}

/// Which records go into a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Lowest record id (inclusive).
    pub from: Option<u64>,
    /// Highest record id (inclusive).
    pub to: Option<u64>,
    /// Only the last N records of the range.
    pub last: Option<usize>,
    /// Only the record of this `x-request-id`.
    pub request_id: Option<String>,
    /// Carry the request and response bytes (otherwise hashes only).
    pub include_bodies: bool,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            from: None,
            to: None,
            last: None,
            request_id: None,
            include_bodies: true,
        }
    }
}

impl Selection {
    /// One record.
    pub fn one(id: u64) -> Self {
        Selection {
            from: Some(id),
            to: Some(id),
            ..Default::default()
        }
    }

    /// Parses `id=N`, `from=N`, `to=N`, `last=N`, `request_id=ID` and `bodies=0|1` (`&`-separated).
    pub fn from_query(query: &str) -> Result<Selection, String> {
        let mut s = Selection::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let num = || {
                v.parse::<u64>()
                    .map_err(|_| format!("{k} must be a non-negative integer, not {v:?}"))
            };
            match k {
                "id" => {
                    let id = num()?;
                    s.from = Some(id);
                    s.to = Some(id);
                }
                "from" => s.from = Some(num()?),
                "to" => s.to = Some(num()?),
                "last" => s.last = Some(usize::try_from(num()?).map_err(|_| "last is too large")?),
                "request_id" if crate::request_id::is_sane(v) => s.request_id = Some(v.to_owned()),
                "request_id" => {
                    return Err(
                        "request_id must be 1 to 128 characters of A-Z a-z 0-9 - _ . :".into(),
                    );
                }
                "bodies" => {
                    s.include_bodies = match v {
                        "1" | "true" => true,
                        "0" | "false" => false,
                        _ => return Err(format!("bodies must be 0 or 1, not {v:?}")),
                    }
                }
                _ => return Err(format!("unknown bundle parameter {k:?}")),
            }
        }
        Ok(s)
    }

    fn contains(&self, record: &crate::ReceiptRecord) -> bool {
        let id = record.id;
        self.from.is_none_or(|f| id >= f)
            && self.to.is_none_or(|t| id <= t)
            && self
                .request_id
                .as_ref()
                .is_none_or(|r| record.request_id.as_ref() == Some(r))
    }
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

impl WorkerEvidence {
    /// The certificate bytes, if present and valid base64.
    pub fn certificate_der(&self) -> Option<Vec<u8>> {
        self.certificate
            .as_ref()
            .and_then(|c| STANDARD.decode(c).ok())
    }

    /// The evidence inside the certificate (kind and quote), if it parses.
    pub fn quote(&self) -> Option<(EvidenceKind, Vec<u8>)> {
        let der = self.certificate_der()?;
        cocoon_attestation::cert::parse_certificate(&der)
            .ok()?
            .evidence
    }

    /// Attaches the collateral for this worker's DCAP quote.
    pub fn set_collateral(&mut self, collateral: &QuoteCollateralV3) -> Result<(), String> {
        self.collateral = Some(serde_json::to_value(collateral).map_err(|e| e.to_string())?);
        Ok(())
    }
}

impl Gateway {
    /// A proof bundle of the selected records. Worker certificates not fetched yet are fetched from
    /// the proxy now (a worker that left is then missing, and the bundle says so by a `null`).
    pub async fn bundle(&self, selection: &Selection) -> ProofBundle {
        let mut kept: Vec<_> = self
            .lock_store()
            .records()
            .filter(|k| selection.contains(&k.record))
            .cloned()
            .collect();
        if let Some(n) = selection.last {
            kept.drain(..kept.len().saturating_sub(n));
        }
        let mut keys = BTreeSet::new();
        for k in &kept {
            keys.extend(k.record.receipt.as_ref().map(|r| r.receipt.worker_key));
            keys.extend(k.record.worker_key.as_deref().and_then(parse_key));
        }
        let mut workers = Vec::new();
        for key in keys {
            if self.worker_certificate(&key).is_none()
                && let Err(e) = self.fetch_certificate(key).await
            {
                tracing::warn!(worker = %hex::encode(key), error = %e, "bundle without this worker's certificate");
            }
            workers.push(WorkerEvidence {
                worker_key: hex::encode(key),
                certificate: self.worker_certificate(&key).map(|d| b64(&d)),
                collateral: None,
            });
        }
        let body = |sha256: &str, bytes: Option<&bytes::Bytes>| BodyEvidence {
            sha256: sha256.to_owned(),
            bytes: bytes.filter(|_| selection.include_bodies).map(|b| b64(b)),
        };
        let responses = kept
            .iter()
            .map(|k| {
                let r = &k.record;
                ResponseEvidence {
                    id: r.id,
                    request_id: r.request_id.clone(),
                    endpoint: r.endpoint.clone(),
                    stream: r.stream,
                    received_at: r.received_at,
                    receipt: r.receipt_wire.clone(),
                    receipt_decoded: r.receipt.clone(),
                    request: body(&r.request_sha256, k.request.as_ref()),
                    response: body(&r.response_sha256, k.response.as_ref()),
                    forwarded: Forwarded {
                        worker_key: r.worker_key.clone(),
                        image_hash: r.worker_image.clone(),
                        insecure: r.worker_insecure,
                    },
                    gateway_status: r.status.clone(),
                    charge: ChargeEvidence {
                        charged_nano: r.charged_nano.clone(),
                        signed_charge: None,
                    },
                }
            })
            .collect();
        ProofBundle {
            format: BUNDLE_FORMAT.to_owned(),
            version: BUNDLE_VERSION,
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            workers,
            responses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_select_ranges_and_bodies() {
        let s = Selection::from_query("from=2&to=5&bodies=0").unwrap();
        assert_eq!((s.from, s.to, s.include_bodies), (Some(2), Some(5), false));
        let rec = |id: u64, request_id: &str| crate::ReceiptRecord {
            id,
            request_id: Some(request_id.to_owned()),
            ..Default::default()
        };
        assert!(s.contains(&rec(2, "a")) && s.contains(&rec(5, "a")));
        assert!(!s.contains(&rec(6, "a")) && !s.contains(&rec(1, "a")));
        let by_id = Selection::from_query("request_id=req_1").unwrap();
        assert!(by_id.contains(&rec(9, "req_1")) && !by_id.contains(&rec(9, "req_2")));
        assert!(Selection::from_query("request_id=a%20b").is_err());
        assert_eq!(Selection::from_query("id=7").unwrap(), Selection::one(7));
        assert_eq!(Selection::from_query("last=3").unwrap().last, Some(3));
        assert_eq!(Selection::from_query("").unwrap(), Selection::default());
        assert!(Selection::from_query("from=x").is_err());
        assert!(Selection::from_query("bodies=maybe").is_err());
        assert!(Selection::from_query("color=red").is_err());
    }
}
