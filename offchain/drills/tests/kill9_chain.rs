//! The kill -9 proxy drill against the chain (`make drills`; ignored by `cargo test`: it needs the
//! `cocoon-proxy` binary built first, a devnet, and takes tens of seconds).
//!
//! A devnet (`cocoon_devnet`) is bootstrapped as `cocoon-localnet` does it (root, simulated image and
//! model allowed, proxy and worker stakes, proxy registered in the root, client escrow), with the
//! daemons' configs from `cocoon_localnet::daemons::configs`. The proxy is the real `cocoon-proxy`
//! binary in its own OS process, with `[chain]` on the devnet and `[tls] mode = "simulated"` (RA-TLS
//! with software quotes: its key comes from a key file, so it keeps its registered identity across
//! restarts). Worker and gateway run in this process, built from their configs (the gateway finds
//! the proxy in the root and pins its key). Load tasks send streamed and non-streamed completions
//! while the proxy is SIGKILLed and restarted on the same ledger and ports; thresholds are low, so
//! charges settle and payouts go on chain all along, and kills land in the middle of settlements.
//!
//! At the end the proxy is stopped, built once more in this process on the same ledger (as its binary
//! builds it) and everything left is settled (`cocoon_proxy::onchain::settle_ledger`). Then:
//!
//! - escrow `charged` on chain == charges in the proxy's ledger == verified receipts at the client +
//!   responses cut by a kill (charged, receipt never delivered), at most one per in-flight request
//!   per kill; every charge of the same amount (identical requests), so nothing counted twice;
//! - the worker's payout on chain (vault record and `paid_out`) == its earnings in the ledger.
//!
//! Environment: `COCOON_PROXY_BIN` (default: `cocoon-proxy` next to this test's `deps/` directory),
//! `COCOON_KILLS` (default 5).

#![allow(clippy::unwrap_used, clippy::expect_used)] // drill harness: a failed step should panic

mod proxy_process;

use std::path::Path;

use proxy_process::spawn_proxy;
use std::sync::Arc;
use std::time::Duration;

use cocoon_contracts::address::{escrow_address, vault_address};
use cocoon_contracts::chain::RootHandle;
use cocoon_contracts::codec::account_id;
use cocoon_contracts::messages::ProxyInfo;
use cocoon_contracts::state::{EscrowStorage, ROLE_PROXY, ROLE_WORKER, StakeStorage};
use cocoon_daemon::launch::Daemon;
use cocoon_devnet::Devnet;
use cocoon_localnet::daemons::{self, Keys, Parties};
use cocoon_localnet::localnet::DEVNET_NETWORK_ID;
use cocoon_onchain::bootstrap::{dev_params, wallet_for_key};
use cocoon_onchain::tx::fetch_state;
use cocoon_proxy::ProxyConfig;
use cocoon_testkit::load::ChatLoad;
use cocoon_ton::{Network, TonClient};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

const TON: u128 = 1_000_000_000;
const CONCURRENCY: usize = 6;
/// Settle a client's charges once they reach 1 bp of its 3 TON credit (300,000 nanoTON).
const CHARGE_THRESHOLD_BPS: u32 = 1;
/// Pay the worker once it is owed this much.
const PAYOUT_THRESHOLD: u64 = 100_000;

/// How long the load may take to make progress after a restart.
const PROGRESS_WAIT: Duration = Duration::from_secs(60);

fn write_config(path: &Path, config: &ProxyConfig) {
    std::fs::write(path, toml::to_string(config).expect("proxy config as TOML")).unwrap();
}

struct Chain {
    devnet: Devnet,
    client: Arc<dyn TonClient>,
    parties: Parties,
    keys: Keys,
    root: RootHandle,
}

/// Devnet, wallets, root, allowlists and both stakes (before the proxy runs).
async fn bootstrap(model: &str) -> Chain {
    let (devnet, client) = cocoon_testkit::devnet::start_devnet(2).await;
    let c = client.as_ref();
    let mut rng = rand::rngs::OsRng;
    let keys = Keys {
        proxy: SigningKey::generate(&mut rng),
        worker: SigningKey::generate(&mut rng),
        client: SigningKey::generate(&mut rng),
        operator: SigningKey::generate(&mut rng),
    };
    let wallet = |key: &SigningKey| wallet_for_key(key, Network::Testnet).unwrap();
    let parties = Parties {
        governance: wallet(&SigningKey::generate(&mut rng)),
        proxy_operator: wallet(&keys.operator),
        gpu_owner: wallet(&SigningKey::generate(&mut rng)),
        client: wallet(&SigningKey::generate(&mut rng)),
    };
    for w in [
        &parties.governance,
        &parties.proxy_operator,
        &parties.gpu_owner,
        &parties.client,
    ] {
        devnet.fund(w.address_friendly(), 100 * TON).await.unwrap();
    }
    let gov = &parties.governance;
    let (root, _) = RootHandle::deploy(c, gov, DEVNET_NETWORK_ID, dev_params(), TON)
        .await
        .unwrap();
    let image = daemons::simulated_tls().simulated_image_hash();
    for role in [ROLE_WORKER, ROLE_PROXY] {
        root.set_image(c, gov, role, image, true).await.unwrap();
    }
    let model_hash: [u8; 32] = Sha256::digest(model.as_bytes()).into();
    root.set_model(c, gov, model_hash, Some(model.to_owned()))
        .await
        .unwrap();
    let proxy_pub = keys.proxy.verifying_key().to_bytes();
    root.open_stake(c, &parties.proxy_operator, ROLE_PROXY, proxy_pub, 2 * TON)
        .await
        .unwrap();
    let worker_pub = keys.worker.verifying_key().to_bytes();
    root.open_stake(c, &parties.gpu_owner, ROLE_WORKER, worker_pub, 2 * TON)
        .await
        .unwrap();
    Chain {
        devnet,
        client,
        parties,
        keys,
        root,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the cocoon-proxy binary and the devnet; run with `make drills`"]
async fn kill9_the_chain_backed_proxy_under_load_settles_exactly_its_charges() {
    let kills: usize = std::env::var("COCOON_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let model = cocoon_engine::FIXED_MODEL_ID.to_owned();
    let chain = bootstrap(&model).await;
    let c = chain.client.as_ref();
    let engine = cocoon_engine::start(cocoon_engine::EngineConfig::fixed())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model_hash = hex::encode(Sha256::digest(model.as_bytes()));
    let mut configs = daemons::configs(
        dir.path(),
        &chain.keys,
        chain.devnet.url(),
        &chain.root.address,
        &chain.parties,
        &engine.url(),
        &model,
        &model_hash,
    )
    .unwrap();
    let proxy_config = &mut configs.proxy;
    proxy_config.charge_threshold_bps = CHARGE_THRESHOLD_BPS;
    proxy_config.payout_threshold_nano = PAYOUT_THRESHOLD;
    proxy_config.announce_poll_ms = 50;
    proxy_config.chain.refresh_ms = 300;
    proxy_config.chain.settle_wait_ms = 20_000;
    let config_file = dir.path().join("proxy.toml");
    write_config(&config_file, proxy_config);
    let (mut proxy, addrs) = spawn_proxy(&config_file, &[], false);
    assert_eq!(addrs["tee"], "simulated");
    let proxy_key = hex::encode(chain.keys.proxy.verifying_key().to_bytes());
    assert_eq!(addrs["key"], proxy_key.as_str(), "the key file's identity");
    let client_addr = addrs["client_addr"].as_str().unwrap().to_owned();
    let worker_addr = addrs["worker_addr"].as_str().unwrap().to_owned();
    // Restarts take the same ports, so the worker and the gateway find the proxy again.
    proxy_config.client_listen = client_addr.clone();
    proxy_config.worker_listen = worker_addr.clone();
    write_config(&config_file, proxy_config);

    // Register the proxy where it listens, then open the client's escrow with it.
    let (gov, parties) = (&chain.parties.governance, &chain.parties);
    chain
        .root
        .set_proxy(
            c,
            gov,
            parties.proxy_operator.address(),
            Some(ProxyInfo {
                key: chain.keys.proxy.verifying_key().to_bytes(),
                endpoints: client_addr.clone(),
            }),
        )
        .await
        .unwrap();
    // The vault was opened before the proxy was registered: it pays out against the registered key
    // only once the root sends it.
    let operator = parties.proxy_operator.address();
    chain.root.sync_vault_key(c, gov, operator).await.unwrap();
    chain
        .root
        .open_escrow(
            c,
            &parties.client,
            parties.proxy_operator.address(),
            3 * TON,
            chain.keys.client.verifying_key().to_bytes(),
            20 * TON,
        )
        .await
        .unwrap();
    let escrow = escrow_address(
        &chain.root.address,
        parties.client.address(),
        parties.proxy_operator.address(),
    )
    .unwrap();
    let vault = vault_address(&chain.root.address, parties.proxy_operator.address()).unwrap();

    let mut worker_config = configs.worker.clone();
    worker_config.proxies = vec![worker_addr.clone()];
    // The worker's simulated RTMR3 measures its configuration (issue 15): allow that image.
    let worker_image = daemons::measured_worker_image(&worker_config).unwrap();
    chain
        .root
        .set_image(c, gov, ROLE_WORKER, worker_image, true)
        .await
        .unwrap();
    let worker = cocoon_worker::daemon::build(worker_config, &Default::default())
        .await
        .unwrap();
    let worker_key = worker.handle.state_key();
    let mut gateway_config = configs.gateway.clone();
    gateway_config.receipts_kept = 1_000_000;
    let gateway = cocoon_gateway::daemon::build(gateway_config, false)
        .await
        .unwrap();
    assert_eq!(
        gateway.proxy.0, client_addr,
        "the gateway found the proxy in the root"
    );
    let client_key = chain.keys.client.verifying_key().to_bytes();
    let base = format!("http://{}", gateway.handle.addr);

    let load = ChatLoad::start(&base, &model, CONCURRENCY, Duration::from_millis(50));
    for round in 0..kills {
        // Let load run until some requests have completed since the last restart.
        let before = load.tally().ok();
        assert!(
            load.tally()
                .reach(before + 20 + 7 * round as u64, PROGRESS_WAIT)
                .await,
            "no progress before kill {round}"
        );
        proxy.kill9();
        tokio::time::sleep(Duration::from_millis(50)).await;
        proxy = spawn_proxy(&config_file, &[], false).0;
    }
    // Recovery: requests succeed again after the last restart.
    let after_last = load.tally().ok();
    let recovered = load.tally().reach(after_last + 20, PROGRESS_WAIT).await;
    let tally = load.stop().await;
    assert!(recovered, "no recovery after the last restart");
    proxy.terminate();

    // What the chain saw while the proxy was being killed.
    let escrow_mid: EscrowStorage = fetch_state(c, &escrow).await.unwrap().unwrap();
    let vault_mid: StakeStorage = fetch_state(c, &vault).await.unwrap().unwrap();

    // Settle what is left: the proxy built once more on the same ledger, as its binary builds it.
    let mut final_config = configs.proxy.clone();
    final_config.client_listen = "127.0.0.1:0".into();
    final_config.worker_listen = "127.0.0.1:0".into();
    let last =
        cocoon_proxy::daemon::build(final_config, &cocoon_proxy::daemon::RunOptions::default())
            .await
            .unwrap();
    let parts = last.chain.clone().expect("chain mode");
    cocoon_proxy::onchain::settle_ledger(&last.handle.proxy, &parts.settler)
        .await
        .unwrap();
    let client = last.handle.proxy.client_ledger(&client_key).unwrap();
    let earned = last.handle.proxy.worker_ledger(&worker_key).unwrap();
    last.shutdown(Duration::from_secs(5)).await;

    let escrow_end: EscrowStorage = fetch_state(c, &escrow).await.unwrap().unwrap();
    let vault_end: StakeStorage = fetch_state(c, &vault).await.unwrap().unwrap();
    let paid_onchain = vault_end
        .payouts
        .get(&account_id(parties.gpu_owner.address()))
        .map_or(0, |r| r.paid);

    let receipts = gateway.handle.gateway.receipts();
    let verified: Vec<_> = receipts
        .iter()
        .filter(|r| r.status == "verified")
        .filter_map(|r| r.receipt.as_ref())
        .collect();
    let held = verified.len() as u64;
    let held_sum: u128 = verified.iter().map(|r| r.receipt.cost_nano).sum();
    let amount = verified
        .first()
        .map(|r| r.receipt.cost_nano)
        .expect("some receipts");
    eprintln!(
        "kill -9 drill on the chain: {kills} kills, {} ok / {} failed requests, {held} verified \
         receipts ({held_sum} nanoTON); ledger: {} charges, {} nanoTON charged, worker earned {}; \
         chain before the final settlement: escrow charged {}, worker paid {}; after: escrow \
         charged {}, worker paid {} (vault paid_out {})",
        tally.ok(),
        tally.failed(),
        client.seqno,
        client.charged,
        earned.earned,
        escrow_mid.charged,
        vault_mid.paid_out,
        escrow_end.charged,
        paid_onchain,
        vault_end.paid_out,
    );
    assert!(
        verified.iter().all(|r| r.receipt.cost_nano == amount),
        "identical requests, identical costs"
    );
    // The chain holds exactly the ledger: nothing lost, nothing counted twice.
    assert_eq!(
        escrow_end.charged, client.charged,
        "escrow charged vs ledger"
    );
    assert_eq!(client.settled, client.charged);
    assert_eq!(
        paid_onchain, earned.earned,
        "vault payout vs ledger earnings"
    );
    assert_eq!(vault_end.paid_out, earned.earned);
    assert_eq!(earned.paid, earned.earned);
    // Every charge is one response of the same amount.
    assert_eq!(
        client.charged,
        amount * u128::from(client.seqno),
        "a charge of another amount"
    );
    assert_eq!(earned.seqno, client.seqno);
    // The ledger holds every receipt the client holds; the rest were cut by a kill.
    assert!(
        client.seqno >= held,
        "{} charges, {held} receipts",
        client.seqno
    );
    let unreceipted = client.seqno - held;
    assert!(
        unreceipted <= (kills * CONCURRENCY) as u64,
        "{unreceipted} charges without receipts after {kills} kills"
    );
    assert_eq!(client.charged, held_sum + u128::from(unreceipted) * amount);
    // Settlement ran across the kills, never beyond what was recorded.
    assert!(
        escrow_mid.charged > 0,
        "nothing settled while the proxy was being killed"
    );
    assert!(
        vault_mid.paid_out > 0,
        "nothing paid while the proxy was being killed"
    );
    assert!(escrow_mid.charged <= client.charged);
    assert!(vault_mid.paid_out <= earned.earned);

    gateway.shutdown(Duration::from_secs(2)).await;
    worker.shutdown(Duration::from_secs(2)).await;
    engine.shutdown().await;
    chain.devnet.stop().await.unwrap();
}
