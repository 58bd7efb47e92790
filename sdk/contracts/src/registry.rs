//! Decode a cell by schema type name or by its opcode, without knowing the Rust type up front: what
//! the golden-vector test, `cocoon decode` and auditors use.

use serde_json::Value;
use tonlib_core::cell::Cell;

use crate::codec::{CellCodec, peek_opcode};
use crate::error::CodecError;
use crate::json::ToJson;
use crate::messages::*;
use crate::state::*;
use crate::statements::*;

/// A cell decoded into a schema type.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The Rust type name (`ChargeVoucher`).
    pub type_name: &'static str,
    /// The JSON view of the value ([`crate::json`]).
    pub json: Value,
    /// The value encoded again.
    pub reencoded: Cell,
}

fn decode_as<T: CellCodec + ToJson>(
    name: &'static str,
    cell: &Cell,
) -> Result<Decoded, CodecError> {
    let value = T::from_cell(cell)?;
    Ok(Decoded {
        type_name: name,
        json: value.to_json(),
        reencoded: value.to_cell()?,
    })
}

macro_rules! registry {
    ($($t:ident),* $(,)?) => {
        /// Every type name the registry knows, as Rust names.
        pub const TYPE_NAMES: &[&str] = &[$(stringify!($t)),*];

        fn decode_exact(normalized: &str, cell: &Cell) -> Option<Result<Decoded, CodecError>> {
            $(
                if normalized == normalize(stringify!($t)) {
                    return Some(decode_as::<$t>(stringify!($t), cell));
                }
            )*
            None
        }
    };
}

registry!(
    ChargeVoucher,
    PayoutVoucher,
    ServingStatement,
    FaultReport,
    SignedCell,
    EquivocationEvidence,
    RevokedServingEvidence,
    FaultEvidence,
    NetworkParams,
    ProxyInfo,
    ChildCodes,
    RootChangeOwner,
    RootAcceptOwner,
    RootSetImage,
    RootSetModel,
    RootSetProxy,
    RootSetParams,
    RootSetCodes,
    RootWithdrawKept,
    RootOpenStake,
    RootOpenEscrow,
    RootSyncVaultKey,
    RootReportEquivocation,
    RootReportRevoked,
    RootReportFault,
    RootOwnerNotice,
    RootReportRefused,
    StakeParams,
    StakeInit,
    StakeDeposit,
    StakeSetKey,
    StakeUnbond,
    StakeWithdraw,
    StakeSettle,
    StakeClaimPayout,
    StakeWithdrawEarnings,
    StakeCommitMarker,
    StakeRegisteredKey,
    SlashTerms,
    StakeSlash,
    StakePayoutNotice,
    StakeWithdrawNotice,
    StakeRewardNotice,
    RootKeptNotice,
    EscrowInit,
    EscrowDeposit,
    EscrowSetStake,
    EscrowSubmitCharge,
    EscrowWithdraw,
    EscrowRequestClose,
    EscrowFinishClose,
    EscrowSetClientKey,
    EscrowRefundNotice,
    RootRegistry,
    RootStorage,
    StakeIdentity,
    StakeCold,
    PayoutRecord,
    StakeStorage,
    EscrowIdentity,
    EscrowClientKey,
    EscrowStorage,
);

/// Schema names whose Rust name differs beyond case and underscores.
const ALIASES: &[(&str, &str)] = &[("signedstatement", "signedcell"), ("signed", "signedcell")];

/// Lower case without `_`, `-` or spaces: `charge_voucher`, `ChargeVoucher` and `chargeVoucher` meet.
pub fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Decodes `cell` as the schema type called `name` (schema or Rust spelling).
pub fn decode_named(name: &str, cell: &Cell) -> Result<Decoded, DecodeError> {
    let mut n = normalize(name);
    if let Some((_, to)) = ALIASES.iter().find(|(from, _)| *from == n) {
        n = (*to).to_owned();
    }
    decode_exact(&n, cell)
        .ok_or_else(|| DecodeError::UnknownType(name.to_owned()))?
        .map_err(DecodeError::Codec)
}

/// Decodes a cell that starts with an opcode into the type that opcode belongs to.
pub fn decode_by_opcode(cell: &Cell) -> Result<Decoded, DecodeError> {
    let op = peek_opcode(cell).map_err(DecodeError::Codec)?;
    let name = crate::opcodes::ALL
        .iter()
        .find(|(_, v)| *v == op)
        .map(|(n, _)| *n)
        .ok_or(DecodeError::UnknownOpcode(op))?;
    decode_named(name, cell)
}

/// A cell could not be decoded by name or opcode.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// No schema type has this name.
    #[error("unknown schema type {0:?}")]
    UnknownType(String),
    /// No schema type has this opcode.
    #[error("unknown opcode 0x{0:08x}")]
    UnknownOpcode(u32),
    /// The cell does not match the type.
    #[error(transparent)]
    Codec(CodecError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opcode_has_a_type() {
        for (name, _) in crate::opcodes::ALL {
            assert!(
                TYPE_NAMES.iter().any(|t| normalize(t) == normalize(name)),
                "opcode {name} has no Rust type"
            );
        }
    }

    #[test]
    fn decodes_by_opcode_and_by_schema_name() {
        let cell = StakeUnbond {
            query_id: 3,
            amount: 44,
        }
        .to_cell()
        .expect("cell");
        let d = decode_by_opcode(&cell).expect("decodes");
        assert_eq!(d.type_name, "StakeUnbond");
        assert_eq!(d.json["amount"], "44");
        assert_eq!(d.reencoded, cell);
        assert_eq!(
            decode_named("stake_unbond", &cell)
                .expect("named")
                .type_name,
            "StakeUnbond"
        );
        assert!(matches!(
            decode_named("no_such_type", &cell),
            Err(DecodeError::UnknownType(_))
        ));
    }
}
