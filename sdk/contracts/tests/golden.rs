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

use cocoon_contracts::registry::{decode_by_opcode, decode_named, normalize};
use cocoon_contracts::{TonAddress, codec::cell_from_boc_hex};
use num_bigint::BigUint;
use serde_json::Value;

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

fn as_biguint(v: &Value) -> Option<BigUint> {
    match v {
        Value::Number(n) => n.as_u64().map(BigUint::from),
        Value::String(s) => {
            let s = s.trim();
            if let Some(h) = s.strip_prefix("0x") {
                BigUint::parse_bytes(h.as_bytes(), 16)
            } else {
                BigUint::parse_bytes(s.trim_end_matches('n').as_bytes(), 10)
            }
        }
        Value::Bool(b) => Some(BigUint::from(u8::from(*b))),
        _ => None,
    }
}

fn same_value(path: &str, expected: &Value, actual: &Value) -> Result<(), String> {
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
                let key = a
                    .keys()
                    .find(|ak| {
                        normalize(ak) == normalize(k)
                            || (normalize(k) == "final" && *ak == "is_final")
                    })
                    .ok_or_else(|| {
                        format!(
                            "{path}.{k}: the SDK type has no such field ({:?})",
                            a.keys().collect::<Vec<_>>()
                        )
                    })?;
                same_value(&format!("{path}.{k}"), ev, &a[key])?;
            }
            if e.len() != a.len() {
                return Err(format!(
                    "{path}: vector has {} fields, SDK type {}",
                    e.len(),
                    a.len()
                ));
            }
            Ok(())
        }
        (e, Value::Bool(b)) => match as_biguint(e) {
            Some(n) if n == BigUint::from(u8::from(*b)) => Ok(()),
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
                    (as_biguint(expected), BigUint::parse_bytes(a.as_bytes(), 16))
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

#[test]
fn every_golden_vector_decodes_matches_and_reencodes() {
    let dir = golden_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no golden vectors at {} yet", dir.display());
        return;
    };
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
            let decoded = match str_field(&v, &["type", "schema", "kind", "tlb"]) {
                Some(t) => decode_named(t, &cell),
                None => decode_by_opcode(&cell).or_else(|_| decode_named(&name, &cell)),
            };
            let decoded = match decoded {
                Ok(d) => d,
                Err(e) => {
                    failures.push(format!("{at}: the SDK cannot decode it: {e}"));
                    continue;
                }
            };
            if let Some(fields) = v.get("fields")
                && let Err(e) = same_value(&at, fields, &decoded.json)
            {
                failures.push(e);
            }
            let again = hex::encode(cocoon_contracts::boc::serialize_boc(&decoded.reencoded));
            if !again.eq_ignore_ascii_case(hex.trim().trim_start_matches("0x")) {
                failures.push(format!(
                    "{at}: re-encoded {} differs from the vector",
                    decoded.type_name
                ));
            }
        }
    }
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
    let actual = json!({"query_id": 5, "amount": "10", "owner": "0:0101010101010101010101010101010101010101010101010101010101010101", "is_final": false});
    let ok = json!({"queryId": 5, "amount": "10", "owner": "0:0101010101010101010101010101010101010101010101010101010101010101", "final": false});
    assert!(same_value("v", &ok, &actual).is_ok());
    let wrong = json!({"queryId": 5, "amount": "11", "owner": "0:0101010101010101010101010101010101010101010101010101010101010101", "final": false});
    assert!(same_value("v", &wrong, &actual).is_err());
    let missing = json!({"queryId": 5});
    assert!(same_value("v", &missing, &actual).is_err());
    let unknown =
        json!({"queryId": 5, "amount": "10", "owner": "0:01", "final": false, "extra": 1});
    assert!(same_value("v", &unknown, &actual).is_err());
}
