//! The worker-evidence half of bundle verification: certificate, quote (DCAP or simulated), key
//! binding and image.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cocoon_attestation::Role;
use cocoon_attestation::cert::{ParsedCert, parse_certificate};
use cocoon_attestation::collateral::parse_collateral_json;
use cocoon_attestation::dcap::{parse_quote, verify_quote};
use cocoon_attestation::provider::EvidenceKind;
use cocoon_attestation::provider::simulated::SimulatedQuote;
use cocoon_protocol::Receipt;

use crate::bundle::{ProofBundle, WorkerEvidence};
use crate::report::{CheckResult, Checks, VerifyOptions};

/// The certificate, quote, key binding and image checks; returns the TEE kind.
pub(crate) fn evidence_checks(
    checks: &mut Checks,
    bundle: &ProofBundle,
    rc: &Receipt,
    opts: &VerifyOptions,
) -> Option<String> {
    let key = hex::encode(rc.worker_key);
    let Some(ev) = bundle.workers.iter().find(|w| w.worker_key == key) else {
        checks.fail(
            "certificate",
            format!("the bundle has no evidence for worker {key}"),
        );
        return None;
    };
    let Some(b64) = ev.certificate.as_deref() else {
        checks.fail(
            "certificate",
            "the gateway could not get this worker's certificate from the proxy",
        );
        return None;
    };
    let Ok(der) = STANDARD.decode(b64) else {
        checks.fail("certificate", "not base64");
        return None;
    };
    let parsed = match parse_certificate(&der) {
        Ok(p) => p,
        Err(e) => {
            // A certificate of development TLS before it became an attestation policy (bundles
            // exported then): a plain self-signed key, no claims, no quote.
            let plain = e.to_string().contains("no claims extension")
                && cocoon_attestation::cert::ed25519_key_of_cert(&der) == Some(rc.worker_key);
            if plain {
                checks.add(
                    "certificate",
                    CheckResult::Insecure,
                    "development TLS certificate without claims or quote: nothing binds the key to a TEE (INSECURE)",
                );
                return Some("none".to_owned());
            }
            checks.fail("certificate", e.to_string());
            return None;
        }
    };
    certificate_check(checks, &parsed);
    certificate_time_check(checks, &parsed, rc, opts);
    if parsed.public_key == rc.worker_key {
        checks.pass(
            "signer_attested",
            "the receipt signer is the certificate's (and the quote's) key",
        );
    } else {
        checks.fail(
            "signer_attested",
            format!(
                "the receipt is signed by {key}, the certificate attests {}",
                hex::encode(parsed.public_key)
            ),
        );
    }
    let expected = parsed.expected_report_data();
    let binds = |report_data: [u8; 64], checks: &mut Checks| {
        if report_data == expected {
            checks.pass(
                "quote_binds_key",
                "quote report_data = SHA-512(certificate claims)",
            );
        } else {
            checks.fail(
                "quote_binds_key",
                "quote report_data is not SHA-512 of the certificate's claims: the quote was made for another key",
            );
        }
    };
    let (tee, image) = match &parsed.evidence {
        None => {
            checks.add(
                "quote",
                CheckResult::Insecure,
                "the certificate carries no TEE evidence (INSECURE)",
            );
            return Some("none".to_owned());
        }
        Some((EvidenceKind::Simulated, q)) => match SimulatedQuote::parse(q) {
            Err(e) => {
                checks.fail("quote", e.to_string());
                return Some("simulated".to_owned());
            }
            Ok(sq) => {
                binds(sq.report_data, checks);
                checks.add(
                    "quote",
                    CheckResult::Insecure,
                    "SIMULATED quote: well-formed and bound to the key, but no hardware stands behind it (INSECURE)",
                );
                ("simulated".to_owned(), Some(sq.measurements.image_hash()))
            }
        },
        Some((EvidenceKind::Dcap, q)) => {
            let (tee, image) = dcap_checks(checks, ev, q, rc, opts);
            if let Ok((_, _, _, report_data)) = parse_quote(q) {
                binds(report_data, checks);
            }
            (tee, image)
        }
    };
    if let Some(image) = image {
        image_check(checks, rc, image, opts);
    }
    Some(tee)
}

fn certificate_check(checks: &mut Checks, parsed: &ParsedCert) {
    if parsed.claims.role != Role::Worker {
        checks.fail(
            "certificate",
            format!(
                "the certificate's role is {}, not worker",
                parsed.claims.role
            ),
        );
    } else if parsed.claims.public_key != parsed.public_key {
        checks.fail(
            "certificate",
            "the claims name another key than the certificate's",
        );
    } else {
        checks.pass(
            "certificate",
            format!(
                "self-signed Ed25519 RA-TLS certificate, role worker, valid {}..{}",
                parsed.not_before, parsed.not_after
            ),
        );
    }
}

/// Receipt clock skew tolerated past the verification time, seconds.
const FUTURE_SKEW_SECS: u64 = 300;

/// The receipt must be dated inside the certificate's validity (a receipt back-dated to before the
/// key was certified, or after its certificate expired, is not the attested worker's), and not
/// after the verification time.
fn certificate_time_check(
    checks: &mut Checks,
    parsed: &ParsedCert,
    rc: &Receipt,
    opts: &VerifyOptions,
) {
    let t = i64::try_from(rc.timestamp).unwrap_or(i64::MAX);
    let now = opts.now();
    if t < parsed.not_before || t > parsed.not_after {
        checks.fail(
            "certificate_time",
            format!(
                "the receipt is dated {}, outside the certificate's validity {}..{}",
                rc.timestamp, parsed.not_before, parsed.not_after
            ),
        );
    } else if rc.timestamp > now.saturating_add(FUTURE_SKEW_SECS) {
        checks.fail(
            "certificate_time",
            format!(
                "the receipt is dated {}, after the verification time {now}",
                rc.timestamp
            ),
        );
    } else {
        checks.pass(
            "certificate_time",
            format!(
                "the receipt's time {} is inside the certificate's validity {}..{}",
                rc.timestamp, parsed.not_before, parsed.not_after
            ),
        );
    }
}

fn dcap_checks(
    checks: &mut Checks,
    ev: &WorkerEvidence,
    quote: &[u8],
    rc: &Receipt,
    opts: &VerifyOptions,
) -> (String, Option<[u8; 32]>) {
    let collateral = if opts.trust_bundle_collateral {
        match &ev.collateral {
            Some(v) => serde_json::to_vec(v)
                .map_err(|e| e.to_string())
                .and_then(|b| parse_collateral_json(&b).map_err(|e| e.to_string()))
                .map(Some),
            None => Ok(opts.collateral.clone()),
        }
    } else {
        Ok(opts
            .worker_collateral
            .get(&ev.worker_key)
            .or(opts.collateral.as_ref())
            .cloned())
    };
    let collateral = match collateral {
        Err(e) => {
            checks.fail("quote", format!("bundled collateral: {e}"));
            return ("dcap".to_owned(), None);
        }
        Ok(None) if opts.trust_bundle_collateral => {
            checks.fail(
                "quote",
                "DCAP quote without collateral: export with collateral or pass it to the verifier",
            );
            return ("dcap".to_owned(), None);
        }
        Ok(None) => {
            checks.fail(
                "quote",
                "DCAP quote without collateral of your own: pass --collateral or --pccs (the \
                 collateral a bundle carries is not trusted)",
            );
            return ("dcap".to_owned(), None);
        }
        Ok(Some(c)) => c,
    };
    let at = if opts.trust_bundle_collateral {
        opts.at.unwrap_or(rc.timestamp)
    } else {
        opts.now()
    };
    match verify_quote(quote, &collateral, at) {
        Err(e) => {
            checks.fail("quote", format!("DCAP verification at {at}: {e}"));
            ("dcap".to_owned(), None)
        }
        Ok(report) => {
            checks.pass(
                "quote",
                format!(
                    "DCAP: {} quote v{} chains to the pinned Intel root, collateral valid at {at}",
                    report.tee, report.quote_version
                ),
            );
            match opts.tcb.check(report.tcb_status, &report.advisories) {
                Ok(()) => checks.pass("tcb", format!("TCB status {}", report.tcb_status)),
                Err(e) => checks.fail("tcb", e.to_string()),
            }
            if report.image_hash.is_none() {
                checks.fail("image_hash", "an SGX quote cannot attest a worker image");
            }
            (report.tee.to_string(), report.image_hash)
        }
    }
}

fn image_check(checks: &mut Checks, rc: &Receipt, measured: [u8; 32], opts: &VerifyOptions) {
    if measured != rc.image_hash {
        checks.fail(
            "image_hash",
            format!(
                "the receipt names image {}, the quote measures {}",
                hex::encode(rc.image_hash),
                hex::encode(measured)
            ),
        );
    } else if opts.allowed_images.is_empty() {
        checks.pass(
            "image_hash",
            "the receipt's image is the one the quote measures (no allowlist given)",
        );
    } else if opts.allowed_images.contains(&measured) {
        checks.pass(
            "image_hash",
            "the quote's image is measured, named by the receipt and allowed",
        );
    } else {
        checks.fail(
            "image_hash",
            format!(
                "image {} is not among the allowed images",
                hex::encode(measured)
            ),
        );
    }
}
