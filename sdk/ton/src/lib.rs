//! TON primitives for cocoon: addresses, cells and BoCs, mnemonics, wallets, amounts and the toncenter v2 client.
//!
//! Built on `tonlib-core` (re-exported as [`tonlib`]) for cells, addresses, mnemonics and wallet
//! contracts; this crate adds exact TON amounts, v4r2/v5r1 transfer messages with their hashes, and
//! a toncenter API v2 client ([`TonClient`], [`HttpTonClient`]) that works the same against
//! toncenter and the local devnet, the one BoC writer ([`boc::cell_to_boc`], beside its validator
//! [`boc::check_boc`] and their CRC32-C), and the one tracer ([`send_and_trace`]: send from a
//! wallet, follow the message's transactions, typed [`Outcome`] and [`TraceError`]).

mod address;
pub mod amount;
pub mod boc;
mod boc_check;
mod client;
mod error;
mod send;
pub mod trace;
mod wallet;

pub use address::{
    FriendlyFlags, Network, parse_address, parse_address_with_flags, to_friendly, to_raw,
};
pub use amount::{AmountError, format_ton, parse_ton};
pub use client::{
    AccountState, AddressInformation, ClientError, FeeEstimate, FeeQuery, GetMethodResult,
    HttpTonClient, MasterchainInfo, StackEntry, TonClient, TonClientConfig, Transaction, TxId,
    TxMessage, WAIT_PAGE, WalletInformation,
};
pub use error::TonError;
pub use send::{DEFAULT_VALIDITY, SendError, Sent};
pub use trace::{Outcome, TraceError, TraceOptions, send_and_trace};
pub use wallet::{
    DEFAULT_SEND_MODE, ExternalMessage, MNEMONIC_WORDS, Transfer, Wallet, WalletVersion,
    keypair_from_mnemonic, normalized_hash, split_external,
};

/// The underlying `tonlib-core` crate, for cells, TL-B and anything not wrapped here.
pub use tonlib_core as tonlib;
pub use tonlib_core::cell::{ArcCell, BagOfCells, Cell, CellBuilder, CellParser};
pub use tonlib_core::wallet::mnemonic::KeyPair;
pub use tonlib_core::{TonAddress, TonHash};
