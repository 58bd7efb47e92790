//! A JSON view of every schema type, for auditors, the CLI (`--json`) and the golden-vector test.
//! Conventions: snake_case field names as in the Rust structs; integers up to 64 bits as numbers;
//! `Coins` as decimal strings; addresses as raw `0:<hex>`; hashes, keys and signatures as lower-case
//! hex; cells as BoC hex; dicts as objects keyed by the hex key; `Maybe` as `null` when absent.

use std::collections::BTreeMap;

use serde_json::Value;
use tonlib_core::TonAddress;
use tonlib_core::cell::ArcCell;

use crate::codec::{Bits256, CellCodec};
use crate::statements::Signed;

/// A schema value rendered as JSON.
pub trait ToJson {
    /// The JSON view.
    fn to_json(&self) -> Value;
}

/// A single field rendered as JSON.
pub trait JsonField {
    /// The JSON view of the field.
    fn to_json_value(&self) -> Value;
}

macro_rules! number_field {
    ($($t:ty),*) => {$(
        impl JsonField for $t {
            fn to_json_value(&self) -> Value {
                Value::from(*self)
            }
        }
    )*};
}
number_field!(u8, u16, u32, u64, i32, bool);

impl JsonField for TonAddress {
    fn to_json_value(&self) -> Value {
        Value::from(self.to_hex())
    }
}

impl JsonField for Option<TonAddress> {
    fn to_json_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, JsonField::to_json_value)
    }
}

impl JsonField for Option<String> {
    fn to_json_value(&self) -> Value {
        self.as_ref()
            .map_or(Value::Null, |s| Value::from(s.clone()))
    }
}

impl JsonField for Bits256 {
    fn to_json_value(&self) -> Value {
        Value::from(hex::encode(self))
    }
}

impl JsonField for [u8; 64] {
    fn to_json_value(&self) -> Value {
        Value::from(hex::encode(self))
    }
}

impl JsonField for ArcCell {
    fn to_json_value(&self) -> Value {
        // The writer fails only on a cyclic graph, which shared cells cannot form.
        crate::codec::boc_hex(self).map_or(Value::Null, Value::from)
    }
}

pub(crate) fn coins_json(v: u128) -> Value {
    Value::from(v.to_string())
}

pub(crate) fn dict_json<V>(map: &BTreeMap<Bits256, V>, f: impl Fn(&V) -> Value) -> Value {
    Value::Object(map.iter().map(|(k, v)| (hex::encode(k), f(v))).collect())
}

impl<T: CellCodec + ToJson> ToJson for Signed<T> {
    fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("signature".into(), self.signature.to_json_value());
        m.insert("statement".into(), self.statement.to_json());
        Value::Object(m)
    }
}
