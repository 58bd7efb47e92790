//! The proxy's chain access over the cocoon contracts (`cocoon-contracts` over `cocoon-ton`).
//!
//! - [`OnchainView`] answers what the proxy's synchronous `ChainView` needs from a cache it
//!   refreshes in the background: network parameters and image allowlists from the root, escrow state
//!   of known clients, stakes of known workers.
//! - [`OnchainSettler`] submits the charge and payout statements the proxy signed in the contracts'
//!   format from the proxy operator's wallet (checking each signature against the contract's key
//!   first), waits for the transactions, retries, and treats an already-applied voucher as success.
//!   It can also sign a ledger voucher itself with a key it is given (tests, tools). It commits the
//!   ledger's state marker to the proxy's vault (`stake_commit_marker`), which the view reads back.
//! - [`allowlist::RootAllowlist`]: the root's image allowlist as an attestation allowlist source.
//! - [`crosscheck::CrossCheckedClient`]: contract-state reads through two providers, refused when
//!   they disagree (`[chain] cross_check_url`).
//!
//! `cocoon-proxy` implements its `ChainView` and `Settler` traits over these (its `onchain` module),
//! so this crate depends on no daemon.
//! - [`bootstrap`]: the development network's parameters and wallets for keys; the root itself is
//!   driven through cocoon-contracts' typed client (`cocoon_contracts::chain::RootHandle`).
//! - [`tx`]: sending and state reads in [`OnchainError`] terms over cocoon-contracts' `chain`, which
//!   sends through the one tracer, `cocoon_ton::send_and_trace`.
//!
//! Keys to addresses: the proxy learns clients and workers by their TLS keys, while escrows and
//! payouts are keyed by wallet addresses. Each peer announces its wallet (a worker its owner in its
//! announcement, a gateway its client wallet in a header); [`OnchainView::bind_worker`] and
//! [`OnchainView::bind_client`] bind the key only once the chain agrees (the owner's worker stake,
//! or the wallet's escrow, holds this key), and every refresh re-checks it.

pub mod allowlist;
mod binding;
pub mod bootstrap;
pub mod crosscheck;
pub mod seal;
mod settler;
pub mod tx;
mod view;

pub use binding::{BindError, BindPolicy};
pub use settler::{
    CHARGE_VALUE, CLAIM_VALUE, MARKER_VALUE, OnchainSettler, SettleOptions, SettlementRecord,
};
pub use tx::Outcome;
pub use view::{
    BindingsFile, EscrowInfo, EscrowPhase, EscrowStatus, OnchainConfig, OnchainView, price_params,
};

/// Chain access failures.
#[derive(Debug, thiserror::Error)]
pub enum OnchainError {
    /// The chain API could not be reached or did not show a transaction in time.
    #[error("chain unavailable: {0}")]
    Unavailable(String),
    /// A contract refused a message.
    #[error("{address}: {error} (exit code {code})")]
    Contract {
        /// The contract (raw address).
        address: String,
        /// The decoded error.
        error: String,
        /// The exit code.
        code: i32,
    },
    /// State or a message did not match the schema.
    #[error(transparent)]
    Codec(#[from] cocoon_contracts::CodecError),
    /// A contract that must exist is not deployed.
    #[error("{0}: not deployed")]
    NotDeployed(String),
    /// A contract holds a record of another series than the statement (never counted as applied).
    #[error("{0}")]
    SeriesMismatch(String),
    /// Sealed state (the bindings file) failed authentication.
    #[error(transparent)]
    Sealed(#[from] crate::seal::SealError),
    /// A value does not fit where it must go.
    #[error("{0}")]
    Invalid(String),
}
