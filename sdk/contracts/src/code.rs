//! The compiled contract code, embedded from `contracts/build/{root,stake,escrow}.json`.

use std::sync::Arc;

use tonlib_core::cell::ArcCell;

use crate::error::CodecError;

const ROOT_JSON: &str = include_str!("../../../contracts/build/root.json");
const STAKE_JSON: &str = include_str!("../../../contracts/build/stake.json");
const ESCROW_JSON: &str = include_str!("../../../contracts/build/escrow.json");

/// One of the three cocoon contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contract {
    /// Registry and governance; deploys the other two.
    Root,
    /// One per operator and role; for a proxy also the payout vault.
    Stake,
    /// One per client and proxy: the payment channel.
    Escrow,
}

impl Contract {
    /// All contracts.
    pub const ALL: [Contract; 3] = [Contract::Root, Contract::Stake, Contract::Escrow];

    /// The build name (`root`, `stake`, `escrow`).
    pub fn name(self) -> &'static str {
        match self {
            Contract::Root => "root",
            Contract::Stake => "stake",
            Contract::Escrow => "escrow",
        }
    }

    fn json(self) -> &'static str {
        match self {
            Contract::Root => ROOT_JSON,
            Contract::Stake => STAKE_JSON,
            Contract::Escrow => ESCROW_JSON,
        }
    }

    /// The build record of this contract as committed in `contracts/build/<name>.json`.
    pub fn build(self) -> Result<BuildRecord, CodecError> {
        let value: serde_json::Value = serde_json::from_str(self.json())
            .map_err(|e| CodecError::Embedded(format!("{}.json: {e}", self.name())))?;
        let field = |key: &str| {
            value
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| CodecError::Embedded(format!("{}.json has no {key}", self.name())))
        };
        Ok(BuildRecord {
            name: field("name")?,
            code_boc_hex: field("codeBoc")?,
            code_hash_hex: field("codeHash")?,
        })
    }

    /// The code cell, parsed from the embedded BoC.
    pub fn code(self) -> Result<ArcCell, CodecError> {
        let record = self.build()?;
        let bytes = hex::decode(&record.code_boc_hex)
            .map_err(|e| CodecError::Embedded(format!("{}.json codeBoc: {e}", self.name())))?;
        let root = cocoon_ton::boc::parse_boc(&bytes)?.single_root()?;
        Ok(Arc::clone(&root))
    }

    /// The code hash recorded by the build (what `codeHash` says, not recomputed).
    pub fn recorded_code_hash(self) -> Result<[u8; 32], CodecError> {
        let record = self.build()?;
        let bytes = hex::decode(record.code_hash_hex.trim_start_matches("0x"))
            .map_err(|e| CodecError::Embedded(format!("{}.json codeHash: {e}", self.name())))?;
        bytes.try_into().map_err(|_| {
            CodecError::Embedded(format!("{}.json codeHash is not 32 bytes", self.name()))
        })
    }

    /// The representation hash of the embedded code cell.
    pub fn code_hash(self) -> Result<[u8; 32], CodecError> {
        Ok(crate::codec::cell_hash(&*self.code()?))
    }
}

/// The fields of `contracts/build/<name>.json` the SDK uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRecord {
    /// Contract name.
    pub name: String,
    /// Code BoC, hex.
    pub code_boc_hex: String,
    /// Code hash, hex.
    pub code_hash_hex: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_code_hash_matches_the_boc() {
        for c in Contract::ALL {
            let computed = c.code_hash().expect("embedded code parses");
            let recorded = c.recorded_code_hash().expect("build record has a hash");
            assert_eq!(computed, recorded, "{} code hash", c.name());
            assert_eq!(c.build().expect("record").name, c.name());
        }
    }

    #[test]
    fn contracts_have_distinct_code() {
        let hashes: std::collections::HashSet<_> = Contract::ALL
            .iter()
            .map(|c| c.code_hash().expect("code"))
            .collect();
        assert_eq!(hashes.len(), 3);
    }
}
