//! `cocoon receipt`: export proof bundles from a running client gateway and verify them offline.
//! `cocoon audit receipt` runs the same verification with an auditor's checklist as output.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use cocoon_attestation::collateral::{PccsClient, load_collateral_file};
use cocoon_attestation::provider::EvidenceKind;
use cocoon_audit::{
    BUNDLE_FORMAT, BundleReport, CheckResult, ProofBundle, Selection, Verdict, VerifyOptions,
    is_sane_request_id, verify_bundle,
};
use serde_json::json;

use crate::attest::{parse_time, tcb_policy};
use crate::exit::{ExitKind, fail};
use crate::global::GlobalArgs;

/// Proof bundles: export from a client gateway, verify offline.
#[derive(Debug, Args)]
pub(crate) struct ReceiptArgs {
    #[command(subcommand)]
    command: ReceiptCommand,
}

#[derive(Debug, Subcommand)]
enum ReceiptCommand {
    /// Verify a proof bundle: receipt signatures, body hashes, the worker's quote (DCAP, now, with
    /// collateral you supply or fetch), key binding, certificate time, image (the root's allowlist
    /// or --image) and model hashes. Exit 9 if anything fails, 10 if the attestation is simulated
    /// or absent (unless --allow-insecure).
    Verify {
        #[command(flatten)]
        args: VerifyArgs,
        /// Print one JSON object instead of text (stable field names, see docs/cli.md).
        #[arg(long)]
        json: bool,
    },
    /// Export a proof bundle from a running client gateway (its `GET /cocoon/v1/bundle`).
    Export(ExportArgs),
}

/// What a bundle is verified against (shared by `receipt verify` and `audit receipt`).
#[derive(Debug, Clone, Args)]
pub(crate) struct VerifyArgs {
    /// The proof bundle (JSON, as `cocoon receipt export` writes it).
    bundle: PathBuf,
    /// Accept simulated or absent attestation (exit 0 instead of 10; the output still says INSECURE).
    #[arg(long)]
    allow_insecure: bool,
    /// Verify quotes and collateral at this time (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
    /// An allowed worker image hash (hex); repeatable. Without it the allowlist is the root
    /// contract's (--root); a bundle with neither is refused.
    #[arg(long = "image", value_name = "HEX")]
    images: Vec<String>,
    /// An allowed model hash (hex); repeatable.
    #[arg(long = "model-hash", value_name = "HEX")]
    model_hashes: Vec<String>,
    /// TCB statuses accepted besides UpToDate (e.g. SWHardeningNeeded); repeatable.
    #[arg(long = "tcb-allow", value_name = "STATUS")]
    tcb_allow: Vec<String>,
    /// Collateral (dcap-qvl QuoteCollateralV3 JSON) for DCAP quotes (the bundle's own collateral
    /// is not used).
    #[arg(long, value_name = "FILE", conflicts_with = "pccs")]
    collateral: Option<PathBuf>,
    /// Fetch each DCAP quote's collateral from this PCCS (current collateral, checked now).
    #[arg(long, value_name = "URL")]
    pccs: Option<String>,
    /// Where PCCS collateral is cached.
    #[arg(long, default_value = ".cache/pccs")]
    pccs_cache: PathBuf,
    /// INSECURE old behaviour: check DCAP quotes with the collateral the bundle carries, at each
    /// receipt's own timestamp, and accept a bundle without an image allowlist. Prints what it did
    /// not check.
    #[arg(long)]
    trust_bundle_collateral: bool,
}

/// Which records to export and how.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The gateway's base URL (plain HTTP on loopback).
    #[arg(
        long,
        env = "COCOON_GATEWAY_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    gateway: String,
    /// The gateway's bearer token, if it has one.
    #[arg(long, env = "COCOON_GATEWAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// One record id (ids are in `GET /cocoon/v1/receipts`).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    id: Option<u64>,
    /// The record of one request: the `x-request-id` its response carried.
    #[arg(long, value_name = "ID", conflicts_with_all = ["id", "from", "to"])]
    request_id: Option<String>,
    /// Lowest record id.
    #[arg(long)]
    from: Option<u64>,
    /// Highest record id.
    #[arg(long)]
    to: Option<u64>,
    /// Only the last N records (of the range).
    #[arg(long)]
    last: Option<u64>,
    /// Carry the request and response bytes (every prompt and answer) in the bundle; without it
    /// the bundle holds their hashes only.
    #[arg(long, conflicts_with = "hashes_only")]
    bodies: bool,
    /// Hashes only (the default; kept for scripts written when bodies were exported by default).
    #[arg(long, hide = true)]
    hashes_only: bool,
    /// Bundle this collateral file for DCAP quotes.
    #[arg(long, value_name = "FILE", conflicts_with = "pccs")]
    collateral: Option<PathBuf>,
    /// Fetch each DCAP quote's collateral from your PCCS and bundle it.
    #[arg(long, value_name = "URL")]
    pccs: Option<String>,
    /// Where PCCS collateral is cached.
    #[arg(long, default_value = ".cache/pccs")]
    pccs_cache: PathBuf,
    /// Where to write the bundle.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub(crate) fn run(global: &GlobalArgs, args: ReceiptArgs) -> Result<()> {
    match args.command {
        ReceiptCommand::Verify { args, json } => verify(global, &args, json, Style::Receipt),
        ReceiptCommand::Export(args) => crate::runtime::block_on(export(args)),
    }
}

/// How the result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// One line per response.
    Receipt,
    /// Every check, PASS/FAIL, findings.
    Audit,
}

fn hex32(s: &str, what: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| {
        fail(
            ExitKind::Usage,
            format!("{what} {s:?} is not 32 bytes of hex"),
        )
    })?;
    Ok(out)
}

fn load_bundle(path: &Path) -> Result<ProofBundle> {
    let bytes = std::fs::read(path).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            ExitKind::NotFound
        } else {
            ExitKind::Error
        };
        fail(kind, format!("cannot read {}: {e}", path.display()))
    })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        fail(
            ExitKind::Usage,
            format!("{} is not JSON: {e}", path.display()),
        )
    })?;
    if value.get("format").and_then(|f| f.as_str()) != Some(BUNDLE_FORMAT) {
        return Err(fail(
            ExitKind::Usage,
            format!("{} is not a {BUNDLE_FORMAT}", path.display()),
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        fail(
            ExitKind::Usage,
            format!("{} is a malformed proof bundle: {e}", path.display()),
        )
    })
}

/// The root contract's worker images that are not revoked.
async fn root_worker_images(global: &GlobalArgs) -> Result<Vec<[u8; 32]>> {
    let root = global.root.handle()?;
    let client = global.client()?;
    let storage = root.storage(&client).await.map_err(|e| {
        fail(
            ExitKind::Error,
            format!("reading the root's image allowlist (is --root right, and --network?): {e}"),
        )
    })?;
    Ok(storage
        .registry
        .worker_images
        .iter()
        .filter(|(_, revoked_at)| **revoked_at == 0)
        .map(|(hash, _)| *hash)
        .collect())
}

async fn options(
    global: &GlobalArgs,
    a: &VerifyArgs,
    bundle: &ProofBundle,
) -> Result<VerifyOptions> {
    let at = match &a.at {
        None => None,
        Some(s) => Some(u64::try_from(parse_time(Some(s))?).context("--at before 1970")?),
    };
    let mut allowed_images: Vec<[u8; 32]> = a
        .images
        .iter()
        .map(|h| hex32(h, "--image"))
        .collect::<Result<_>>()?;
    if allowed_images.is_empty() && !a.trust_bundle_collateral {
        if global.root.root.is_none() {
            return Err(fail(
                ExitKind::Usage,
                "no image allowlist: pass --root ADDRESS (or COCOON_ROOT) to use the root \
                 contract's, or --image HEX; a bundle checked against no allowlist would pass a \
                 quote from any TEE image",
            ));
        }
        allowed_images = root_worker_images(global).await?;
        if allowed_images.is_empty() {
            return Err(fail(
                ExitKind::NotVerified,
                "the root contract allows no worker image: no bundle can verify",
            ));
        }
    }
    let mut worker_collateral = std::collections::BTreeMap::new();
    if let Some(url) = &a.pccs {
        let pccs = PccsClient::new(url, a.pccs_cache.clone())?;
        let now = at.map_or_else(
            || cocoon_attestation::Clock::now_unix(&cocoon_attestation::SystemClock),
            |t| i64::try_from(t).unwrap_or(i64::MAX),
        );
        for w in &bundle.workers {
            if let Some((EvidenceKind::Dcap, quote)) = w.quote() {
                let (_, c) = pccs.collateral_for(&quote, now).await?;
                worker_collateral.insert(w.worker_key.clone(), c);
            }
        }
    }
    Ok(VerifyOptions {
        at,
        allowed_images,
        allowed_models: a
            .model_hashes
            .iter()
            .map(|h| hex32(h, "--model-hash"))
            .collect::<Result<_>>()?,
        tcb: tcb_policy(&a.tcb_allow)?,
        collateral: a
            .collateral
            .as_deref()
            .map(load_collateral_file)
            .transpose()?,
        worker_collateral,
        trust_bundle_collateral: a.trust_bundle_collateral,
    })
}

/// What INSECURE means for this report: `simulated TEE` or `no TEE evidence`.
fn insecure_reason(report: &BundleReport) -> Option<&'static str> {
    if report.verdict != Verdict::Insecure {
        return None;
    }
    let simulated = report
        .responses
        .iter()
        .any(|r| r.tee.as_deref() == Some("simulated"));
    Some(if simulated {
        "simulated TEE"
    } else {
        "no TEE evidence"
    })
}

fn verdict_text(report: &BundleReport) -> String {
    match (report.verdict, insecure_reason(report)) {
        (Verdict::Verified, _) => "VERIFIED".to_owned(),
        (Verdict::Insecure, Some(why)) => format!("INSECURE ({why})"),
        (Verdict::Insecure, None) => "INSECURE".to_owned(),
        (Verdict::Failed, _) => "FAILED".to_owned(),
    }
}

/// Verifies a bundle, prints the result, and maps the verdict to the documented exit codes.
pub(crate) fn verify(global: &GlobalArgs, a: &VerifyArgs, json: bool, style: Style) -> Result<()> {
    let bundle = load_bundle(&a.bundle)?;
    let opts = crate::runtime::block_on(options(global, a, &bundle))?;
    let report = verify_bundle(&bundle, &opts);
    for line in &report.not_checked {
        crate::output::note(format!("NOT CHECKED (--trust-bundle-collateral): {line}"));
    }
    let accepted = match report.verdict {
        Verdict::Verified => true,
        Verdict::Insecure => a.allow_insecure,
        Verdict::Failed => false,
    };
    if json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("file".into(), json!(a.bundle.display().to_string()));
            obj.insert("accepted".into(), json!(accepted));
            obj.insert("insecure_reason".into(), json!(insecure_reason(&report)));
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let text = match style {
            Style::Receipt => render_receipt(&report),
            Style::Audit => render_audit(&report, &a.bundle),
        };
        print!("{text}");
    }
    match report.verdict {
        Verdict::Failed => Err(fail(
            ExitKind::NotVerified,
            format!(
                "the bundle does not verify: {}",
                report.failures.first().map_or("", String::as_str)
            ),
        )),
        Verdict::Insecure if !accepted => Err(fail(
            ExitKind::Insecure,
            format!(
                "{}: the receipts are consistent, but nothing attests the worker's code; \
                 pass --allow-insecure to accept development bundles",
                verdict_text(&report)
            ),
        )),
        _ => Ok(()),
    }
}

const BANNER: &str = "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!";

fn insecure_banner(report: &BundleReport) -> String {
    match insecure_reason(report) {
        None => String::new(),
        Some(why) => format!(
            "{BANNER}\n!! INSECURE ({why}): these receipts are signed and consistent, but no\n\
             !! hardware attests the worker's code. Development bundles only.\n{BANNER}\n"
        ),
    }
}

fn render_receipt(report: &BundleReport) -> String {
    let mut out = insecure_banner(report);
    out.push_str(&format!("verdict      {}\n", verdict_text(report)));
    out.push_str(&format!(
        "bundle       {} v{}, {} responses\n",
        report.format, report.version, report.responses_checked
    ));
    for r in &report.responses {
        out.push_str(&format!(
            "response {:<3} {:<8} {} model {} worker {} tee {} cost {} nanoTON\n",
            r.id,
            format!("{:?}", r.verdict).to_lowercase(),
            r.endpoint,
            r.model.as_deref().unwrap_or("-"),
            r.worker_key.as_deref().unwrap_or("-"),
            r.tee.as_deref().unwrap_or("-"),
            r.cost_nano.as_deref().unwrap_or("-"),
        ));
    }
    for f in &report.failures {
        out.push_str(&format!("FAILED       {f}\n"));
    }
    out
}

fn render_audit(report: &BundleReport, file: &Path) -> String {
    let mut out = insecure_banner(report);
    out.push_str(&format!(
        "Audit of {} ({} v{}, {} responses)\n",
        file.display(),
        report.format,
        report.version,
        report.responses_checked
    ));
    for r in &report.responses {
        out.push_str(&format!(
            "\nResponse {}  {}  receipt time {}\n",
            r.id,
            r.endpoint,
            r.receipt_timestamp
                .map_or_else(|| "-".to_owned(), |t| t.to_string())
        ));
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        out.push_str(&format!(
            "  model      {} (hash {})\n",
            dash(&r.model),
            dash(&r.model_hash)
        ));
        out.push_str(&format!("  worker     {}\n", dash(&r.worker_key)));
        out.push_str(&format!(
            "  TEE        {} image {}\n",
            dash(&r.tee),
            dash(&r.image_hash)
        ));
        out.push_str(&format!("  cost       {} nanoTON\n", dash(&r.cost_nano)));
        for c in &r.checks {
            let tag = match c.result {
                CheckResult::Pass => "PASS",
                CheckResult::Fail => "FAIL",
                CheckResult::Insecure => "INSECURE",
                CheckResult::Skipped => "SKIP",
            };
            out.push_str(&format!("  [{tag:<8}] {:<17} {}\n", c.name, c.detail));
        }
    }
    out.push_str("\nFindings:\n");
    if report.failures.is_empty() {
        out.push_str("  none\n");
    }
    for f in &report.failures {
        out.push_str(&format!("  - {f}\n"));
    }
    out.push_str(&format!("Verdict: {}\n", verdict_text(report)));
    out
}

/// A GET of the gateway (plain HTTP on loopback); returns status and body.
async fn http_get(url: &str, path_and_query: &str, token: Option<&str>) -> Result<(u16, Vec<u8>)> {
    let base = url.trim_end_matches('/');
    if !base.starts_with("http://") {
        return Err(fail(
            ExitKind::Usage,
            format!("--gateway {url:?} must be http://HOST:PORT"),
        ));
    }
    // The gateway is local: no system proxy in between.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let mut req = client
        .get(format!("{base}{path_and_query}"))
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("connecting to the gateway at {base} (is it running?)"))?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.context("reading the gateway's answer")?;
    Ok((status, body.to_vec()))
}

/// The records the export flags select.
fn selection(a: &ExportArgs) -> Result<Selection> {
    if let Some(r) = &a.request_id
        && !is_sane_request_id(r)
    {
        return Err(fail(
            ExitKind::Usage,
            format!("--request-id {r:?}: 1 to 128 characters of A-Z a-z 0-9 - _ . :"),
        ));
    }
    let last = a
        .last
        .map(usize::try_from)
        .transpose()
        .map_err(|_| fail(ExitKind::Usage, "--last is too large"))?;
    let (from, to) = match a.id {
        Some(id) => (Some(id), Some(id)),
        None => (a.from, a.to),
    };
    Ok(Selection {
        from,
        to,
        last,
        request_id: a.request_id.clone(),
        include_bodies: a.bodies && !a.hashes_only,
    })
}

async fn export(a: ExportArgs) -> Result<()> {
    let path = format!("/cocoon/v1/bundle?{}", selection(&a)?.to_query());
    let (status, body) = http_get(&a.gateway, &path, a.token.as_deref()).await?;
    if status != 200 {
        let kind = if status == 401 {
            ExitKind::Usage
        } else {
            ExitKind::Error
        };
        return Err(fail(
            kind,
            format!(
                "the gateway answered {status}: {}",
                String::from_utf8_lossy(&body)
            ),
        ));
    }
    let mut bundle: ProofBundle =
        serde_json::from_slice(&body).context("the gateway's bundle does not parse")?;
    let fixed = a
        .collateral
        .as_deref()
        .map(load_collateral_file)
        .transpose()?;
    let pccs = a
        .pccs
        .as_deref()
        .map(|url| PccsClient::new(url, a.pccs_cache.clone()))
        .transpose()?;
    let now = cocoon_attestation::Clock::now_unix(&cocoon_attestation::SystemClock);
    let mut dcap_without = 0;
    for w in &mut bundle.workers {
        let Some((EvidenceKind::Dcap, quote)) = w.quote() else {
            continue;
        };
        let collateral = match (&fixed, &pccs) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(p)) => Some(p.collateral_for(&quote, now).await?.1),
            (None, None) => None,
        };
        match collateral {
            Some(c) => w.set_collateral(&c)?,
            None => dcap_without += 1,
        }
    }
    let text = serde_json::to_string_pretty(&bundle)?;
    std::fs::write(&a.out, format!("{text}\n"))
        .with_context(|| format!("writing {}", a.out.display()))?;
    let missing = bundle
        .workers
        .iter()
        .filter(|w| w.certificate.is_none())
        .count();
    println!(
        "wrote {} ({} responses, {} workers)",
        a.out.display(),
        bundle.responses.len(),
        bundle.workers.len()
    );
    if missing > 0 {
        crate::output::note(format!(
            "warning: {missing} worker certificate(s) missing (the worker left the proxy); those receipts will not verify"
        ));
    }
    if dcap_without > 0 {
        crate::output::note(format!(
            "warning: {dcap_without} DCAP quote(s) without collateral: pass --collateral or --pccs, or give the verifier --collateral"
        ));
    }
    Ok(())
}
