//! What the proxy needs from the chain, as traits: [`ChainView`] (read) and [`Settler`] (write).
//!
//! The contract wrappers (`cocoon-onchain` over `cocoon-contracts`) implement them against toncenter
//! or the devnet; [`InsecureDevChain`] implements both in memory for the insecure development mode
//! without a chain. Test doubles live in `cocoon-testkit`.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Mutex;

use cocoon_contracts::statements::{SignedCharge, SignedPayout};
use cocoon_daemon::tls::PeerIdentity;
use cocoon_protocol::PriceParams;
use cocoon_protocol::voucher::{ChargeVoucher, PayoutVoucher, SignedVoucher};
use cocoon_ton::TonAddress;

/// A boxed future (object-safe async trait methods without extra dependencies).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A client's escrow as the chain sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscrowInfo {
    /// Account id of the escrow contract (vouchers are bound to it).
    pub escrow: [u8; 32],
    /// Credit the escrow guarantees now: the locked stake, net of charges already settled, nanoTON.
    pub credit: u128,
    /// The cumulative charge the escrow has accepted, nanoTON.
    pub settled: u128,
}

/// An escrow's lifecycle as the chain shows it.
pub use cocoon_onchain::EscrowPhase;

/// An escrow by account id, in any state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscrowStatus {
    /// Its phase.
    pub phase: EscrowPhase,
    /// The cumulative charge the escrow has accepted, nanoTON.
    pub settled: u128,
    /// The client key the escrow admits now (a change is a rotation).
    pub client_key: Option<[u8; 32]>,
}

/// Why a peer's key could not be bound to the wallet it announced.
pub use cocoon_onchain::BindError;

/// Read access to chain state. Implementations answer from a cache they refresh; calls must be cheap
/// (the `bind_*` calls read the chain only for a key not yet bound, and never per request).
pub trait ChainView: Send + Sync + 'static {
    /// Current network price parameters.
    fn params(&self) -> PriceParams;
    /// Network id vouchers are bound to.
    fn network_id(&self) -> i32;
    /// The open escrow of the client with this key, with this proxy.
    fn escrow(&self, client_key: &[u8; 32]) -> Option<EscrowInfo>;
    /// Whether a worker may serve: image allowed for the worker role, stake at least the minimum.
    fn worker_allowed(&self, worker: &PeerIdentity) -> bool;
    /// The state marker this proxy last committed on chain (0 if none).
    fn committed_marker(&self) -> u64;
    /// Account id of the contract that pays workers.
    fn payer(&self) -> [u8; 32];

    /// The ledger account of a client key: its escrow's account id, whatever state the escrow is
    /// in (a charge for a request served while the escrow started closing is still recorded). One
    /// escrow is one account, so a rotated client key continues the same cumulative series.
    fn client_account(&self, client_key: &[u8; 32]) -> Option<[u8; 32]> {
        self.escrow(client_key).map(|e| e.escrow)
    }

    /// The ledger account a worker key earns into: its payee (the owner wallet's account id where
    /// the chain binds workers to wallets; the key itself otherwise). Payouts are keyed by the payee
    /// on chain, so a worker whose owner rotates its key continues the same payout series.
    fn payee(&self, worker_key: &[u8; 32]) -> [u8; 32] {
        *worker_key
    }

    /// What the chain shows of an escrow by its account id, in any state (`None`: not known). The
    /// periodic settlement reads it to settle an escrow that is closing before its close delay ends.
    fn escrow_status(&self, _escrow: &[u8; 32]) -> Option<EscrowStatus> {
        None
    }

    /// Binds a worker's key to the owner wallet it announced, once the chain shows that owner's
    /// worker stake bound to this key (a chain without wallets: nothing to bind). `peer` is the
    /// connection's IP address: each peer has its own share of the lookup budget.
    fn bind_worker<'a>(
        &'a self,
        _worker_key: [u8; 32],
        _owner: &'a str,
        _peer: IpAddr,
    ) -> BoxFuture<'a, Result<(), BindError>> {
        Box::pin(async { Ok(()) })
    }

    /// Admits a client key: bound already, or bound now to the wallet it announced once that
    /// wallet's escrow holds this key (a chain without wallets: nothing to bind). `peer` is the
    /// connection's IP address: each peer has its own share of the lookup budget.
    fn bind_client<'a>(
        &'a self,
        _client_key: [u8; 32],
        _wallet: Option<&'a str>,
        _peer: IpAddr,
    ) -> BoxFuture<'a, Result<(), BindError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Settlement failures.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// The chain refused the message.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The chain could not be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Write access: submits signed vouchers and the state marker.
pub trait Settler: Send + Sync + 'static {
    /// Submits the latest cumulative charge of one escrow.
    fn submit_charge(
        &self,
        voucher: SignedVoucher<ChargeVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>>;
    /// Submits the latest cumulative payout of one worker.
    fn submit_payout(
        &self,
        voucher: SignedVoucher<PayoutVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>>;
    /// Commits the store's monotonic marker (detects a rolled-back store at the next start).
    fn commit_marker(&self, marker: u64) -> BoxFuture<'_, Result<(), SettleError>>;

    /// Where an escrow's charges go in the contracts' format (its address, from its account id),
    /// when this settler takes vouchers the proxy signs in that format; `None`: the ledger's
    /// vouchers ([`Settler::submit_charge`]).
    fn charge_target(&self, _escrow: &[u8; 32]) -> Option<TonAddress> {
        None
    }

    /// The vault and payout wallet of this worker, when this settler takes payout vouchers in the
    /// contracts' format; `None`: the ledger's vouchers ([`Settler::submit_payout`]).
    fn payout_target(&self, _worker_key: &[u8; 32]) -> Option<(TonAddress, TonAddress)> {
        None
    }

    /// The vault's record of the last payout to a worker's wallet, `(seqno, paid)` (`(0, 0)`: none),
    /// read now: whether a worker claimed a voucher it was handed (see [`Settler::payout_target`]).
    fn payout_record<'a>(
        &'a self,
        _vault: &'a TonAddress,
        _worker: &'a TonAddress,
    ) -> BoxFuture<'a, Result<(u32, u128), SettleError>> {
        Box::pin(async {
            Err(SettleError::Unavailable(
                "payout records not readable".into(),
            ))
        })
    }

    /// Submits a charge the proxy signed in the contracts' format (see [`Settler::charge_target`]).
    fn submit_charge_statement(
        &self,
        _signed: SignedCharge,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async {
            Err(SettleError::Rejected(
                "contract statements not supported".into(),
            ))
        })
    }

    /// Submits a payout the proxy signed in the contracts' format (see [`Settler::payout_target`]).
    fn submit_payout_statement(
        &self,
        _signed: SignedPayout,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async {
            Err(SettleError::Rejected(
                "contract statements not supported".into(),
            ))
        })
    }
}

/// INSECURE development chain (`cocoon proxy run --dev-client-credit`): no chain at all. Every
/// client gets an escrow with `credit` nanoTON on first sight, every worker may serve, and
/// settlements only update this in-memory view (vouchers are still verified against the proxy's
/// key and must not go down, so the proxy's settling runs as it would on chain). A restart forgets
/// it all. Never for production: it admits everyone.
#[derive(Debug)]
pub struct InsecureDevChain {
    params: PriceParams,
    proxy_key: [u8; 32],
    credit: u128,
    books: Mutex<DevBooks>,
}

#[derive(Debug, Default)]
struct DevBooks {
    escrows: HashMap<[u8; 32], EscrowInfo>,
    paid: HashMap<[u8; 32], u128>,
    marker: u64,
}

/// The escrow id the development chain gives a client: its key with the last byte replaced, so
/// that vouchers name an escrow distinct from the client key.
pub fn dev_escrow_id(client_key: &[u8; 32]) -> [u8; 32] {
    let mut escrow = *client_key;
    escrow[31] = 0xe5;
    escrow
}

impl InsecureDevChain {
    /// A development chain pricing with `params`, taking vouchers signed by `proxy_key`, giving
    /// each new client `credit` nanoTON.
    pub fn new(params: PriceParams, proxy_key: [u8; 32], credit: u128) -> Self {
        InsecureDevChain {
            params,
            proxy_key,
            credit,
            books: Mutex::new(DevBooks::default()),
        }
    }

    fn books(&self) -> std::sync::MutexGuard<'_, DevBooks> {
        self.books.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ChainView for InsecureDevChain {
    fn params(&self) -> PriceParams {
        self.params
    }
    fn network_id(&self) -> i32 {
        DEV_NETWORK_ID
    }
    fn escrow(&self, client_key: &[u8; 32]) -> Option<EscrowInfo> {
        let credit = self.credit;
        let mut books = self.books();
        let escrow = books.escrows.entry(*client_key).or_insert(EscrowInfo {
            escrow: dev_escrow_id(client_key),
            credit,
            settled: 0,
        });
        Some(*escrow)
    }
    fn worker_allowed(&self, _worker: &PeerIdentity) -> bool {
        true
    }
    fn committed_marker(&self) -> u64 {
        self.books().marker
    }
    fn payer(&self) -> [u8; 32] {
        DEV_PAYER
    }
}

/// Network id the development chain binds vouchers to (no real network uses it).
pub const DEV_NETWORK_ID: i32 = -3;
/// Account id of the development chain's paying contract.
pub const DEV_PAYER: [u8; 32] = [0xaa; 32];

impl Settler for InsecureDevChain {
    fn submit_charge(
        &self,
        v: SignedVoucher<ChargeVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move {
            v.verify(&self.proxy_key)
                .map_err(|e| SettleError::Rejected(e.to_string()))?;
            let mut books = self.books();
            let entry = books
                .escrows
                .values_mut()
                .find(|e| e.escrow == v.voucher.escrow)
                .ok_or_else(|| SettleError::Rejected("unknown escrow".into()))?;
            apply_charge(entry, v.voucher.cumulative_nano)
        })
    }
    fn submit_payout(
        &self,
        v: SignedVoucher<PayoutVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move {
            v.verify(&self.proxy_key)
                .map_err(|e| SettleError::Rejected(e.to_string()))?;
            let mut books = self.books();
            let paid = books.paid.entry(v.voucher.worker_key).or_default();
            raise_payout(paid, v.voucher.cumulative_nano)
        })
    }
    fn commit_marker(&self, marker: u64) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move { raise_marker(&mut self.books().marker, marker) })
    }
}

/// Applies a cumulative charge to an escrow as the escrow contract does: the charge may not go
/// down, and the credit shrinks by what is new.
pub fn apply_charge(escrow: &mut EscrowInfo, cumulative_nano: u128) -> Result<(), SettleError> {
    let delta = cumulative_nano
        .checked_sub(escrow.settled)
        .ok_or_else(|| SettleError::Rejected("cumulative charge went down".into()))?;
    escrow.credit = escrow.credit.saturating_sub(delta);
    escrow.settled = cumulative_nano;
    Ok(())
}

/// Raises a worker's cumulative payout as the paying contract does: it may not go down.
pub fn raise_payout(paid: &mut u128, cumulative_nano: u128) -> Result<(), SettleError> {
    if cumulative_nano < *paid {
        return Err(SettleError::Rejected("cumulative payout went down".into()));
    }
    *paid = cumulative_nano;
    Ok(())
}

/// Raises the committed state marker as the proxy's contract does: it may not go down.
pub fn raise_marker(held: &mut u64, marker: u64) -> Result<(), SettleError> {
    if marker < *held {
        return Err(SettleError::Rejected("marker went down".into()));
    }
    *held = marker;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn charge(
        key: &SigningKey,
        client: &[u8; 32],
        seqno: u64,
        cumulative: u128,
    ) -> SignedVoucher<ChargeVoucher> {
        let voucher = ChargeVoucher {
            network_id: DEV_NETWORK_ID,
            escrow: dev_escrow_id(client),
            seqno,
            cumulative_nano: cumulative,
        };
        SignedVoucher::sign(voucher, key)
    }

    #[tokio::test]
    async fn the_dev_chain_credits_anyone_and_settles_only_what_the_proxy_signed() {
        let proxy = SigningKey::from_bytes(&[7; 32]);
        let chain = InsecureDevChain::new(
            PriceParams::default(),
            proxy.verifying_key().to_bytes(),
            1_000,
        );
        let client = [3; 32];
        assert_eq!(chain.escrow(&client).map(|e| e.credit), Some(1_000));
        chain
            .submit_charge(charge(&proxy, &client, 1, 300))
            .await
            .unwrap();
        let escrow = chain.escrow(&client).unwrap();
        assert_eq!((escrow.credit, escrow.settled), (700, 300));
        // Going down, or signed by another key, is refused and changes nothing.
        assert!(
            chain
                .submit_charge(charge(&proxy, &client, 2, 200))
                .await
                .is_err()
        );
        let stranger = SigningKey::from_bytes(&[8; 32]);
        assert!(
            chain
                .submit_charge(charge(&stranger, &client, 3, 900))
                .await
                .is_err()
        );
        assert_eq!(chain.escrow(&client).unwrap().credit, 700);
        chain.commit_marker(5).await.unwrap();
        assert!(chain.commit_marker(4).await.is_err());
        assert_eq!(chain.committed_marker(), 5);
    }
}
