//! On the devnet: deploy a root, open a proxy stake, a worker stake and a client escrow, then settle
//! one charge and one payout through the proxy's chain-backed Settler (`cocoon_proxy::onchain`) and
//! check every balance moved exactly.

use std::time::Duration;

use cocoon_contracts::address::{escrow_address, stake_address, vault_address};
use cocoon_contracts::chain::RootHandle;
use cocoon_contracts::codec::account_id;
use cocoon_contracts::messages::ProxyInfo;
use cocoon_contracts::state::{EscrowStorage, ROLE_PROXY, ROLE_WORKER, StakeStorage};
use cocoon_daemon::tls::{PeerIdentity, Role};
use cocoon_onchain::bootstrap::{dev_params, wallet_for_key};
use cocoon_onchain::tx::fetch_state;
use cocoon_onchain::{
    BindError, BindPolicy, OnchainConfig, OnchainSettler, OnchainView, SettleOptions,
};
use cocoon_protocol::voucher::{ChargeVoucher, PayoutVoucher, SignedVoucher};
use cocoon_proxy::{ChainView, Settler};
use cocoon_ton::Network;
use ed25519_dalek::SigningKey;

const TON: u128 = 1_000_000_000;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charge_and_payout_settle_exactly_and_idempotently() {
    let (devnet, client) = cocoon_testkit::devnet::start_devnet(1).await;
    let c = client.as_ref();

    let gov = wallet_for_key(&key(11), Network::Testnet).unwrap();
    let proxy_op = wallet_for_key(&key(12), Network::Testnet).unwrap();
    let gpu = wallet_for_key(&key(13), Network::Testnet).unwrap();
    let user = wallet_for_key(&key(14), Network::Testnet).unwrap();
    for w in [&gov, &proxy_op, &gpu, &user] {
        devnet.fund(w.address_friendly(), 100 * TON).await.unwrap();
    }
    let proxy_key = key(21);
    let worker_key = key(22);
    let client_tls_key = [7u8; 32];
    let worker_image = [0x5a; 32];

    let (root, _) = RootHandle::deploy(c, &gov, -239, dev_params(), TON)
        .await
        .unwrap();
    root.set_image(c, &gov, ROLE_WORKER, worker_image, true)
        .await
        .unwrap();
    let proxy_pub = proxy_key.verifying_key().to_bytes();
    let info = ProxyInfo {
        key: proxy_pub,
        endpoints: "127.0.0.1:1".into(),
    };
    root.set_proxy(c, &gov, proxy_op.address(), Some(info))
        .await
        .unwrap();
    root.open_stake(c, &proxy_op, ROLE_PROXY, proxy_pub, 2 * TON)
        .await
        .unwrap();
    root.open_stake(
        c,
        &gpu,
        ROLE_WORKER,
        worker_key.verifying_key().to_bytes(),
        2 * TON,
    )
    .await
    .unwrap();
    root.open_escrow(
        c,
        &user,
        proxy_op.address(),
        3 * TON,
        client_tls_key,
        5 * TON,
    )
    .await
    .unwrap();

    let view = OnchainView::load(
        client.clone(),
        OnchainConfig {
            root: root.address.clone(),
            proxy: proxy_op.address().clone(),
            refresh: Duration::from_secs(3600),
            allow_unattested: false,
            binding: BindPolicy::default(),
            bindings: None,
        },
    )
    .await
    .unwrap();
    view.watch_client(client_tls_key, user.address().clone());
    // A worker binds to the owner it announces only when that owner's worker stake holds its key:
    // a key naming someone else's wallet (whose stake holds another key) is refused, and so is a
    // wallet without a worker stake; the refusal is remembered.
    let impostor = [9u8; 32];
    let gpu_hex = gpu.address().to_hex();
    let err = view.bind_worker(impostor, &gpu_hex).await.unwrap_err();
    assert!(
        matches!(&err, BindError::Refused(m) if m.contains("another key")),
        "{err:?}"
    );
    assert_eq!(view.bind_worker(impostor, &gpu_hex).await.unwrap_err(), err);
    assert_eq!(view.worker_owner(&impostor), None);
    let err = view
        .bind_worker(
            worker_key.verifying_key().to_bytes(),
            &user.address().to_hex(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BindError::Refused(m) if m.contains("no worker stake")),
        "{err:?}"
    );
    let err = view
        .bind_worker([8; 32], "not an address")
        .await
        .unwrap_err();
    assert!(matches!(err, BindError::NoWallet(_)), "{err:?}");
    // The real worker names its owner: bound, and its stake counts at once.
    let bound = view
        .bind_worker(worker_key.verifying_key().to_bytes(), &gpu_hex)
        .await
        .unwrap();
    assert_eq!(&bound, gpu.address());
    assert_eq!(
        view.worker_owner(&worker_key.verifying_key().to_bytes())
            .as_ref(),
        Some(gpu.address())
    );
    assert_eq!(view.escrow(&client_tls_key), None, "not refreshed yet");
    view.refresh().await.unwrap();

    // Reads: params, escrow, worker admission.
    let params = view.params();
    assert_eq!(params.price_per_token, dev_params().price_per_token as u64);
    assert_eq!(params.worker_share_bps, 9000);
    assert_eq!(view.network_id(), -239);
    let escrow_addr = escrow_address(&root.address, user.address(), proxy_op.address()).unwrap();
    let info = view.escrow(&client_tls_key).expect("escrow seen");
    assert_eq!(info.escrow, account_id(&escrow_addr));
    assert_eq!(info.credit, 3 * TON);
    assert_eq!(info.settled, 0);
    let vault = vault_address(&root.address, proxy_op.address()).unwrap();
    assert_eq!(view.payer(), account_id(&vault));
    let public_key = worker_key.verifying_key().to_bytes();
    let mut worker = PeerIdentity {
        role: Role::Worker,
        public_key,
        image_hash: worker_image,
        tee: cocoon_attestation::TeeKind::Tdx,
        insecure: false,
        claims: cocoon_attestation::Claims::new(Role::Worker, public_key, 0),
        not_after: i64::MAX,
    };
    assert!(ChainView::worker_allowed(view.as_ref(), &worker));
    worker.image_hash = [0x5b; 32];
    assert!(
        !ChainView::worker_allowed(view.as_ref(), &worker),
        "image not in the allowlist"
    );
    worker.image_hash = worker_image;
    worker.public_key = [9; 32];
    assert!(
        !ChainView::worker_allowed(view.as_ref(), &worker),
        "no stake for this key"
    );
    let worker_stake = stake_address(&root.address, gpu.address(), ROLE_WORKER).unwrap();
    assert!(
        fetch_state::<StakeStorage>(c, &worker_stake)
            .await
            .unwrap()
            .is_some()
    );

    // Settle one charge.
    let settler = OnchainSettler::new(
        view.clone(),
        proxy_op.clone(),
        proxy_key.clone(),
        SettleOptions::default(),
    );
    let before: EscrowStorage = fetch_state(c, &escrow_addr).await.unwrap().unwrap();
    let vault_before = c.get_address_balance(&vault).await.unwrap();
    let charged = 123_456_789u128;
    let charge = ChargeVoucher {
        network_id: -239,
        escrow: account_id(&escrow_addr),
        seqno: 3,
        cumulative_nano: charged,
    };
    settler
        .submit_charge(SignedVoucher::sign(charge.clone(), &proxy_key))
        .await
        .unwrap();
    let after: EscrowStorage = fetch_state(c, &escrow_addr).await.unwrap().unwrap();
    assert_eq!(after.charged, charged);
    assert_eq!(after.seqno, 3);
    assert_eq!(before.balance - after.balance, charged);
    let vault_after = c.get_address_balance(&vault).await.unwrap();
    assert!(
        vault_after >= vault_before + charged,
        "vault got the charge"
    );
    // Resubmitting the applied voucher is not an error and sends nothing.
    let sent = settler.records().len();
    settler
        .submit_charge(SignedVoucher::sign(charge, &proxy_key))
        .await
        .unwrap();
    assert_eq!(settler.records().len(), sent);
    // A voucher not signed by the proxy key is refused before anything is sent.
    let forged = ChargeVoucher {
        network_id: -239,
        escrow: account_id(&escrow_addr),
        seqno: 4,
        cumulative_nano: charged + 1,
    };
    assert!(
        settler
            .submit_charge(SignedVoucher::sign(forged, &key(99)))
            .await
            .is_err()
    );

    // Settle one payout (90 % of the charge, as priced).
    let earned = charged * 9 / 10;
    let gpu_before = c.get_address_balance(gpu.address()).await.unwrap();
    let payout = PayoutVoucher {
        network_id: -239,
        payer: view.payer(),
        worker_key: worker_key.verifying_key().to_bytes(),
        seqno: 1,
        cumulative_nano: earned,
    };
    settler
        .submit_payout(SignedVoucher::sign(payout.clone(), &proxy_key))
        .await
        .unwrap();
    let vault_st: StakeStorage = fetch_state(c, &vault).await.unwrap().unwrap();
    let rec = vault_st
        .payouts
        .get(&account_id(gpu.address()))
        .expect("record");
    assert_eq!((rec.seqno, rec.paid), (1, earned));
    assert_eq!(vault_st.paid_out, earned);
    let gpu_after = c.get_address_balance(gpu.address()).await.unwrap();
    // The worker receives the payout plus what is left of the claim's attached value.
    let received = gpu_after - gpu_before;
    assert!(
        received >= earned && received < earned + cocoon_onchain::CLAIM_VALUE,
        "worker received {received}, earned {earned}"
    );
    let sent = settler.records().len();
    settler
        .submit_payout(SignedVoucher::sign(payout, &proxy_key))
        .await
        .unwrap();
    assert_eq!(settler.records().len(), sent, "applied payout not resent");
    assert!(settler.records().iter().all(|r| r.outcome.fees() > 0));

    devnet.stop().await.unwrap();
}
