//! What the proxy needs from the chain, as traits: [`ChainView`] (read) and [`Settler`] (write).
//!
//! The contract wrappers (`cocoon-contracts` over `cocoon-ton`) implement them against toncenter or the
//! devnet; [`MemoryChain`] implements both in memory for tests and for running without a chain.

use std::collections::HashMap;
use std::future::Future;
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

    /// Binds a worker's key to the owner wallet it announced, once the chain shows that owner's
    /// worker stake bound to this key (a chain without wallets: nothing to bind).
    fn bind_worker<'a>(
        &'a self,
        _worker_key: [u8; 32],
        _owner: &'a str,
    ) -> BoxFuture<'a, Result<(), BindError>> {
        Box::pin(async { Ok(()) })
    }

    /// Admits a client key: bound already, or bound now to the wallet it announced once that
    /// wallet's escrow holds this key (a chain without wallets: nothing to bind).
    fn bind_client<'a>(
        &'a self,
        _client_key: [u8; 32],
        _wallet: Option<&'a str>,
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

    /// Where this client's charges go in the contracts' format (its escrow), when this settler
    /// takes vouchers the proxy signs in that format; `None`: the ledger's vouchers
    /// ([`Settler::submit_charge`]).
    fn charge_target(&self, _client_key: &[u8; 32]) -> Option<TonAddress> {
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

/// In-memory chain: escrows, allowed workers, and a log of every settlement.
#[derive(Debug)]
pub struct MemoryChain {
    params: PriceParams,
    proxy_key: [u8; 32],
    inner: Mutex<MemoryChainState>,
}

/// What [`MemoryChain`] has recorded.
#[derive(Debug, Default, Clone)]
pub struct MemoryChainState {
    /// Escrows by client key.
    pub escrows: HashMap<[u8; 32], EscrowInfo>,
    /// Accepted charge vouchers, in order.
    pub charges: Vec<ChargeVoucher>,
    /// Accepted payout vouchers, in order.
    pub payouts: Vec<PayoutVoucher>,
    /// Last committed marker.
    pub marker: u64,
    /// When set, only these worker keys may serve.
    pub allowed_workers: Option<Vec<[u8; 32]>>,
    /// Cumulative payout per worker.
    pub paid: HashMap<[u8; 32], u128>,
}

impl MemoryChain {
    /// An empty chain with these parameters; `proxy_key` verifies submitted vouchers.
    pub fn new(params: PriceParams, proxy_key: [u8; 32]) -> Self {
        MemoryChain {
            params,
            proxy_key,
            inner: Mutex::new(MemoryChainState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryChainState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens an escrow for `client_key` with `credit` nanoTON.
    pub fn open_escrow(&self, client_key: [u8; 32], credit: u128) {
        let mut escrow = [0u8; 32];
        escrow[..31].copy_from_slice(&client_key[..31]);
        escrow[31] = 0xe5;
        self.lock().escrows.insert(
            client_key,
            EscrowInfo {
                escrow,
                credit,
                settled: 0,
            },
        );
    }

    /// Restricts serving to these worker keys.
    pub fn allow_only_workers(&self, keys: Vec<[u8; 32]>) {
        self.lock().allowed_workers = Some(keys);
    }

    /// Sets the committed marker directly (to simulate a chain ahead of a restored store).
    pub fn set_marker(&self, marker: u64) {
        self.lock().marker = marker;
    }

    /// A copy of the recorded state.
    pub fn snapshot(&self) -> MemoryChainState {
        self.lock().clone()
    }
}

impl ChainView for MemoryChain {
    fn params(&self) -> PriceParams {
        self.params
    }
    fn network_id(&self) -> i32 {
        -3
    }
    fn escrow(&self, client_key: &[u8; 32]) -> Option<EscrowInfo> {
        self.lock().escrows.get(client_key).copied()
    }
    fn worker_allowed(&self, worker: &PeerIdentity) -> bool {
        self.lock()
            .allowed_workers
            .as_ref()
            .is_none_or(|keys| keys.contains(&worker.public_key))
    }
    fn committed_marker(&self) -> u64 {
        self.lock().marker
    }
    fn payer(&self) -> [u8; 32] {
        [0xaa; 32]
    }
}

impl Settler for MemoryChain {
    fn submit_charge(
        &self,
        v: SignedVoucher<ChargeVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move {
            v.verify(&self.proxy_key)
                .map_err(|e| SettleError::Rejected(e.to_string()))?;
            let mut st = self.lock();
            let entry = st
                .escrows
                .values_mut()
                .find(|e| e.escrow == v.voucher.escrow)
                .ok_or_else(|| SettleError::Rejected("unknown escrow".into()))?;
            let delta = v
                .voucher
                .cumulative_nano
                .checked_sub(entry.settled)
                .ok_or_else(|| SettleError::Rejected("cumulative charge went down".into()))?;
            entry.credit = entry.credit.saturating_sub(delta);
            entry.settled = v.voucher.cumulative_nano;
            st.charges.push(v.voucher);
            Ok(())
        })
    }
    fn submit_payout(
        &self,
        v: SignedVoucher<PayoutVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move {
            v.verify(&self.proxy_key)
                .map_err(|e| SettleError::Rejected(e.to_string()))?;
            let mut st = self.lock();
            let paid = st.paid.entry(v.voucher.worker_key).or_default();
            if v.voucher.cumulative_nano < *paid {
                return Err(SettleError::Rejected("cumulative payout went down".into()));
            }
            *paid = v.voucher.cumulative_nano;
            st.payouts.push(v.voucher);
            Ok(())
        })
    }
    fn commit_marker(&self, marker: u64) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move {
            let mut st = self.lock();
            if marker < st.marker {
                return Err(SettleError::Rejected("marker went down".into()));
            }
            st.marker = marker;
            Ok(())
        })
    }
}

/// Development chain: a [`MemoryChain`] that opens an escrow with a fixed credit for any client on
/// first sight. Never for production: it admits everyone.
#[derive(Debug)]
pub struct OpenChain {
    inner: MemoryChain,
    credit: u128,
}

impl OpenChain {
    /// Wraps `inner`; unknown clients get `credit` nanoTON.
    pub fn new(inner: MemoryChain, credit: u128) -> Self {
        OpenChain { inner, credit }
    }
}

impl ChainView for OpenChain {
    fn params(&self) -> PriceParams {
        self.inner.params()
    }
    fn network_id(&self) -> i32 {
        self.inner.network_id()
    }
    fn escrow(&self, client_key: &[u8; 32]) -> Option<EscrowInfo> {
        if let Some(e) = self.inner.escrow(client_key) {
            return Some(e);
        }
        self.inner.open_escrow(*client_key, self.credit);
        self.inner.escrow(client_key)
    }
    fn worker_allowed(&self, worker: &PeerIdentity) -> bool {
        self.inner.worker_allowed(worker)
    }
    fn committed_marker(&self) -> u64 {
        self.inner.committed_marker()
    }
    fn payer(&self) -> [u8; 32] {
        self.inner.payer()
    }
}

impl Settler for OpenChain {
    fn submit_charge(
        &self,
        v: SignedVoucher<ChargeVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        self.inner.submit_charge(v)
    }
    fn submit_payout(
        &self,
        v: SignedVoucher<PayoutVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        self.inner.submit_payout(v)
    }
    fn commit_marker(&self, marker: u64) -> BoxFuture<'_, Result<(), SettleError>> {
        self.inner.commit_marker(marker)
    }
}
