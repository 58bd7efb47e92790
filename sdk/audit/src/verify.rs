//! Offline verification of proof bundles: every claim re-derived from the signed receipt, the bytes
//! and the worker's quote; nothing the gateway or the proxy wrote is taken on trust.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cocoon_protocol::{Receipt, SignedReceipt};
use sha2::{Digest, Sha256};

use crate::bundle::{BUNDLE_FORMAT, BUNDLE_VERSION, BodyEvidence, ProofBundle, ResponseEvidence};
use crate::report::{BundleReport, CheckResult, Checks, ResponseReport, Verdict, VerifyOptions};

/// Verifies every response of a bundle offline.
pub fn verify_bundle(bundle: &ProofBundle, opts: &VerifyOptions) -> BundleReport {
    let mut failures = Vec::new();
    let mut responses = Vec::new();
    let mut not_checked = Vec::new();
    if opts.trust_bundle_collateral {
        not_checked.push(
            "DCAP quotes were checked with the collateral the bundle carries, not collateral you \
             supplied or fetched: old collateral can show a now-outdated platform as UpToDate"
                .to_owned(),
        );
        if opts.at.is_none() {
            not_checked.push(
                "quotes were checked at each receipt's own timestamp, which the signer chose, not \
                 at the current time"
                    .to_owned(),
            );
        }
        if opts.allowed_images.is_empty() {
            not_checked.push(
                "no image allowlist: a quote from any TEE image passes (give --root or --image)"
                    .to_owned(),
            );
        }
    }
    if opts.allowed_images.is_empty() && !opts.trust_bundle_collateral {
        failures.push(
            "bundle: no image allowlist: take it from the root contract (--root) or give --image; \
             without one a quote from any TEE image would pass"
                .to_owned(),
        );
    } else if bundle.format != BUNDLE_FORMAT || bundle.version != BUNDLE_VERSION {
        failures.push(format!(
            "bundle: format {:?} version {} is not {BUNDLE_FORMAT:?} version {BUNDLE_VERSION}",
            bundle.format, bundle.version
        ));
    } else if bundle.responses.is_empty() {
        failures.push("bundle: holds no responses".to_owned());
    } else {
        for r in &bundle.responses {
            let report = verify_response(bundle, r, opts);
            for c in report
                .checks
                .iter()
                .filter(|c| c.result == CheckResult::Fail)
            {
                failures.push(format!("response {}: {}: {}", report.id, c.name, c.detail));
            }
            responses.push(report);
        }
    }
    let verdict = if failures.is_empty() {
        responses
            .iter()
            .map(|r| r.verdict)
            .max()
            .unwrap_or(Verdict::Failed)
    } else {
        Verdict::Failed
    };
    BundleReport {
        format: bundle.format.clone(),
        version: bundle.version,
        verdict,
        responses_checked: responses.len(),
        failures,
        not_checked,
        responses,
    }
}

fn verify_response(
    bundle: &ProofBundle,
    r: &ResponseEvidence,
    opts: &VerifyOptions,
) -> ResponseReport {
    let mut checks = Checks::default();
    let mut report = ResponseReport {
        id: r.id,
        verdict: Verdict::Failed,
        endpoint: r.endpoint.clone(),
        model: None,
        model_hash: None,
        worker_key: None,
        tee: None,
        image_hash: None,
        cost_nano: None,
        receipt_timestamp: None,
        checks: Vec::new(),
    };
    let receipt = match r
        .receipt
        .as_deref()
        .map(|w| SignedReceipt::from_wire(w.as_bytes()))
    {
        None => {
            checks.fail("receipt", "the response came without a receipt");
            None
        }
        Some(Err(e)) => {
            checks.fail("receipt", e.to_string());
            None
        }
        Some(Ok(s)) => {
            checks.pass("receipt", "decodes (cocoon-receipt-1)");
            Some(s)
        }
    };
    if let Some(signed) = &receipt {
        let rc = &signed.receipt;
        report.model = Some(rc.model.clone());
        report.model_hash = Some(hex::encode(rc.model_hash));
        report.worker_key = Some(hex::encode(rc.worker_key));
        report.image_hash = Some(hex::encode(rc.image_hash));
        report.cost_nano = Some(rc.cost_nano.to_string());
        report.receipt_timestamp = Some(rc.timestamp);
        receipt_checks(&mut checks, r, signed);
        report.tee = crate::evidence::evidence_checks(&mut checks, bundle, rc, opts);
        model_checks(&mut checks, rc, opts);
        charge_check(&mut checks, r, rc);
    }
    report.verdict = checks.verdict();
    report.checks = checks.into_checks();
    report
}

fn receipt_checks(checks: &mut Checks, r: &ResponseEvidence, signed: &SignedReceipt) {
    let rc = &signed.receipt;
    match &r.receipt_decoded {
        Some(copy) if copy != signed => checks.fail(
            "receipt_copy",
            "receipt_decoded differs from the signed receipt (someone edited the readable copy)",
        ),
        _ => {}
    }
    match signed.verify_signature() {
        Ok(()) => checks.pass(
            "signature",
            format!(
                "Ed25519 signature by worker {} verifies",
                hex::encode(rc.worker_key)
            ),
        ),
        Err(e) => checks.fail("signature", e.to_string()),
    }
    let request = body_check(checks, "request_hash", &r.request, &rc.request_sha256);
    body_check(checks, "response_hash", &r.response, &rc.response_sha256);
    if let Some(bytes) = request {
        let model = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("model").and_then(|m| m.as_str()).map(str::to_owned));
        match model {
            Some(m) if m == rc.model => checks.pass(
                "request_model",
                format!("the request asked for {m:?}, the receipt names it"),
            ),
            Some(m) => checks.fail(
                "request_model",
                format!(
                    "the request asked for {m:?}, the receipt names {:?}",
                    rc.model
                ),
            ),
            None => checks.fail(
                "request_model",
                "the request bytes are not a JSON object with a model",
            ),
        }
    }
    match r.forwarded.worker_key.as_deref() {
        Some(k) if k == hex::encode(rc.worker_key) => checks.pass(
            "forwarded_worker",
            "the proxy attested the same worker that signed",
        ),
        Some(k) => checks.fail(
            "forwarded_worker",
            format!(
                "the proxy attested worker {k}, the receipt is signed by {}",
                hex::encode(rc.worker_key)
            ),
        ),
        None => checks.add(
            "forwarded_worker",
            CheckResult::Skipped,
            "the proxy forwarded no worker key",
        ),
    }
}

/// Checks one body against the signed hash; returns the bytes when the bundle carries them.
fn body_check(
    checks: &mut Checks,
    name: &str,
    body: &BodyEvidence,
    signed: &[u8; 32],
) -> Option<Vec<u8>> {
    let mut stated = [0u8; 32];
    if hex::decode_to_slice(&body.sha256, &mut stated).is_err() {
        checks.fail(name, "sha256 is not 32 bytes of hex");
        return None;
    }
    let bytes = match body.bytes.as_deref().map(|b| STANDARD.decode(b)) {
        None => None,
        Some(Err(e)) => {
            checks.fail(name, format!("bytes are not base64: {e}"));
            return None;
        }
        Some(Ok(b)) => Some(b),
    };
    if let Some(b) = &bytes {
        let actual: [u8; 32] = Sha256::digest(b).into();
        if actual != stated {
            checks.fail(
                name,
                format!(
                    "the {} bytes hash to {}, the bundle states {}",
                    b.len(),
                    hex::encode(actual),
                    body.sha256
                ),
            );
            return None;
        }
    }
    if &stated != signed {
        let what = if bytes.is_some() {
            "bytes hash"
        } else {
            "hash"
        };
        checks.fail(
            name,
            format!(
                "the worker signed {}, the bundle's {what} is {}",
                hex::encode(signed),
                body.sha256
            ),
        );
        return None;
    }
    match &bytes {
        Some(b) => checks.pass(
            name,
            format!("SHA-256 of the {} bytes equals the signed hash", b.len()),
        ),
        None => checks.pass(
            name,
            "hash only (bytes not in the bundle) equals the signed hash",
        ),
    }
    bytes
}

fn model_checks(checks: &mut Checks, rc: &Receipt, opts: &VerifyOptions) {
    let hash = hex::encode(rc.model_hash);
    if opts.allowed_models.is_empty() {
        checks.add(
            "model_hash",
            CheckResult::Skipped,
            format!("model hash {hash} not checked: no allowed model hashes given"),
        );
    } else if opts.allowed_models.contains(&rc.model_hash) {
        checks.pass("model_hash", format!("model hash {hash} is allowed"));
    } else {
        checks.fail(
            "model_hash",
            format!("model hash {hash} is not among the allowed models"),
        );
    }
}

fn charge_check(checks: &mut Checks, r: &ResponseEvidence, rc: &Receipt) {
    let Some(text) = r.charge.charged_nano.as_deref() else {
        checks.add(
            "charge",
            CheckResult::Skipped,
            "the proxy reported no charge",
        );
        return;
    };
    match text.parse::<u128>() {
        Err(_) => checks.fail("charge", format!("charged_nano {text:?} is not an integer")),
        Ok(c) if c > rc.cost_nano => checks.fail(
            "charge",
            format!(
                "the proxy charged {c} nanoTON, the worker priced the response at {}",
                rc.cost_nano
            ),
        ),
        Ok(c) => checks.pass(
            "charge",
            format!(
                "charged {c} nanoTON, within the receipt's {} (no signed charge in the bundle)",
                rc.cost_nano
            ),
        ),
    }
}
