//! The network as its binaries build it: proxy, worker and gateway from their configs (the proxy's
//! `[chain]` on the devnet, the gateway finding the proxy in the root), every hop RA-TLS with the
//! simulated provider. One non-streamed and one streamed completion; payouts settle by themselves
//! (threshold 1 nanoTON), charges when forced: every balance moves exactly as the root's price
//! parameters say, and the proxy signs every statement in the contracts' format itself.

use cocoon_contracts::address::{escrow_address, vault_address};
use cocoon_contracts::codec::account_id;
use cocoon_contracts::state::{EscrowStorage, StakeStorage};
use cocoon_daemon::tls_config::TlsMode;
use cocoon_localnet::localnet::{EngineChoice, Funding, LocalNet};
use cocoon_onchain::tx::fetch_state;
use cocoon_protocol::pricing::Coefficient;

async fn chat(net: &LocalNet, stream: bool) -> Vec<u8> {
    let body = serde_json::json!({
        "model": net.model,
        "max_tokens": 8,
        "stream": stream,
        "messages": [{"role": "user", "content": format!("hello, stream={stream}")}],
    });
    let resp = reqwest::Client::new()
        .post(format!("{}/chat/completions", net.gateway_url()))
        .json(&body)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(resp.status(), 200);
    resp.bytes().await.expect("the whole response").to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_built_from_config_serve_over_simulated_ra_tls_and_settle_as_priced() {
    let net = LocalNet::start_with(EngineChoice::Fixed, Funding::default(), |c| {
        c.proxy.payout_threshold_nano = 1;
    })
    .await
    .unwrap();
    let c = net.chain.as_ref();

    // Built from config: simulated RA-TLS everywhere, the gateway found its proxy in the root.
    assert_eq!(net.configs.proxy.tls.mode, TlsMode::Simulated);
    assert!(net.configs.gateway.proxy.is_empty());
    let proxy_identity = net.proxy.tls.identity();
    assert_eq!(
        net.gateway.proxy,
        (
            net.proxy.handle.client_addr.to_string(),
            Some(proxy_identity.public_key)
        )
    );
    assert_eq!(proxy_identity.tee, cocoon_attestation::TeeKind::Simulated);
    let image = net.configs.proxy.tls.simulated_image_hash();
    assert_eq!(proxy_identity.image_hash, image);
    let workers = net.proxy.handle.proxy.workers.all();
    assert_eq!(workers.len(), 1);
    assert_eq!(
        workers[0].identity.tee,
        cocoon_attestation::TeeKind::Simulated
    );
    assert!(
        workers[0].identity.insecure,
        "simulated peers are marked insecure"
    );
    // The worker's simulated RTMR3 measured its configuration (issue 15): the proxy sees the
    // measured image and the configuration hash in the worker's claims.
    let worker_config_hash =
        cocoon_worker::measured::config_hash(&net.configs.worker, TlsMode::Simulated).unwrap();
    assert_eq!(
        workers[0].identity.claims.config_hash().unwrap(),
        Some(worker_config_hash)
    );
    assert_eq!(
        workers[0].identity.image_hash,
        net.configs
            .worker
            .tls
            .simulated_image_hash_measured(&worker_config_hash)
    );
    assert_eq!(
        workers[0].identity.image_hash,
        cocoon_localnet::daemons::measured_worker_image(&net.configs.worker).unwrap()
    );
    assert_ne!(workers[0].identity.image_hash, image);
    let worker_image = workers[0].identity.image_hash;

    let escrow = escrow_address(
        &net.root.address,
        net.parties.client.address(),
        net.parties.proxy_operator.address(),
    )
    .unwrap();
    let vault = vault_address(&net.root.address, net.parties.proxy_operator.address()).unwrap();
    let escrow_before: EscrowStorage = fetch_state(c, &escrow).await.unwrap().unwrap();
    let owner_before = c
        .get_address_balance(net.parties.gpu_owner.address())
        .await
        .unwrap();

    let plain = chat(&net, false).await;
    assert!(serde_json::from_slice::<serde_json::Value>(&plain).is_ok());
    let streamed = chat(&net, true).await;
    assert!(String::from_utf8_lossy(&streamed).contains("data: [DONE]"));

    // Each receipt is verified and priced by the root's parameters.
    let params = net.view.params();
    let receipts = net.gateway.handle.gateway.receipts();
    assert_eq!(receipts.len(), 2);
    assert_eq!(
        receipts.iter().map(|r| r.stream).collect::<Vec<_>>(),
        vec![false, true]
    );
    let (mut client_total, mut worker_total) = (0u128, 0u128);
    for r in &receipts {
        assert_eq!(r.status, "verified", "{r:?}");
        assert_eq!(r.worker_insecure, Some(true));
        let receipt = &r.receipt.as_ref().unwrap().receipt;
        assert_eq!(receipt.image_hash, worker_image);
        let cost = params
            .cost(&receipt.usage, Coefficient(receipt.coefficient))
            .unwrap();
        assert!(cost.client > 0);
        assert_eq!(receipt.cost_nano, cost.client);
        assert_eq!(r.charged_nano, Some(cost.client.to_string()));
        client_total += cost.client;
        worker_total += cost.worker;
    }
    let store = &net.proxy.handle.proxy;
    assert_eq!(
        store.client_ledger(&net.client_key).unwrap().charged,
        client_total
    );
    // The chain-checked bindings are kept next to the ledger, sealed (issue 15: the host sees
    // neither keys nor wallets and cannot add a line), so a restarted proxy can settle these
    // charges before the client comes back.
    let bindings =
        std::fs::read_to_string(format!("{}.bindings", net.configs.proxy.store_path)).unwrap();
    assert!(bindings.starts_with("cocoon-bindings 2 "), "{bindings}");
    assert!(
        !bindings.contains(&hex::encode(net.client_key)),
        "{bindings}"
    );
    assert!(!bindings.contains("client "), "{bindings}");
    assert!(
        bindings.lines().count() >= 3,
        "header, client and worker: {bindings}"
    );
    assert_eq!(
        store
            .worker_ledger(&net.worker.handle.state_key())
            .unwrap()
            .earned,
        worker_total
    );

    // Payouts went out by themselves (the proxy's lazy settlement, its own payout statements).
    let worker_key = net.worker.handle.state_key();
    let mut paid_in_ledger = 0;
    for _ in 0..600 {
        paid_in_ledger = store.worker_ledger(&worker_key).unwrap().paid;
        if paid_in_ledger == worker_total {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(paid_in_ledger, worker_total, "lazy payouts settled");
    assert!(
        net.settler.records().iter().any(|r| r.kind == "payout"),
        "a payout went on chain before the forced settlement"
    );
    assert!(net.settler.records().iter().all(|r| r.kind != "charge"));
    // Each payout voucher was first handed to the worker over its connection; these vouchers are
    // below the worker's claim threshold (10 TON), so it said it would not claim them and the proxy
    // submitted them at once.
    let pushes = net
        .proxy
        .handle
        .proxy
        .metrics
        .counter(
            "cocoon_proxy_payout_pushes_total",
            "",
            &[("outcome", "kept_no_claims")],
        )
        .get();
    assert!(
        pushes >= 1,
        "payout vouchers pushed to the worker: {pushes}"
    );
    let proxy_payouts: Vec<_> = net
        .settler
        .records()
        .into_iter()
        .filter(|r| r.kind == "payout")
        .collect();
    eprintln!(
        "proxy-submitted payouts: {} payouts, {} transactions, {} nanoTON fees",
        proxy_payouts.len(),
        proxy_payouts
            .iter()
            .map(|r| r.outcome.transaction_count())
            .sum::<usize>(),
        proxy_payouts.iter().map(|r| r.outcome.fees()).sum::<u128>()
    );

    net.settle().await.unwrap();
    let escrow_after: EscrowStorage = fetch_state(c, &escrow).await.unwrap().unwrap();
    assert_eq!(escrow_after.charged - escrow_before.charged, client_total);
    assert_eq!(escrow_before.balance - escrow_after.balance, client_total);
    let vault_after: StakeStorage = fetch_state(c, &vault).await.unwrap().unwrap();
    let paid = vault_after
        .payouts
        .get(&account_id(net.parties.gpu_owner.address()))
        .unwrap()
        .paid;
    assert_eq!(paid, worker_total);
    assert_eq!(vault_after.paid_out, worker_total);
    let owner_after = c
        .get_address_balance(net.parties.gpu_owner.address())
        .await
        .unwrap();
    // The owner receives the payouts plus what is left of each claim message's attached value.
    let received = owner_after - owner_before;
    let claims = net
        .settler
        .records()
        .iter()
        .filter(|r| r.kind == "payout")
        .count() as u128;
    assert!(
        received >= worker_total && received < worker_total + claims * cocoon_onchain::CLAIM_VALUE,
        "owner received {received}, earned {worker_total} in {claims} payouts"
    );
    let b = net.balances().await.unwrap();
    assert_eq!(b.chain_proxy_kept, client_total - worker_total);
    net.shutdown().await.unwrap();
}

/// The worker's owner claims the payouts itself: the proxy hands each voucher it signs to the
/// worker, the worker (owner wallet, claim threshold 1 nanoTON) claims it from the owner wallet, and
/// the proxy sees the vault's record move and sends nothing. Figures go to stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_owner_claims_the_payouts_the_proxy_hands_the_worker() {
    let net = LocalNet::start_with(EngineChoice::Fixed, Funding::default(), |c| {
        c.proxy.payout_threshold_nano = 1;
        c.worker.chain.claim_threshold_nano = 1;
    })
    .await
    .unwrap();
    let c = net.chain.as_ref();
    let owner = net.parties.gpu_owner.address();
    let vault = vault_address(&net.root.address, net.parties.proxy_operator.address()).unwrap();
    let owner_before = c.get_address_balance(owner).await.unwrap();

    chat(&net, false).await;
    chat(&net, true).await;
    let proxy = &net.proxy.handle.proxy;
    let worker_key = net.worker.handle.state_key();
    let mut account = proxy.worker_ledger(&worker_key).unwrap();
    for _ in 0..1200 {
        account = proxy.worker_ledger(&worker_key).unwrap();
        if account.earned > 0 && account.paid == account.earned {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(account.earned > 0);
    assert_eq!(
        account.paid, account.earned,
        "the ledger recorded the payouts"
    );

    // The proxy sent no payout: the worker claimed each voucher it was handed.
    assert!(
        net.settler.records().iter().all(|r| r.kind != "payout"),
        "the proxy submitted a payout itself"
    );
    let metric = |name: &'static str, label: (&'static str, &'static str)| {
        proxy.metrics.counter(name, "", &[label]).get()
    };
    let claimed = metric("cocoon_proxy_payouts_total", ("submitted_by", "worker"));
    assert!(claimed >= 1);
    assert_eq!(
        metric("cocoon_proxy_payout_pushes_total", ("outcome", "claims")),
        claimed
    );
    assert_eq!(
        metric("cocoon_proxy_payouts_total", ("submitted_by", "proxy")),
        0
    );
    let status = net.proxy.handle.status();
    assert_eq!(status["payouts"]["claimed_by_worker"], claimed);
    assert_eq!(status["payouts"]["self_submitted"], 0);

    // The vault paid exactly the signed cumulative, once, to the owner.
    let vs: StakeStorage = fetch_state(c, &vault).await.unwrap().unwrap();
    let record = vs.payouts.get(&account_id(owner)).unwrap();
    assert_eq!(record.paid, account.earned);
    assert_eq!(u64::from(record.seqno), account.seqno);
    assert_eq!(vs.paid_out, account.earned);
    let owner_after = c.get_address_balance(owner).await.unwrap();
    // The owner paid for its claims: what arrived is the payout less the claims' fees (the unspent
    // part of each claim's attached value comes back).
    let net_gain = i128::try_from(owner_after).unwrap() - i128::try_from(owner_before).unwrap();
    let cost = i128::try_from(account.earned).unwrap() - net_gain;
    assert!(
        cost > 0 && cost < i128::try_from(claimed as u128 * cocoon_onchain::CLAIM_VALUE).unwrap(),
        "owner gained {net_gain} for {} earned in {claimed} claims",
        account.earned
    );
    eprintln!(
        "worker-claimed payouts: {claimed} claims, {} nanoTON paid, owner's cost {cost} nanoTON ({} per claim)",
        account.earned,
        cost / i128::from(u32::try_from(claimed).unwrap())
    );

    net.settle().await.unwrap();
    let b = net.balances().await.unwrap();
    assert_eq!(b.chain_worker_paid, account.earned);
    assert!(net.settler.records().iter().all(|r| r.kind != "payout"));
    net.shutdown().await.unwrap();
}

/// The proxy commits its ledger's marker to its vault on chain; a proxy started on a ledger behind
/// that marker (a restored backup, a lost disk) refuses to run instead of signing a second history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_marker_goes_on_chain_and_a_proxy_on_an_older_ledger_refuses_to_start() {
    let net = LocalNet::start_with(EngineChoice::Fixed, Funding::default(), |c| {
        c.proxy.marker_interval_ms = 100;
        c.proxy.chain.marker_min_charges = 1;
    })
    .await
    .unwrap();
    let c = net.chain.as_ref();
    let vault = vault_address(&net.root.address, net.parties.proxy_operator.address()).unwrap();
    let on_chain = || async {
        fetch_state::<StakeStorage>(c, &vault)
            .await
            .unwrap()
            .unwrap()
            .marker()
    };
    assert_eq!(on_chain().await, 0, "nothing committed before any charge");

    chat(&net, false).await;
    chat(&net, true).await;
    let store_marker = net.proxy.handle.proxy.store.marker().unwrap();
    assert!(store_marker > 0);
    let mut committed = 0;
    for _ in 0..200 {
        committed = on_chain().await;
        if committed >= store_marker {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        committed, store_marker,
        "the vault holds the ledger's marker"
    );

    // The same proxy on an empty ledger (marker 0, behind the chain): refused before serving.
    let dir = tempfile::tempdir().unwrap();
    let mut stale = net.configs.proxy.clone();
    stale.store_path = dir.path().join("restored.redb").display().to_string();
    stale.tls.kms_binding_file = dir.path().join("proxy.binding").display().to_string();
    let refused = net.build_proxy(stale).await;
    let message = format!(
        "{:#}",
        refused.expect_err("a ledger behind the chain is refused")
    );
    assert!(message.contains("rolled back"), "{message}");
    net.shutdown().await.unwrap();
}

/// The proxy admits the gateway because the client's escrow names the gateway's key; once the client
/// names another key, the proxy refuses that gateway (403 `client_key_mismatch`) and charges nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_whose_key_the_escrow_no_longer_names_is_refused_and_not_charged() {
    let net = LocalNet::start(EngineChoice::Fixed, Funding::default())
        .await
        .unwrap();
    let c = net.chain.as_ref();
    chat(&net, false).await;
    let store = &net.proxy.handle.proxy;
    let charged = store.client_ledger(&net.client_key).unwrap().charged;
    assert!(charged > 0);

    let escrow = cocoon_contracts::chain::EscrowHandle::at(
        escrow_address(
            &net.root.address,
            net.parties.client.address(),
            net.parties.proxy_operator.address(),
        )
        .unwrap(),
    );
    escrow
        .set_client_key(c, &net.parties.client, [0x99; 32])
        .await
        .unwrap();
    let body = serde_json::json!({
        "model": net.model,
        "max_tokens": 4,
        "messages": [{"role": "user", "content": "after the rotation"}],
    });
    let mut last = (0, serde_json::Value::Null);
    for _ in 0..100 {
        let resp = reqwest::Client::new()
            .post(format!("{}/chat/completions", net.gateway_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        last = (status, resp.json().await.unwrap_or_default());
        if status != 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last.0, 403, "{last:?}");
    assert_eq!(last.1["error"]["code"], "client_key_mismatch", "{last:?}");
    let after = store.client_ledger(&net.client_key).unwrap().charged;
    let served = net.gateway.handle.gateway.receipts();
    let verified: u128 = served
        .iter()
        .filter_map(|r| r.charged_nano.as_ref()?.parse::<u128>().ok())
        .sum();
    assert_eq!(after, verified, "charged exactly the answered requests");
    net.shutdown().await.unwrap();
}
