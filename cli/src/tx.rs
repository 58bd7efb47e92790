//! Sending from the keystore wallet: balance check, spinner, waiting for the transactions.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cocoon_ton::{TonClient, Transaction, Transfer, Wallet, format_ton};

use crate::exit::{ExitKind, fail};
use crate::global::{GlobalArgs, NetworkChoice};
use crate::output::Fields;

/// What a wallet transaction costs at most, on top of the values it sends (estimate for the
/// balance check; the real fee is printed afterwards).
pub(crate) const FEE_RESERVE: u128 = 20_000_000;

/// Runs `fut`; while it runs, shows `label` and the elapsed time on stderr if stderr is a terminal.
pub(crate) async fn with_spinner<T>(label: &str, fut: impl Future<Output = T>) -> T {
    if !std::io::stderr().is_terminal() {
        return fut.await;
    }
    let started = Instant::now();
    let label = label.to_string();
    let ticker = tokio::spawn(async move {
        const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
        let mut i = 0usize;
        loop {
            let secs = started.elapsed().as_secs_f32();
            {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{} {label} {secs:.1}s ", FRAMES[i % FRAMES.len()]);
                let _ = err.flush();
            }
            i = i.wrapping_add(1);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let out = fut.await;
    ticker.abort();
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K");
    let _ = err.flush();
    out
}

/// How to tell a user to fund an address on this network.
pub(crate) fn funding_hint(network: NetworkChoice, address: &str, missing: u128) -> String {
    match network {
        NetworkChoice::Local => format!(
            "send at least {} TON to {address} (on the devnet: `cocoon devnet fund {address} {}`)",
            format_ton(missing),
            format_ton(missing)
        ),
        NetworkChoice::Testnet => format!(
            "send at least {} TON to {address} (testnet coins: @testgiver_ton_bot on Telegram)",
            format_ton(missing)
        ),
        NetworkChoice::Mainnet => {
            format!("send at least {} TON to {address}", format_ton(missing))
        }
    }
}

/// Fails with exit code 4 unless `wallet` holds `needed` nanotons plus [`FEE_RESERVE`].
pub(crate) async fn ensure_balance(
    global: &GlobalArgs,
    client: &dyn TonClient,
    wallet: &Wallet,
    needed: u128,
) -> Result<u128> {
    let balance = client
        .get_address_balance(wallet.address())
        .await
        .context("reading the wallet balance")?;
    let total = needed.saturating_add(FEE_RESERVE);
    if balance < total {
        let missing = total - balance;
        return Err(fail(
            ExitKind::InsufficientFunds,
            format!(
                "insufficient funds: wallet {} has {} TON but this needs {} TON ({} TON + up to {} \
                 TON fees); {}",
                wallet.address_friendly(),
                format_ton(balance),
                format_ton(total),
                format_ton(needed),
                format_ton(FEE_RESERVE),
                funding_hint(global.network, &wallet.address_friendly(), missing)
            ),
        ));
    }
    Ok(balance)
}

/// Fields describing a transaction: `tx_hash` (hex), `lt` and `fee`.
pub(crate) fn tx_fields(tx: &Transaction) -> Fields {
    Fields::new()
        .add("tx_hash", hex::encode(tx.id.hash.as_slice()))
        .add("lt", tx.id.lt.to_string())
        .ton("fee", tx.fee)
}

/// Sends `transfers` from `wallet` after a balance check and waits for the wallet's transaction.
pub(crate) async fn send(
    global: &GlobalArgs,
    client: &dyn TonClient,
    wallet: &Wallet,
    transfers: &[Transfer],
    what: &str,
) -> Result<Transaction> {
    let needed = transfers
        .iter()
        .try_fold(0u128, |acc, t| acc.checked_add(t.amount))
        .ok_or_else(|| fail(ExitKind::Usage, "total amount overflows"))?;
    ensure_balance(global, client, wallet, needed).await?;
    let timeout = global.timeout();
    let sent = with_spinner(
        &format!("{what}: waiting for the transaction"),
        wallet.send_and_wait(client, transfers, timeout),
    )
    .await
    .map_err(|e| annotate_timeout(e.into(), what, timeout))?;
    if let Some(code) = sent
        .transaction
        .compute_exit_code
        .filter(|c| *c != 0 && *c != 1)
    {
        return Err(fail(
            ExitKind::Refused,
            format!("{what}: the wallet refused its own message (exit code {code})"),
        ));
    }
    Ok(sent.transaction)
}

fn annotate_timeout(err: anyhow::Error, what: &str, timeout: Duration) -> anyhow::Error {
    err.context(format!(
        "{what}: no confirmation within {}s (raise --tx-timeout, or check later with `cocoon wallet balance`)",
        timeout.as_secs()
    ))
}
