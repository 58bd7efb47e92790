//! What an RA-TLS certificate asserts about its holder, and its deterministic encoding.
//!
//! Encoding (version 1), all integers big-endian:
//! ```text
//! version: u8 = 1
//! then fields, each `tag: u8, len: u16, value[len]`, in this order:
//!   1 role        len 1   (1 client, 2 proxy, 3 worker, 4 kms)
//!   2 public_key  len 32  (Ed25519, the certificate's key)
//!   3 issued_at   len 8   (unix seconds)
//!   4 extra       any     (key_len: u8, key, value), zero or more, keys strictly ascending
//! ```
//! Decoding accepts exactly this form (no unknown tags, no duplicates, no trailing bytes), so one
//! set of claims has one encoding and `report_data = SHA-512(encoding)` is well defined.

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
    /// Further claims (e.g. a model hash or endpoint), UTF-8 keys of at most 255 bytes.
    pub extra: BTreeMap<String, String>,
}

const VERSION: u8 = 1;
const TAG_ROLE: u8 = 1;
const TAG_KEY: u8 = 2;
const TAG_ISSUED: u8 = 3;
const TAG_EXTRA: u8 = 4;

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
    /// Claims for `role` and `public_key` made at `issued_at` with no extras.
    pub fn new(role: Role, public_key: [u8; 32], issued_at: u64) -> Self {
        Claims {
            role,
            public_key,
            issued_at,
            extra: BTreeMap::new(),
        }
    }

    /// The canonical encoding (see the module documentation).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(64);
        out.push(VERSION);
        push_field(&mut out, TAG_ROLE, &[self.role.code()])?;
        push_field(&mut out, TAG_KEY, &self.public_key)?;
        push_field(&mut out, TAG_ISSUED, &self.issued_at.to_be_bytes())?;
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
        if version != VERSION {
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
        let mut c = Claims::new(Role::Worker, [7; 32], 1_700_000_000);
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
        bad_version[0] = 2;
        assert!(Claims::decode(&bad_version).is_err());
        // Swap the two extras: keys no longer ascending.
        let base = Claims::new(Role::Worker, [7; 32], 1_700_000_000)
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
}
