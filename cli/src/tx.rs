//! Sending from the keystore wallet: balance check, spinner, waiting for the transactions.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cocoon_ton::{
    TonClient, TraceError, TraceOptions, Transaction, Transfer, Wallet, format_ton, send_and_trace,
};

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

/// Sends `transfer` from `wallet` after a balance check and waits for the wallet's transaction
/// (the tracer with no hops: what the message does at its destination is not followed).
pub(crate) async fn send(
    global: &GlobalArgs,
    client: &dyn TonClient,
    wallet: &Wallet,
    transfer: Transfer,
    what: &str,
) -> Result<Transaction> {
    ensure_balance(global, client, wallet, transfer.amount).await?;
    let timeout = global.timeout();
    let options = TraceOptions {
        wait: timeout,
        hops: 0,
    };
    let traced = with_spinner(
        &format!("{what}: waiting for the transaction"),
        send_and_trace(client, wallet, transfer, options),
    )
    .await;
    match traced {
        Ok(outcome) => Ok(outcome.wallet_tx),
        Err(TraceError::Failed { exit_code, .. }) => Err(fail(
            ExitKind::Refused,
            format!("{what}: the wallet refused its own message (exit code {exit_code})"),
        )),
        Err(TraceError::Aborted { .. }) => Err(fail(
            ExitKind::Refused,
            format!("{what}: the wallet's transaction was aborted"),
        )),
        // Unwrapped, so that the exit code sees the send or client error itself.
        Err(TraceError::Send(e)) => Err(annotate_timeout(e.into(), what, timeout)),
        Err(TraceError::Client(e)) => Err(annotate_timeout(e.into(), what, timeout)),
        Err(e) => Err(anyhow::Error::new(e).context(what.to_string())),
    }
}

fn annotate_timeout(err: anyhow::Error, what: &str, timeout: Duration) -> anyhow::Error {
    err.context(format!(
        "{what}: no confirmation within {}s (raise --tx-timeout, or check later with `cocoon wallet balance`)",
        timeout.as_secs()
    ))
}
