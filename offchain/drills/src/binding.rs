//! The fixed parties the corpus is bound to: keys from constant seeds, a root derived for a given
//! network id exactly as governance deploys it, and the escrow and vault addresses derived from that
//! root. The corpus generator signs with these keys and the checks verify against them, so a case
//! file means the same thing on every machine.

use cocoon_contracts::CellCodec;
use cocoon_contracts::address::{
    NETWORK_ID_MAINNET, NETWORK_ID_TESTNET, escrow_address, root_deployment, root_initial_storage,
    vault_address,
};
use cocoon_contracts::error::CodecError;
use cocoon_contracts::messages::NetworkParams;
use cocoon_ton::{TonAddress, TonHash};
use ed25519_dalek::SigningKey;

/// Seed of the proxy key that signs the corpus' vouchers.
pub const PROXY_SEED: [u8; 32] = [0x11; 32];
/// Seed of the worker key that signs the corpus' receipts.
pub const WORKER_SEED: [u8; 32] = [0x22; 32];
/// Seed of a key nobody trusts (signatures by an impostor).
pub const STRANGER_SEED: [u8; 32] = [0x33; 32];
/// SHA-256 of the request the corpus' receipts cover (any fixed value works).
pub const REQUEST_SHA256: [u8; 32] = [0x0a; 32];
/// SHA-256 of the response the corpus' receipts cover.
pub const RESPONSE_SHA256: [u8; 32] = [0x0b; 32];

/// When the drill certificates are issued: 2026-03-01T00:00:00Z, inside the validity window of the
/// real TDX quote's collateral (2026-02-18 to 2026-03-20).
pub const ISSUED_AT: i64 = 1_772_323_200;
/// The verification time of the certificate and quote drills: an hour after issue.
pub const VERIFY_AT: i64 = ISSUED_AT + 3_600;
/// The simulated image label the drill allowlist admits for workers.
pub const DRILL_IMAGE: &str = "drill-image";
/// The model the HTTP drills' engine and worker serve.
pub const DRILL_MODEL: &str = "drill-model";
/// The client key the replay drills open an in-memory escrow for.
pub const MEMORY_CLIENT_KEY: [u8; 32] = [0xc1; 32];

/// Who the corpus' statements are about and who signed them.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The proxy's signing key.
    pub proxy_key: SigningKey,
    /// The worker's signing key.
    pub worker_key: SigningKey,
    /// A key nobody trusts.
    pub stranger_key: SigningKey,
    /// The network id the root is deployed with (testnet).
    pub network_id: i32,
    /// The root deployed for [`Binding::network_id`].
    pub root: TonAddress,
    /// The same root deployed for mainnet (a different address: the id is part of its data).
    pub root_other_network: TonAddress,
    /// The client (escrow owner).
    pub client: TonAddress,
    /// The proxy's owner address.
    pub proxy: TonAddress,
    /// The worker's address (payout receiver).
    pub worker: TonAddress,
    /// The client's escrow with the proxy under [`Binding::root`].
    pub escrow: TonAddress,
    /// The proxy's vault (proxy-role stake) under [`Binding::root`].
    pub vault: TonAddress,
}

fn address(byte: u8) -> TonAddress {
    TonAddress::new(0, TonHash::from([byte; 32]))
}

/// The network parameters the drill root is deployed with (values matter only for the address).
pub fn drill_params() -> NetworkParams {
    NetworkParams {
        price_per_token: 1_000,
        prompt_mult: 10_000,
        cached_mult: 1_000,
        completion_mult: 10_000,
        reasoning_mult: 10_000,
        worker_share_bps: 9_000,
        min_worker_stake: 1_000_000_000,
        min_proxy_stake: 1_000_000_000,
        unbond_delay: 86_400,
        close_delay: 86_400,
        equivocation_slash_bps: 10_000,
        revoked_slash_bps: 5_000,
        fault_slash_bps: 100,
        reporter_reward_bps: 1_000,
        burn_slashed: true,
        grace_period: 3_600,
        fault_cap: 3,
        fault_period: 86_400,
    }
}

fn root_for(network_id: i32, owner: &TonAddress) -> Result<TonAddress, CodecError> {
    let storage = root_initial_storage(owner.clone(), network_id, drill_params())?;
    Ok(root_deployment(&storage)?.address)
}

impl Binding {
    /// The drill parties (deterministic).
    pub fn drill() -> Result<Binding, CodecError> {
        let owner = address(0x01);
        let root = root_for(NETWORK_ID_TESTNET, &owner)?;
        let root_other_network = root_for(NETWORK_ID_MAINNET, &owner)?;
        let client = address(0xc1);
        let proxy = address(0xb1);
        let worker = address(0xa1);
        let escrow = escrow_address(&root, &client, &proxy)?;
        let vault = vault_address(&root, &proxy)?;
        Ok(Binding {
            proxy_key: SigningKey::from_bytes(&PROXY_SEED),
            worker_key: SigningKey::from_bytes(&WORKER_SEED),
            stranger_key: SigningKey::from_bytes(&STRANGER_SEED),
            network_id: NETWORK_ID_TESTNET,
            root,
            root_other_network,
            client,
            proxy,
            worker,
            escrow,
            vault,
        })
    }

    /// The proxy's public key.
    pub fn proxy_public(&self) -> [u8; 32] {
        self.proxy_key.verifying_key().to_bytes()
    }

    /// The worker's public key.
    pub fn worker_public(&self) -> [u8; 32] {
        self.worker_key.verifying_key().to_bytes()
    }

    /// The escrow's account id (what the off-chain protocol vouchers name).
    pub fn escrow_account(&self) -> [u8; 32] {
        cocoon_contracts::codec::account_id(&self.escrow)
    }

    /// The vault's account id.
    pub fn vault_account(&self) -> [u8; 32] {
        cocoon_contracts::codec::account_id(&self.vault)
    }

    /// BoC of any schema value (helper for the corpus generator).
    pub fn boc_of<T: CellCodec>(value: &T) -> Result<Vec<u8>, CodecError> {
        value.to_boc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_id_changes_the_root_and_so_the_escrow() {
        let b = Binding::drill().expect("binding");
        assert_ne!(b.root, b.root_other_network);
        let other = escrow_address(&b.root_other_network, &b.client, &b.proxy).expect("escrow");
        assert_ne!(other, b.escrow);
        assert_eq!(Binding::drill().expect("again").escrow, b.escrow);
    }
}
