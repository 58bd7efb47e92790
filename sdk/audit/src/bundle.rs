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
//!
//! [`verify_bundle`]: crate::verify_bundle

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cocoon_attestation::dcap::QuoteCollateralV3;
use cocoon_attestation::provider::EvidenceKind;
use cocoon_protocol::SignedReceipt;
use serde::{Deserialize, Serialize};

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

    /// The evidence of worker `key`: its certificate (DER) when the exporter has it, no collateral.
    pub fn new(key: &[u8; 32], certificate_der: Option<&[u8]>) -> Self {
        WorkerEvidence {
            worker_key: hex::encode(key),
            certificate: certificate_der.map(|d| STANDARD.encode(d)),
            collateral: None,
        }
    }

    /// Attaches the collateral for this worker's DCAP quote.
    pub fn set_collateral(
        &mut self,
        collateral: &QuoteCollateralV3,
    ) -> Result<(), serde_json::Error> {
        self.collateral = Some(serde_json::to_value(collateral)?);
        Ok(())
    }
}

impl BodyEvidence {
    /// A body with hash `sha256`, carrying `bytes` when given.
    pub fn new(sha256: &[u8; 32], bytes: Option<&[u8]>) -> Self {
        BodyEvidence {
            sha256: hex::encode(sha256),
            bytes: bytes.map(|b| STANDARD.encode(b)),
        }
    }
}
