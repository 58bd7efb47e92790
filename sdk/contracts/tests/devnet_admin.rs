//! Slashing reports and governance against the real contracts on the devnet.

mod common;

use cocoon_contracts::ErrorCode;
use cocoon_contracts::address::{escrow_address, stake_address, vault_address};
use cocoon_contracts::chain::StakeHandle;
use cocoon_contracts::fees;
use cocoon_contracts::state::ROLE_WORKER;
use cocoon_contracts::statements::{
    ChargeVoucher, EquivocationEvidence, FaultReport, ServingStatement, Signed,
};
use cocoon_ton::TonClient;
use common::net::{expect_contract_error, network};
use ed25519_dalek::SigningKey;

#[tokio::test]
async fn slashing_reports_on_the_devnet() {
    let net = network().await;
    let c: &dyn TonClient = &net.client;
    let params = common::params();
    let vault =
        StakeHandle::at(vault_address(&net.root.address, net.proxy.address()).expect("vault"));
    let worker_stake = StakeHandle::at(
        stake_address(&net.root.address, net.worker.address(), ROLE_WORKER).expect("stake"),
    );

    // equivocation: two different charges with the same seqno, both signed by the proxy
    let escrow =
        escrow_address(&net.root.address, net.user.address(), net.proxy.address()).expect("escrow");
    let sign = |charged: u128| {
        ChargeVoucher {
            escrow: escrow.clone(),
            seqno: 5,
            charged,
            is_final: false,
        }
        .sign(&net.proxy_key)
        .expect("sign")
    };
    let evidence =
        EquivocationEvidence::new(net.user.address(), &sign(10), &sign(11)).expect("evidence");
    let before = vault.storage(c).await.expect("vault");
    let outcome = net
        .root
        .report_equivocation(c, &net.user, net.proxy.address(), evidence.clone())
        .await
        .expect("report");
    let after = vault.storage(c).await.expect("vault");
    let total = before.staked + before.unbonding;
    let slashed = total * u128::from(params.equivocation_slash_bps) / 10_000;
    assert_eq!(before.staked - after.staked, slashed);
    let cold = after.cold.as_ref().expect("cold");
    assert_eq!(cold.slashed, slashed);
    assert!(
        cold.used_evidence
            .contains_key(&evidence.evidence_hash().expect("offence"))
    );
    let reward = slashed * u128::from(params.reporter_reward_bps) / 10_000;
    let got = outcome.value_sent_to(net.user.address());
    assert!(
        got >= reward && got <= reward + fees::ROOT_REPORT_VALUE,
        "reward {got}"
    );
    // the rest is kept by the root (burn_slashed = false)
    assert_eq!(
        net.root.storage(c).await.expect("root").kept,
        slashed - reward
    );
    // the same pair again, in either order, is spent
    let swapped = EquivocationEvidence {
        client: evidence.client.clone(),
        a: evidence.b.clone(),
        b: evidence.a.clone(),
    };
    expect_contract_error(
        net.root
            .report_equivocation(c, &net.user, net.proxy.address(), swapped)
            .await,
        ErrorCode::EvidenceUsed,
    );
    // one voucher twice is no equivocation
    let same =
        EquivocationEvidence::new(net.user.address(), &sign(10), &sign(10)).expect("evidence");
    expect_contract_error(
        net.root
            .report_equivocation(c, &net.user, net.proxy.address(), same)
            .await,
        ErrorCode::NotEquivocation,
    );

    // fault report signed by the registered proxy key
    let report = FaultReport {
        root: net.root.address.clone(),
        proxy: net.proxy.address().clone(),
        worker: net.worker.address().clone(),
        report_id: 1,
        at: 1,
        reason: 2,
    };
    let signed = Signed::sign(report.clone(), &net.proxy_key).expect("sign");
    let before = worker_stake.storage(c).await.expect("stake");
    net.root
        .report_fault(c, &net.user, signed.clone().into())
        .await
        .expect("fault report");
    let after = worker_stake.storage(c).await.expect("stake");
    let slashed = (before.staked + before.unbonding) * u128::from(params.fault_slash_bps) / 10_000;
    assert_eq!(before.staked - after.staked, slashed);
    let used = &after.cold.as_ref().expect("cold").used_evidence;
    assert!(used.contains_key(&signed.evidence_hash().expect("hash")));
    expect_contract_error(
        net.root.report_fault(c, &net.user, signed.into()).await,
        ErrorCode::EvidenceUsed,
    );
    let forged = Signed::sign(
        FaultReport {
            report_id: 2,
            ..report
        },
        &SigningKey::from_bytes(&[1; 32]),
    )
    .expect("sign");
    expect_contract_error(
        net.root.report_fault(c, &net.user, forged.into()).await,
        ErrorCode::BadSignature,
    );

    // governance: the kept proceeds go to the owner, and only to the owner
    let kept = net.root.storage(c).await.expect("root").kept;
    expect_contract_error(
        net.root.withdraw_kept(c, &net.user, kept).await,
        ErrorCode::NotOwner,
    );
    let outcome = net
        .root
        .withdraw_kept(c, &net.owner, kept)
        .await
        .expect("withdraw kept");
    assert!(outcome.value_sent_to(net.owner.address()) >= kept);
    assert_eq!(net.root.storage(c).await.expect("root").kept, 0);
}

#[tokio::test]
async fn governance_on_the_devnet() {
    let net = network().await;
    let c: &dyn TonClient = &net.client;
    let root = &net.root;

    // two-step owner transfer
    root.change_owner(c, &net.owner, net.user.address())
        .await
        .expect("change owner");
    assert_eq!(
        root.storage(c).await.expect("root").pending_owner.as_ref(),
        Some(net.user.address())
    );
    expect_contract_error(
        root.accept_owner(c, &net.worker).await,
        ErrorCode::NotPendingOwner,
    );
    root.accept_owner(c, &net.user).await.expect("accept");
    let st = root.storage(c).await.expect("root");
    assert_eq!(
        (&st.owner, st.pending_owner.as_ref()),
        (net.user.address(), None)
    );
    let new_owner = &net.user;

    // params and codes bump the version; invalid params are refused
    let mut params = common::params();
    params.price_per_token = 21;
    root.set_params(c, new_owner, params.clone())
        .await
        .expect("set params");
    let st2 = root.storage(c).await.expect("root");
    assert_eq!(st2.params, params);
    assert_eq!(st2.params_version, st.params_version + 1);
    params.worker_share_bps = 10_001;
    expect_contract_error(
        root.set_params(c, new_owner, params).await,
        ErrorCode::BadParams,
    );
    let codes = cocoon_contracts::address::embedded_child_codes().expect("codes");
    root.set_codes(c, new_owner, codes)
        .await
        .expect("set codes");
    assert_eq!(
        root.storage(c).await.expect("root").params_version,
        st.params_version + 2
    );

    // revoking an image records when
    root.set_image(c, new_owner, ROLE_WORKER, [0x44; 32], true)
        .await
        .expect("allow");
    root.set_image(c, new_owner, ROLE_WORKER, [0x44; 32], false)
        .await
        .expect("revoke");
    let revoked_at = root.storage(c).await.expect("root").registry.worker_images[&[0x44; 32]];
    assert!(revoked_at > 0);
    root.set_model(c, new_owner, [0x55; 32], Some("m".into()))
        .await
        .expect("model");
    root.set_model(c, new_owner, [0x55; 32], None)
        .await
        .expect("remove model");
    assert!(
        !root
            .storage(c)
            .await
            .expect("root")
            .registry
            .models
            .contains_key(&[0x55; 32])
    );
}

#[tokio::test]
async fn serving_after_revocation_is_slashed_on_the_devnet() {
    let net = network().await;
    let c: &dyn TonClient = &net.client;
    let params = common::params();
    let stake = StakeHandle::at(
        stake_address(&net.root.address, net.worker.address(), ROLE_WORKER).expect("stake"),
    );
    let image = [0x77; 32];
    net.root
        .set_image(c, &net.owner, ROLE_WORKER, image, true)
        .await
        .expect("allow");
    let statement = |served_at: u32| {
        Signed::sign(
            ServingStatement {
                root: net.root.address.clone(),
                image_hash: image,
                served_at,
                receipt_hash: [0x88; 32],
            },
            &net.worker_key,
        )
        .expect("sign")
    };
    expect_contract_error(
        net.root
            .report_revoked(c, &net.user, net.worker.address(), statement(u32::MAX))
            .await,
        ErrorCode::ImageNotRevoked,
    );
    net.root
        .set_image(c, &net.owner, ROLE_WORKER, image, false)
        .await
        .expect("revoke");
    let revoked_at = net
        .root
        .storage(c)
        .await
        .expect("root")
        .registry
        .worker_images[&image];
    let late = revoked_at + params.grace_period + 1;
    expect_contract_error(
        net.root
            .report_revoked(c, &net.user, net.worker.address(), statement(late - 1))
            .await,
        ErrorCode::WithinGrace,
    );
    // signed by someone else than the stake's key: the stake refuses it
    let forged = Signed {
        signature: statement(late).signature,
        statement: ServingStatement {
            receipt_hash: [0x99; 32],
            ..statement(late).statement
        },
    };
    expect_contract_error(
        net.root
            .report_revoked(c, &net.user, net.worker.address(), forged)
            .await,
        ErrorCode::BadSignature,
    );
    let before = stake.storage(c).await.expect("stake");
    let evidence = statement(late);
    net.root
        .report_revoked(c, &net.user, net.worker.address(), evidence.clone())
        .await
        .expect("report");
    let after = stake.storage(c).await.expect("stake");
    let slashed =
        (before.staked + before.unbonding) * u128::from(params.revoked_slash_bps) / 10_000;
    assert_eq!(before.staked - after.staked, slashed);
    let used = &after.cold.as_ref().expect("cold").used_evidence;
    assert!(used.contains_key(&evidence.statement.offence_id().expect("offence")));
}
