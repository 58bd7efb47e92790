//! cocoon's on-chain interface: embedded contract code, opcodes, error codes, message builders and
//! state decoders. `contracts/schema/cocoon.tlb` is the source of truth; every type here mirrors one
//! schema constructor field by field, and the golden vectors from the sandbox tests check the bytes.

#[macro_use]
mod tlb_macro;

pub mod address;
pub mod boc;
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
