//! cocoon's on-chain interface: embedded contract code, opcodes, error codes, message builders and
//! state decoders. `contracts/schema/cocoon.tlb` is the source of truth; every type here mirrors one
//! schema constructor field by field, and the golden vectors from the sandbox tests check the bytes.
//!
//! Map:
//! - [`code::Contract`]: embedded code cells and hashes of root, stake and escrow.
//! - [`opcodes`], [`ErrorCode`], [`fees`]: generated at build time from `contracts/build/*.json`
//!   and `contracts/*/fees.tolk`; [`ContractError::from_exit_code`] names an exit code.
//! - [`messages`], [`statements`], [`state`]: one struct per schema constructor, each a
//!   [`CellCodec`] (`to_cell`, `from_cell`, `to_boc`, `from_boc`); vouchers sign and verify over the
//!   cell's representation hash ([`statements::sign_charge`], [`statements::sign_payout`]).
//! - [`address`]: child addresses derived offline exactly as the root derives them.
//! - [`json`], [`registry`]: a JSON view of every type and decoding by name or opcode.
//! - BoC bytes identical to @ton/core's come from the one writer in cocoon-ton
//!   ([`cocoon_ton::boc::cell_to_boc`]; [`codec::write_boc`] and [`CellCodec::to_boc`] use it).
//! - [`chain`]: the typed contract clients (root, stake, escrow): they send through cocoon-ton's
//!   one tracer (`cocoon_ton::send_and_trace`) and report the first failing contract with its
//!   decoded exit code.

#[macro_use]
mod tlb_macro;

pub mod address;
pub mod chain;
pub mod code;
pub mod codec;
pub mod error;
pub mod fees;
pub mod json;
pub mod messages;
pub mod registry;
pub mod state;
pub mod statements;

/// Opcodes, generated at build time from `contracts/build/opcodes.json`.
pub mod opcodes {
    include!(concat!(env!("OUT_DIR"), "/opcodes.rs"));
}

pub use code::Contract;
pub use codec::{Bits256, CellCodec};
pub use error::{CodecError, ContractError, ErrorCode};
pub use tonlib_core::TonAddress;
pub use tonlib_core::cell::{ArcCell, Cell};
