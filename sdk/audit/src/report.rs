//! What the verifier is asked ([`VerifyOptions`]) and what it answers ([`BundleReport`]): a verdict
//! per bundle and per response, and every named check with its reason.

use cocoon_attestation::TcbPolicy;
use cocoon_attestation::dcap::QuoteCollateralV3;
use serde::Serialize;

/// What the auditor requires beyond the bundle itself.
///
/// Nothing the bundle's maker chose is trusted by default: quotes are verified at the current time
/// (`at`, default the system clock) with collateral the auditor supplies (`collateral`,
/// `worker_collateral`), never the bundle's; the image must be in `allowed_images` (the root
/// contract's allowlist, or the auditor's), and a bundle verified without one is refused. The old
/// behaviour (the bundle's collateral at each receipt's own timestamp, no allowlist) is
/// `trust_bundle_collateral`, and the report then lists what it did not check.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The verification time, unix seconds (default: now). Quotes and collateral must be valid
    /// then; receipts may not be dated after it.
    pub at: Option<u64>,
    /// Image hashes the worker must run (the root contract's allowlist, or the auditor's own).
    /// Empty: the bundle is refused, unless `trust_bundle_collateral`.
    pub allowed_images: Vec<[u8; 32]>,
    /// Model hashes the receipt may name; empty: not checked.
    pub allowed_models: Vec<[u8; 32]>,
    /// Accepted TCB statuses (default: `UpToDate` only).
    pub tcb: TcbPolicy,
    /// The auditor's collateral for DCAP quotes (used for every worker without an entry in
    /// `worker_collateral`).
    pub collateral: Option<QuoteCollateralV3>,
    /// The auditor's collateral per worker key (hex), e.g. fetched from a PCCS for each quote.
    pub worker_collateral: std::collections::BTreeMap<String, QuoteCollateralV3>,
    /// INSECURE old behaviour: DCAP quotes are checked with the collateral the bundle carries, at
    /// each receipt's own timestamp (chosen by the signer), and a bundle without an image
    /// allowlist is not refused. What this leaves unchecked is listed in
    /// [`BundleReport::not_checked`].
    pub trust_bundle_collateral: bool,
}

impl VerifyOptions {
    /// The verification time: `at`, or the system clock.
    pub fn now(&self) -> u64 {
        self.at.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
    }
}

/// The outcome of a bundle, a response or a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every check passed on real hardware evidence.
    Verified,
    /// Every check passed, but the worker's attestation is simulated or absent: it proves nothing.
    Insecure,
    /// At least one check failed.
    Failed,
}

/// One check's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckResult {
    /// Holds.
    Pass,
    /// Does not hold.
    Fail,
    /// Holds only in the sense that simulated or absent evidence is consistent: proves nothing.
    Insecure,
    /// Not checked (nothing to check against); the detail says what would check it.
    Skipped,
}

/// A named check with its result and a precise reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name (see docs/protocol.md).
    pub name: String,
    /// The result.
    pub result: CheckResult,
    /// What was compared, or why it failed.
    pub detail: String,
}

/// One response's checks and what its receipt says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseReport {
    /// The record id.
    pub id: u64,
    /// The response's verdict.
    pub verdict: Verdict,
    /// The API path.
    pub endpoint: String,
    /// Model name in the receipt.
    pub model: Option<String>,
    /// Model hash in the receipt, hex.
    pub model_hash: Option<String>,
    /// The signing worker's key, hex.
    pub worker_key: Option<String>,
    /// The TEE behind the worker's evidence (`tdx`, `sgx`, `simulated`, `none`).
    pub tee: Option<String>,
    /// Image hash in the receipt, hex.
    pub image_hash: Option<String>,
    /// The receipt's price of the response, nanoTON.
    pub cost_nano: Option<String>,
    /// The receipt's timestamp, unix seconds.
    pub receipt_timestamp: Option<u64>,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

/// The verdict on a whole bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleReport {
    /// The bundle's `format`.
    pub format: String,
    /// The bundle's `version`.
    pub version: u32,
    /// Failed if anything failed, else insecure if any evidence is simulated or absent, else verified.
    pub verdict: Verdict,
    /// How many responses were checked.
    pub responses_checked: usize,
    /// Every failed check as `response N: name: detail` (empty unless failed).
    pub failures: Vec<String>,
    /// What the verification did not check because the auditor asked for the old behaviour
    /// (`trust_bundle_collateral`); empty otherwise.
    pub not_checked: Vec<String>,
    /// Per response.
    pub responses: Vec<ResponseReport>,
}

/// The checks of one response, in the order they ran.
#[derive(Debug, Default)]
pub(crate) struct Checks(Vec<Check>);

impl Checks {
    pub(crate) fn add(&mut self, name: &str, result: CheckResult, detail: impl Into<String>) {
        self.0.push(Check {
            name: name.to_owned(),
            result,
            detail: detail.into(),
        });
    }
    pub(crate) fn pass(&mut self, name: &str, detail: impl Into<String>) {
        self.add(name, CheckResult::Pass, detail);
    }
    pub(crate) fn fail(&mut self, name: &str, detail: impl Into<String>) {
        self.add(name, CheckResult::Fail, detail);
    }
    pub(crate) fn verdict(&self) -> Verdict {
        if self.0.iter().any(|c| c.result == CheckResult::Fail) {
            Verdict::Failed
        } else if self.0.iter().any(|c| c.result == CheckResult::Insecure) {
            Verdict::Insecure
        } else {
            Verdict::Verified
        }
    }

    pub(crate) fn into_checks(self) -> Vec<Check> {
        self.0
    }
}
