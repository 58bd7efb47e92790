//! TVM stack entries as toncenter v2 encodes them for `runGetMethod`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use num_bigint::BigInt;
use serde_json::{Value, json};
use tonlib_core::TonAddress;
use tonlib_core::cell::{ArcCell, CellBuilder};

use crate::boc;

/// One TVM stack value.
#[derive(Debug, Clone, PartialEq)]
pub enum StackEntry {
    /// an integer (257-bit signed in the TVM)
    Num(BigInt),
    /// a cell
    Cell(ArcCell),
    /// a slice (given as the cell holding its bits and refs)
    Slice(ArcCell),
    /// a tuple or list
    Tuple(Vec<StackEntry>),
    /// null
    Null,
}

impl StackEntry {
    /// An integer entry.
    pub fn num(v: impl Into<BigInt>) -> Self {
        StackEntry::Num(v.into())
    }

    /// A slice holding `address` (for get methods that take an address).
    pub fn address(address: &TonAddress) -> Result<Self, crate::TonError> {
        let cell = CellBuilder::new().store_address(address)?.build()?;
        Ok(StackEntry::Slice(cell.to_arc()))
    }

    /// The integer, if this is one.
    pub fn as_bigint(&self) -> Option<&BigInt> {
        match self {
            StackEntry::Num(n) => Some(n),
            _ => None,
        }
    }

    /// The integer as u128, if it is one and fits.
    pub fn as_u128(&self) -> Option<u128> {
        self.as_bigint().and_then(|n| u128::try_from(n).ok())
    }

    /// The integer as i128, if it is one and fits.
    pub fn as_i128(&self) -> Option<i128> {
        self.as_bigint().and_then(|n| i128::try_from(n).ok())
    }

    /// The integer as u64, if it is one and fits.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_bigint().and_then(|n| u64::try_from(n).ok())
    }

    /// The cell of a cell or slice entry.
    pub fn as_cell(&self) -> Option<&ArcCell> {
        match self {
            StackEntry::Cell(c) | StackEntry::Slice(c) => Some(c),
            _ => None,
        }
    }

    /// The address stored at the start of a slice or cell entry (`MsgAddressInt`), as getters return them.
    pub fn as_address(&self) -> Option<TonAddress> {
        self.as_cell().and_then(|c| c.parser().load_address().ok())
    }

    /// The elements of a tuple entry.
    pub fn as_tuple(&self) -> Option<&[StackEntry]> {
        match self {
            StackEntry::Tuple(t) => Some(t),
            _ => None,
        }
    }

    /// The toncenter input form: `["num","0x.."]`, `["tvm.Cell",b64]`, `["tvm.Slice",b64]`.
    pub(crate) fn to_json(&self) -> Result<Value, crate::TonError> {
        Ok(match self {
            StackEntry::Num(n) => {
                let hex = if n.sign() == num_bigint::Sign::Minus {
                    format!("-0x{:x}", -n)
                } else {
                    format!("0x{n:x}")
                };
                json!(["num", hex])
            }
            StackEntry::Cell(c) => json!(["tvm.Cell", boc::cell_to_boc_b64(c)?]),
            StackEntry::Slice(c) => json!(["tvm.Slice", boc::cell_to_boc_b64(c)?]),
            StackEntry::Null => json!(["null", null]),
            StackEntry::Tuple(_) => {
                return Err(crate::TonError::InvalidArgument(
                    "tuples cannot be passed to runGetMethod".to_string(),
                ));
            }
        })
    }
}

fn parse_num(s: &str) -> Option<BigInt> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let n = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(hex) => BigInt::parse_bytes(hex.as_bytes(), 16)?,
        None => BigInt::parse_bytes(body.as_bytes(), 10)?,
    };
    Some(if neg { -n } else { n })
}

fn cell_from(v: &Value) -> Result<ArcCell, String> {
    let b64 = v
        .get("bytes")
        .and_then(Value::as_str)
        .or_else(|| v.as_str())
        .ok_or_else(|| format!("cell entry without bytes: {v}"))?;
    // Validate base64 separately so the error says which part failed.
    STANDARD
        .decode(b64)
        .map_err(|e| format!("cell bytes not base64: {e}"))?;
    boc::boc_b64_to_cell(b64).map_err(|e| e.to_string())
}

/// Decodes a toncenter output stack entry (`["num","0x1"]`, `["cell",{"bytes":..}]`, `["tuple",{..}]`).
pub(crate) fn entry_from_json(v: &Value) -> Result<StackEntry, String> {
    let arr = v
        .as_array()
        .ok_or_else(|| format!("stack entry is not an array: {v}"))?;
    let kind = arr
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| format!("stack entry without type: {v}"))?;
    let val = arr.get(1).unwrap_or(&Value::Null);
    match kind {
        "num" | "int" | "number" => {
            let s = match val {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(format!("number entry without value: {v}")),
            };
            parse_num(&s)
                .map(StackEntry::Num)
                .ok_or_else(|| format!("bad number {s:?}"))
        }
        "cell" | "tvm.Cell" => cell_from(val).map(StackEntry::Cell),
        "slice" | "tvm.Slice" | "builder" => cell_from(val).map(StackEntry::Slice),
        "null" => Ok(StackEntry::Null),
        "tuple" | "list" => tuple_from(val.get("elements"), v),
        other => Err(format!("unsupported stack entry type {other:?}")),
    }
}

/// A tuple from its `elements` array (each in tonlib's typed form); `whole` is for the error.
fn tuple_from(elements: Option<&Value>, whole: &Value) -> Result<StackEntry, String> {
    elements
        .and_then(Value::as_array)
        .ok_or_else(|| format!("tuple without elements: {whole}"))?
        .iter()
        .map(typed_entry_from_json)
        .collect::<Result<Vec<_>, _>>()
        .map(StackEntry::Tuple)
}

/// Decodes tonlib's typed form used inside tuples (`{"@type":"tvm.stackEntryNumber",..}`).
fn typed_entry_from_json(v: &Value) -> Result<StackEntry, String> {
    let t = v.get("@type").and_then(Value::as_str).unwrap_or_default();
    match t {
        "tvm.stackEntryNumber" => {
            let s = v
                .pointer("/number/number")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("number without value: {v}"))?;
            parse_num(s)
                .map(StackEntry::Num)
                .ok_or_else(|| format!("bad number {s:?}"))
        }
        "tvm.stackEntryCell" => {
            cell_from(v.get("cell").unwrap_or(&Value::Null)).map(StackEntry::Cell)
        }
        "tvm.stackEntrySlice" => {
            cell_from(v.get("slice").unwrap_or(&Value::Null)).map(StackEntry::Slice)
        }
        "tvm.stackEntryTuple" | "tvm.stackEntryList" => {
            let key = if t.ends_with("Tuple") {
                "tuple"
            } else {
                "list"
            };
            tuple_from(v.get(key).and_then(|x| x.get("elements")), v)
        }
        "tvm.stackEntryUnsupported" => Ok(StackEntry::Null),
        other => Err(format!("unsupported typed stack entry {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_through_json() {
        for n in [0i64, 1, -1, 255, -256, i64::MAX, i64::MIN] {
            let e = StackEntry::num(n);
            let j = e.to_json().expect("json");
            assert_eq!(entry_from_json(&j).expect("parse"), e, "{n}");
        }
        assert_eq!(
            entry_from_json(&json!(["num", "-0x10"]))
                .expect("neg")
                .as_i128(),
            Some(-16)
        );
        assert!(entry_from_json(&json!(["num", "0xzz"])).is_err());
        assert!(entry_from_json(&json!(["weird", 1])).is_err());
    }

    #[test]
    fn addresses_round_trip_through_slices() {
        let addr = crate::parse_address("EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG3")
            .expect("address");
        let entry = StackEntry::address(&addr).expect("slice");
        let j = entry.to_json().expect("json");
        assert_eq!(j[0], "tvm.Slice");
        assert_eq!(entry.as_address(), Some(addr));
        assert_eq!(StackEntry::num(1).as_address(), None);
    }

    #[test]
    fn tuples_use_typed_elements() {
        let cell = CellBuilder::new()
            .store_u8(8, 5)
            .and_then(|b| b.build())
            .expect("cell");
        let b64 = boc::cell_to_boc_b64(&cell).expect("boc");
        let v = json!(["tuple", {"@type": "tvm.tuple", "elements": [
            {"@type": "tvm.stackEntryNumber", "number": {"@type": "tvm.numberDecimal", "number": "-7"}},
            {"@type": "tvm.stackEntryCell", "cell": {"@type": "tvm.cell", "bytes": b64}},
            {"@type": "tvm.stackEntryTuple", "tuple": {"@type": "tvm.tuple", "elements": []}}
        ]}]);
        let e = entry_from_json(&v).expect("tuple");
        let t = e.as_tuple().expect("is tuple");
        assert_eq!(t[0].as_i128(), Some(-7));
        assert_eq!(
            t[1].as_cell().map(|c| c.cell_hash()),
            Some(cell.cell_hash())
        );
        assert_eq!(t[2], StackEntry::Tuple(vec![]));
    }
}
