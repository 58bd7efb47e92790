//! On the devnet, issue 13 finding 2 (off-chain half): the vault keys payout records by worker
//! wallet, while the proxy's ledger kept one account with seqnos from 1 per worker TLS key. After the
//! worker's owner rotated its stake key, honest vouchers repeated earlier seqnos; the vault refused
//! them as stale and the settler counted them paid anyway (the vault's record was higher). Now a
//! worker key earns into its payee (the owner wallet), so the series continues across keys, and a
//! statement counts as applied only when the vault holds that very (seqno, amount).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cocoon_contracts::address::stake_address;
use cocoon_contracts::chain::{RootHandle, StakeHandle};
use cocoon_contracts::codec::account_id;
use cocoon_contracts::messages::ProxyInfo;
use cocoon_contracts::state::{ROLE_PROXY, ROLE_WORKER};
use cocoon_onchain::bootstrap::{dev_params, wallet_for_key};
use cocoon_onchain::{
    BindPolicy, OnchainConfig, OnchainError, OnchainSettler, OnchainView, SettleOptions,
};
use cocoon_proxy::onchain::payout_statement;
use cocoon_ton::Network;
use ed25519_dalek::SigningKey;

const TON: u128 = 1_000_000_000;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_worker_key_continues_its_payees_series_and_another_series_is_never_counted_paid()
{
    let (devnet, client) = cocoon_testkit::devnet::start_devnet(1).await;
    let c = client.as_ref();
    let gov = wallet_for_key(&key(51), Network::Testnet).unwrap();
    let operator = wallet_for_key(&key(52), Network::Testnet).unwrap();
    let gpu = wallet_for_key(&key(53), Network::Testnet).unwrap();
    for w in [&gov, &operator, &gpu] {
        devnet.fund(w.address_friendly(), 100 * TON).await.unwrap();
    }
    let proxy_key = key(61);
    let proxy_pub = proxy_key.verifying_key().to_bytes();
    let (k1, k2) = ([0x11u8; 32], [0x12u8; 32]);
    let (root, _) = RootHandle::deploy(c, &gov, -239, dev_params(), TON)
        .await
        .unwrap();
    let info = ProxyInfo {
        key: proxy_pub,
        endpoints: "127.0.0.1:1".into(),
    };
    root.set_proxy(c, &gov, operator.address(), Some(info))
        .await
        .unwrap();
    root.open_stake(c, &operator, ROLE_PROXY, proxy_pub, 5 * TON)
        .await
        .unwrap();
    root.open_stake(c, &gpu, ROLE_WORKER, k1, 2 * TON)
        .await
        .unwrap();
    let view = OnchainView::load(
        client.clone(),
        OnchainConfig {
            root: root.address.clone(),
            proxy: operator.address().clone(),
            refresh: Duration::from_secs(3600),
            allow_unattested: false,
            binding: BindPolicy::default(),
            bindings: None,
        },
    )
    .await
    .unwrap();
    let settler = OnchainSettler::new(
        view.clone(),
        operator.clone(),
        proxy_key.clone(),
        SettleOptions::default(),
    );
    let gpu_hex = gpu.address().to_hex();
    view.bind_worker(k1, &gpu_hex).await.unwrap();
    let payee = view.payee(&k1);
    assert_eq!(payee, account_id(gpu.address()));
    let (vault, wallet) = settler.payout_of(&payee).unwrap();
    assert_eq!(&wallet, gpu.address());

    // The first key's series: seqno 2, 500 nanoTON.
    let first = payout_statement(vault.clone(), wallet.clone(), 2, 500, &proxy_key).unwrap();
    settler.submit_payout_statement(&first).await.unwrap();
    assert_eq!(
        settler.payout_record(gpu.address()).await.unwrap(),
        (2, 500)
    );

    // The owner rotates its stake key; the new key binds to the same owner: the same payee.
    let stake = StakeHandle::at(stake_address(&root.address, gpu.address(), ROLE_WORKER).unwrap());
    stake.set_key(c, &gpu, k2).await.unwrap();
    view.bind_worker(k2, &gpu_hex).await.unwrap();
    assert_eq!(view.payee(&k2), payee, "one payee across the worker's keys");

    // A second series from 1 (what a per-key ledger signed for the new key): before, the vault's
    // higher record made the settler count it paid although nothing moved. Now: refused as another
    // series, never counted as paid.
    let restarted = payout_statement(vault.clone(), wallet.clone(), 1, 300, &proxy_key).unwrap();
    let sent = settler.records().len();
    let err = settler
        .submit_payout_statement(&restarted)
        .await
        .unwrap_err();
    assert!(matches!(err, OnchainError::SeriesMismatch(_)), "{err:?}");
    assert_eq!(settler.records().len(), sent, "nothing sent");
    // The same amount under a lower seqno is another series too.
    let same_paid = payout_statement(vault.clone(), wallet.clone(), 1, 500, &proxy_key).unwrap();
    assert!(matches!(
        settler.submit_payout_statement(&same_paid).await,
        Err(OnchainError::SeriesMismatch(_))
    ));
    // The payee's one series continues above the record and is applied; resubmitting it is a no-op.
    let next = payout_statement(vault, wallet, 3, 800, &proxy_key).unwrap();
    settler.submit_payout_statement(&next).await.unwrap();
    assert_eq!(
        settler.payout_record(gpu.address()).await.unwrap(),
        (3, 800)
    );
    let sent = settler.records().len();
    settler.submit_payout_statement(&next).await.unwrap();
    assert_eq!(settler.records().len(), sent);

    devnet.stop().await.unwrap();
}
