//! Pushed payouts, in process: a proxy on a [`VaultMemoryChain`] and a real worker whose in-memory
//! chain holds the same vault record. The proxy hands each payout voucher it signs to the worker; a
//! worker with an owner wallet claims it (the proxy sends nothing); a worker without one (or whose
//! claim threshold the voucher does not reach), one that refuses, one whose claim did not land within
//! the grace, and one not connected are paid by the proxy. In every case the vault paid exactly the signed cumulative.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::{DevTls, HopTls, Role};
use cocoon_protocol::{Cost, PriceParams};
use cocoon_proxy::{ProxyConfig, ProxyHandle};
use cocoon_testkit::roles::worker::WorkerHandle;
use cocoon_testkit::roles::worker::chain::{StakeView, WorkerChain};
use cocoon_testkit::roles::worker::payouts::ClaimEvent;
use cocoon_testkit::{
    FAKE_MODEL, FakeEngine, MemoryChain, VaultMemoryChain, WorkerMemoryChain, chain_worker_config,
    proxy_config, start_chain_worker,
};
use cocoon_ton::{TonAddress, TonHash};

const MODEL_HASH: [u8; 32] = [0x2b; 32];
const CLIENT: [u8; 32] = [0xc1; 32];
/// What one charge earns the worker, nanoTON.
const EARNED: u128 = 900;

fn addr(byte: u8) -> TonAddress {
    TonAddress::new(0, TonHash::from([byte; 32]))
}

/// How the worker treats vouchers.
#[derive(Clone, Copy)]
enum WorkerMode {
    /// Owner wallet configured, claims any amount at once.
    Claims,
    /// Owner wallet configured, but claims only past an amount no voucher reaches.
    HighThreshold,
    /// Claims, but its claims never reach the proxy's vault (as if its chain API dropped them).
    ClaimsLost,
    /// No owner wallet: keeps vouchers, claims nothing.
    NoWallet,
    /// Its view of the chain lacks the proxy's vault: refuses its vouchers.
    UnknownVault,
}

/// A worker chain on which the worker with `key` may serve (stake, model, and the all-zero image
/// development TLS reports).
fn serving_chain(key: [u8; 32]) -> WorkerMemoryChain {
    let chain = WorkerMemoryChain::new(addr(0x77));
    chain.set_model(MODEL_HASH, Some(FAKE_MODEL));
    chain.set_worker_image([0; 32], 0);
    chain.set_stake(Some(StakeView {
        can_serve: true,
        key,
        staked: 2_000_000_000,
        min_stake: 1_000_000_000,
    }));
    chain
}

struct Net {
    proxy: Option<ProxyHandle>,
    proxy_config: ProxyConfig,
    proxy_tls: Arc<dyn HopTls>,
    /// The worker's own view of the chain (the vault's record unless the mode says otherwise).
    worker_view: WorkerMemoryChain,
    chain: Arc<VaultMemoryChain>,
    vault_view: WorkerMemoryChain,
    worker: Option<WorkerHandle>,
    worker_key: [u8; 32],
    worker_metrics: Arc<Registry>,
    _engine: FakeEngine,
    _dir: tempfile::TempDir,
}

impl Net {
    async fn start(mode: WorkerMode, grace_ms: u64) -> Net {
        cocoon_daemon::init_tracing(false);
        let dir = tempfile::tempdir().unwrap();
        let engine = FakeEngine::start().await.unwrap();
        let proxy_tls: Arc<dyn HopTls> = Arc::new(DevTls::generate(Role::Proxy).unwrap());
        let proxy_key = proxy_tls.identity().public_key;
        let vault = addr(0xa1);
        let chain = Arc::new(VaultMemoryChain::new(
            MemoryChain::new(PriceParams::default(), proxy_key),
            vault.clone(),
        ));
        let config = ProxyConfig {
            payout_threshold_nano: 1,
            payout_self_submit_after_ms: grace_ms,
            ..proxy_config(dir.path())
        };
        let proxy = cocoon_proxy::start(
            config.clone(),
            proxy_tls.clone(),
            chain.clone(),
            chain.clone(),
            Registry::new(),
        )
        .await
        .unwrap();

        let worker_tls: Arc<dyn HopTls> = Arc::new(DevTls::generate(Role::Worker).unwrap());
        let worker_key = worker_tls.identity().public_key;
        // The vault record, shared by the worker's view of the chain and the proxy's settler.
        let vault_view = serving_chain(worker_key);
        vault_view.add_vault(&vault, proxy_key);
        vault_view.set_claims_off(matches!(mode, WorkerMode::NoWallet));
        chain.pay_through(worker_key, Arc::new(vault_view.clone()));
        let worker_view = match mode {
            // A worker whose view of the chain lacks the proxy's vault refuses its vouchers.
            WorkerMode::UnknownVault => serving_chain(worker_key),
            WorkerMode::ClaimsLost => {
                let lost = serving_chain(worker_key);
                lost.add_vault(&vault, proxy_key);
                lost
            }
            _ => vault_view.clone(),
        };

        let mut wconf = chain_worker_config(
            &proxy.worker_addr.to_string(),
            &engine.url(),
            FAKE_MODEL,
            &MODEL_HASH,
        );
        wconf.chain.claim_threshold_nano = match mode {
            WorkerMode::HighThreshold => u64::MAX,
            _ => 0,
        };
        let worker_metrics = Registry::new();
        let worker = start_chain_worker(
            wconf,
            worker_tls,
            PriceParams::default(),
            worker_metrics.clone(),
            Arc::new(worker_view.clone()),
        )
        .unwrap();
        let mut proxy_config = config;
        // A restart reuses the ports, so the worker dials the new proxy.
        proxy_config.client_listen = proxy.client_addr.to_string();
        proxy_config.worker_listen = proxy.worker_addr.to_string();
        let net = Net {
            proxy: Some(proxy),
            proxy_config,
            proxy_tls,
            worker_view,
            chain,
            vault_view,
            worker: Some(worker),
            worker_key,
            worker_metrics,
            _engine: engine,
            _dir: dir,
        };
        net.until("the worker to connect", || net.connected() == 1)
            .await;
        net
    }

    fn proxy(&self) -> &ProxyHandle {
        self.proxy.as_ref().unwrap()
    }

    /// Kills the proxy (a crash) and starts it again on the same ledger and ports.
    async fn restart_proxy(&mut self) {
        self.proxy.take().unwrap().kill().await;
        let proxy = cocoon_proxy::start(
            self.proxy_config.clone(),
            self.proxy_tls.clone(),
            self.chain.clone(),
            self.chain.clone(),
            Registry::new(),
        )
        .await
        .unwrap();
        self.proxy = Some(proxy);
    }

    fn connected(&self) -> usize {
        self.proxy().proxy.workers.all().len()
    }

    async fn until(&self, what: &str, f: impl Fn() -> bool) {
        cocoon_testkit::wait::until(what, f).await;
    }

    /// Records one response's charge (as the request path does) and starts the payouts due.
    async fn earn(&self) {
        let cost = Cost {
            client: 1_000,
            worker: EARNED,
            proxy: 100,
        };
        self.proxy()
            .proxy
            .store
            .charge(CLIENT, self.worker_key, cost)
            .await
            .unwrap();
        assert_eq!(self.proxy().pay_workers_due(), 1, "a payout started");
    }

    fn ledger(&self) -> cocoon_proxy::store::WorkerAccount {
        self.proxy().proxy.store.worker(&self.worker_key).unwrap()
    }

    /// Waits until the ledger records the payout of everything earned.
    async fn until_paid(&self) {
        self.until("the ledger to record the payout", || {
            let a = self.ledger();
            a.paid == a.earned
        })
        .await;
    }

    fn pushes(&self, outcome: &str) -> u64 {
        self.proxy()
            .proxy
            .metrics
            .counter(
                "cocoon_proxy_payout_pushes_total",
                "",
                &[("outcome", outcome)],
            )
            .get()
    }

    fn payouts_by(&self, who: &str) -> u64 {
        self.proxy()
            .proxy
            .metrics
            .counter("cocoon_proxy_payouts_total", "", &[("submitted_by", who)])
            .get()
    }

    fn worker_claims(&self) -> u64 {
        self.worker_metrics
            .counter("cocoon_worker_claims_total", "", &[])
            .get()
    }

    /// No double payment: the vault's record and what reached the owner equal the ledger's last
    /// signed cumulative (seqno and amount).
    async fn assert_vault_paid_exactly_the_ledger(&self) {
        let ledger = self.ledger();
        let record = self
            .vault_view
            .payout_claimed(self.chain.vault())
            .await
            .unwrap();
        assert_eq!(
            record,
            (u32::try_from(ledger.seqno).unwrap(), ledger.earned),
            "vault record vs ledger"
        );
        assert_eq!(self.vault_view.owner_received(), ledger.earned);
        assert_eq!(ledger.paid, ledger.earned);
    }

    fn status_payouts(&self) -> serde_json::Value {
        self.proxy().status()["payouts"].clone()
    }
}

#[tokio::test]
async fn a_worker_with_an_owner_wallet_claims_its_pushed_vouchers_and_the_proxy_sends_nothing() {
    // A grace far longer than the waits below: the proxy must learn of the claim from the vault.
    let net = Net::start(WorkerMode::Claims, 60_000).await;
    for round in 1..=2u64 {
        let started = Instant::now();
        net.earn().await;
        net.until_paid().await;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "paid through the worker's claim, not after the grace"
        );
        assert_eq!(net.pushes("claims"), round);
        assert_eq!(
            net.worker_claims(),
            round,
            "the worker claimed each voucher"
        );
        assert_eq!(net.payouts_by("worker"), round);
        net.assert_vault_paid_exactly_the_ledger().await;
    }
    assert!(
        net.chain.submitted().is_empty(),
        "the proxy submitted nothing"
    );
    assert_eq!(net.payouts_by("proxy"), 0);
    assert_eq!(net.vault_view.claims().len(), 2);
    assert_eq!(net.vault_view.owner_received(), 2 * EARNED);
    assert_eq!(
        net.status_payouts(),
        serde_json::json!({"pushed": 2, "not_pushed": 0, "claimed_by_worker": 2, "self_submitted": 0})
    );
}

#[tokio::test]
async fn a_worker_that_will_not_claim_is_paid_by_the_proxy_at_once() {
    // No owner wallet, or a claim threshold the voucher does not reach: the worker keeps the
    // voucher but says it will not claim it.
    for mode in [WorkerMode::NoWallet, WorkerMode::HighThreshold] {
        let net = Net::start(mode, 60_000).await;
        let started = Instant::now();
        net.earn().await;
        net.until_paid().await;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no grace for a worker that will not claim"
        );
        assert_eq!(net.pushes("kept_no_claims"), 1);
        assert_eq!(net.chain.submitted().len(), 1, "the proxy submitted it");
        assert_eq!(net.worker_claims(), 0);
        net.assert_vault_paid_exactly_the_ledger().await;
        // The worker kept the voucher; its next pass finds it paid and drops it without a claim.
        let events = net.worker.as_ref().unwrap().claim_now().await;
        assert!(
            matches!(&events[..], [ClaimEvent::AlreadyClaimed { .. }]),
            "{events:?}"
        );
        assert_eq!(net.worker_claims(), 0);
        assert_eq!(net.vault_view.owner_received(), EARNED);
        assert_eq!(
            net.status_payouts(),
            serde_json::json!({"pushed": 1, "not_pushed": 0, "claimed_by_worker": 0, "self_submitted": 1})
        );
    }
}

#[tokio::test]
async fn a_worker_that_refuses_the_voucher_is_paid_by_the_proxy_at_once() {
    let net = Net::start(WorkerMode::UnknownVault, 60_000).await;
    net.earn().await;
    net.until_paid().await;
    assert_eq!(net.pushes("refused"), 1);
    assert_eq!(net.chain.submitted().len(), 1);
    net.assert_vault_paid_exactly_the_ledger().await;
    assert_eq!(net.status_payouts()["not_pushed"], 1);
}

#[tokio::test]
async fn a_claim_that_does_not_land_within_the_grace_is_submitted_by_the_proxy_then_a_gone_worker_paid_at_once()
 {
    const GRACE: Duration = Duration::from_millis(3_000);
    let mut net = Net::start(WorkerMode::ClaimsLost, 3_000).await;
    let started = Instant::now();
    net.earn().await;
    net.until("the worker to take the voucher", || {
        net.pushes("claims") == 1
    })
    .await;
    // The worker took it and says it claims, but no claim reaches the vault; then it goes away.
    net.worker.take().unwrap().kill().await;
    net.until("the proxy to see the worker gone", || net.connected() == 0)
        .await;
    net.until_paid().await;
    assert!(
        started.elapsed() >= GRACE,
        "the proxy waited the grace before submitting: {:?}",
        started.elapsed()
    );
    assert_eq!(net.chain.submitted().len(), 1);
    assert_eq!(net.payouts_by("proxy"), 1);
    assert_eq!(net.payouts_by("worker"), 0);
    net.assert_vault_paid_exactly_the_ledger().await;

    // Earned more while gone: not connected, so the proxy pays at once.
    let started = Instant::now();
    net.earn().await;
    net.until_paid().await;
    assert!(
        started.elapsed() < GRACE,
        "no grace for a worker that is not connected: {:?}",
        started.elapsed()
    );
    assert_eq!(net.pushes("not_connected"), 1);
    assert_eq!(net.chain.submitted().len(), 2);
    net.assert_vault_paid_exactly_the_ledger().await;
    assert_eq!(net.vault_view.owner_received(), 2 * EARNED);
    assert_eq!(
        net.status_payouts(),
        serde_json::json!({"pushed": 1, "not_pushed": 1, "claimed_by_worker": 0, "self_submitted": 2})
    );
}

#[tokio::test]
async fn a_restarted_proxy_signs_the_very_voucher_the_worker_holds() {
    // The voucher signs the ledger's committed (seqno, earned), and signing is deterministic: a
    // proxy killed after the push signs the same bytes again, never a second statement for the
    // same seqno.
    let mut net = Net::start(WorkerMode::ClaimsLost, 60_000).await;
    net.earn().await;
    net.until("the worker to claim on its own chain", || {
        net.worker_view.claims().len() == 1
    })
    .await;
    let held = net.worker_view.claims()[0].clone();
    net.restart_proxy().await;
    // Issue 14 item 7: the restarted proxy pays the worker that is due on its own, right after
    // start (its settlement loop), without the worker earning again and without being asked.
    net.until_paid().await;
    // Whether the worker had reconnected yet (it then says it claimed already) or not, the proxy
    // submitted it: the very voucher the worker holds.
    assert_eq!(
        net.pushes("kept_no_claims") + net.pushes("not_connected"),
        1
    );
    assert_eq!(net.chain.submitted(), vec![held], "the same signed voucher");
    assert_eq!(net.proxy().pay_workers_due(), 0, "nothing left due");
    net.assert_vault_paid_exactly_the_ledger().await;
}
