//! The malformed-input corpus through the real parsers: every non-HTTP case must end in the error
//! class its manifest entry names (or `accepted` for the controls and the documented gaps), with a
//! message, and without a panic. The HTTP cases run in tests/api_corpus.rs.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cocoon_attestation::collateral::{CollateralStore, load_collateral_file};
use cocoon_attestation::dcap::{QuoteCollateralV3, verify_quote};
use cocoon_attestation::policy::{FixedClock, InMemoryAllowlist, Policy};
use cocoon_attestation::provider::simulated::SimulatedProvider;
use cocoon_attestation::verify::PeerVerifier;
use cocoon_attestation::{Role, fixtures_dir};
use cocoon_drills::binding::{Binding, DRILL_IMAGE, MEMORY_CLIENT_KEY, VERIFY_AT};
use cocoon_drills::manifest::{Manifest, corpus_dir};
use cocoon_drills::targets::{Rejection, attest_class, run};
use cocoon_protocol::PriceParams;
use cocoon_protocol::voucher::{ChargeVoucher, PayoutVoucher, SignedVoucher};
use cocoon_proxy::chain::{SettleError, Settler};
use cocoon_testkit::MemoryChain;

/// Everything the contextual targets need, built once.
struct Context {
    binding: Binding,
    collateral: QuoteCollateralV3,
    dev: PeerVerifier,
    strict: PeerVerifier,
}

impl Context {
    fn new() -> Context {
        let collateral =
            load_collateral_file(&fixtures_dir().join("cocoon-tdx-quote.collateral.json"))
                .expect("fixture collateral");
        let allowlist = InMemoryAllowlist::new();
        allowlist.allow(
            Role::Worker,
            SimulatedProvider::new(DRILL_IMAGE).image_hash(),
        );
        let allowlist = Arc::new(allowlist);
        let policy = Policy::strict(&[Role::Worker, Role::Proxy], allowlist)
            .with_collateral(Arc::new(CollateralStore::fixed(collateral.clone())))
            .with_clock(Arc::new(FixedClock::new(VERIFY_AT)));
        Context {
            binding: Binding::drill().expect("binding"),
            collateral,
            dev: PeerVerifier::new(policy.clone().insecure_dev()),
            strict: PeerVerifier::new(policy),
        }
    }

    /// The outcome class of one case: `accepted`, `no_effect` (replays) or the rejection class.
    fn outcome(&self, target: &str, data: &[u8]) -> Result<&'static str, Rejection> {
        let verdict = |r: Result<(), Rejection>| r.map(|()| "accepted");
        let attest = |e| Rejection::new(attest_class(&e), e);
        match target {
            "peer_certificate" => verdict(self.dev.verify(data).map(|_| ()).map_err(attest)),
            "peer_certificate_strict" => {
                verdict(self.strict.verify(data).map(|_| ()).map_err(attest))
            }
            "quote_verify" => verdict(
                verify_quote(data, &self.collateral, VERIFY_AT as u64)
                    .map(|_| ())
                    .map_err(attest),
            ),
            "charge_sequence" => self.sequence::<ChargeVoucher>(data),
            "payout_sequence" => self.sequence::<PayoutVoucher>(data),
            other => verdict(run(other, data, &self.binding)),
        }
    }

    /// Submits the vouchers in order to a fresh in-memory settler; all but the last must pass.
    /// The settled totals may never exceed the highest cumulative amount submitted.
    fn sequence<V: Settle>(&self, data: &[u8]) -> Result<&'static str, Rejection> {
        let list: Vec<SignedVoucher<V>> =
            serde_json::from_slice(data).map_err(|e| Rejection::new("json", e))?;
        let chain = MemoryChain::new(PriceParams::default(), self.binding.proxy_public());
        chain.open_escrow(MEMORY_CLIENT_KEY, 1_000_000_000);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (last, before) = list.split_last().expect("a sequence has a voucher");
        for v in before {
            rt.block_on(V::submit(&chain, v.clone()))
                .expect("every voucher before the last is valid");
        }
        let state = |c: &MemoryChain| V::settled(c);
        let prior = state(&chain);
        let result = rt.block_on(V::submit(&chain, last.clone()));
        let after = state(&chain);
        let highest = list.iter().map(|v| V::cumulative(v)).max().unwrap_or(0);
        assert!(
            after <= highest,
            "settled {after} above any voucher ({highest})"
        );
        match result {
            Ok(()) if after == prior && !before.is_empty() => Ok("no_effect"),
            Ok(()) => Ok("accepted"),
            Err(e @ SettleError::Rejected(_)) => {
                assert_eq!(after, prior, "a rejected voucher changed the settled total");
                Err(Rejection::new("rejected", e))
            }
            Err(e) => Err(Rejection::new("unavailable", e)),
        }
    }
}

/// The two voucher kinds as the settler takes them.
trait Settle: serde::de::DeserializeOwned + Clone + Sized {
    fn submit(
        chain: &MemoryChain,
        v: SignedVoucher<Self>,
    ) -> cocoon_proxy::chain::BoxFuture<'_, Result<(), SettleError>>;
    fn settled(chain: &MemoryChain) -> u128;
    fn cumulative(v: &SignedVoucher<Self>) -> u128;
}

impl Settle for ChargeVoucher {
    fn submit(
        chain: &MemoryChain,
        v: SignedVoucher<Self>,
    ) -> cocoon_proxy::chain::BoxFuture<'_, Result<(), SettleError>> {
        chain.submit_charge(v)
    }
    fn settled(chain: &MemoryChain) -> u128 {
        chain.snapshot().escrows.values().map(|e| e.settled).sum()
    }
    fn cumulative(v: &SignedVoucher<Self>) -> u128 {
        v.voucher.cumulative_nano
    }
}

impl Settle for PayoutVoucher {
    fn submit(
        chain: &MemoryChain,
        v: SignedVoucher<Self>,
    ) -> cocoon_proxy::chain::BoxFuture<'_, Result<(), SettleError>> {
        chain.submit_payout(v)
    }
    fn settled(chain: &MemoryChain) -> u128 {
        chain.snapshot().paid.values().sum()
    }
    fn cumulative(v: &SignedVoucher<Self>) -> u128 {
        v.voucher.cumulative_nano
    }
}

/// Runs one case in a child process (this test binary, [`one_case_in_a_child`]): for inputs that
/// take the whole process down (an allocation failure aborts, it does not unwind). The child prints
/// the outcome class; a child killed by a signal is `abort`.
fn outcome_in_child(file: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "one_case_in_a_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("COCOON_DRILL_CASE", file)
        .output()
        .expect("spawn the child");
    if !out.status.success() && out.status.code().is_none() {
        return "abort".into();
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.split("DRILL-OUTCOME ").nth(1))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("<child exited with {}>", out.status))
}

#[test]
#[ignore = "helper: runs the case named by COCOON_DRILL_CASE for outcome_in_child"]
fn one_case_in_a_child() {
    let Ok(file) = std::env::var("COCOON_DRILL_CASE") else {
        return;
    };
    let manifest = Manifest::load().expect("manifest");
    let case = manifest
        .cases
        .iter()
        .find(|c| c.file == file)
        .expect("case");
    let data = case.bytes().expect("case file");
    let class = match Context::new().outcome(&case.target, &data) {
        Ok(class) => class,
        Err(r) => r.class,
    };
    println!("\nDRILL-OUTCOME {class}");
}

#[test]
fn every_parser_case_ends_in_its_error_class() {
    let manifest = Manifest::load().expect("manifest");
    let ctx = Context::new();
    let mut failures = Vec::new();
    let mut still_buggy = Vec::new();
    let mut messages = BTreeMap::<String, String>::new();
    let mut counts = BTreeMap::<String, usize>::new();
    for case in manifest.cases.iter().filter(|c| c.target != "http") {
        let got = if case.expect == "abort" || case.known_bug.as_deref() == Some("abort") {
            outcome_in_child(&case.file)
        } else {
            let data = case.bytes().expect("case file");
            let outcome = catch_unwind(AssertUnwindSafe(|| ctx.outcome(&case.target, &data)));
            match outcome {
                Err(_) => "panic".to_owned(),
                Ok(Ok(class)) => class.to_owned(),
                Ok(Err(r)) => {
                    if r.message.trim().is_empty() {
                        failures.push(format!("{}: {} with an empty message", case.file, r.class));
                    }
                    messages.insert(case.file.clone(), r.message);
                    r.class.to_owned()
                }
            }
        };
        if got != case.expect {
            if case.known_bug.as_deref() == Some(got.as_str()) {
                still_buggy.push(format!("{} ({got})", case.file));
            } else {
                let detail = messages.get(&case.file).cloned().unwrap_or_default();
                failures.push(format!(
                    "{} ({}): expected {}, got {got} {detail}",
                    case.file, case.target, case.expect
                ));
            }
        }
        *counts.entry(case.category().to_owned()).or_default() += 1;
    }
    eprintln!("parser corpus cases per category: {counts:?}");
    if !still_buggy.is_empty() {
        eprintln!(
            "known bugs still present (accepted while their fix is pending): {}",
            still_buggy.join(", ")
        );
    }
    assert!(
        failures.is_empty(),
        "{} of the corpus cases misbehaved:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_manifest_covers_every_surface_and_every_file() {
    let manifest = Manifest::load().expect("manifest");
    let mut counts = BTreeMap::<&str, usize>::new();
    for c in &manifest.cases {
        *counts.entry(c.category()).or_default() += 1;
        assert!(
            corpus_dir().join(&c.file).is_file(),
            "{} is missing",
            c.file
        );
        assert!(!c.why.is_empty(), "{} says nothing about itself", c.file);
    }
    for category in ["api", "cells", "certs", "quotes", "vouchers", "receipts"] {
        assert!(
            counts.get(category).copied().unwrap_or(0) >= 10,
            "{category}: {counts:?}"
        );
    }
    assert!(manifest.cases.len() >= 100, "{counts:?}");
    // No orphan files: everything in the corpus is a listed case.
    let mut listed: Vec<_> = manifest.cases.iter().map(|c| c.file.clone()).collect();
    listed.sort();
    let mut on_disk = Vec::new();
    let mut dirs = vec![corpus_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("corpus dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n != "manifest.toml") {
                let rel = path.strip_prefix(corpus_dir()).expect("under corpus");
                on_disk.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    on_disk.sort();
    assert_eq!(on_disk, listed);
}

/// Regression test for the receipt encoder: a receipt signed for any model name, however long and
/// whatever its characters, decodes from the wire and verifies (names are cut at 256 bytes, on a
/// character boundary).
#[test]
fn receipts_for_any_model_name_decode_and_verify() {
    use cocoon_protocol::Usage;
    use cocoon_protocol::receipt::{Receipt, SignedReceipt};
    let worker = Binding::drill().expect("binding").worker_key;
    for model in [
        "m".to_owned(),
        "x".repeat(300),
        format!("a{}", "é".repeat(200)),
        format!("ab{}", "😀".repeat(80)),
    ] {
        let signed = Receipt {
            request_sha256: [1; 32],
            response_sha256: [2; 32],
            model: model.clone(),
            model_hash: [3; 32],
            usage: Usage::default(),
            coefficient: 1000,
            price_per_token: 1,
            cost_nano: 1,
            timestamp: 1,
            image_hash: [4; 32],
            worker_key: worker.verifying_key().to_bytes(),
        }
        .sign(&worker);
        let back = SignedReceipt::from_wire(signed.to_wire().as_bytes())
            .unwrap_or_else(|e| panic!("{} bytes of model name: {e}", model.len()));
        back.verify_signature().expect("verifies");
        assert!(model.starts_with(&back.receipt.model));
        assert!(back.receipt.model.len() <= 256);
    }
}
