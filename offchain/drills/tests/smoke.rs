//! The stable smoke run of the fuzz entry points: every target in `cocoon_drills::targets` gets the
//! corpus (plus the sandbox's golden vectors for the contract decoders) and deterministic mutations
//! of it, and must never panic. Real, coverage-guided fuzzing is `cargo fuzz` in `fuzz/` (nightly).
//!
//! `COCOON_SMOKE_SCALE=<n>` multiplies the mutation counts (default 1) for a longer local run.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use cocoon_contracts::registry::{TYPE_NAMES, normalize};
use cocoon_drills::binding::Binding;
use cocoon_drills::manifest::{Manifest, corpus_dir};
use cocoon_drills::mutate::{Prng, mutate};
use cocoon_drills::targets::{TARGETS, run};

/// Valid BoCs of every schema type, by normalised type name, from sandbox-tests/golden.
fn golden() -> BTreeMap<String, Vec<Vec<u8>>> {
    let dir = corpus_dir().join("../../../sandbox-tests/golden");
    let mut out = BTreeMap::<String, Vec<Vec<u8>>>::new();
    for file in ["messages.json", "statements.json", "storage.json"] {
        let text = std::fs::read_to_string(dir.join(file)).expect("golden vectors");
        let list: Vec<serde_json::Value> = serde_json::from_str(&text).expect("golden JSON");
        for v in list {
            let (Some(name), Some(boc)) = (v["name"].as_str(), v["boc"].as_str()) else {
                continue;
            };
            let bytes = hex::decode(boc).expect("golden hex");
            out.entry(normalize(name)).or_default().push(bytes);
        }
    }
    out
}

/// The corpus files a target starts from.
fn seeds_for(
    target: &str,
    manifest: &Manifest,
    golden: &BTreeMap<String, Vec<Vec<u8>>>,
) -> Vec<Vec<u8>> {
    let ext = |e: &str| {
        let e = e.to_owned();
        move |file: &str| file.ends_with(&e)
    };
    let pick: Box<dyn Fn(&str) -> bool> = match target {
        "certificate" => Box::new(ext(".der")),
        "claims" => Box::new(|f: &str| f.starts_with("certs/") && f.ends_with(".bin")),
        "quote" | "simulated_quote" => Box::new(|f: &str| f.starts_with("quotes/")),
        "receipt_wire" => Box::new(ext(".b64")),
        "receipt_json" => Box::new(|f: &str| f.starts_with("receipts/") && f.ends_with(".json")),
        "protocol_charge" | "protocol_payout" => {
            Box::new(|f: &str| f.starts_with("vouchers/") && f.ends_with(".json"))
        }
        "openai_chat" | "openai_completion" => Box::new(|f: &str| f.starts_with("api/")),
        _ => Box::new(ext(".boc")),
    };
    let mut seeds: Vec<Vec<u8>> = manifest
        .cases
        .iter()
        .filter(|c| pick(&c.file) && c.pad_to.is_none())
        .filter_map(|c| c.bytes().ok())
        .collect();
    if let Some(name) = target.strip_prefix("message:") {
        seeds.extend(golden.get(&normalize(name)).cloned().unwrap_or_default());
    }
    if target.starts_with("message:") || target == "boc" || target.starts_with("signed_") {
        seeds.extend(golden.values().flatten().cloned());
    }
    seeds
}

/// Mutations per target: parsers that verify Ed25519 or X.509 signatures on most inputs are
/// slow unoptimised, so they get fewer.
fn budget(target: &str) -> usize {
    let scale = std::env::var("COCOON_SMOKE_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1usize);
    let base = match target {
        "certificate" => 2_000,
        "receipt_wire" | "receipt_json" | "protocol_charge" | "protocol_payout" => 3_000,
        "signed_charge" | "signed_payout" => 3_000,
        t if t.starts_with("message:") => 3_000,
        _ => 5_000,
    };
    base * scale
}

thread_local! {
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn seed_of(target: &str) -> u64 {
    target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn no_entry_point_panics_on_mutated_corpus() {
    let manifest = Manifest::load().expect("manifest");
    let golden = golden();
    let binding = Binding::drill().expect("binding");
    let mut targets: Vec<String> = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    targets.extend(TYPE_NAMES.iter().map(|t| format!("message:{t}")));
    let mut runs = BTreeMap::<String, usize>::new();
    let mut panics = Vec::new();
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        PANIC_AT.with(|p| *p.borrow_mut() = at);
    }));
    for target in &targets {
        let seeds = seeds_for(target, &manifest, &golden);
        assert!(!seeds.is_empty(), "{target} has no seeds");
        let refs: Vec<&[u8]> = seeds.iter().map(Vec::as_slice).collect();
        let mut rng = Prng::new(seed_of(target));
        let mut inputs: Vec<Vec<u8>> = seeds.clone();
        for _ in 0..budget(target) {
            let base = refs[rng.below(refs.len())];
            inputs.push(mutate(base, &refs, &mut rng));
        }
        for input in &inputs {
            let outcome = catch_unwind(AssertUnwindSafe(|| run(target, input, &binding)));
            if outcome.is_err() {
                let at = PANIC_AT.with(|p| p.borrow_mut().take()).unwrap_or_default();
                let shown = hex::encode(&input[..input.len().min(512)]);
                panics.push(format!(
                    "{target} panicked at {at} on {} bytes: {shown}",
                    input.len()
                ));
            }
        }
        runs.insert(target.clone(), inputs.len());
    }
    let total: usize = runs.values().sum();
    let _ = std::panic::take_hook();
    eprintln!("smoke run: {total} inputs over {} entry points", runs.len());
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
}
