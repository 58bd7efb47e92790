//! The SDK against the real contracts on the devnet (the sandbox's TVM): deploy a root, derive child
//! addresses offline and compare with the root's own getters, open a worker stake, a proxy vault and
//! a client escrow, settle a proxy-signed charge, claim a proxy-signed payout, and decode errors.

mod common;

use cocoon_contracts::ErrorCode;
use cocoon_contracts::address::{NETWORK_ID_MAINNET, escrow_address, stake_address, vault_address};
use cocoon_contracts::chain::{EscrowHandle, RootHandle, StakeHandle};
use cocoon_contracts::codec::account_id;
use cocoon_contracts::fees;
use cocoon_contracts::messages::ProxyInfo;
use cocoon_contracts::state::{ESCROW_OPEN, PayoutRecord, ROLE_PROXY, ROLE_WORKER, STAKE_ACTIVE};
use cocoon_contracts::statements::{ChargeVoucher, PayoutVoucher, SignedCharge, public_key};
use cocoon_ton::{TonAddress, TonClient, Wallet};
use common::net::{TON, expect_contract_error, funded_devnet, network, wallet};
use ed25519_dalek::SigningKey;

/// The proxy-signed first charge (seqno 1) of `escrow`.
fn first_charge(
    escrow: &TonAddress,
    charged: u128,
    is_final: bool,
    key: &SigningKey,
) -> SignedCharge {
    let voucher = ChargeVoucher {
        escrow: escrow.clone(),
        seqno: 1,
        charged,
        is_final,
    };
    voucher.sign(key).expect("sign")
}

#[tokio::test]
async fn root_stakes_escrow_charge_and_payout_on_the_devnet() {
    let (owner, proxy, worker, user) = (wallet(1), wallet(2), wallet(3), wallet(4));
    let (_devnet, client) = funded_devnet(&[&owner, &proxy, &worker, &user]).await;
    let c: &dyn TonClient = &client;
    let proxy_key = SigningKey::from_bytes(&[0x52; 32]);
    let worker_key = SigningKey::from_bytes(&[0x53; 32]);

    // deploy: the address is derived offline from the embedded code and initial storage
    let (root, _) = RootHandle::deploy(c, &owner, NETWORK_ID_MAINNET, common::params(), TON)
        .await
        .expect("deploy root");
    let st = root.storage(c).await.expect("root storage");
    assert_eq!(st.owner, *owner.address());
    assert_eq!(st.network_id, NETWORK_ID_MAINNET);
    assert_eq!(st.params, common::params());

    // child addresses: offline derivation equals the root's own computation
    for (who, role) in [(&worker, ROLE_WORKER), (&proxy, ROLE_PROXY)] {
        let onchain = root
            .get_stake_address(c, who.address(), role)
            .await
            .expect("getter");
        assert_eq!(
            stake_address(&root.address, who.address(), role).expect("derive"),
            onchain
        );
    }
    let onchain = root
        .get_escrow_address(c, user.address(), proxy.address())
        .await
        .expect("getter");
    assert_eq!(
        escrow_address(&root.address, user.address(), proxy.address()).expect("derive"),
        onchain
    );

    // governance: only the owner; the registry decodes
    let info = ProxyInfo {
        key: public_key(&proxy_key),
        endpoints: "tls://127.0.0.1:1".into(),
    };
    expect_contract_error(
        root.set_proxy(c, &user, proxy.address(), Some(info.clone()))
            .await,
        ErrorCode::NotOwner,
    );
    root.set_proxy(c, &owner, proxy.address(), Some(info.clone()))
        .await
        .expect("set proxy");
    root.set_image(c, &owner, ROLE_WORKER, [0x1a; 32], true)
        .await
        .expect("set image");
    root.set_model(c, &owner, [0x2b; 32], Some("SmolLM2-135M-Instruct".into()))
        .await
        .expect("set model");
    let st = root.storage(c).await.expect("root storage");
    assert_eq!(
        st.registry.proxies.get(&account_id(proxy.address())),
        Some(&info)
    );
    assert_eq!(st.registry.worker_images.get(&[0x1a; 32]), Some(&0));
    assert_eq!(
        st.registry.models.get(&[0x2b; 32]).map(String::as_str),
        Some("SmolLM2-135M-Instruct")
    );

    // stakes through the root
    root.open_stake(c, &proxy, ROLE_PROXY, public_key(&proxy_key), 3 * TON)
        .await
        .expect("proxy stake");
    root.open_stake(c, &worker, ROLE_WORKER, public_key(&worker_key), 2 * TON)
        .await
        .expect("worker stake");
    let vault = StakeHandle::at(vault_address(&root.address, proxy.address()).expect("vault"));
    let worker_stake = StakeHandle::at(
        stake_address(&root.address, worker.address(), ROLE_WORKER).expect("stake"),
    );
    let ws = worker_stake.storage(c).await.expect("worker stake state");
    assert_eq!(ws.state, STAKE_ACTIVE);
    assert_eq!(ws.key, public_key(&worker_key));
    assert!(ws.can_serve(), "{ws:?}");
    assert!(
        ws.staked <= 2 * TON - fees::STAKE_DEPOSIT_FEE
            && ws.staked > 2 * TON - fees::ROOT_OPEN_VALUE
    );
    assert_eq!(ws.identity.owner, *worker.address());
    let pool_before = vault.payout_pool(c).await.expect("pool");

    // escrow through the root
    root.open_escrow(c, &user, proxy.address(), TON, [0xc1; 32], 3 * TON)
        .await
        .expect("open escrow");
    let escrow = EscrowHandle::at(
        escrow_address(&root.address, user.address(), proxy.address()).expect("escrow"),
    );
    let es = escrow.storage(c).await.expect("escrow state");
    assert_eq!(es.state, ESCROW_OPEN);
    assert_eq!(
        es.client_key(),
        Some([0xc1; 32]),
        "the escrow records the client key"
    );
    assert_eq!(es.vault.as_ref(), Some(&vault.address));
    assert_eq!(es.proxy_key, public_key(&proxy_key));
    assert_eq!(es.stake, TON);

    // a proxy-signed charge moves exactly the signed amount from the escrow to the vault
    let charged = 700_000_000u128;
    let signed = first_charge(&escrow.address, charged, false, &proxy_key);
    let outcome = escrow
        .submit_charge(c, &proxy, signed.clone())
        .await
        .expect("submit charge");
    // Only the escrow sends to the vault in this chain.
    let settled = outcome.value_sent_to(&vault.address);
    assert!(
        settled >= charged && settled <= charged + fees::ESCROW_CHARGE_VALUE,
        "settled {settled}"
    );
    let es2 = escrow.storage(c).await.expect("escrow state");
    assert_eq!(es2.charged, charged);
    assert_eq!(es2.seqno, 1);
    assert_eq!(es.balance - es2.balance, charged);
    let pool_after = vault.payout_pool(c).await.expect("pool");
    // the vault pays its own gas (and refills its storage reserve) from what arrives
    assert!(
        pool_after > pool_before && pool_after <= pool_before + settled,
        "pool {pool_before} -> {pool_after}"
    );
    expect_contract_error(
        escrow.submit_charge(c, &proxy, signed).await,
        ErrorCode::StaleSeqno,
    );
    let forged = ChargeVoucher {
        escrow: escrow.address.clone(),
        seqno: 2,
        charged: 2 * charged,
        is_final: false,
    }
    .sign(&worker_key)
    .expect("sign");
    expect_contract_error(
        escrow.submit_charge(c, &user, forged).await,
        ErrorCode::BadSignature,
    );

    // a proxy-signed payout: the worker claims exactly what was signed
    let paid = 600_000_000u128;
    let payout = PayoutVoucher {
        vault: vault.address.clone(),
        worker: worker.address().clone(),
        seqno: 1,
        paid,
    };
    let signed = payout.sign(&proxy_key).expect("sign");
    let outcome = vault
        .claim_payout(c, &worker, signed.clone())
        .await
        .expect("claim");
    let vs = vault.storage(c).await.expect("vault state");
    // the decoded storage agrees with the contracts' own getters
    assert_eq!(
        vault.get_payout(c, worker.address()).await.expect("getter"),
        (1, paid)
    );
    assert!(worker_stake.get_can_serve(c).await.expect("getter"));
    let (version, onchain_params) = root.get_params(c).await.expect("getter");
    let st = root.storage(c).await.expect("root storage");
    assert_eq!((version, onchain_params), (st.params_version, st.params));
    assert_eq!(vs.paid_out, paid);
    assert_eq!(
        vs.payouts.get(&account_id(worker.address())),
        Some(&PayoutRecord { seqno: 1, paid })
    );
    let to_worker: u128 = outcome
        .chain
        .iter()
        .flat_map(|t| t.out_msgs.iter())
        .filter(|m| m.destination.as_ref() == Some(worker.address()))
        .map(|m| m.value)
        .sum();
    assert!(
        to_worker >= paid && to_worker <= paid + fees::STAKE_CLAIM_VALUE,
        "worker got {to_worker}"
    );
    // a replay pays nothing more (the vault pays the highest cumulative amount signed)
    expect_contract_error(
        vault.claim_payout(c, &worker, signed).await,
        ErrorCode::StaleAmount,
    );

    // the client takes back what is above its credit line
    let free = es2.free_balance();
    user_withdraw(c, &escrow, &user, free).await;
    let es3 = escrow.storage(c).await.expect("escrow state");
    assert_eq!(es3.balance, es2.balance - free);
    expect_contract_error(
        escrow.withdraw(c, &user, 1).await,
        ErrorCode::WithdrawAboveFree,
    );

    // the client rotates the key that may spend its credit; nobody else can
    expect_contract_error(
        escrow.set_client_key(c, &worker, [0xee; 32]).await,
        ErrorCode::NotClient,
    );
    escrow
        .set_client_key(c, &user, [0xc2; 32])
        .await
        .expect("set client key");
    let es4 = escrow.storage(c).await.expect("escrow state");
    assert_eq!(es4.client_key(), Some([0xc2; 32]));

    // the proxy operator's ledger marker on its vault: only ever raised
    vault.commit_marker(c, &proxy, 42).await.expect("marker");
    assert_eq!(vault.storage(c).await.expect("vault state").marker(), 42);
    expect_contract_error(
        vault.commit_marker(c, &proxy, 42).await,
        ErrorCode::MarkerNotRaised,
    );
    expect_contract_error(vault.commit_marker(c, &user, 43).await, ErrorCode::NotOwner);
    assert_eq!(vault.storage(c).await.expect("vault state").marker(), 42);
}

async fn user_withdraw(c: &dyn TonClient, escrow: &EscrowHandle, user: &Wallet, amount: u128) {
    escrow.withdraw(c, user, amount).await.expect("withdraw");
}

#[tokio::test]
async fn stake_deposit_unbond_withdraw_and_escrow_closes_on_the_devnet() {
    let net = network().await;
    let c: &dyn TonClient = &net.client;
    let stake = StakeHandle::at(
        stake_address(&net.root.address, net.worker.address(), ROLE_WORKER).expect("stake"),
    );

    // deposit: exactly the value minus the deposit fee
    let before = stake.storage(c).await.expect("state");
    stake.deposit(c, &net.user, TON).await.expect("deposit");
    let after = stake.storage(c).await.expect("state");
    assert_eq!(after.staked - before.staked, TON - fees::STAKE_DEPOSIT_FEE);

    // owner-only operations
    expect_contract_error(
        stake.set_key(c, &net.user, [9; 32]).await,
        ErrorCode::NotOwner,
    );
    stake
        .set_key(c, &net.worker, [9; 32])
        .await
        .expect("set key");
    assert_eq!(stake.storage(c).await.expect("state").key, [9; 32]);

    // unbond, wait the delay, withdraw
    let amount = TON / 2;
    stake.unbond(c, &net.worker, amount).await.expect("unbond");
    let st = stake.storage(c).await.expect("state");
    assert_eq!((st.staked, st.unbonding), (after.staked - amount, amount));
    expect_contract_error(
        stake.withdraw(c, &net.worker).await,
        ErrorCode::UnbondNotReady,
    );
    net.devnet
        .set_time(u64::from(st.unbond_at))
        .await
        .expect("time travel");
    let outcome = stake.withdraw(c, &net.worker).await.expect("withdraw");
    assert_eq!(stake.storage(c).await.expect("state").unbonding, 0);
    let got = outcome.value_sent_to(net.worker.address());
    assert!(
        got >= amount && got <= amount + fees::STAKE_OWNER_OP_VALUE,
        "{got}"
    );

    // escrow: deposit, raise the credit line, never lower it
    net.root
        .open_escrow(c, &net.user, net.proxy.address(), TON, [0xc1; 32], 3 * TON)
        .await
        .expect("open escrow");
    let escrow = EscrowHandle::at(
        escrow_address(&net.root.address, net.user.address(), net.proxy.address()).expect("escrow"),
    );
    let e0 = escrow.storage(c).await.expect("state");
    escrow.deposit(c, &net.user, TON).await.expect("deposit");
    let e1 = escrow.storage(c).await.expect("state");
    assert_eq!(e1.balance - e0.balance, TON - fees::ESCROW_DEPOSIT_FEE);
    escrow
        .set_stake(c, &net.user, 2 * TON)
        .await
        .expect("raise");
    assert_eq!(escrow.storage(c).await.expect("state").stake, 2 * TON);
    expect_contract_error(
        escrow.set_stake(c, &net.user, TON).await,
        ErrorCode::StakeDecrease,
    );

    // unilateral close: only after the delay, then everything goes back to the client
    escrow
        .request_close(c, &net.user)
        .await
        .expect("request close");
    let closing = escrow.storage(c).await.expect("state");
    assert_eq!(closing.state, cocoon_contracts::state::ESCROW_CLOSING);
    expect_contract_error(
        escrow.finish_close(c, &net.owner).await,
        ErrorCode::CloseDelayNotPassed,
    );
    net.devnet
        .set_time(u64::from(closing.closing_at + closing.close_delay))
        .await
        .expect("time travel");
    let outcome = escrow
        .finish_close(c, &net.owner)
        .await
        .expect("finish close");
    let closed = escrow.storage(c).await.expect("state");
    assert_eq!(closed.state, cocoon_contracts::state::ESCROW_CLOSED);
    assert_eq!(closed.balance, 0);
    assert_eq!(outcome.value_sent_to(net.user.address()), closing.balance);

    // cooperative close: a final charge pays the vault and refunds the rest at once
    net.root
        .open_escrow(c, &net.worker, net.proxy.address(), 0, [0; 32], 2 * TON)
        .await
        .expect("second escrow");
    let coop = EscrowHandle::at(
        escrow_address(&net.root.address, net.worker.address(), net.proxy.address())
            .expect("escrow"),
    );
    let open = coop.storage(c).await.expect("state");
    let charged = 100_000_000u128;
    let voucher = first_charge(&coop.address, charged, true, &net.proxy_key);
    let outcome = coop
        .submit_charge(c, &net.proxy, voucher)
        .await
        .expect("final charge");
    let done = coop.storage(c).await.expect("state");
    assert_eq!(done.state, cocoon_contracts::state::ESCROW_CLOSED);
    assert_eq!(done.charged, charged);
    assert_eq!(
        outcome.value_sent_to(net.worker.address()),
        open.balance - charged
    );
}
