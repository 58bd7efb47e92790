//! A devnet with a root, a registered proxy with its vault and a worker stake, and helpers.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use cocoon_contracts::ErrorCode;
use cocoon_contracts::address::NETWORK_ID_MAINNET;
use cocoon_contracts::chain::{ChainError, Outcome, RootHandle};
use cocoon_contracts::error::ContractError;
use cocoon_contracts::messages::ProxyInfo;
use cocoon_contracts::state::{ROLE_PROXY, ROLE_WORKER};
use cocoon_contracts::statements::public_key;
use cocoon_devnet::{Devnet, DevnetOptions};
use cocoon_ton::{
    HttpTonClient, KeyPair, Network, TonClient, TonClientConfig, Wallet, WalletVersion,
};
use ed25519_dalek::SigningKey;

pub const TON: u128 = 1_000_000_000;

pub fn wallet(seed: u8) -> Wallet {
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

pub fn expect_contract_error(r: Result<Outcome, ChainError>, code: ErrorCode) {
    match r {
        Err(ChainError::Contract { error, .. }) => assert_eq!(error, ContractError::Cocoon(code)),
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

pub struct Net {
    pub devnet: Devnet,
    pub client: HttpTonClient,
    pub owner: Wallet,
    pub proxy: Wallet,
    pub worker: Wallet,
    pub user: Wallet,
    pub proxy_key: SigningKey,
    pub worker_key: SigningKey,
    pub root: RootHandle,
}

/// A fresh devnet and a fast-polling client for it, with each of `wallets` holding 100 TON.
pub async fn funded_devnet(wallets: &[&Wallet]) -> (Devnet, HttpTonClient) {
    let devnet = Devnet::start(DevnetOptions::default())
        .await
        .expect("devnet");
    let mut cfg = TonClientConfig::new(devnet.url());
    cfg.poll_interval = Duration::from_millis(50);
    cfg.max_retries = 1;
    let client = HttpTonClient::new(cfg).expect("client");
    for w in wallets {
        devnet
            .fund(w.address_friendly(), 100 * TON)
            .await
            .expect("fund");
    }
    (devnet, client)
}

/// A devnet with a root, a registered proxy with its vault, and a worker stake.
pub async fn network() -> Net {
    let (owner, proxy, worker, user) = (wallet(11), wallet(12), wallet(13), wallet(14));
    let (devnet, client) = funded_devnet(&[&owner, &proxy, &worker, &user]).await;
    let proxy_key = SigningKey::from_bytes(&[0x62; 32]);
    let worker_key = SigningKey::from_bytes(&[0x63; 32]);
    let c: &dyn TonClient = &client;
    let (root, _) = RootHandle::deploy(c, &owner, NETWORK_ID_MAINNET, super::params(), TON)
        .await
        .expect("deploy root");
    let info = ProxyInfo {
        key: public_key(&proxy_key),
        endpoints: "tls://127.0.0.1:2".into(),
    };
    root.set_proxy(c, &owner, proxy.address(), Some(info))
        .await
        .expect("set proxy");
    root.open_stake(c, &proxy, ROLE_PROXY, public_key(&proxy_key), 2 * TON)
        .await
        .expect("proxy stake");
    root.open_stake(c, &worker, ROLE_WORKER, public_key(&worker_key), 2 * TON)
        .await
        .expect("worker stake");
    Net {
        devnet,
        client,
        owner,
        proxy,
        worker,
        user,
        proxy_key,
        worker_key,
        root,
    }
}
