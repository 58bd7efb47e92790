//! What a development network is set up with: its parameters and wallets for Ed25519 keys. The root
//! itself (deploy, allowlists, proxy registration, stakes, escrows) is driven through
//! cocoon-contracts' typed client, [`cocoon_contracts::chain::RootHandle`], as `cocoon demo` and the
//! integration tests do on the devnet.

use cocoon_contracts::messages::NetworkParams;
use cocoon_ton::Wallet;

use crate::OnchainError;

/// Development network parameters: 1000 nanoTON per token, completion 4×, cached 0.1×, workers
/// keep 90 %, 1 TON minimum stakes, one-hour delays.
pub fn dev_params() -> NetworkParams {
    NetworkParams {
        price_per_token: 1000,
        prompt_mult: 1000,
        cached_mult: 100,
        completion_mult: 4000,
        reasoning_mult: 4000,
        worker_share_bps: 9000,
        min_worker_stake: 1_000_000_000,
        min_proxy_stake: 1_000_000_000,
        unbond_delay: 3600,
        close_delay: 3600,
        equivocation_slash_bps: 5000,
        revoked_slash_bps: 5000,
        fault_slash_bps: 100,
        reporter_reward_bps: 1000,
        burn_slashed: false,
        grace_period: 600,
        fault_cap: 3,
        fault_period: 86_400,
    }
}

/// A v4r2 wallet (workchain 0) for an Ed25519 key.
pub fn wallet_for_key(
    key: &ed25519_dalek::SigningKey,
    network: cocoon_ton::Network,
) -> Result<Wallet, OnchainError> {
    let public = key.verifying_key().to_bytes().to_vec();
    let mut secret = key.to_bytes().to_vec();
    secret.extend_from_slice(&public);
    let pair = cocoon_ton::KeyPair {
        public_key: public,
        secret_key: secret,
    };
    Wallet::from_key_pair(pair, cocoon_ton::WalletVersion::V4R2, network)
        .map_err(|e| OnchainError::Invalid(e.to_string()))
}
