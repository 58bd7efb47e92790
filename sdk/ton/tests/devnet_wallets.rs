//! Wallets signed in Rust against the devnet (real TVM): deploy, transfer, replay, expiry, restart,
//! and the tracer following a wallet's message.

use std::time::{Duration, Instant};

use cocoon_devnet::{Devnet, DevnetOptions};
use cocoon_ton::{
    AccountState, HttpTonClient, Network, TonAddress, TonClient, TonClientConfig, TraceError,
    TraceOptions, Transfer, Wallet, WalletVersion, parse_ton, send_and_trace,
};

const MNEMONIC_A: &str = "mouse absent grunt buzz prefer twin feel success rapid empty assume kit notable embrace any excite silly current chase book phone view stove project";
const MNEMONIC_B: &str = "miracle athlete move melt oyster addict onion stick race fury acid year omit almost defy sausage liberty refuse initial lunar apple fatigue butter junior";
const MNEMONIC_RECIPIENT: &str = "priority dial letter essay year diesel gift west vibrant alien strategy resemble month silver height this dizzy alter owner note joke fog near drip";

const WAIT: Duration = Duration::from_secs(30);

fn client(devnet: &Devnet) -> HttpTonClient {
    let mut cfg = TonClientConfig::new(devnet.url());
    cfg.poll_interval = Duration::from_millis(50);
    cfg.max_retries = 1;
    HttpTonClient::new(cfg).expect("client")
}

fn wallet(phrase: &str, version: WalletVersion) -> Wallet {
    Wallet::from_mnemonic(phrase, version, Network::Testnet).expect("wallet")
}

fn recipient() -> TonAddress {
    wallet(MNEMONIC_RECIPIENT, WalletVersion::V4R2)
        .address()
        .clone()
}

fn ton(s: &str) -> u128 {
    parse_ton(s).expect("amount")
}

async fn chain_now(client: &HttpTonClient, addr: &TonAddress) -> u32 {
    let info = client.get_address_information(addr).await.expect("info");
    u32::try_from(info.sync_utime).expect("time fits u32")
}

/// The recipient is an uninitialised account: it pays a few nanotons of storage fees per transaction.
async fn assert_received(client: &HttpTonClient, to: &TonAddress, expected: u128) {
    let got = client.get_address_balance(to).await.expect("balance");
    assert!(
        got <= expected && expected - got < ton("0.000001"),
        "recipient has {got}, expected about {expected}"
    );
}

#[tokio::test]
async fn v4r2_and_v5r1_deploy_and_transfer() {
    let devnet = Devnet::start(DevnetOptions::default())
        .await
        .expect("devnet");
    let client = client(&devnet);
    let to = recipient();
    let mut expected_recipient = 0u128;
    for (phrase, version, type_name) in [
        (MNEMONIC_A, WalletVersion::V4R2, "wallet v4 r2"),
        (MNEMONIC_B, WalletVersion::V5R1, "wallet v5 r1"),
    ] {
        let w = wallet(phrase, version);
        devnet
            .fund(w.address_friendly(), ton("10"))
            .await
            .expect("fund");
        let info = client
            .get_wallet_information(w.address())
            .await
            .expect("wallet info");
        assert!(!info.wallet);
        assert_eq!(info.state, AccountState::Uninitialized);
        assert_eq!(info.balance, ton("10"));

        // First transfer deploys the wallet (state init attached at seqno 0).
        let transfer = Transfer::new(to.clone(), ton("1.5")).with_bounce(false);
        let sent = w
            .send_and_wait(&client, std::slice::from_ref(&transfer), WAIT)
            .await
            .expect("first transfer");
        let in_msg = sent.transaction.in_msg.as_ref().expect("in_msg");
        assert_eq!(in_msg.hash, sent.message.hash);
        assert_eq!(in_msg.hash_norm.as_ref(), Some(&sent.message.hash_norm));
        assert_eq!(sent.transaction.out_msgs.len(), 1);
        assert_eq!(sent.transaction.out_msgs[0].value, ton("1.5"));
        assert_eq!(sent.transaction.out_msgs[0].destination.as_ref(), Some(&to));
        expected_recipient += ton("1.5");
        assert_received(&client, &to, expected_recipient).await;

        let info = client
            .get_wallet_information(w.address())
            .await
            .expect("wallet info");
        assert!(info.wallet, "{version:?} not recognised as a wallet");
        assert_eq!(info.wallet_type.as_deref(), Some(type_name));
        assert_eq!(info.seqno, Some(1));
        assert_eq!(info.wallet_id, Some(i64::from(w.wallet_id())));
        let fees = ton("10") - ton("1.5") - info.balance;
        assert!(fees > 0 && fees < ton("0.1"), "fees {fees}");

        // Second transfer with a body; seqno moves on.
        let body = cocoon_ton::CellBuilder::new()
            .store_u32(32, 0)
            .and_then(|b| b.store_string("cocoon"))
            .and_then(|b| b.build())
            .expect("body");
        let transfer = Transfer::new(to.clone(), ton("0.25"))
            .with_bounce(false)
            .with_body(body.clone());
        let sent = w
            .send_and_wait(&client, &[transfer], WAIT)
            .await
            .expect("second transfer");
        let out = &sent.transaction.out_msgs[0];
        assert_eq!(
            out.body.as_ref().map(|b| cocoon_ton::Cell::cell_hash(b)),
            Some(body.cell_hash())
        );
        expected_recipient += ton("0.25");
        assert_received(&client, &to, expected_recipient).await;
        let (seqno, _) = w.seqno(&client).await.expect("seqno");
        assert_eq!(seqno, 2);
    }
}

#[tokio::test]
async fn replayed_and_expired_externals_are_refused() {
    let devnet = Devnet::start(DevnetOptions::default())
        .await
        .expect("devnet");
    let client = client(&devnet);
    for (phrase, version) in [
        (MNEMONIC_A, WalletVersion::V4R2),
        (MNEMONIC_B, WalletVersion::V5R1),
    ] {
        let w = wallet(phrase, version);
        devnet
            .fund(w.address_friendly(), ton("5"))
            .await
            .expect("fund");
        let transfers = [Transfer::new(recipient(), ton("1")).with_bounce(false)];
        let sent = w
            .send_and_wait(&client, &transfers, WAIT)
            .await
            .expect("first");

        // The same external again: seqno already used.
        let err = client
            .send_boc(&sent.message.boc)
            .await
            .expect_err("replay accepted");
        assert!(err.is_external_rejected(), "{version:?}: {err}");
        assert!(err.to_string().contains("sendBoc"), "{err}");

        // A message that expires before it reaches the chain.
        let now = chain_now(&client, w.address()).await;
        let stale = w
            .transfer_message(1, now + 30, &transfers)
            .expect("message");
        devnet.advance_time(120).await.expect("advance");
        let err = client
            .send_boc_return_hash(&stale.boc)
            .await
            .expect_err("expired accepted");
        assert!(err.is_external_rejected(), "{version:?}: {err}");
        let (seqno, _) = w.seqno(&client).await.expect("seqno");
        assert_eq!(seqno, 1, "refused messages must not move the seqno");

        // A fresh message with the same seqno still goes through, and its hash is the one returned.
        let now = chain_now(&client, w.address()).await;
        let fresh = w
            .transfer_message(1, now + 60, &transfers)
            .expect("message");
        let hash = client
            .send_boc_return_hash(&fresh.boc)
            .await
            .expect("fresh");
        assert_eq!(hash, fresh.hash);
        let tx = client
            .wait_for_transaction(w.address(), &fresh.hash, Instant::now() + WAIT)
            .await
            .expect("fresh tx");
        assert_eq!(tx.out_msgs.len(), 1);
    }
}

#[tokio::test]
async fn restart_keeps_balances_and_seqno() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("chain.json");
    let w = wallet(MNEMONIC_A, WalletVersion::V4R2);
    let to = recipient();
    let (balance, seqno) = {
        let devnet = Devnet::start(DevnetOptions::with_state_file(&state))
            .await
            .expect("devnet");
        let client = client(&devnet);
        devnet
            .fund(w.address_friendly(), ton("7"))
            .await
            .expect("fund");
        let transfers = [Transfer::new(to.clone(), ton("2")).with_bounce(false)];
        w.send_and_wait(&client, &transfers, WAIT)
            .await
            .expect("send");
        let info = client
            .get_wallet_information(w.address())
            .await
            .expect("info");
        devnet.stop().await.expect("stop");
        (info.balance, info.seqno)
    };
    assert_eq!(seqno, Some(1));

    let devnet = Devnet::start(DevnetOptions::with_state_file(&state))
        .await
        .expect("restart");
    let client = client(&devnet);
    let info = client
        .get_wallet_information(w.address())
        .await
        .expect("info");
    assert_eq!(info.balance, balance);
    assert_eq!(info.seqno, seqno);
    assert_eq!(
        client.get_address_balance(&to).await.expect("balance"),
        ton("2")
    );
    let txs = client
        .get_transactions(w.address(), 10, None)
        .await
        .expect("history");
    assert_eq!(txs.len(), 2, "funding and the transfer survive the restart");
    // The wallet keeps working on the reloaded chain.
    let transfers = [Transfer::new(to.clone(), ton("1")).with_bounce(false)];
    w.send_and_wait(&client, &transfers, WAIT)
        .await
        .expect("send after restart");
    assert_eq!(w.seqno(&client).await.expect("seqno").0, 2);
}

/// A fresh devnet, a client for it, and wallet A (v4r2, not deployed yet) holding 5 TON.
async fn devnet_with_funded_v4r2() -> (Devnet, HttpTonClient, Wallet) {
    let devnet = Devnet::start(DevnetOptions::default())
        .await
        .expect("devnet");
    let client = client(&devnet);
    let w = wallet(MNEMONIC_A, WalletVersion::V4R2);
    devnet
        .fund(w.address_friendly(), ton("5"))
        .await
        .expect("fund");
    (devnet, client, w)
}

#[tokio::test]
async fn estimate_fee_matches_the_transaction_and_changes_nothing() {
    let (devnet, client, w) = devnet_with_funded_v4r2().await;
    let transfers = [Transfer::new(recipient(), ton("1")).with_bounce(false)];
    // Undeployed: the estimate includes deploying the wallet from its state init.
    let deploy = w
        .estimate_fee(&client, &transfers)
        .await
        .expect("estimate deploy");
    assert!(deploy.gas_fee > 0, "{deploy:?}");
    let sent = w
        .send_and_wait(&client, &transfers, WAIT)
        .await
        .expect("deploy");
    let own = deploy.in_fwd_fee + deploy.storage_fee + deploy.gas_fee;
    assert!(
        sent.transaction.fee >= own && sent.transaction.fee - own < deploy.fwd_fee,
        "deploy fee {} vs estimate {deploy:?}",
        sent.transaction.fee
    );

    let now = chain_now(&client, w.address()).await;
    let msg = w
        .transfer_message(1, now + 60, &transfers)
        .expect("message");
    let body = cocoon_ton::boc::cell_to_boc(&msg.body().expect("body")).expect("boc");
    let before = devnet.status().await.expect("status");
    let balance_before = client
        .get_address_balance(w.address())
        .await
        .expect("balance");
    let estimate = client
        .estimate_fee(cocoon_ton::FeeQuery {
            address: w.address(),
            body: &body,
            init: None,
        })
        .await
        .expect("estimate");
    assert!(estimate.gas_fee > 0 && estimate.fwd_fee > 0, "{estimate:?}");
    let after = devnet.status().await.expect("status");
    assert_eq!(
        after.seqno, before.seqno,
        "estimating is not a state change"
    );
    assert_eq!(after.transactions, before.transactions);
    assert_eq!(
        client
            .get_address_balance(w.address())
            .await
            .expect("balance"),
        balance_before
    );
    assert_eq!(w.seqno(&client).await.expect("seqno").0, 1);

    client.send_boc(&msg.boc).await.expect("send");
    let tx = client
        .wait_for_transaction(w.address(), &msg.hash, Instant::now() + WAIT)
        .await
        .expect("tx");
    // The transaction's total fee is import + storage + gas + the action phase's share of the
    // forwarding fee (the rest travels with the message), so it lies between these bounds.
    let own = estimate.in_fwd_fee + estimate.storage_fee + estimate.gas_fee;
    assert!(tx.fee >= own, "tx fee {} below estimate {own}", tx.fee);
    assert!(
        tx.fee - own < ton("0.01"),
        "tx fee {} vs estimate {estimate:?}",
        tx.fee
    );
}

#[tokio::test]
async fn the_tracer_follows_the_message_and_stops_at_the_account_that_refused_it() {
    let (_devnet, client, w) = devnet_with_funded_v4r2().await;
    let to = recipient();

    // To itself (a wallet accepts internal messages): the wallet's transaction, then the one
    // receiving the message. (An account without code aborts even a non-bounceable message, and
    // the tracer reports that as a failure, as it did before.)
    let transfer = Transfer::new(w.address().clone(), ton("1")).with_bounce(false);
    let outcome = send_and_trace(&client, &w, transfer, TraceOptions::hops(4))
        .await
        .expect("traced");
    assert_eq!(outcome.transaction_count(), 2);
    let delivered = outcome.first().expect("the receiving transaction");
    assert_eq!(delivered.account.as_ref(), Some(w.address()));
    let received = delivered.in_msg.as_ref().expect("inbound message");
    assert_eq!(received.value, ton("1"));
    assert_eq!(received.source.as_ref(), Some(w.address()));
    assert_eq!(
        outcome.fees(),
        outcome.wallet_tx.fee + delivered.fee,
        "fees add up over the trace"
    );

    // Zero hops: only the wallet's transaction.
    let transfer = Transfer::new(w.address().clone(), ton("0.1")).with_bounce(false);
    let outcome = send_and_trace(&client, &w, transfer, TraceOptions::hops(0))
        .await
        .expect("traced");
    assert!(outcome.chain.is_empty());

    // Bounceable to an account with no code: its transaction fails, and the trace says whose.
    let transfer = Transfer::new(to.clone(), ton("0.5")).with_bounce(true);
    let err = send_and_trace(&client, &w, transfer, TraceOptions::hops(4))
        .await
        .expect_err("the empty account cannot accept a bounceable message");
    match err {
        TraceError::Aborted { address }
        | TraceError::Failed { address, .. }
        | TraceError::Bounced {
            refused_by: address,
            ..
        } => assert_eq!(address, to),
        other => panic!("expected the recipient to refuse, got {other:?}"),
    }
}
