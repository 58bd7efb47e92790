//! Per-response receipts signed by the worker.
//!
//! A receipt binds the exact request bytes the client sent and the exact response bytes it received
//! (SHA-256 over every byte, for a stream every SSE byte in order) to the model, the usage, the price and
//! the worker's attested key. Its canonical encoding is fixed-width big-endian fields after a domain tag;
//! the signature is Ed25519 over that encoding. On the wire (an HTTP trailer) it travels as unpadded
//! base64url of `encoding ‖ signature`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::pricing::Usage;

/// Domain separation tag, also the format version.
pub const RECEIPT_TAG: &[u8; 16] = b"cocoon-receipt-1";
/// Longest model name a receipt carries.
pub const MAX_MODEL_NAME: usize = 256;

/// What the worker attests for one response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// SHA-256 of the request body bytes as the client sent them.
    #[serde(with = "hex32")]
    pub request_sha256: [u8; 32],
    /// SHA-256 of the response body bytes as the client receives them.
    #[serde(with = "hex32")]
    pub response_sha256: [u8; 32],
    /// The model name the engine served.
    pub model: String,
    /// Hash of the model weights (as listed in the root contract).
    #[serde(with = "hex32")]
    pub model_hash: [u8; 32],
    /// Tokens per price class.
    pub usage: Usage,
    /// Worker price coefficient applied, thousandths.
    pub coefficient: u32,
    /// Network price per adjusted token, nanoTON, at signing time.
    pub price_per_token: u64,
    /// What the client is charged for this response, nanoTON.
    pub cost_nano: u128,
    /// Unix seconds when the response ended.
    pub timestamp: u64,
    /// The worker's TEE image hash.
    #[serde(with = "hex32")]
    pub image_hash: [u8; 32],
    /// The worker's Ed25519 key (the one its attestation binds).
    #[serde(with = "hex32")]
    pub worker_key: [u8; 32],
}

/// A receipt with the worker's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReceipt {
    /// The signed statement.
    pub receipt: Receipt,
    /// Ed25519 signature over [`Receipt::encode`], hex in JSON.
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

/// Why a receipt was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReceiptError {
    /// Not base64url, or the wrong length, or a truncated field.
    #[error("malformed receipt: {0}")]
    Malformed(&'static str),
    /// The signature does not verify under the receipt's worker key.
    #[error("receipt signature does not verify")]
    BadSignature,
    /// The receipt names another worker than the one the proxy attested.
    #[error("receipt worker key differs from the attested worker")]
    WrongWorker,
    /// The request hash differs from the bytes the client sent.
    #[error("receipt request hash differs from the request sent")]
    RequestMismatch,
    /// The response hash differs from the bytes the client received.
    #[error("receipt response hash differs from the response received")]
    ResponseMismatch,
}

impl Receipt {
    /// Canonical bytes that the worker signs.
    pub fn encode(&self) -> Vec<u8> {
        // Cut at a character boundary, so that the encoding always decodes.
        let model = &self.model.as_bytes()[..self.model.floor_char_boundary(MAX_MODEL_NAME)];
        let mut out = Vec::with_capacity(16 + 32 * 5 + 2 + model.len() + 32 + 4 + 8 + 16 + 8);
        out.extend_from_slice(RECEIPT_TAG);
        out.extend_from_slice(&self.request_sha256);
        out.extend_from_slice(&self.response_sha256);
        // `model` is at most 256 bytes, so its length fits in u16.
        out.extend_from_slice(&(model.len() as u16).to_be_bytes());
        out.extend_from_slice(model);
        out.extend_from_slice(&self.model_hash);
        for n in [
            self.usage.prompt,
            self.usage.cached,
            self.usage.completion,
            self.usage.reasoning,
        ] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&self.coefficient.to_be_bytes());
        out.extend_from_slice(&self.price_per_token.to_be_bytes());
        out.extend_from_slice(&self.cost_nano.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.image_hash);
        out.extend_from_slice(&self.worker_key);
        out
    }

    /// Parses [`Receipt::encode`]'s output; the whole input must be consumed.
    pub fn decode(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        let mut r = Reader(bytes);
        if r.take(16)? != RECEIPT_TAG {
            return Err(ReceiptError::Malformed("unknown tag"));
        }
        let request_sha256 = r.arr32()?;
        let response_sha256 = r.arr32()?;
        let len = u16::from_be_bytes(r.arr()?) as usize;
        if len > MAX_MODEL_NAME {
            return Err(ReceiptError::Malformed("model name too long"));
        }
        let model = std::str::from_utf8(r.take(len)?)
            .map_err(|_| ReceiptError::Malformed("model name not UTF-8"))?
            .to_owned();
        let model_hash = r.arr32()?;
        let usage = Usage {
            prompt: u64::from_be_bytes(r.arr()?),
            cached: u64::from_be_bytes(r.arr()?),
            completion: u64::from_be_bytes(r.arr()?),
            reasoning: u64::from_be_bytes(r.arr()?),
        };
        let receipt = Receipt {
            request_sha256,
            response_sha256,
            model,
            model_hash,
            usage,
            coefficient: u32::from_be_bytes(r.arr()?),
            price_per_token: u64::from_be_bytes(r.arr()?),
            cost_nano: u128::from_be_bytes(r.arr()?),
            timestamp: u64::from_be_bytes(r.arr()?),
            image_hash: r.arr32()?,
            worker_key: r.arr32()?,
        };
        if !r.0.is_empty() {
            return Err(ReceiptError::Malformed("trailing bytes"));
        }
        Ok(receipt)
    }

    /// Signs with the worker's key. The receipt's `worker_key` must be that key's public half.
    pub fn sign(self, key: &SigningKey) -> SignedReceipt {
        let signature = key.sign(&self.encode()).to_bytes();
        SignedReceipt {
            receipt: self,
            signature,
        }
    }
}

impl SignedReceipt {
    /// Checks the signature under the key the receipt names.
    pub fn verify_signature(&self) -> Result<(), ReceiptError> {
        let key = VerifyingKey::from_bytes(&self.receipt.worker_key)
            .map_err(|_| ReceiptError::Malformed("worker key is not a curve point"))?;
        key.verify(
            &self.receipt.encode(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| ReceiptError::BadSignature)
    }

    /// Everything a client checks: signature, the attested worker, and both body hashes.
    pub fn verify_for(
        &self,
        attested_worker: &[u8; 32],
        request_sha256: &[u8; 32],
        response_sha256: &[u8; 32],
    ) -> Result<(), ReceiptError> {
        self.verify_signature()?;
        if &self.receipt.worker_key != attested_worker {
            return Err(ReceiptError::WrongWorker);
        }
        if &self.receipt.request_sha256 != request_sha256 {
            return Err(ReceiptError::RequestMismatch);
        }
        if &self.receipt.response_sha256 != response_sha256 {
            return Err(ReceiptError::ResponseMismatch);
        }
        Ok(())
    }

    /// The trailer value: base64url(encoding ‖ signature).
    pub fn to_wire(&self) -> String {
        let mut bytes = self.receipt.encode();
        bytes.extend_from_slice(&self.signature);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Parses a trailer value (does not verify; call [`SignedReceipt::verify_for`]).
    pub fn from_wire(value: &[u8]) -> Result<SignedReceipt, ReceiptError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| ReceiptError::Malformed("not base64url"))?;
        if bytes.len() < 64 {
            return Err(ReceiptError::Malformed("too short"));
        }
        let (body, sig) = bytes.split_at(bytes.len() - 64);
        let receipt = Receipt::decode(body)?;
        let mut signature = [0u8; 64];
        signature.copy_from_slice(sig);
        Ok(SignedReceipt { receipt, signature })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReceiptError> {
        if self.0.len() < n {
            return Err(ReceiptError::Malformed("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], ReceiptError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn arr32(&mut self) -> Result<[u8; 32], ReceiptError> {
        self.arr()
    }
}

pub(crate) mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};
    pub(crate) fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

pub(crate) mod hex64 {
    use serde::{Deserialize, Deserializer, Serializer};
    pub(crate) fn serialize<S: Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 64];
        hex::decode_to_slice(s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &SigningKey) -> Receipt {
        Receipt {
            request_sha256: [1; 32],
            response_sha256: [2; 32],
            model: "smollm2-135m".into(),
            model_hash: [3; 32],
            usage: Usage {
                prompt: 5,
                cached: 1,
                completion: 9,
                reasoning: 0,
            },
            coefficient: 1250,
            price_per_token: 1000,
            cost_nano: 123_456,
            timestamp: 1_800_000_000,
            image_hash: [4; 32],
            worker_key: key.verifying_key().to_bytes(),
        }
    }

    #[test]
    fn wire_round_trip_and_verification() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let signed = sample(&key).sign(&key);
        let parsed = SignedReceipt::from_wire(signed.to_wire().as_bytes()).unwrap();
        assert_eq!(parsed, signed);
        let wk = key.verifying_key().to_bytes();
        parsed.verify_for(&wk, &[1; 32], &[2; 32]).unwrap();
        assert_eq!(
            parsed.verify_for(&wk, &[9; 32], &[2; 32]),
            Err(ReceiptError::RequestMismatch)
        );
        assert_eq!(
            parsed.verify_for(&wk, &[1; 32], &[9; 32]),
            Err(ReceiptError::ResponseMismatch)
        );
        assert_eq!(
            parsed.verify_for(&[7; 32], &[1; 32], &[2; 32]),
            Err(ReceiptError::WrongWorker)
        );
        let json = serde_json::to_string(&signed).unwrap();
        assert_eq!(
            serde_json::from_str::<SignedReceipt>(&json).unwrap(),
            signed
        );
    }

    #[test]
    fn any_flipped_byte_is_rejected() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let signed = sample(&key).sign(&key);
        let mut bytes = signed.receipt.encode();
        bytes.extend_from_slice(&signed.signature);
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            let wire = URL_SAFE_NO_PAD.encode(&tampered);
            let ok = SignedReceipt::from_wire(wire.as_bytes()).and_then(|r| r.verify_signature());
            assert!(ok.is_err(), "flipping byte {i} went unnoticed");
        }
        for cut in [0, 10, bytes.len() - 1] {
            let wire = URL_SAFE_NO_PAD.encode(&bytes[..cut]);
            assert!(SignedReceipt::from_wire(wire.as_bytes()).is_err());
        }
        assert!(SignedReceipt::from_wire(b"@@not base64").is_err());
    }
}
