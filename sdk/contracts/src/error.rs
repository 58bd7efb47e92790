//! Errors: cell (de)serialisation failures and decoded contract exit codes.

use tonlib_core::cell::TonCellError;

include!(concat!(env!("OUT_DIR"), "/errors.rs"));

/// A cell could not be built or did not match the schema.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// tonlib-core rejected the cell operation (overflow, underflow, bad BoC).
    #[error("cell: {0}")]
    Cell(#[from] TonCellError),
    /// The first 32 bits were not the expected opcode.
    #[error("wrong opcode: expected 0x{expected:08x}, found 0x{found:08x}")]
    WrongOpcode {
        /// Opcode the type requires.
        expected: u32,
        /// Opcode found in the cell.
        found: u32,
    },
    /// An enumerated field held a value the schema does not define.
    #[error("invalid {field}: {value}")]
    InvalidValue {
        /// Field name.
        field: &'static str,
        /// Value found.
        value: u64,
    },
    /// The cell had data or references left after the last field.
    #[error("trailing data: {bits} bits and {refs} references left")]
    Trailing {
        /// Bits left unread.
        bits: usize,
        /// References left unread.
        refs: usize,
    },
    /// An amount does not fit `Coins` (VarUInteger 16: at most 2^120 - 1).
    #[error("amount {0} does not fit Coins")]
    CoinsOverflow(u128),
    /// An address is not a plain `addr_std` (anycast, `addr_var` or external).
    #[error("unsupported address: {0}")]
    UnsupportedAddress(String),
    /// The embedded build JSON is malformed (a build problem, not user input).
    #[error("embedded contract build: {0}")]
    Embedded(String),
    /// A golden or user-supplied hex string was not valid hex.
    #[error("hex: {0}")]
    Hex(#[from] hex::FromHexError),
    /// A snake string was not UTF-8.
    #[error("string is not UTF-8")]
    Utf8,
}

/// A transaction's compute phase exit code, decoded for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// One of the cocoon contract errors (errors.json).
    #[error("contract error {} ({})", .0.name(), .0.code())]
    Cocoon(ErrorCode),
    /// A TVM or standard exit code below 100 (out of gas, cell underflow, ...).
    #[error("TVM exit code {code} ({name})")]
    Tvm {
        /// Exit code.
        code: i32,
        /// Short description.
        name: &'static str,
    },
    /// An exit code neither the TVM nor the cocoon contracts define.
    #[error("unknown exit code {0}")]
    Unknown(i32),
}

impl ContractError {
    /// Decodes an exit code; `None` for success (0 and 1).
    pub fn from_exit_code(code: i32) -> Option<ContractError> {
        if code == 0 || code == 1 {
            return None;
        }
        if let Some(e) = ErrorCode::from_code(code) {
            return Some(ContractError::Cocoon(e));
        }
        let name = match code {
            2 => "stack underflow",
            3 => "stack overflow",
            4 => "integer overflow",
            5 => "integer out of range",
            6 => "invalid opcode",
            7 => "type check error",
            8 => "cell overflow",
            9 => "cell underflow",
            10 => "dictionary error",
            11 => "unknown error",
            12 => "fatal error",
            13 => "out of gas",
            -14 => "out of gas",
            32 => "action list invalid",
            33 => "action list too long",
            34 => "action invalid or not supported",
            35 => "invalid source address",
            36 => "invalid destination address",
            37 => "not enough TON",
            38 => "not enough extra currencies",
            40 => "not enough funds to process the message",
            43 => "library cell or too many cells",
            _ => return Some(ContractError::Unknown(code)),
        };
        Some(ContractError::Tvm { code, name })
    }

    /// The exit code.
    pub fn code(&self) -> i32 {
        match self {
            ContractError::Cocoon(e) => e.code(),
            ContractError::Tvm { code, .. } | ContractError::Unknown(code) => *code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_errors() -> Vec<(String, i32)> {
        let text = include_str!("../../../contracts/build/errors.json");
        let v: serde_json::Value = serde_json::from_str(text).expect("errors.json is JSON");
        v.as_object()
            .expect("object")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_i64().expect("int") as i32))
            .collect()
    }

    #[test]
    fn error_table_matches_json_both_ways() {
        let json = json_errors();
        assert_eq!(json.len(), ErrorCode::ALL.len());
        for (name, code) in &json {
            let e = ErrorCode::from_code(*code).expect("code is known");
            assert_eq!(e.name(), name);
        }
        for e in ErrorCode::ALL {
            assert!(
                json.iter().any(|(n, c)| n == e.name() && *c == e.code()),
                "{e:?}"
            );
        }
    }

    #[test]
    fn exit_codes_decode_with_names() {
        let e = ContractError::from_exit_code(101).expect("failure");
        assert_eq!(e, ContractError::Cocoon(ErrorCode::NotOwner));
        assert_eq!(e.to_string(), "contract error NOT_OWNER (101)");
        assert_eq!(ContractError::from_exit_code(0), None);
        assert_eq!(ContractError::from_exit_code(9).map(|e| e.code()), Some(9));
        assert_eq!(
            ContractError::from_exit_code(999),
            Some(ContractError::Unknown(999))
        );
    }
}
