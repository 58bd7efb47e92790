//! `onchain_tx_per_10k_requests`, computed exactly from the proxy's default settlement thresholds and
//! the per-request charge the path bench measured (driving enough requests through the devnet to reach
//! a threshold would take far longer than the rest of the bench together).
//!
//! The proxy sends one charge voucher when a client's unsettled charges reach `charge_threshold_bps` of
//! its escrow credit, and one payout voucher when a worker's unpaid earnings reach
//! `payout_threshold_nano` (`cocoon_proxy::settle`). Each voucher is one on-chain transaction; the
//! store marker is not (the on-chain settler keeps it locally: the contracts have no marker entry).

use anyhow::{Context, Result};
use cocoon_proxy::ProxyConfig;
use serde_json::{Value, json};

/// Escrow credit of the reference client: the demo's (`Funding::default().escrow_stake`, 3 TON).
pub(crate) const REFERENCE_CREDIT_NANO: u128 = 3_000_000_000;

/// Requests the figure is scaled to.
const REQUESTS: f64 = 10_000.0;

/// Transactions per 10,000 requests that each charge the client `client_charge` and pay the worker
/// `worker_earning` (nanoTON), with `credit` nanoTON of escrow credit and the proxy's thresholds.
pub(crate) fn tx_per_10k(
    config: &ProxyConfig,
    credit: u128,
    client_charge: u128,
    worker_earning: u128,
) -> Result<f64> {
    let charge_threshold = credit
        .checked_mul(u128::from(config.charge_threshold_bps))
        .context("credit × threshold overflows")?
        / 10_000;
    let payout_threshold = u128::from(config.payout_threshold_nano);
    anyhow::ensure!(
        charge_threshold > 0 && payout_threshold > 0,
        "zero settlement threshold"
    );
    // A voucher goes out on the first charge that reaches the threshold, so one is sent every
    // ceil(threshold / per-request amount) requests.
    let every = |threshold: u128, per_request: u128| -> f64 {
        if per_request == 0 {
            return 0.0;
        }
        REQUESTS / threshold.div_ceil(per_request) as f64
    };
    Ok(every(charge_threshold, client_charge) + every(payout_threshold, worker_earning))
}

/// The key and how it was obtained.
pub(crate) fn figures(client_charge: u128) -> Result<(f64, Value)> {
    let config = ProxyConfig::default();
    let params = cocoon_protocol::PriceParams::default();
    let worker_earning = client_charge
        .checked_mul(u128::from(params.worker_share_bps))
        .context("worker share overflows")?
        / 10_000;
    let tx = tx_per_10k(
        &config,
        REFERENCE_CREDIT_NANO,
        client_charge,
        worker_earning,
    )?;
    let note = json!({
        "method": "computed, not driven through the devnet: 10000 / ceil(threshold / per-request amount), summed over charge vouchers (client) and payout vouchers (worker); each voucher is one transaction",
        "per_request_charge_nano": client_charge.to_string(),
        "per_request_worker_earning_nano": worker_earning.to_string(),
        "per_request_charge_source": "measured: the proxy ledger's total charge over its charge count after the path bench (the bench request: 1 prompt token, 4 completion tokens, default prices)",
        "escrow_credit_nano": REFERENCE_CREDIT_NANO.to_string(),
        "charge_threshold_bps": config.charge_threshold_bps,
        "payout_threshold_nano": config.payout_threshold_nano.to_string(),
        "marker_commits": "not on chain (the on-chain settler keeps the marker locally)",
        "scaling": "proportional to the per-request charge and inverse to the escrow credit: requests costing 100x more settle 100x as often",
    });
    Ok((tx, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_voucher_per_threshold_crossing() {
        let config = ProxyConfig {
            charge_threshold_bps: 5000,
            payout_threshold_nano: 1_000,
            ..ProxyConfig::default()
        };
        // Threshold 500 at 100 per request: a charge voucher every 5 requests; payouts every 10.
        let tx = tx_per_10k(&config, 1_000, 100, 100).unwrap();
        assert!((tx - (2000.0 + 1000.0)).abs() < 1e-9, "{tx}");
        // A request that does not divide the threshold still needs the full ceil.
        let tx = tx_per_10k(&config, 1_000, 300, 0).unwrap();
        assert!((tx - 10_000.0 / 2.0).abs() < 1e-9, "{tx}");
        assert_eq!(tx_per_10k(&config, 1_000, 0, 0).unwrap(), 0.0);
    }
}
