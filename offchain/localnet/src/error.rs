//! What can go wrong starting or driving a local network.

use cocoon_onchain::OnchainError;

/// Local network failures.
#[derive(Debug, thiserror::Error)]
pub enum LocalnetError {
    /// A chain step failed.
    #[error("{step}: {source}")]
    Chain {
        /// What was being done.
        step: &'static str,
        /// Why it failed.
        source: OnchainError,
    },
    /// A daemon or the devnet failed.
    #[error("{step}: {message}")]
    Daemon {
        /// What was being done.
        step: &'static str,
        /// Why it failed.
        message: String,
    },
}

pub(crate) fn chain<E: Into<OnchainError>>(step: &'static str) -> impl FnOnce(E) -> LocalnetError {
    move |source| LocalnetError::Chain {
        step,
        source: source.into(),
    }
}

pub(crate) fn daemon<E: std::fmt::Display>(step: &'static str) -> impl FnOnce(E) -> LocalnetError {
    move |e| LocalnetError::Daemon {
        step,
        message: format!("{e:#}"),
    }
}
