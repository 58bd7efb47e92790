//! Contract operations through cocoon-contracts' chain wrappers: balance check, spinner, timeout,
//! and exit codes for contract failures.

use std::future::Future;

use anyhow::Result;
use cocoon_contracts::chain::ChainError;
use cocoon_ton::{Network, TonClient, Wallet, to_friendly};

use crate::exit::{ExitKind, fail};
use crate::global::GlobalArgs;
use crate::tx::{ensure_balance, with_spinner};

/// Runs a cocoon-contracts operation that sends `value` from `wallet`: checks the balance first,
/// shows the spinner, bounds the wait by --tx-timeout, and classifies contract failures (exit 6).
pub(crate) async fn op<T, F>(
    global: &GlobalArgs,
    client: &dyn TonClient,
    wallet: &Wallet,
    value: u128,
    what: &str,
    fut: F,
) -> Result<T>
where
    F: Future<Output = Result<T, ChainError>>,
{
    ensure_balance(global, client, wallet, value).await?;
    let timeout = global.timeout();
    let waited = tokio::time::timeout(
        timeout,
        with_spinner(&format!("{what}: waiting for the transactions"), fut),
    )
    .await;
    let result = match waited {
        Ok(r) => r,
        Err(_) => {
            return Err(fail(
                ExitKind::Chain,
                format!(
                    "{what}: no confirmation within {}s (raise --tx-timeout, or check the state later)",
                    timeout.as_secs()
                ),
            ));
        }
    };
    result.map_err(|e| chain_error(e, what, wallet.network()))
}

/// Maps a cocoon-contracts error to an exit code and a message that says what happened.
pub(crate) fn chain_error(err: ChainError, what: &str, network: Network) -> anyhow::Error {
    let friendly = |raw: &str| {
        cocoon_ton::parse_address(raw)
            .map(|a| to_friendly(&a, true, network))
            .unwrap_or_else(|_| raw.to_string())
    };
    match err {
        ChainError::Contract { address, error } => fail(
            ExitKind::Refused,
            format!(
                "{what}: the contract {} refused the message: {error}; the value bounced back \
                 to the wallet minus fees",
                friendly(&address)
            ),
        ),
        ChainError::Aborted(address) => fail(
            ExitKind::Refused,
            format!(
                "{what}: the transaction of {} was aborted",
                friendly(&address)
            ),
        ),
        ChainError::Bounced(address) => fail(
            ExitKind::Refused,
            format!(
                "{what}: {} refused the message; it bounced back minus fees",
                friendly(&address)
            ),
        ),
        ChainError::NotDelivered { address, after } => fail(
            ExitKind::Chain,
            format!(
                "{what}: {} did not receive the message within {}s (check the state later)",
                friendly(&address),
                after.as_secs()
            ),
        ),
        ChainError::NotDeployed(address) => fail(
            ExitKind::NotFound,
            format!(
                "{what}: {} is not deployed on this network",
                friendly(&address)
            ),
        ),
        ChainError::GetMethod { .. } | ChainError::Codec(_) => {
            anyhow::Error::new(err).context(what.to_string())
        }
        ChainError::Send(e) => anyhow::Error::new(e).context(what.to_string()),
        ChainError::Client(e) => anyhow::Error::new(e).context(what.to_string()),
    }
}
