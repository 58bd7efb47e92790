//! Every message, statement and storage layout the SDK builds from fixed inputs: round trip through
//! the cell, snapshot of the BoC hex, and rejection of a wrong opcode or trailing data.

mod common;

use std::collections::BTreeMap;

use cocoon_contracts::codec::{boc_hex, cell_hash};
use cocoon_contracts::messages::*;
use cocoon_contracts::state::*;
use cocoon_contracts::statements::*;
use cocoon_contracts::{CellCodec, CodecError, Contract};
use common::{addr, key, params};

fn check<T: CellCodec + PartialEq + std::fmt::Debug>(name: &str, value: &T) -> String {
    let cell = value.to_cell().expect("encodes");
    let back = T::from_cell(&cell).expect("decodes");
    assert_eq!(&back, value, "{name} round trip");
    let boc = value.to_boc().expect("boc");
    assert_eq!(&T::from_boc(&boc).expect("boc decodes"), value);
    boc_hex(&cell).expect("hex")
}

fn charge() -> ChargeVoucher {
    ChargeVoucher {
        escrow: addr(0xe5),
        seqno: 7,
        charged: 123_456_789,
        is_final: false,
    }
}

fn payout() -> PayoutVoucher {
    PayoutVoucher {
        vault: addr(0xa1),
        worker: addr(0x33),
        seqno: 2,
        paid: 5_000_000_000,
    }
}

fn serving() -> ServingStatement {
    ServingStatement {
        root: addr(0x70),
        image_hash: [0x11; 32],
        served_at: 1_700_000_000,
        receipt_hash: [0x22; 32],
    }
}

fn fault() -> FaultReport {
    FaultReport {
        root: addr(0x70),
        proxy: addr(0xb0),
        worker: addr(0x33),
        report_id: 9,
        at: 1_700_000_100,
        reason: 4,
    }
}

#[test]
fn root_messages() {
    let mut snap = BTreeMap::new();
    snap.insert(
        "change_owner",
        check(
            "change_owner",
            &RootChangeOwner {
                query_id: 1,
                new_owner: addr(2),
            },
        ),
    );
    snap.insert(
        "accept_owner",
        check("accept_owner", &RootAcceptOwner { query_id: 2 }),
    );
    snap.insert(
        "set_image",
        check(
            "set_image",
            &RootSetImage {
                query_id: 3,
                role: ROLE_PROXY,
                image_hash: [9; 32],
                allowed: true,
            },
        ),
    );
    snap.insert(
        "set_model",
        check(
            "set_model",
            &RootSetModel {
                query_id: 4,
                model_hash: [8; 32],
                name: Some("SmolLM2-135M-Instruct".into()),
            },
        ),
    );
    snap.insert(
        "unset_model",
        check(
            "unset_model",
            &RootSetModel {
                query_id: 4,
                model_hash: [8; 32],
                name: None,
            },
        ),
    );
    let info = ProxyInfo {
        key: [5; 32],
        endpoints: "https://proxy.example:8443,".repeat(10),
    };
    snap.insert(
        "set_proxy",
        check(
            "set_proxy",
            &RootSetProxy {
                query_id: 5,
                proxy: addr(0xb0),
                info: Some(info),
            },
        ),
    );
    snap.insert(
        "unset_proxy",
        check(
            "unset_proxy",
            &RootSetProxy {
                query_id: 5,
                proxy: addr(0xb0),
                info: None,
            },
        ),
    );
    snap.insert(
        "set_params",
        check(
            "set_params",
            &RootSetParams {
                query_id: 6,
                params: params(),
            },
        ),
    );
    let codes = common::fixed_codes();
    snap.insert(
        "set_codes",
        check("set_codes", &RootSetCodes { query_id: 7, codes }),
    );
    snap.insert(
        "withdraw_kept",
        check(
            "withdraw_kept",
            &RootWithdrawKept {
                query_id: 8,
                amount: 1,
            },
        ),
    );
    snap.insert(
        "open_stake",
        check(
            "open_stake",
            &RootOpenStake {
                query_id: 9,
                role: ROLE_WORKER,
                key: common::key(1).verifying_key().to_bytes(),
            },
        ),
    );
    snap.insert(
        "open_escrow",
        check(
            "open_escrow",
            &RootOpenEscrow {
                query_id: 10,
                proxy: addr(0xb0),
                stake: 2_000_000_000,
                client_key: [0xc1; 32],
            },
        ),
    );
    let proxy = key(3);
    let mut other = charge();
    other.charged += 1;
    let ev = EquivocationEvidence {
        client: addr(0x11),
        a: charge()
            .sign(&proxy)
            .expect("sign")
            .to_signed_cell()
            .expect("a"),
        b: other
            .sign(&proxy)
            .expect("sign")
            .to_signed_cell()
            .expect("b"),
    };
    snap.insert(
        "report_equivocation",
        check(
            "report_equivocation",
            &RootReportEquivocation {
                query_id: 11,
                proxy: addr(0xb0),
                evidence: ev,
            },
        ),
    );
    let revoked = Signed::sign(serving(), &key(4)).expect("sign");
    snap.insert(
        "report_revoked",
        check(
            "report_revoked",
            &RootReportRevoked {
                query_id: 12,
                worker: addr(0x33),
                evidence: revoked,
            },
        ),
    );
    let report = Signed::sign(fault(), &proxy).expect("sign");
    snap.insert(
        "report_fault",
        check(
            "report_fault",
            &RootReportFault {
                query_id: 13,
                evidence: report.into(),
            },
        ),
    );
    snap.insert(
        "owner_notice",
        check("owner_notice", &RootOwnerNotice { query_id: 14 }),
    );
    insta::assert_yaml_snapshot!(snap);
}

#[test]
fn stake_messages() {
    let mut snap = BTreeMap::new();
    let sp = StakeParams {
        min_stake: 1_000_000_000,
        unbond_delay: 86_400,
        worker_share_bps: 9_000,
        params_version: 1,
    };
    snap.insert(
        "init",
        check(
            "init",
            &StakeInit {
                query_id: 1,
                key: [1; 32],
                params: sp,
            },
        ),
    );
    snap.insert("deposit", check("deposit", &StakeDeposit { query_id: 2 }));
    snap.insert(
        "set_key",
        check(
            "set_key",
            &StakeSetKey {
                query_id: 3,
                key: [3; 32],
            },
        ),
    );
    snap.insert(
        "unbond",
        check(
            "unbond",
            &StakeUnbond {
                query_id: 4,
                amount: 500,
            },
        ),
    );
    snap.insert(
        "withdraw",
        check("withdraw", &StakeWithdraw { query_id: 5 }),
    );
    snap.insert(
        "settle",
        check(
            "settle",
            &StakeSettle {
                query_id: 6,
                amount: 123_456_789,
            },
        ),
    );
    let signed = payout().sign(&key(3)).expect("sign");
    snap.insert(
        "claim_payout",
        check("claim_payout", &StakeClaimPayout::new(7, signed)),
    );
    snap.insert(
        "withdraw_earnings",
        check(
            "withdraw_earnings",
            &StakeWithdrawEarnings {
                query_id: 8,
                amount: 0,
            },
        ),
    );
    snap.insert(
        "commit_marker",
        check(
            "commit_marker",
            &StakeCommitMarker {
                query_id: 10,
                marker: u64::MAX,
            },
        ),
    );
    let terms = SlashTerms {
        slash_bps: 2_000,
        reporter_bps: 1_000,
        burn: true,
        fault_cap: 3,
        fault_period: 86_400,
    };
    let evidence = Some(Signed::sign(serving(), &key(4)).expect("sign"));
    snap.insert(
        "slash",
        check(
            "slash",
            &StakeSlash {
                query_id: 9,
                kind: SLASH_REVOKED_SERVING,
                evidence_hash: [7; 32],
                reporter: addr(0x99),
                terms,
                evidence,
            },
        ),
    );
    snap.insert(
        "payout_notice",
        check("payout_notice", &StakePayoutNotice { query_id: 10 }),
    );
    snap.insert(
        "withdraw_notice",
        check("withdraw_notice", &StakeWithdrawNotice { query_id: 11 }),
    );
    snap.insert(
        "reward_notice",
        check("reward_notice", &StakeRewardNotice { query_id: 12 }),
    );
    snap.insert(
        "kept_notice",
        check("kept_notice", &RootKeptNotice { query_id: 13 }),
    );
    insta::assert_yaml_snapshot!(snap);
}

#[test]
fn escrow_messages() {
    let mut snap = BTreeMap::new();
    snap.insert(
        "init",
        check(
            "init",
            &EscrowInit {
                query_id: 1,
                proxy_key: [3; 32],
                vault: addr(0xa1),
                close_delay: 3_600,
                stake: 10,
                client_key: Some(EscrowClientKey { key: [0xc1; 32] }),
            },
        ),
    );
    snap.insert(
        "set_client_key",
        check(
            "set_client_key",
            &EscrowSetClientKey {
                query_id: 9,
                key: [0xc2; 32],
            },
        ),
    );
    snap.insert("deposit", check("deposit", &EscrowDeposit { query_id: 2 }));
    snap.insert(
        "set_stake",
        check(
            "set_stake",
            &EscrowSetStake {
                query_id: 3,
                stake: 20,
            },
        ),
    );
    let signed = charge().sign(&key(3)).expect("sign");
    snap.insert(
        "submit_charge",
        check("submit_charge", &EscrowSubmitCharge::new(4, signed)),
    );
    snap.insert(
        "withdraw",
        check(
            "withdraw",
            &EscrowWithdraw {
                query_id: 5,
                amount: 30,
            },
        ),
    );
    snap.insert(
        "request_close",
        check("request_close", &EscrowRequestClose { query_id: 6 }),
    );
    snap.insert(
        "finish_close",
        check("finish_close", &EscrowFinishClose { query_id: 7 }),
    );
    snap.insert(
        "refund_notice",
        check("refund_notice", &EscrowRefundNotice { query_id: 8 }),
    );
    insta::assert_yaml_snapshot!(snap);
}

#[test]
fn storage_layouts() {
    let mut snap = BTreeMap::new();
    let mut root = cocoon_contracts::address::root_initial_storage(
        addr(1),
        cocoon_contracts::address::NETWORK_ID_MAINNET,
        params(),
    )
    .expect("root");
    // the embedded code changes with every contract build; snapshots use fixed stand-in code
    assert_eq!(
        root.codes,
        cocoon_contracts::address::embedded_child_codes().expect("codes")
    );
    root.codes = common::fixed_codes();
    snap.insert("root_initial", check("root_initial", &root));
    root.pending_owner = Some(addr(2));
    root.kept = 77;
    root.registry.worker_images.insert([1; 32], 0);
    root.registry.worker_images.insert([2; 32], 1_700_000_000);
    root.registry.proxy_images.insert([3; 32], 0);
    root.registry
        .models
        .insert([4; 32], "SmolLM2-135M-Instruct".into());
    root.registry.proxies.insert(
        [0xb0; 32],
        ProxyInfo {
            key: [5; 32],
            endpoints: "tls://127.0.0.1:1".into(),
        },
    );
    snap.insert("root_full", check("root_full", &root));

    let mut stake = StakeStorage::initial(addr(0x70), addr(0x33), ROLE_WORKER);
    snap.insert("stake_initial", check("stake_initial", &stake));
    stake.state = STAKE_ACTIVE;
    stake.staked = 2_000_000_000;
    stake.burnt = 3;
    stake.cold = Some(StakeCold {
        min_stake: 1_000_000_000,
        unbond_delay: 86_400,
        worker_share_bps: 9_000,
        params_version: 1,
        slashed: 0,
        fault_period_start: 0,
        faults_in_period: 0,
        marker: 77,
        income_at_share: 5_000,
        proxy_share_at_share: 500,
        retired_keys: [([9; 32], 1_699_000_000)].into_iter().collect(),
        used_evidence: [([7; 32], 1_700_000_000)].into_iter().collect(),
    });
    stake
        .payouts
        .insert([0x33; 32], PayoutRecord { seqno: 2, paid: 5 });
    stake
        .payouts
        .insert([0x34; 32], PayoutRecord { seqno: 1, paid: 6 });
    assert!(stake.can_serve());
    snap.insert("stake_active", check("stake_active", &stake));

    let mut escrow = EscrowStorage::initial(addr(0x70), addr(0xc1), addr(0xb0));
    snap.insert("escrow_initial", check("escrow_initial", &escrow));
    escrow.state = ESCROW_OPEN;
    escrow.vault = Some(addr(0xa1));
    escrow.balance = 10;
    escrow.stake = 4;
    assert_eq!(escrow.free_balance(), 6);
    snap.insert("escrow_open", check("escrow_open", &escrow));
    assert_eq!(escrow.client_key(), None);
    escrow.client_key = Some(EscrowClientKey { key: [0xc1; 32] });
    assert_eq!(escrow.client_key(), Some([0xc1; 32]));
    snap.insert("escrow_client_key", check("escrow_client_key", &escrow));
    assert_eq!(stake.marker(), 77);
    insta::assert_yaml_snapshot!(snap);
}

#[test]
fn vouchers_sign_and_verify_bound_to_their_contract() {
    let proxy = key(3);
    let pk = public_key(&proxy);
    let signed = charge().sign(&proxy).expect("sign");
    signed.verify_for(&pk, &addr(0xe5)).expect("valid");
    assert!(matches!(
        signed.verify_for(&pk, &addr(0xe6)),
        Err(VoucherError::WrongEscrow)
    ));
    assert!(signed.verify(&public_key(&key(4))).is_err());
    let mut tampered = signed.clone();
    tampered.statement.charged += 1;
    assert!(tampered.verify(&pk).is_err());

    let signed = payout().sign(&proxy).expect("sign");
    signed.verify_for(&pk, &addr(0xa1)).expect("valid");
    assert!(matches!(
        signed.verify_for(&pk, &addr(0xa2)),
        Err(VoucherError::WrongVault)
    ));
    // the signature is over the cell hash the contract computes
    let hash = cell_hash(&signed.statement.to_cell().expect("cell"));
    use ed25519_dalek::Verifier;
    proxy
        .verifying_key()
        .verify(
            &hash,
            &ed25519_dalek::Signature::from_bytes(&signed.signature),
        )
        .expect("signature over the representation hash");
}

#[test]
fn decoding_rejects_wrong_opcode_and_trailing_data() {
    let cell = StakeDeposit { query_id: 1 }.to_cell().expect("cell");
    assert!(matches!(
        EscrowDeposit::from_cell(&cell),
        Err(CodecError::WrongOpcode { .. })
    ));
    let longer = StakeUnbond {
        query_id: 1,
        amount: 5,
    }
    .to_cell()
    .expect("cell");
    // StakeUnbond's opcode differs; build a deposit with extra bits instead
    let mut b = tonlib_core::cell::CellBuilder::new();
    b.store_u32(32, cocoon_contracts::opcodes::STAKE_DEPOSIT)
        .expect("op");
    b.store_u64(64, 1).expect("qid");
    b.store_bit(true).expect("extra");
    let extra = b.build().expect("cell");
    assert!(matches!(
        StakeDeposit::from_cell(&extra),
        Err(CodecError::Trailing { bits: 1, .. })
    ));
    assert!(StakeDeposit::from_cell(&longer).is_err());
    let too_big = StakeUnbond {
        query_id: 1,
        amount: 1u128 << 120,
    };
    assert!(matches!(
        too_big.to_cell(),
        Err(CodecError::CoinsOverflow(_))
    ));
}

#[test]
fn embedded_codes_are_what_the_contracts_build() {
    for c in Contract::ALL {
        assert_eq!(
            c.code_hash().expect("hash"),
            c.recorded_code_hash().expect("recorded")
        );
    }
}

#[test]
fn decoded_state_json_for_auditors() {
    use cocoon_contracts::json::ToJson;
    let mut stake = StakeStorage::initial(addr(0x70), addr(0x33), ROLE_PROXY);
    stake.state = STAKE_ACTIVE;
    stake.staked = 5;
    stake
        .payouts
        .insert([0x33; 32], PayoutRecord { seqno: 2, paid: 7 });
    // Key order must not depend on whether another crate in the build enabled serde_json's
    // `preserve_order` (feature unification differs between `-p` and `--workspace` builds).
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_json_snapshot!(stake.to_json());
    });
}

#[test]
fn proxy_helpers_bind_vouchers_to_derived_contracts() {
    let (root, client, proxy, worker) = (addr(0x70), addr(0xc1), addr(0xb0), addr(0x33));
    let k = key(3);
    let charge = sign_charge(&root, &client, &proxy, 1, 10, false, &k).expect("sign");
    let escrow = cocoon_contracts::address::escrow_address(&root, &client, &proxy).expect("escrow");
    charge
        .verify_for(&public_key(&k), &escrow)
        .expect("bound to the escrow");
    let other =
        cocoon_contracts::address::escrow_address(&addr(0x71), &client, &proxy).expect("escrow");
    assert!(
        charge.verify_for(&public_key(&k), &other).is_err(),
        "another root is another escrow"
    );
    let payout = sign_payout(&root, &proxy, &worker, 1, 10, &k).expect("sign");
    let vault = cocoon_contracts::address::vault_address(&root, &proxy).expect("vault");
    payout
        .verify_for(&public_key(&k), &vault)
        .expect("bound to the vault");
}

/// Found by the drills' smoke fuzzing: a root registry whose dict label claims more key bits than
/// are left made tonlib-core's dict parser underflow and panic. It must be a decoding error.
#[test]
fn a_dict_label_longer_than_its_key_is_an_error_not_a_panic() {
    let hex = "b5ee9c724101030100e000015b52000021000000000000000c80066666666666666666666666666666666666666666666666666666666666666670010180f49ffc00ddbe959be849cfb1ecd0e13efa202133bb6300321e33463f12d34cdbde7602a688ef7e96f7537d6b517e7b5b2e5e4362ddb8eae2e4f403c5d6ec43080200d3c4a20003801c5f998792456602cf5df039fe0c01541e7197ff46cfd76f6b3bc76c8e7904a2e0000000000000000000000000000000000000000000000000000000001579bded693a8b000000000000000000000000000000000000000000000000000000000000024690089955c9";
    let cell = cocoon_contracts::codec::cell_from_boc_hex(hex).expect("a well-formed bag of cells");
    let got = cocoon_contracts::registry::decode_named("RootRegistry", &cell);
    assert!(got.is_err(), "{got:?}");
    // A registry with real entries still decodes after the check.
    let registry = RootRegistry {
        worker_images: [([1; 32], 0), ([2; 32], 7)].into_iter().collect(),
        proxy_images: [([0xff; 32], 0)].into_iter().collect(),
        models: [([4; 32], "m".to_owned())].into_iter().collect(),
        proxies: BTreeMap::new(),
    };
    let back = RootRegistry::from_cell(&registry.to_cell().expect("encode")).expect("decode");
    assert_eq!(back, registry);
}
