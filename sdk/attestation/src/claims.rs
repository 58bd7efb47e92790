//! What an RA-TLS certificate asserts about its holder, and its deterministic encoding.
//!
//! Encoding, all integers big-endian:
//! ```text
//! version: u8 = 2 (1: without the validity fields)
//! then fields, each `tag: u8, len: u16, value[len]`, in this order:
//!   1 role        len 1   (1 client, 2 proxy, 3 worker, 4 kms)
//!   2 public_key  len 32  (Ed25519, the certificate's key)
//!   3 issued_at   len 8   (unix seconds)
//!   5 not_before  len 8   (unix seconds; version 2 only: the certificate's notBefore)
//!   6 not_after   len 8   (unix seconds; version 2 only: the certificate's notAfter)
//!   4 extra       any     (key_len: u8, key, value), zero or more, keys strictly ascending
//! ```
//! Decoding accepts exactly this form (no unknown tags, no duplicates, no trailing bytes), so one
//! set of claims has one encoding and `report_data = SHA-512(encoding)` is well defined.
//!
//! The validity fields put the certificate's dates under the quote: a verifier compares them with
//! the X.509 validity, so one quote cannot vouch for certificates with other dates (issue 15).
//! Version 1 (no validity) still decodes, for old proof bundles; peer verification refuses it.
//! A further fixed field takes the next free tag (7, ...) after `not_after` and before the extras,
//! and an `Option` in [`Claims`] if it is not always present.
//! Well-known extras (no new tag, so the encoding and its version are unchanged):
//! - [`CONFIG_HASH_KEY`] (`config_hash`): 64 lower-case hex digits, the SHA-256 of the canonical
//!   form of the configuration that decides what the TD does (see `cocoon_daemon::measured`); the
//!   same hash is extended into RTMR3 ([`crate::provider::simulated::config_event_digest`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

use crate::{AttestError, Result};

/// The role a party plays in the network; each role has its own image allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An app developer's gateway; needs no TEE.
    Client,
    /// A proxy: admits clients, routes to workers.
    Proxy,
    /// A worker: serves inference next to an engine.
    Worker,
    /// A key service: holds the network's master key and releases derived keys to attested TDs.
    Kms,
}

impl Role {
    /// The one-byte code used in the claims encoding.
    pub fn code(self) -> u8 {
        match self {
            Role::Client => 1,
            Role::Proxy => 2,
            Role::Worker => 3,
            Role::Kms => 4,
        }
    }

    /// The role for a claims code.
    pub fn from_code(code: u8) -> Option<Role> {
        match code {
            1 => Some(Role::Client),
            2 => Some(Role::Proxy),
            3 => Some(Role::Worker),
            4 => Some(Role::Kms),
            _ => None,
        }
    }

    /// Lower-case name (`client`, `proxy`, `worker`, `kms`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Proxy => "proxy",
            Role::Worker => "worker",
            Role::Kms => "kms",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = AttestError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "client" => Ok(Role::Client),
            "proxy" => Ok(Role::Proxy),
            "worker" => Ok(Role::Worker),
            "kms" => Ok(Role::Kms),
            other => Err(AttestError::MalformedClaims(format!(
                "unknown role {other:?}"
            ))),
        }
    }
}

/// Claims carried by an RA-TLS certificate and bound into the quote through report_data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The holder's role.
    pub role: Role,
    /// The holder's Ed25519 public key (the certificate key).
    #[serde(with = "hex_32")]
    pub public_key: [u8; 32],
    /// When the claims were made, unix seconds.
    pub issued_at: u64,
    /// The certificate validity the quote vouches for (`None`: version-1 claims, which carry none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<Validity>,
    /// Further claims (e.g. a model hash or endpoint), UTF-8 keys of at most 255 bytes.
    pub extra: BTreeMap<String, String>,
}

/// The certificate validity carried in the claims, unix seconds (equal to the X.509 dates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validity {
    /// The certificate's notBefore.
    pub not_before: u64,
    /// The certificate's notAfter.
    pub not_after: u64,
}

const VERSION_1: u8 = 1;
const VERSION: u8 = 2;

/// The extra that carries the measured configuration hash (hex SHA-256).
pub const CONFIG_HASH_KEY: &str = "config_hash";
const TAG_ROLE: u8 = 1;
const TAG_KEY: u8 = 2;
const TAG_ISSUED: u8 = 3;
const TAG_EXTRA: u8 = 4;
const TAG_NOT_BEFORE: u8 = 5;
const TAG_NOT_AFTER: u8 = 6;

fn push_field(out: &mut Vec<u8>, tag: u8, value: &[u8]) -> Result<()> {
    let len = u16::try_from(value.len()).map_err(|_| {
        AttestError::MalformedClaims(format!("field {tag} longer than 65535 bytes"))
    })?;
    out.push(tag);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

impl Claims {
    /// Claims for `role` and `public_key` made at `issued_at` with no extras and no validity
    /// (add it with [`Claims::with_validity`]; peers refuse certificates without it).
    pub fn new(role: Role, public_key: [u8; 32], issued_at: u64) -> Self {
        Claims {
            role,
            public_key,
            issued_at,
            validity: None,
            extra: BTreeMap::new(),
        }
    }

    /// These claims vouching for a certificate valid from `not_before` to `not_after`.
    pub fn with_validity(mut self, not_before: u64, not_after: u64) -> Self {
        self.validity = Some(Validity {
            not_before,
            not_after,
        });
        self
    }

    /// These claims with the measured configuration hash [`CONFIG_HASH_KEY`] set.
    pub fn with_config_hash(mut self, config_hash: &[u8; 32]) -> Self {
        self.extra
            .insert(CONFIG_HASH_KEY.to_owned(), hex::encode(config_hash));
        self
    }

    /// The measured configuration hash, `None` when the claims carry none; a value that is not 64
    /// lower-case hex digits is malformed.
    pub fn config_hash(&self) -> Result<Option<[u8; 32]>> {
        let Some(text) = self.extra.get(CONFIG_HASH_KEY) else {
            return Ok(None);
        };
        let mut out = [0u8; 32];
        let canonical = text.len() == 64 && !text.bytes().any(|b| b.is_ascii_uppercase());
        if !canonical || hex::decode_to_slice(text, &mut out).is_err() {
            return Err(AttestError::MalformedClaims(format!(
                "{CONFIG_HASH_KEY} must be 64 lower-case hex digits, not {text:?}"
            )));
        }
        Ok(Some(out))
    }

    /// The canonical encoding (see the module documentation): version 2 when the claims carry a
    /// validity, else version 1.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(96);
        out.push(if self.validity.is_some() {
            VERSION
        } else {
            VERSION_1
        });
        push_field(&mut out, TAG_ROLE, &[self.role.code()])?;
        push_field(&mut out, TAG_KEY, &self.public_key)?;
        push_field(&mut out, TAG_ISSUED, &self.issued_at.to_be_bytes())?;
        if let Some(v) = &self.validity {
            push_field(&mut out, TAG_NOT_BEFORE, &v.not_before.to_be_bytes())?;
            push_field(&mut out, TAG_NOT_AFTER, &v.not_after.to_be_bytes())?;
        }
        for (key, value) in &self.extra {
            let key_len = u8::try_from(key.len())
                .map_err(|_| AttestError::MalformedClaims(format!("extra key {key:?} too long")))?;
            let mut entry = Vec::with_capacity(1 + key.len() + value.len());
            entry.push(key_len);
            entry.extend_from_slice(key.as_bytes());
            entry.extend_from_slice(value.as_bytes());
            push_field(&mut out, TAG_EXTRA, &entry)?;
        }
        Ok(out)
    }

    /// Decodes the canonical encoding, refusing anything else.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = |m: &str| AttestError::MalformedClaims(m.to_owned());
        let (&version, mut rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
        if version != VERSION && version != VERSION_1 {
            return Err(bad(&format!("unsupported claims version {version}")));
        }
        let mut fields: Vec<(u8, &[u8])> = Vec::new();
        while !rest.is_empty() {
            let [tag, l0, l1, tail @ ..] = rest else {
                return Err(bad("truncated field header"));
            };
            let len = usize::from(u16::from_be_bytes([*l0, *l1]));
            if tail.len() < len {
                return Err(bad("truncated field value"));
            }
            let (value, next) = tail.split_at(len);
            fields.push((*tag, value));
            rest = next;
        }
        let mut iter = fields.into_iter();
        let mut expect = |tag: u8, len: usize| -> Result<&[u8]> {
            match iter.next() {
                Some((t, v)) if t == tag && v.len() == len => Ok(v),
                _ => Err(AttestError::MalformedClaims(format!(
                    "field {tag} missing, misplaced or of wrong length"
                ))),
            }
        };
        let role_code = expect(TAG_ROLE, 1)?.first().copied().unwrap_or_default();
        let role = Role::from_code(role_code).ok_or_else(|| bad("unknown role code"))?;
        let public_key: [u8; 32] = expect(TAG_KEY, 32)?
            .try_into()
            .map_err(|_| bad("key length"))?;
        let issued: [u8; 8] = expect(TAG_ISSUED, 8)?
            .try_into()
            .map_err(|_| bad("issued_at length"))?;
        let validity = if version == VERSION {
            let mut time = |tag: u8| -> Result<u64> {
                let v: [u8; 8] = expect(tag, 8)?
                    .try_into()
                    .map_err(|_| bad("validity length"))?;
                Ok(u64::from_be_bytes(v))
            };
            let not_before = time(TAG_NOT_BEFORE)?;
            let not_after = time(TAG_NOT_AFTER)?;
            Some(Validity {
                not_before,
                not_after,
            })
        } else {
            None
        };
        let mut extra = BTreeMap::new();
        let mut last_key: Option<String> = None;
        for (tag, value) in iter {
            if tag != TAG_EXTRA {
                return Err(bad(&format!("unexpected field tag {tag}")));
            }
            let (&key_len, kv) = value.split_first().ok_or_else(|| bad("empty extra"))?;
            let key_len = usize::from(key_len);
            if kv.len() < key_len {
                return Err(bad("extra key truncated"));
            }
            let (key, val) = kv.split_at(key_len);
            let key = String::from_utf8(key.to_vec()).map_err(|_| bad("extra key not UTF-8"))?;
            let val = String::from_utf8(val.to_vec()).map_err(|_| bad("extra value not UTF-8"))?;
            if last_key.as_ref().is_some_and(|last| *last >= key) {
                return Err(bad("extra keys not strictly ascending"));
            }
            last_key = Some(key.clone());
            extra.insert(key, val);
        }
        Ok(Claims {
            role,
            public_key,
            issued_at: u64::from_be_bytes(issued),
            validity,
            extra,
        })
    }

    /// `SHA-512(encode())`: the 64 bytes a quote's report_data must hold for these claims.
    pub fn report_data(&self) -> Result<[u8; 64]> {
        Ok(report_data_for(&self.encode()?))
    }
}

/// SHA-512 of already-encoded claims.
pub fn report_data_for(encoded_claims: &[u8]) -> [u8; 64] {
    Sha512::digest(encoded_claims).into()
}

mod hex_32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(s).map_err(D::Error::custom)?;
        v.try_into()
            .map_err(|_| D::Error::custom("expected 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Claims {
        let mut c = Claims::new(Role::Worker, [7; 32], 1_700_000_000)
            .with_validity(1_699_999_700, 1_700_086_400);
        c.extra.insert("model".into(), "smollm2".into());
        c.extra.insert("endpoint".into(), "127.0.0.1:1".into());
        c
    }

    #[test]
    fn round_trip_is_identity_and_encoding_is_stable() {
        let c = sample();
        let bytes = c.encode().expect("encode");
        assert_eq!(Claims::decode(&bytes).expect("decode"), c);
        assert_eq!(
            Claims::decode(&bytes)
                .expect("decode")
                .encode()
                .expect("encode"),
            bytes
        );
        assert_eq!(c.report_data().expect("rd"), report_data_for(&bytes));
    }

    #[test]
    fn non_canonical_forms_are_refused() {
        let bytes = sample().encode().expect("encode");
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Claims::decode(&trailing).is_err());
        let mut bad_version = bytes.clone();
        bad_version[0] = 3;
        assert!(Claims::decode(&bad_version).is_err());
        let mut v1_with_validity = bytes.clone();
        v1_with_validity[0] = 1;
        assert!(
            Claims::decode(&v1_with_validity).is_err(),
            "version 1 has no validity fields"
        );
        // Swap the two extras: keys no longer ascending.
        let base = Claims::new(Role::Worker, [7; 32], 1_700_000_000)
            .with_validity(1_699_999_700, 1_700_086_400)
            .encode()
            .expect("encode");
        let extras = &bytes[base.len()..];
        let first_len = 3 + usize::from(u16::from_be_bytes([extras[1], extras[2]]));
        let mut swapped = base.clone();
        swapped.extend_from_slice(&extras[first_len..]);
        swapped.extend_from_slice(&extras[..first_len]);
        assert!(Claims::decode(&swapped).is_err());
        assert!(Claims::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn version_1_claims_still_decode_without_validity() {
        let v1 = Claims::new(Role::Proxy, [8; 32], 1_700_000_000);
        let bytes = v1.encode().expect("encode");
        assert_eq!(bytes[0], 1);
        let back = Claims::decode(&bytes).expect("decode");
        assert_eq!(back, v1);
        assert_eq!(back.validity, None);
        let v2 = v1.with_validity(1, 2).encode().expect("encode");
        assert_eq!(v2[0], 2);
        assert_eq!(v2.len(), bytes.len() + 2 * (3 + 8));
    }

    #[test]
    fn the_config_hash_rides_in_the_extras_and_changes_report_data() {
        let plain = sample();
        assert_eq!(plain.config_hash().expect("none"), None);
        let measured = sample().with_config_hash(&[0xab; 32]);
        assert_eq!(measured.config_hash().expect("hash"), Some([0xab; 32]));
        let bytes = measured.encode().expect("encode");
        assert_eq!(Claims::decode(&bytes).expect("decode"), measured);
        assert_ne!(
            measured.report_data().expect("rd"),
            plain.report_data().expect("rd")
        );
        let other = sample().with_config_hash(&[0xac; 32]);
        assert_ne!(
            other.report_data().expect("rd"),
            measured.report_data().expect("rd")
        );
        for bad in ["ab", &"AB".repeat(32), &"zz".repeat(32)] {
            let mut c = sample();
            c.extra.insert(CONFIG_HASH_KEY.into(), bad.to_owned());
            assert!(c.config_hash().is_err(), "{bad}");
        }
    }
}
