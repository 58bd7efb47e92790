//! The worker against the real contracts on the devnet: the chain reader refuses before the stake is
//! open, allows once stake, image and model are on chain (the worker then dials its proxy), refuses
//! after a revocation; a payout voucher handed over the proxy connection is claimed automatically and
//! changes the owner wallet's balance by exactly the payout plus the vault's refund of the claim value,
//! minus the owner's own fees, as the transactions report them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cocoon_contracts::address::{NETWORK_ID_MAINNET, stake_address, vault_address};
use cocoon_contracts::chain::RootHandle;
use cocoon_contracts::fees::STAKE_CLAIM_VALUE;
use cocoon_contracts::messages::{NetworkParams, ProxyInfo};
use cocoon_contracts::state::{ROLE_PROXY, ROLE_WORKER};
use cocoon_contracts::statements::{PayoutVoucher, public_key};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::Role;
use cocoon_testkit::{FakeEngine, chain_worker_config};
use cocoon_ton::{KeyPair, Network, Transfer, Wallet, WalletVersion};
use cocoon_worker::WorkerOptions;
use cocoon_worker::chain::WorkerChain;
use cocoon_worker::chain_ton::{TonChain, price_params};
use cocoon_worker::status::{Eligibility, Refusal};
use common::{FakeProxy, simulated_image, simulated_tls, within};
use ed25519_dalek::SigningKey;

const TON: u128 = 1_000_000_000;
const MODEL_HASH: [u8; 32] = [0x2b; 32];

fn wallet(seed: u8) -> Wallet {
    let sk = SigningKey::from_bytes(&[seed; 32]);
    let pk = sk.verifying_key().to_bytes().to_vec();
    let mut secret = sk.to_bytes().to_vec();
    secret.extend_from_slice(&pk);
    let kp = KeyPair {
        public_key: pk,
        secret_key: secret,
    };
    Wallet::from_key_pair(kp, WalletVersion::V4R2, Network::Mainnet).expect("wallet")
}

fn params() -> NetworkParams {
    NetworkParams {
        price_per_token: 20,
        prompt_mult: 10_000,
        cached_mult: 1_000,
        completion_mult: 40_000,
        reasoning_mult: 40_000,
        worker_share_bps: 9_000,
        min_worker_stake: TON,
        min_proxy_stake: TON,
        unbond_delay: 86_400,
        close_delay: 3_600,
        equivocation_slash_bps: 5_000,
        revoked_slash_bps: 2_000,
        fault_slash_bps: 100,
        reporter_reward_bps: 1_000,
        burn_slashed: false,
        grace_period: 600,
        fault_cap: 3,
        fault_period: 86_400,
    }
}

#[tokio::test]
async fn chain_reader_gates_serving_and_the_worker_claims_its_payout_on_the_devnet() {
    let (devnet, client) = cocoon_testkit::devnet::start_devnet(1).await;
    let c = client.as_ref();
    let (gov, proxy_op, gpu) = (wallet(21), wallet(22), wallet(23));
    for w in [&gov, &proxy_op, &gpu] {
        devnet
            .fund(w.address_friendly(), 100 * TON)
            .await
            .expect("fund");
    }
    let (root, _) = RootHandle::deploy(c, &gov, NETWORK_ID_MAINNET, params(), TON)
        .await
        .expect("deploy root");
    let proxy_key = SigningKey::from_bytes(&[0x62; 32]);
    // a vault pays out against the key governance registered for its proxy (issue 13, finding 1)
    let info = ProxyInfo {
        key: public_key(&proxy_key),
        endpoints: "tls://127.0.0.1:1".into(),
    };
    root.set_proxy(c, &gov, proxy_op.address(), Some(info))
        .await
        .expect("register proxy");
    root.open_stake(c, &proxy_op, ROLE_PROXY, public_key(&proxy_key), 3 * TON)
        .await
        .expect("proxy stake");
    let vault = vault_address(&root.address, proxy_op.address()).expect("vault");

    // The worker starts before its stake exists: the real chain reader refuses it.
    let engine = FakeEngine::start().await.expect("engine");
    let mut proxy = FakeProxy::start(simulated_tls(Role::Proxy)).await;
    let mut config = chain_worker_config(
        &proxy.addr.to_string(),
        &engine.url(),
        "smollm2",
        &MODEL_HASH,
    );
    config.chain.claim_threshold_nano = 100_000_000;
    let chain = Arc::new(
        TonChain::new(
            client.clone(),
            root.address.clone(),
            gpu.address().clone(),
            Some(gpu.clone()),
        )
        .with_wait(Duration::from_secs(30)),
    );
    let registry = Registry::new();
    let worker = cocoon_worker::start_with(
        config,
        simulated_tls(Role::Worker),
        price_params(1, &params()).expect("params"),
        registry.clone(),
        WorkerOptions {
            chain: Some(chain.clone()),
            on_root: None,
        },
    )
    .expect("worker starts");
    let check = || async {
        within("a chain check", worker.check_chain())
            .await
            .expect("chain")
    };
    assert_eq!(check().await, Eligibility::Refused(Refusal::NoStake));

    // Stake with the worker's key, allow its image and its model: it serves.
    root.open_stake(c, &gpu, ROLE_WORKER, worker.state_key(), 2 * TON)
        .await
        .expect("worker stake");
    assert!(matches!(
        check().await,
        Eligibility::Refused(Refusal::ImageNotAllowed { .. })
    ));
    root.set_image(c, &gov, ROLE_WORKER, simulated_image(), true)
        .await
        .expect("allow image");
    assert!(matches!(
        check().await,
        Eligibility::Refused(Refusal::ModelNotAllowed { .. })
    ));
    root.set_model(c, &gov, MODEL_HASH, Some("smollm2".into()))
        .await
        .expect("allow model");
    assert_eq!(check().await, Eligibility::Eligible);
    let mut conn = proxy.next().await;
    let view = chain.root().await.expect("root");
    assert_eq!(
        view.params,
        price_params(view.params_version, &params()).expect("params")
    );
    let stake = chain.stake().await.expect("stake").expect("opened");
    assert!(stake.can_serve && stake.key == worker.state_key() && stake.min_stake == TON);
    assert_eq!(
        chain.vault_key(&vault).await.expect("vault"),
        Some(public_key(&proxy_key))
    );
    let worker_stake = stake_address(&root.address, gpu.address(), ROLE_WORKER).expect("stake");
    assert_eq!(
        chain.vault_key(&worker_stake).await.expect("read"),
        None,
        "a worker stake is no vault"
    );

    // The vault holds client money (here: a plain top-up of its pool).
    proxy_op
        .send_and_wait(
            c,
            &[Transfer::new(vault.clone(), 2 * TON)],
            Duration::from_secs(30),
        )
        .await
        .expect("fund the vault pool");

    // The proxy hands over a voucher past the threshold: the worker claims it by itself.
    let paid = 300_000_000u128;
    let voucher = PayoutVoucher {
        vault: vault.clone(),
        worker: gpu.address().clone(),
        seqno: 1,
        paid,
    }
    .sign(&proxy_key)
    .expect("sign");
    let before = c.get_address_balance(gpu.address()).await.expect("balance");
    let last_before = c
        .get_transactions(gpu.address(), 1, None)
        .await
        .expect("txs")
        .first()
        .map(|t| t.id.lt)
        .unwrap_or(0);
    let boc = cocoon_contracts::CellCodec::to_boc(&voucher).expect("voucher BoC");
    let (code, body) = conn.post(cocoon_protocol::wire::PAYOUT_PATH, boc).await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    within("the automatic claim", async {
        while chain.payout_claimed(&vault).await.ok() != Some((1, paid)) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // The claim pass logs and counts the claim once it saw the whole message chain.
    within("the claim to be recorded", async {
        while !registry.render().contains("cocoon_worker_claims_total 1") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let after = c.get_address_balance(gpu.address()).await.expect("balance");

    // Exactly: the owner's transactions since (the claim it sent, the payout it received).
    let txs: Vec<_> = c
        .get_transactions(gpu.address(), 10, None)
        .await
        .expect("txs")
        .into_iter()
        .filter(|t| t.id.lt > last_before)
        .collect();
    assert_eq!(txs.len(), 2, "one claim sent, one payout received");
    let from_vault: u128 = txs
        .iter()
        .filter_map(|t| t.in_msg.as_ref())
        .filter(|m| m.source.as_ref() == Some(&vault))
        .map(|m| m.value)
        .sum();
    let sent: u128 = txs
        .iter()
        .flat_map(|t| t.out_msgs.iter())
        .map(|m| m.value + m.fwd_fee)
        .sum();
    let fees: u128 = txs.iter().map(|t| t.fee).sum();
    assert_eq!(
        sent - txs
            .iter()
            .flat_map(|t| t.out_msgs.iter())
            .map(|m| m.fwd_fee)
            .sum::<u128>(),
        STAKE_CLAIM_VALUE
    );
    // The vault pays `paid` and returns what its own transaction left of the claim value.
    let refund = from_vault - paid;
    assert!(refund > 0 && refund < STAKE_CLAIM_VALUE, "refund {refund}");
    assert_eq!(
        i128::try_from(after).expect("fits") - i128::try_from(before).expect("fits"),
        i128::try_from(paid + refund).expect("fits") - i128::try_from(sent + fees).expect("fits"),
        "owner balance moved by payout + refund − claim value − fees"
    );

    // Nothing left to claim: another pass sends nothing.
    let events = worker.claim_now().await;
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(
        c.get_address_balance(gpu.address()).await.expect("balance"),
        after
    );

    // Governance revokes the image: the worker refuses and disconnects.
    root.set_image(c, &gov, ROLE_WORKER, simulated_image(), false)
        .await
        .expect("revoke image");
    assert!(matches!(
        check().await,
        Eligibility::Refused(Refusal::ImageRevoked { .. })
    ));
    within("the worker to disconnect", conn.closed()).await;
    worker.shutdown(Duration::from_secs(5)).await;
    devnet.stop().await.expect("devnet stop");
}

/// Issue 15: with `[chain] cross_check_url`, the reads that decide the worker's allowlists go to two
/// providers; when the primary (an operator's own "toncenter") shows an allowlist the second one
/// does not, the read is refused with a logged reason and the worker does not serve.
#[tokio::test]
async fn reads_cross_checked_against_a_second_provider_are_refused_when_they_disagree() {
    let (honest, honest_client) = cocoon_testkit::devnet::start_devnet(1).await;
    let (forged, forged_client) = cocoon_testkit::devnet::start_devnet(1).await;
    let (gov, gpu) = (wallet(31), wallet(32));
    for devnet in [&honest, &forged] {
        for w in [&gov, &gpu] {
            devnet
                .fund(w.address_friendly(), 100 * TON)
                .await
                .expect("fund");
        }
    }
    // The same root (same governance, same parameters) on both chains.
    let (root, _) = RootHandle::deploy(
        honest_client.as_ref(),
        &gov,
        NETWORK_ID_MAINNET,
        params(),
        TON,
    )
    .await
    .expect("deploy root");
    let (forged_root, _) = RootHandle::deploy(
        forged_client.as_ref(),
        &gov,
        NETWORK_ID_MAINNET,
        params(),
        TON,
    )
    .await
    .expect("deploy root");
    assert_eq!(root.address, forged_root.address);

    let endpoint = cocoon_daemon::chain_endpoint::ChainEndpoint {
        cross_check_url: honest.url().to_owned(),
        ..cocoon_daemon::chain_endpoint::ChainEndpoint::new(forged.url(), Network::Mainnet)
    };
    endpoint.validate().expect("two providers");
    let checked = endpoint.client().expect("cross-checked client");
    let chain = TonChain::new(checked, root.address.clone(), gpu.address().clone(), None);
    let agreed = chain.root().await.expect("the providers agree");
    assert!(agreed.worker_images.is_empty());

    // The primary's operator allows an image (and a model) the real chain does not.
    forged_root
        .set_image(
            forged_client.as_ref(),
            &gov,
            ROLE_WORKER,
            simulated_image(),
            true,
        )
        .await
        .expect("forged image");
    let started = std::time::Instant::now();
    let err = chain.root().await.expect_err("the providers disagree");
    let text = err.to_string();
    assert!(text.contains("disagree"), "{text}");
    assert!(started.elapsed() >= Duration::from_secs(2), "retried once");

    // A worker reading through it refuses to serve rather than trusting either side.
    let engine = FakeEngine::start().await.expect("engine");
    let proxy = FakeProxy::start(simulated_tls(Role::Proxy)).await;
    let config = chain_worker_config(
        &proxy.addr.to_string(),
        &engine.url(),
        "smollm2",
        &MODEL_HASH,
    );
    let worker = cocoon_worker::start_with(
        config,
        simulated_tls(Role::Worker),
        price_params(1, &params()).expect("params"),
        Registry::new(),
        WorkerOptions {
            chain: Some(Arc::new(chain)),
            on_root: None,
        },
    )
    .expect("worker starts");
    let verdict = within("a chain check", worker.check_chain())
        .await
        .expect("chain");
    assert!(
        matches!(&verdict, Eligibility::Refused(Refusal::ChainUnavailable { detail }) if detail.contains("disagree")),
        "{verdict:?}"
    );
    assert_eq!(proxy.accepted(), 0);
    worker.shutdown(Duration::ZERO).await;
}
