//! Proof bundles: exported from a gateway after real requests over RA-TLS (simulated quotes), verified
//! offline, and refused with a precise reason when any byte is changed; the DCAP path against the real
//! quote fixture and its collateral.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cocoon_attestation as att;
use cocoon_attestation::provider::simulated::SimulatedProvider;
use cocoon_attestation::provider::{EvidenceKind, QuoteProvider};
use cocoon_audit::{
    BodyEvidence, BundleReport, ChargeEvidence, CheckResult, Forwarded, ProofBundle,
    ResponseEvidence, Selection, Verdict, VerifyOptions, WorkerEvidence, verify_bundle,
};
use cocoon_protocol::{Receipt, Usage};
use common::*;
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

fn key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

const WORKER_LABEL: &str = "cocoon-worker-bundle-test";

/// The in-process network over RA-TLS with simulated quotes (as in ra_tls.rs).
async fn attested_net() -> Net {
    let kit = TlsKit::simulated("cocoon-proxy-bundle-test", WORKER_LABEL).unwrap();
    Net::builder().tls(kit).start().await
}

/// Waits (bounded, asserting nothing about time) until the gateway has fetched the worker certificate.
async fn wait_for_certificate(net: &Net) {
    let key = net.workers[0].state_key();
    cocoon_testkit::wait::until("the gateway to fetch the worker certificate", || {
        net.gateway.gateway.worker_certificate(&key).is_some()
    })
    .await;
}

fn check<'a>(report: &'a BundleReport, name: &str) -> Vec<&'a str> {
    report
        .responses
        .iter()
        .flat_map(|r| r.checks.iter())
        .filter(|c| c.name == name)
        .map(|c| c.detail.as_str())
        .collect()
}

fn flip_b64(field: &mut Option<String>, at: usize) {
    let mut bytes = STANDARD.decode(field.as_deref().unwrap()).unwrap();
    let i = at.min(bytes.len() - 1);
    bytes[i] ^= 0x01;
    *field = Some(STANDARD.encode(bytes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_bundles_verify_offline_and_every_tampered_byte_is_named() {
    let net = attested_net().await;
    for stream in [false, true] {
        let r = net
            .post("/v1/chat/completions", &chat("bundle me", stream), &[])
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    wait_for_certificate(&net).await;
    let gw = &net.gateway.gateway;
    let bundle = gw.bundle(&Selection::default().with_bodies()).await;
    assert_eq!(bundle.responses.len(), 2);
    assert_eq!(bundle.workers.len(), 1);
    assert!(bundle.responses[1].stream);

    // The HTTP export is the same document.
    let http = net.get("/cocoon/v1/bundle?from=2&to=2&bodies=1").await;
    assert_eq!(http.status, 200, "{}", http.text());
    let one: ProofBundle = serde_json::from_slice(&http.body).unwrap();
    assert_eq!(one.responses, bundle.responses[1..].to_vec());
    assert_eq!(net.get("/cocoon/v1/bundle?from=x").await.status, 400);
    // Without bodies=1 the export carries hashes only (the bytes are every prompt and answer).
    let plain: ProofBundle =
        serde_json::from_slice(&net.get("/cocoon/v1/bundle").await.body).unwrap();
    assert_eq!(plain.responses.len(), 2);
    assert!(
        plain
            .responses
            .iter()
            .all(|r| r.request.bytes.is_none() && r.response.bytes.is_none())
    );

    // Without an image allowlist (the root's, or the auditor's) a bundle is refused outright.
    let refused = verify_bundle(&bundle, &VerifyOptions::default());
    assert_eq!(refused.verdict, Verdict::Failed);
    assert!(
        refused.failures[0].contains("no image allowlist"),
        "{:?}",
        refused.failures
    );
    let worker_image = SimulatedProvider::new(WORKER_LABEL).image_hash();
    let opts = VerifyOptions {
        allowed_images: vec![worker_image],
        ..Default::default()
    };
    let report = verify_bundle(&bundle, &opts);
    assert_eq!(report.verdict, Verdict::Insecure, "{:#?}", report.failures);
    assert!(report.failures.is_empty());
    for r in &report.responses {
        assert_eq!(r.tee.as_deref(), Some("simulated"));
        let insecure: Vec<_> = r
            .checks
            .iter()
            .filter(|c| c.result == CheckResult::Insecure)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(insecure, vec!["quote"]);
    }
    // The bytes the app saw are the bytes in the bundle.
    let body = STANDARD
        .decode(bundle.responses[0].request.bytes.as_deref().unwrap())
        .unwrap();
    assert_eq!(body, chat("bundle me", false).as_bytes());

    // Allowlists: the worker's real image passes, another fails.
    let allowed = VerifyOptions {
        allowed_images: vec![worker_image],
        allowed_models: vec![[0u8; 32]],
        ..Default::default()
    };
    assert_eq!(verify_bundle(&bundle, &allowed).verdict, Verdict::Insecure);
    let other = VerifyOptions {
        allowed_images: vec![[7u8; 32]],
        allowed_models: vec![[9u8; 32]],
        ..Default::default()
    };
    let refused = verify_bundle(&bundle, &other);
    assert_eq!(refused.verdict, Verdict::Failed);
    assert!(check(&refused, "image_hash")[0].contains("not among the allowed images"));
    assert!(check(&refused, "model_hash")[0].contains("not among the allowed models"));

    // Hashes only: still verifies, says so.
    let hashes_only = gw
        .bundle(&Selection {
            include_bodies: false,
            ..Default::default()
        })
        .await;
    assert!(hashes_only.responses[0].request.bytes.is_none());
    let r = verify_bundle(&hashes_only, &opts);
    assert_eq!(r.verdict, Verdict::Insecure);
    assert!(check(&r, "request_hash")[0].contains("hash only"));

    let fails_with = |b: &ProofBundle, name: &str, needle: &str| {
        let r = verify_bundle(b, &opts);
        assert_eq!(r.verdict, Verdict::Failed, "{name} tamper went unnoticed");
        let prefix = format!(": {name}: ");
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains(&prefix) && f.contains(needle)),
            "expected {name} ({needle}) in {:#?}",
            r.failures
        );
    };
    for at in [0, 10, 1000] {
        let mut b = bundle.clone();
        flip_b64(&mut b.responses[0].request.bytes, at);
        fails_with(&b, "request_hash", "hash to");
        let mut b = bundle.clone();
        flip_b64(&mut b.responses[1].response.bytes, at);
        fails_with(&b, "response_hash", "hash to");
    }
    // Bytes and stated hash changed together: the signature still pins them.
    let mut b = bundle.clone();
    let mut req = STANDARD
        .decode(b.responses[0].request.bytes.as_deref().unwrap())
        .unwrap();
    req[0] ^= 0x01;
    b.responses[0].request = BodyEvidence {
        sha256: hex::encode(Sha256::digest(&req)),
        bytes: Some(STANDARD.encode(&req)),
    };
    fails_with(&b, "request_hash", "the worker signed");

    // Every byte of the signed receipt matters.
    let wire = bundle.responses[0].receipt.clone().unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&wire)
        .unwrap();
    for i in [0, 20, 40, 80, raw.len() - 70, raw.len() - 1] {
        let mut t = raw.clone();
        t[i] ^= 0x01;
        let mut b = bundle.clone();
        b.responses[0].receipt = Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&t));
        b.responses[0].receipt_decoded = None;
        let r = verify_bundle(&b, &opts);
        assert_eq!(
            r.verdict,
            Verdict::Failed,
            "receipt byte {i} went unnoticed"
        );
    }
    let mut b = bundle.clone();
    b.responses[0]
        .receipt_decoded
        .as_mut()
        .unwrap()
        .receipt
        .cost_nano += 1;
    fails_with(&b, "receipt_copy", "differs");

    // The certificate: any byte of the quote or the signature breaks it.
    let cert_len = STANDARD
        .decode(bundle.workers[0].certificate.as_deref().unwrap())
        .unwrap()
        .len();
    for at in [cert_len / 2, cert_len - 10] {
        let mut b = bundle.clone();
        flip_b64(&mut b.workers[0].certificate, at);
        let r = verify_bundle(&b, &opts);
        assert_eq!(r.verdict, Verdict::Failed, "certificate byte {at}");
    }
    let mut b = bundle.clone();
    b.workers[0].certificate = None;
    fails_with(&b, "certificate", "could not get");
    let mut b = bundle.clone();
    b.responses[0].forwarded.worker_key = Some(hex::encode([5u8; 32]));
    fails_with(&b, "forwarded_worker", "the proxy attested worker");
    let mut b = bundle.clone();
    b.responses[0].charge.charged_nano = Some("999999999999999".into());
    fails_with(&b, "charge", "the worker priced");
    let mut b = bundle.clone();
    b.version = 2;
    assert!(verify_bundle(&b, &opts).failures[0].contains("version"));
}

/// Evidence a real TDX machine produced (for another key), served as a DCAP quote.
#[derive(Debug)]
struct FixtureQuote(Vec<u8>);

impl QuoteProvider for FixtureQuote {
    fn kind(&self) -> EvidenceKind {
        EvidenceKind::Dcap
    }
    fn quote(&self, _report_data: &[u8; 64]) -> att::Result<Vec<u8>> {
        Ok(self.0.clone())
    }
}

/// 2026-03-01T00:00:00Z, inside the cocoon TDX fixture's collateral window.
const FIXTURE_TIME: u64 = 1_772_323_200;

fn dcap_bundle() -> ProofBundle {
    dcap_bundle_at(FIXTURE_TIME)
}

/// The fixture quote's image hash (MRTD, RTMR0..3).
fn fixture_image() -> [u8; 32] {
    let quote = std::fs::read(att::fixtures_dir().join("cocoon-tdx-quote.bin")).unwrap();
    let (_, _, m, _) = att::dcap::parse_quote(&quote).unwrap();
    let att::dcap::Measurements::Td(td) = m else {
        panic!("TDX fixture")
    };
    td.image_hash()
}

/// A bundle whose worker certificate (valid from FIXTURE_TIME - 60 for an hour) carries the real
/// quote, and whose receipt is dated `timestamp`.
fn dcap_bundle_at(timestamp: u64) -> ProofBundle {
    let dir = att::fixtures_dir();
    let quote = std::fs::read(dir.join("cocoon-tdx-quote.bin")).unwrap();
    let collateral: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("cocoon-tdx-quote.collateral.json")).unwrap(),
    )
    .unwrap();
    let worker = key();
    let cred = att::Credential::issue(
        att::Role::Worker,
        &worker,
        Some(&FixtureQuote(quote.clone())),
        i64::try_from(FIXTURE_TIME).unwrap() - 60,
        Duration::from_secs(3600),
        BTreeMap::new(),
    )
    .unwrap();
    let (_, _, m, _) = att::dcap::parse_quote(&quote).unwrap();
    let att::dcap::Measurements::Td(td) = m else {
        panic!("TDX fixture")
    };
    let request = chat("dcap", false);
    let response = b"{\"choices\":[]}".to_vec();
    let receipt = Receipt {
        request_sha256: Sha256::digest(request.as_bytes()).into(),
        response_sha256: Sha256::digest(&response).into(),
        model: MODEL.into(),
        model_hash: [3; 32],
        usage: Usage {
            prompt: 3,
            cached: 0,
            completion: 4,
            reasoning: 0,
        },
        coefficient: 1000,
        price_per_token: 1000,
        cost_nano: 7000,
        timestamp,
        image_hash: td.image_hash(),
        worker_key: worker.verifying_key().to_bytes(),
    }
    .sign(&worker);
    let wk = hex::encode(receipt.receipt.worker_key);
    ProofBundle {
        format: "cocoon-proof-bundle".into(),
        version: 1,
        created_at: FIXTURE_TIME,
        workers: vec![WorkerEvidence {
            worker_key: wk.clone(),
            certificate: Some(STANDARD.encode(cred.cert_der())),
            collateral: Some(collateral),
        }],
        responses: vec![ResponseEvidence {
            id: 1,
            request_id: None,
            endpoint: "/v1/chat/completions".into(),
            stream: false,
            received_at: FIXTURE_TIME,
            receipt: Some(receipt.to_wire()),
            receipt_decoded: Some(receipt),
            request: BodyEvidence {
                sha256: hex::encode(Sha256::digest(request.as_bytes())),
                bytes: Some(STANDARD.encode(request.as_bytes())),
            },
            response: BodyEvidence {
                sha256: hex::encode(Sha256::digest(&response)),
                bytes: Some(STANDARD.encode(&response)),
            },
            forwarded: Forwarded {
                worker_key: Some(wk),
                image_hash: None,
                insecure: Some(false),
            },
            gateway_status: "verified".into(),
            charge: ChargeEvidence {
                charged_nano: Some("7000".into()),
                signed_charge: None,
            },
        }],
    }
}

fn fixture_collateral() -> att::dcap::QuoteCollateralV3 {
    att::collateral::load_collateral_file(
        &att::fixtures_dir().join("cocoon-tdx-quote.collateral.json"),
    )
    .unwrap()
}

fn results(report: &BundleReport) -> BTreeMap<&str, CheckResult> {
    report.responses[0]
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c.result))
        .collect()
}

#[test]
fn a_real_dcap_quote_verifies_against_the_auditors_collateral_but_must_bind_the_signer() {
    let bundle = dcap_bundle();
    let opts = VerifyOptions {
        at: Some(FIXTURE_TIME),
        allowed_images: vec![fixture_image()],
        collateral: Some(fixture_collateral()),
        ..Default::default()
    };
    let report = verify_bundle(&bundle, &opts);
    let results = results(&report);
    // DCAP itself holds now (at the pinned time): chain to Intel's root, collateral, TCB, image.
    assert_eq!(results["quote"], CheckResult::Pass, "{report:#?}");
    assert_eq!(results["tcb"], CheckResult::Pass);
    assert_eq!(results["image_hash"], CheckResult::Pass);
    assert_eq!(results["signature"], CheckResult::Pass);
    assert_eq!(results["certificate_time"], CheckResult::Pass);
    // But that quote was made for another machine's key: no fresh key can be bound to it.
    assert_eq!(results["quote_binds_key"], CheckResult::Fail);
    assert_eq!(report.verdict, Verdict::Failed);
    assert_eq!(report.responses[0].tee.as_deref(), Some("tdx"));
    assert!(report.not_checked.is_empty());

    // Per-worker collateral (what `--pccs` fetches) is used the same way.
    let mut per_worker = opts.clone();
    per_worker.collateral = None;
    per_worker
        .worker_collateral
        .insert(bundle.workers[0].worker_key.clone(), fixture_collateral());
    assert_eq!(
        check(&verify_bundle(&bundle, &per_worker), "quote"),
        check(&report, "quote")
    );
}

#[test]
fn a_bundle_from_a_foreign_image_fails_image_hash() {
    // Anyone with a cloud TD running their own image has a genuine quote: the image must be allowed.
    let bundle = dcap_bundle();
    let opts = VerifyOptions {
        at: Some(FIXTURE_TIME),
        allowed_images: vec![[0x42; 32]],
        collateral: Some(fixture_collateral()),
        ..Default::default()
    };
    let r = verify_bundle(&bundle, &opts);
    assert_eq!(results(&r)["quote"], CheckResult::Pass, "{r:#?}");
    assert_eq!(results(&r)["image_hash"], CheckResult::Fail);
    assert!(check(&r, "image_hash")[0].contains("not among the allowed images"));
    // And with no allowlist at all the bundle is refused (it was "verified" before).
    let none = VerifyOptions {
        allowed_images: Vec::new(),
        ..opts
    };
    let r = verify_bundle(&bundle, &none);
    assert_eq!(r.verdict, Verdict::Failed);
    assert!(
        r.failures[0].starts_with("bundle: no image allowlist"),
        "{r:?}"
    );
}

#[test]
fn old_collateral_in_the_bundle_is_not_trusted_and_fails_the_quote_check_now() {
    let bundle = dcap_bundle();
    assert!(
        bundle.workers[0].collateral.is_some(),
        "the bundle carries collateral"
    );
    let later = FIXTURE_TIME + 200 * 86_400;
    // The bundle's own collateral is ignored: the auditor must supply or fetch some.
    let opts = VerifyOptions {
        at: Some(later),
        allowed_images: vec![fixture_image()],
        ..Default::default()
    };
    let r = verify_bundle(&bundle, &opts);
    assert_eq!(results(&r)["quote"], CheckResult::Fail);
    assert!(check(&r, "quote")[0].contains("not trusted"), "{r:#?}");
    // The same (now outdated) collateral supplied by the auditor fails at the current time.
    let supplied = VerifyOptions {
        collateral: Some(fixture_collateral()),
        ..opts.clone()
    };
    let r = verify_bundle(&bundle, &supplied);
    assert_eq!(results(&r)["quote"], CheckResult::Fail);
    assert!(
        check(&r, "quote")[0].contains(&format!("DCAP verification at {later}")),
        "{r:#?}"
    );

    // The old behaviour, behind its flag: the bundle's collateral at the receipt's own time passes,
    // and the report says what was not checked.
    let trusting = VerifyOptions {
        at: None,
        allowed_images: Vec::new(),
        trust_bundle_collateral: true,
        ..Default::default()
    };
    let r = verify_bundle(&bundle, &trusting);
    assert_eq!(results(&r)["quote"], CheckResult::Pass, "{r:#?}");
    assert!(check(&r, "quote")[0].contains(&format!("valid at {FIXTURE_TIME}")));
    assert_eq!(r.not_checked.len(), 3, "{:?}", r.not_checked);
    assert!(r.not_checked[0].contains("collateral the bundle carries"));
    let mut b = bundle.clone();
    b.workers[0].collateral = None;
    let r = verify_bundle(&b, &trusting);
    assert!(check(&r, "quote")[0].contains("without collateral"));
}

#[test]
fn a_back_dated_receipt_fails_certificate_time() {
    let opts = VerifyOptions {
        at: Some(FIXTURE_TIME),
        allowed_images: vec![fixture_image()],
        collateral: Some(fixture_collateral()),
        ..Default::default()
    };
    // Dated before the worker's certificate existed (the signer picks the timestamp).
    let r = verify_bundle(&dcap_bundle_at(FIXTURE_TIME - 86_400), &opts);
    assert_eq!(results(&r)["certificate_time"], CheckResult::Fail, "{r:#?}");
    assert!(check(&r, "certificate_time")[0].contains("outside the certificate's validity"));
    assert!(
        r.failures
            .iter()
            .any(|f| f.contains(": certificate_time: "))
    );
    // After it expired, and in the future of the verification time.
    let r = verify_bundle(&dcap_bundle_at(FIXTURE_TIME + 7200), &opts);
    assert_eq!(results(&r)["certificate_time"], CheckResult::Fail);
    let r = verify_bundle(&dcap_bundle_at(FIXTURE_TIME + 1800), &opts);
    assert!(check(&r, "certificate_time")[0].contains("after the verification time"));
    // Inside the validity and not after now: passes.
    let r = verify_bundle(&dcap_bundle_at(FIXTURE_TIME - 30), &opts);
    assert_eq!(results(&r)["certificate_time"], CheckResult::Pass);
}
