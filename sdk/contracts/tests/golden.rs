//! Golden vectors exported by the sandbox tests (`sandbox-tests/golden/*.json`): every vector must
//! decode into its typed struct, carry the same field values, and re-encode to the same bytes.
//!
//! Accepted file shapes: an array of vectors, `{"vectors": [...]}`, or an object of name -> vector.
//! A vector: `name`, optional `type` (schema or Rust name; else the opcode or the name decides),
//! `fields` (object), and the BoC as hex in `boc`, `bocHex` or `hex`. Field values may use any common
//! spelling: camelCase keys, numbers or decimal strings, raw or user-friendly addresses, hex (with or
//! without 0x) or decimal for 256-bit values, BoC hex for cells.

use std::path::PathBuf;
use std::str::FromStr;

use std::collections::HashSet;

use cocoon_contracts::address::address_of;
use cocoon_contracts::codec::{cell_from_boc_hex, cell_hash};
use cocoon_contracts::registry::{DecodeError, Decoded, decode_by_opcode, decode_named, normalize};
use cocoon_contracts::{Cell, Contract, TonAddress};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use num_bigint::BigInt;
use serde_json::{Map, Value};

fn golden_dir() -> PathBuf {
    // COCOON_GOLDEN_DIR lets a developer run the harness on a scratch set of vectors
    std::env::var_os("COCOON_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sandbox-tests/golden")
        })
}

fn vectors(file: &Value) -> Vec<Value> {
    match file {
        Value::Array(v) => v.clone(),
        Value::Object(m) => match m.get("vectors") {
            Some(Value::Array(v)) => v.clone(),
            _ => m
                .iter()
                .map(|(k, v)| {
                    let mut v = v.clone();
                    if let Value::Object(o) = &mut v {
                        o.entry("name").or_insert_with(|| Value::from(k.clone()));
                    }
                    v
                })
                .collect(),
        },
        _ => Vec::new(),
    }
}

fn str_field<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_str))
}

fn as_biguint(v: &Value) -> Option<BigInt> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(BigInt::from)
            .or_else(|| n.as_u64().map(BigInt::from)),
        Value::String(s) => {
            let s = s.trim();
            if let Some(h) = s.strip_prefix("0x") {
                BigInt::parse_bytes(h.as_bytes(), 16)
            } else {
                BigInt::parse_bytes(s.trim_end_matches('n').as_bytes(), 10)
            }
        }
        Value::Bool(b) => Some(BigInt::from(u8::from(*b))),
        _ => None,
    }
}

/// What a field check may consult besides the decoded JSON: the hashes of every cell of the vector,
/// so a field given as a BoC can be matched against the part of the message it is.
#[derive(Default)]
struct Ctx {
    subcells: HashSet<[u8; 32]>,
}

fn collect_cells(cell: &Cell, out: &mut HashSet<[u8; 32]>) {
    if out.insert(cell_hash(cell)) {
        for r in cell.references() {
            collect_cells(r, out);
        }
    }
}

fn key_matches(actual_key: &str, vector_key: &str) -> bool {
    normalize(actual_key) == normalize(vector_key)
        || (normalize(vector_key) == "final" && actual_key == "is_final")
}

/// The field named `key`, at this level or (for vectors that flatten nested structs) below it.
fn find_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some((_, v)) = obj.iter().find(|(k, _)| key_matches(k, key)) {
        return Some(v);
    }
    obj.values().find_map(|v| match v {
        Value::Object(inner) => find_field(inner, key),
        _ => None,
    })
}

fn same_value(ctx: &Ctx, path: &str, expected: &Value, actual: &Value) -> Result<(), String> {
    let fail = || Err(format!("{path}: expected {expected}, decoded {actual}"));
    match (expected, actual) {
        (Value::Null, Value::Null) => Ok(()),
        (Value::Bool(a), Value::Bool(b)) => {
            if a == b {
                Ok(())
            } else {
                fail()
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}.{k}");
                if let Some(av) = find_field(a, k) {
                    same_value(ctx, &p, ev, av)?;
                    continue;
                }
                // `<field>_hash`: the hash of a cell field
                let base = k.strip_suffix("_hash").or_else(|| k.strip_suffix("Hash"));
                let cell = base
                    .and_then(|b| find_field(a, b))
                    .and_then(Value::as_str)
                    .and_then(|h| cell_from_boc_hex(h).ok());
                match cell {
                    Some(c) => {
                        let h = Value::from(hex::encode(cell_hash(&c)));
                        same_value(ctx, &p, ev, &h)?;
                    }
                    None => {
                        return Err(format!(
                            "{p}: the SDK type has no such field ({:?})",
                            a.keys().collect::<Vec<_>>()
                        ));
                    }
                }
            }
            Ok(())
        }
        // a nested struct given as its BoC: it must be one of the vector's cells
        (Value::String(e), Value::Object(_)) => match cell_from_boc_hex(e) {
            Ok(c) if ctx.subcells.contains(&cell_hash(&c)) => Ok(()),
            _ => fail(),
        },
        (e, Value::Bool(b)) => match as_biguint(e) {
            Some(n) if n == BigInt::from(u8::from(*b)) => Ok(()),
            _ => fail(),
        },
        (e, Value::Number(_)) => match (as_biguint(e), as_biguint(actual)) {
            (Some(x), Some(y)) if x == y => Ok(()),
            _ => fail(),
        },
        (Value::String(e), Value::String(a)) => {
            if e.eq_ignore_ascii_case(a) {
                return Ok(());
            }
            // address: raw or user-friendly
            if a.starts_with("0:") || a.starts_with("-1:") {
                return match TonAddress::from_str(e) {
                    Ok(x) if x.to_hex() == *a => Ok(()),
                    _ => fail(),
                };
            }
            // hex value (hash, key, signature, cell BoC) given as 0x-hex or decimal
            if a.chars().all(|c| c.is_ascii_hexdigit()) && a.len() >= 64 && a.len() % 2 == 0 {
                let stripped = e.trim_start_matches("0x");
                if stripped.eq_ignore_ascii_case(a) {
                    return Ok(());
                }
                if let (Some(x), Some(y)) =
                    (as_biguint(expected), BigInt::parse_bytes(a.as_bytes(), 16))
                    && x == y
                {
                    return Ok(());
                }
                if let (Ok(x), Ok(y)) = (cell_from_boc_hex(stripped), cell_from_boc_hex(a))
                    && x == y
                {
                    return Ok(());
                }
                return fail();
            }
            // coins as decimal strings, possibly 0x-hex in the vector
            match (as_biguint(expected), as_biguint(actual)) {
                (Some(x), Some(y)) if x == y => Ok(()),
                _ => fail(),
            }
        }
        (e @ Value::Number(_), Value::String(_)) => match (as_biguint(e), as_biguint(actual)) {
            (Some(x), Some(y)) if x == y => Ok(()),
            _ => fail(),
        },
        _ => fail(),
    }
}

/// The schema type of a vector: its `type`, else its opcode, else the longest `_`-prefix of its
/// name that names a type (`stake_storage_initial_worker` is a `stake_storage`).
fn decode_vector(v: &Value, name: &str, cell: &Cell) -> Result<Decoded, String> {
    if let Some(t) = str_field(v, &["type", "schema", "kind", "tlb"]) {
        return decode_named(t, cell).map_err(|e| e.to_string());
    }
    if let Ok(d) = decode_by_opcode(cell) {
        return Ok(d);
    }
    let parts: Vec<&str> = name.split('_').collect();
    let mut last = format!("no schema type for {name:?}");
    for n in (1..=parts.len()).rev() {
        match decode_named(&parts[..n].join("_"), cell) {
            Ok(d) => return Ok(d),
            Err(DecodeError::UnknownType(_)) => {}
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Checks the vector-level extras: `hash`, a derived `address` (storage vectors), and a signature by
/// `signer_public_key` (statement vectors).
fn check_extras(v: &Value, d: &Decoded, cell: &Cell) -> Result<(), String> {
    if let Some(h) = str_field(v, &["hash"])
        && !h.eq_ignore_ascii_case(&hex::encode(cell_hash(cell)))
    {
        return Err(format!("hash {h} differs from the cell hash"));
    }
    if let Some(a) = str_field(v, &["address"]) {
        let contract = match d.type_name {
            "RootStorage" => Contract::Root,
            "StakeStorage" => Contract::Stake,
            "EscrowStorage" => Contract::Escrow,
            other => {
                return Err(format!(
                    "address given for {other}, which is no contract storage"
                ));
            }
        };
        let code = contract.code().map_err(|e| e.to_string())?;
        let data = std::sync::Arc::new(cell.clone());
        let derived = address_of(&code, &data).map_err(|e| e.to_string())?;
        let expected = TonAddress::from_str(a).map_err(|e| format!("address {a}: {e}"))?;
        if derived != expected {
            return Err(format!(
                "derived address {} != vector's {a}",
                derived.to_hex()
            ));
        }
    }
    if let (Some(pk), Some(sig)) = (
        str_field(v, &["signer_public_key", "signerPublicKey"]),
        str_field(v, &["signature"]),
    ) {
        let pk: [u8; 32] = hex::decode(pk)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("bad key")?;
        let sig: [u8; 64] = hex::decode(sig)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("bad signature")?;
        let key = VerifyingKey::from_bytes(&pk).map_err(|e| e.to_string())?;
        key.verify(&cell_hash(cell), &Signature::from_bytes(&sig))
            .map_err(|_| "signature does not verify over the cell hash".to_string())?;
    }
    Ok(())
}

#[test]
fn every_golden_vector_decodes_matches_and_reencodes() {
    let dir = golden_dir();
    // a missing or empty folder is a failure, never a pass over zero vectors
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "no golden vectors at {} ({e}): run `cd sandbox-tests && UPDATE_GOLDEN=1 npm test`",
            dir.display()
        )
    });
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut checked = 0usize;
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        let json: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for v in vectors(&json) {
            checked += 1;
            let name = str_field(&v, &["name"]).unwrap_or("?").to_owned();
            let at = format!(
                "{}:{name}",
                file.file_name().and_then(|f| f.to_str()).unwrap_or("?")
            );
            let Some(hex) = str_field(&v, &["boc", "bocHex", "hex"]) else {
                failures.push(format!("{at}: no boc hex"));
                continue;
            };
            let cell = match cell_from_boc_hex(hex) {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("{at}: BoC does not parse: {e}"));
                    continue;
                }
            };
            let decoded = match decode_vector(&v, &name, &cell) {
                Ok(d) => d,
                Err(e) => {
                    failures.push(format!("{at}: the SDK cannot decode it: {e}"));
                    continue;
                }
            };
            let mut ctx = Ctx::default();
            collect_cells(&cell, &mut ctx.subcells);
            if let Some(fields) = v.get("fields")
                && let Err(e) = same_value(&ctx, &at, fields, &decoded.json)
            {
                failures.push(e);
            }
            if let Err(e) = check_extras(&v, &decoded, &cell) {
                failures.push(format!("{at}: {e}"));
            }
            let again = cocoon_contracts::codec::boc_hex(&decoded.reencoded).expect("re-encode");
            if !again.eq_ignore_ascii_case(hex.trim().trim_start_matches("0x")) {
                failures.push(format!(
                    "{at}: re-encoded {} differs from the vector",
                    decoded.type_name
                ));
            }
        }
    }
    assert!(
        !files.is_empty() && checked > 0,
        "{} holds no golden vectors ({} JSON files)",
        dir.display(),
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures in {} golden vectors:
{}",
        failures.len(),
        checked,
        failures.join("\n")
    );
    eprintln!(
        "{checked} golden vectors from {} files checked",
        files.len()
    );
}

#[test]
fn field_comparison_catches_differences() {
    use serde_json::json;
    let ctx = Ctx::default();
    let owner = "0:0101010101010101010101010101010101010101010101010101010101010101";
    let actual = json!({"query_id": 5, "amount": "10", "owner": owner, "is_final": false,
        "params": {"min_stake": "7"}});
    let ok = json!({"queryId": "5", "amount": "10", "owner": owner, "final": false});
    assert!(same_value(&ctx, "v", &ok, &actual).is_ok());
    // a subset, and a flattened nested field
    assert!(same_value(&ctx, "v", &json!({"minStake": "7"}), &actual).is_ok());
    assert!(same_value(&ctx, "v", &json!({"minStake": "8"}), &actual).is_err());
    let wrong = json!({"queryId": 5, "amount": "11"});
    assert!(same_value(&ctx, "v", &wrong, &actual).is_err());
    let unknown = json!({"queryId": 5, "extra": 1});
    assert!(same_value(&ctx, "v", &unknown, &actual).is_err());
    let wrong_address =
        json!({"owner": "0:0202020202020202020202020202020202020202020202020202020202020202"});
    assert!(same_value(&ctx, "v", &wrong_address, &actual).is_err());
}
