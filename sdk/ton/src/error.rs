//! Errors of the TON primitives (the toncenter client has its own, [`crate::ClientError`]).

/// What can go wrong building or reading TON data.
#[derive(Debug, thiserror::Error)]
pub enum TonError {
    /// An address string could not be parsed.
    #[error("invalid address {input:?}: {reason}")]
    Address {
        /// what was given
        input: String,
        /// why it was refused
        reason: String,
    },
    /// A cell, BoC or TL-B value could not be built or parsed.
    #[error("cell error: {0}")]
    Cell(String),
    /// A mnemonic is not a valid TON mnemonic.
    #[error("invalid mnemonic: {0}")]
    Mnemonic(String),
    /// A message could not be built.
    #[error("message error: {0}")]
    Message(String),
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl From<tonlib_core::cell::TonCellError> for TonError {
    fn from(e: tonlib_core::cell::TonCellError) -> Self {
        TonError::Cell(e.to_string())
    }
}

impl From<tonlib_core::message::TonMessageError> for TonError {
    fn from(e: tonlib_core::message::TonMessageError) -> Self {
        TonError::Message(e.to_string())
    }
}
