//! Measured configuration: the one canonical hash of what decides a TD's behaviour, and the
//! endpoint rules real-TEE modes enforce before a daemon starts.
//!
//! [`config_hash`] is `SHA-256("cocoon-config-v1\0" || role || "\0" || canonical JSON)` of the
//! settings a role chooses to measure (a worker: engine endpoint, model and its hash, prices,
//! limits, chain endpoints and root; see `cocoon_worker::measured`). Canonical JSON: objects with
//! keys sorted bytewise, no whitespace, strings escaped as `serde_json` escapes them, integers as
//! written; so the same settings give the same hash on every machine and in every order of the
//! config file. The hash goes into the RA-TLS claims (`config_hash`) and, in simulated mode, into
//! RTMR3 as a real TD's boot would extend it (`cocoon_attestation::provider::simulated`).

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, invalid};

/// Domain tag of [`config_hash`] (bump the version to change the canonical form).
pub const CONFIG_HASH_DOMAIN: &[u8] = b"cocoon-config-v1";

/// Writes `value` in canonical JSON (sorted keys, no whitespace).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The measured configuration hash of `settings` for `role` (see the module documentation).
pub fn config_hash(role: &str, settings: &impl Serialize) -> Result<[u8; 32], ConfigError> {
    let value = serde_json::to_value(settings)
        .map_err(|e| invalid("measured configuration", e.to_string()))?;
    let mut h = Sha256::new();
    h.update(CONFIG_HASH_DOMAIN);
    h.update([0]);
    h.update(role.as_bytes());
    h.update([0]);
    h.update(canonical_json(&value).as_bytes());
    Ok(h.finalize().into())
}

/// The host of an `http://` or `https://` URL (brackets of an IPv6 literal removed), if it has one.
fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next();
    }
    host_port.split(':').next()
}

/// True when `url` names a loopback IP literal (127.0.0.0/8 or ::1): traffic to it never leaves
/// the TD. Names (even `localhost`) are refused: their resolution is not part of the measurement.
pub fn is_loopback_url(url: &str) -> bool {
    url_host(url)
        .and_then(|h| h.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback())
}

/// Real-TEE rule for an engine endpoint (config key `field`): it must stay inside the TD, i.e. be a
/// loopback address. (A vsock endpoint would also qualify, but the engine client speaks TCP only;
/// vsock URLs are refused as unsupported rather than accepted unchecked.)
pub fn require_local_endpoint(field: &'static str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("vsock://") {
        return Err(invalid(
            field,
            format!(
                "`{url}`: vsock engines are not supported by this build; use a loopback address"
            ),
        ));
    }
    if !is_loopback_url(url) {
        return Err(invalid(
            field,
            format!(
                "`{url}` is not a loopback address: in tls.mode = \"tdx\" prompts must not leave the \
                 TD, so the engine must listen on 127.0.0.1 or [::1] inside it"
            ),
        ));
    }
    Ok(())
}

/// Real-TEE rule for a chain endpoint (config key `field`): `https://` only, so what the TD reads
/// is at least authenticated to the named provider.
pub fn require_https(field: &'static str, url: &str) -> Result<(), ConfigError> {
    if !url.starts_with("https://") || url_host(url).is_none_or(str::is_empty) {
        return Err(invalid(
            field,
            format!("`{url}`: in tls.mode = \"tdx\" chain endpoints must be https:// URLs"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct A {
        b: u32,
        a: String,
        nested: Vec<std::collections::HashMap<String, u8>>,
    }

    #[test]
    fn the_hash_is_canonical_and_covers_every_field_and_the_role() {
        let value = |b: u32| A {
            b,
            a: "x\"y".into(),
            nested: vec![[("z".to_owned(), 1u8), ("y".to_owned(), 2u8)].into()],
        };
        let json = canonical_json(&serde_json::to_value(value(7)).unwrap());
        assert_eq!(json, r#"{"a":"x\"y","b":7,"nested":[{"y":2,"z":1}]}"#);
        let h = config_hash("worker", &value(7)).unwrap();
        assert_eq!(h, config_hash("worker", &value(7)).unwrap());
        assert_ne!(h, config_hash("worker", &value(8)).unwrap());
        assert_ne!(h, config_hash("proxy", &value(7)).unwrap());
    }

    #[test]
    fn only_loopback_literals_are_local_and_only_https_is_a_chain_endpoint() {
        for ok in [
            "http://127.0.0.1:8000",
            "http://127.9.9.9",
            "http://[::1]:8000/v1",
            "http://user@127.0.0.1:1",
        ] {
            assert!(require_local_endpoint("engine_url", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.5:8000",
            "http://localhost:8000",
            "http://engine.example:8000",
            "http://127.0.0.1.evil.example:80",
            "http://127.0.0.1@10.0.0.5:80",
            "vsock://3:8000",
            "http://[::2]:80",
            "",
        ] {
            assert!(
                matches!(
                    require_local_endpoint("engine_url", bad),
                    Err(ConfigError::Invalid {
                        field: "engine_url",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert!(require_https("chain.api_url", "https://toncenter.com/api/v2").is_ok());
        for bad in ["http://toncenter.com/api/v2", "https://", "ftp://x"] {
            assert!(require_https("chain.api_url", bad).is_err(), "{bad}");
        }
    }
}
