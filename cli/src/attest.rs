//! `cocoon attest`: verify quotes, decode RA-TLS certificates, check a live endpoint.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use cocoon_attestation::cert::parse_certificate;
use cocoon_attestation::collateral::{
    CollateralSource, CollateralStore, PccsClient, load_collateral_file,
};
use cocoon_attestation::dcap::{
    Measurements, QuoteCollateralV3, QuoteReport, TcbStatus, parse_quote, verify_quote,
};
use cocoon_attestation::policy::{ImageAllowlist, ImageStatus};
use cocoon_attestation::provider::EvidenceKind;
use cocoon_attestation::provider::simulated::SimulatedQuote;
use cocoon_attestation::tls::{attest_error_in_io, client_config_with};
use cocoon_attestation::verify::{PeerVerifier, identity_of};
use cocoon_attestation::{
    Credential, InMemoryAllowlist, PeerIdentity, Policy, Role, SystemClock, TcbPolicy, TeeKind,
};
use serde_json::json;

/// Attestation: verify quotes, decode RA-TLS certificates, check endpoints.
#[derive(Debug, Args)]
pub(crate) struct AttestArgs {
    #[command(subcommand)]
    command: AttestCommand,
}

#[derive(Debug, Subcommand)]
enum AttestCommand {
    /// Verify a DCAP quote against collateral (offline) and print what it attests.
    Verify {
        /// The quote (binary).
        #[arg(long)]
        quote: PathBuf,
        /// Collateral: dcap-qvl QuoteCollateralV3 JSON.
        #[arg(long)]
        collateral: PathBuf,
        /// Verification time (RFC 3339); default now.
        #[arg(long)]
        at: Option<String>,
        /// TCB statuses accepted besides UpToDate (e.g. SWHardeningNeeded); repeatable.
        #[arg(long = "tcb-allow")]
        tcb_allow: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Decode an RA-TLS certificate (PEM or DER) without judging it.
    Cert {
        /// The certificate file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Connect to HOST:PORT, run the attested TLS 1.3 handshake and report what was verified.
    Endpoint {
        #[command(flatten)]
        args: EndpointArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// What `attest endpoint` and `audit endpoint` check a live endpoint against.
#[derive(Debug, Clone, Args)]
pub(crate) struct EndpointArgs {
    /// The endpoint, HOST:PORT.
    addr: String,
    /// Roles the endpoint may have; repeatable (default: proxy and worker).
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Allowed image hashes (hex); repeatable. Without any, the image hash is shown, not checked.
    #[arg(long = "allow-image")]
    allow_images: Vec<String>,
    /// Allowed measured configuration hashes (hex, the `config_hash` claim); repeatable. Without
    /// any, the configuration hash is shown, not checked.
    #[arg(long = "allow-config")]
    allow_configs: Vec<String>,
    /// Accept simulated attestation (INSECURE: development only).
    #[arg(long)]
    insecure: bool,
    /// Collateral file for the endpoint's quote.
    #[arg(long, conflicts_with = "pccs")]
    collateral: Option<PathBuf>,
    /// Your PCCS base URL, to fetch collateral for the endpoint's quote.
    #[arg(long)]
    pccs: Option<String>,
    /// Where PCCS collateral is cached.
    #[arg(long, default_value = ".cache/pccs")]
    pccs_cache: PathBuf,
    /// TCB statuses accepted besides UpToDate; repeatable.
    #[arg(long = "tcb-allow")]
    tcb_allow: Vec<String>,
}

/// Checks a live endpoint (`attest endpoint`, `audit endpoint`).
pub(crate) fn run_endpoint(args: EndpointArgs, json: bool) -> Result<()> {
    let opts = EndpointOpts {
        roles: args.roles,
        allow_images: args.allow_images,
        allow_configs: args.allow_configs,
        insecure: args.insecure,
        collateral: args.collateral,
        pccs: args.pccs,
        pccs_cache: args.pccs_cache,
        tcb_allow: args.tcb_allow,
        json,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(endpoint(&args.addr, opts))
}

pub(crate) fn run(args: AttestArgs) -> Result<()> {
    match args.command {
        AttestCommand::Verify {
            quote,
            collateral,
            at,
            tcb_allow,
            json,
        } => verify(&quote, &collateral, at.as_deref(), &tcb_allow, json),
        AttestCommand::Cert { file, json } => cert(&file, json),
        AttestCommand::Endpoint { args, json } => run_endpoint(args, json),
    }
}

pub(crate) fn parse_time(at: Option<&str>) -> Result<i64> {
    match at {
        None => Ok(cocoon_attestation::Clock::now_unix(&SystemClock)),
        Some(s) => Ok(time::OffsetDateTime::parse(
            s,
            &time::format_description::well_known::Rfc3339,
        )
        .with_context(|| format!("--at {s:?} is not RFC 3339 (e.g. 2026-03-01T00:00:00Z)"))?
        .unix_timestamp()),
    }
}

pub(crate) fn tcb_policy(allow: &[String]) -> Result<TcbPolicy> {
    let mut p = TcbPolicy::strict();
    for name in allow {
        let status: TcbStatus = serde_json::from_value(json!(name))
            .with_context(|| format!("unknown TCB status {name:?}"))?;
        p = p.allow(status);
    }
    Ok(p)
}

fn measurement_lines(m: &Measurements) -> Vec<(&'static str, String)> {
    match m {
        Measurements::Td(td) => {
            let mut v = vec![("MRTD", hex::encode(td.mrtd))];
            for (name, r) in ["RTMR0", "RTMR1", "RTMR2", "RTMR3"]
                .into_iter()
                .zip(&td.rtmr)
            {
                v.push((name, hex::encode(r)));
            }
            v
        }
        Measurements::Sgx {
            mr_enclave,
            mr_signer,
        } => {
            vec![
                ("MRENCLAVE", hex::encode(mr_enclave)),
                ("MRSIGNER", hex::encode(mr_signer)),
            ]
        }
    }
}

/// The text form of a verified quote (snapshotted).
pub(crate) fn render_report(r: &QuoteReport, at: i64) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<12} {v}\n"));
    let when = time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string());
    line("verified at", when);
    line("TEE", format!("{} (type {:#04x})", r.tee, r.tee_type));
    line("version", r.quote_version.to_string());
    line("FMSPC", hex::encode(r.fmspc));
    for (k, v) in measurement_lines(&r.measurements) {
        line(k, v);
    }
    line("report_data", hex::encode(r.report_data));
    line(
        "image hash",
        r.image_hash
            .map(hex::encode)
            .unwrap_or_else(|| "- (TDX only)".into()),
    );
    line("TCB status", r.tcb_status.to_string());
    line(
        "advisories",
        if r.advisories.is_empty() {
            "none".into()
        } else {
            r.advisories.join(", ")
        },
    );
    out
}

pub(crate) fn report_json(r: &QuoteReport, at: i64) -> serde_json::Value {
    let measurements: serde_json::Map<String, serde_json::Value> =
        measurement_lines(&r.measurements)
            .into_iter()
            .map(|(k, v)| (k.to_lowercase(), json!(v)))
            .collect();
    json!({
        "verified_at": at,
        "tee": r.tee,
        "tee_type": r.tee_type,
        "quote_version": r.quote_version,
        "fmspc": hex::encode(r.fmspc),
        "measurements": measurements,
        "report_data": hex::encode(r.report_data),
        "image_hash": r.image_hash.map(hex::encode),
        "tcb_status": r.tcb_status.to_string(),
        "advisories": r.advisories,
    })
}

fn verify(
    quote: &Path,
    collateral: &Path,
    at: Option<&str>,
    tcb_allow: &[String],
    json: bool,
) -> Result<()> {
    let q = std::fs::read(quote).with_context(|| format!("reading {}", quote.display()))?;
    let c = load_collateral_file(collateral)?;
    let at = parse_time(at)?;
    let report = verify_quote(&q, &c, u64::try_from(at).context("time before 1970")?)
        .with_context(|| format!("{} does not verify", quote.display()))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report_json(&report, at))?
        );
    } else {
        print!("{}", render_report(&report, at));
    }
    tcb_policy(tcb_allow)?
        .check(report.tcb_status, &report.advisories)
        .context("the quote verifies, but policy refuses it (see --tcb-allow)")?;
    Ok(())
}

fn cert(file: &Path, json: bool) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let der = if bytes.starts_with(b"-----BEGIN") {
        let pem = x509_parser::pem::Pem::iter_from_buffer(&bytes)
            .next()
            .context("no PEM block")??;
        pem.contents
    } else {
        bytes
    };
    let parsed = parse_certificate(&der)?;
    let id = identity_of(&parsed)?;
    let binding = match &parsed.evidence {
        None => None,
        Some((EvidenceKind::Simulated, q)) => {
            Some(SimulatedQuote::parse(q)?.report_data == parsed.expected_report_data())
        }
        Some((EvidenceKind::Dcap, q)) => Some(parse_quote(q)?.3 == parsed.expected_report_data()),
    };
    if json {
        let v = json!({
            "identity": id,
            "config_hash": id.claims.config_hash().ok().flatten().map(hex::encode),
            "not_before": parsed.not_before,
            "not_after": parsed.not_after,
            "report_data_binds_claims": binding,
            "certificate_sha256": hex::encode(parsed.der_hash),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("role         {}", id.role);
    println!("public key   {}", hex::encode(id.public_key));
    println!("issued at    {}", id.claims.issued_at);
    println!("valid        {} .. {}", parsed.not_before, parsed.not_after);
    match id.claims.config_hash() {
        Ok(Some(h)) => println!("config hash  {} (measured configuration)", hex::encode(h)),
        Ok(None) => println!("config hash  none (not measured)"),
        Err(e) => println!("config hash  MALFORMED: {e}"),
    }
    for (k, v) in &id.claims.extra {
        if k != cocoon_attestation::claims::CONFIG_HASH_KEY {
            println!("claim        {k} = {v}");
        }
    }
    println!(
        "evidence     {}",
        if id.tee == TeeKind::Simulated {
            "simulated (INSECURE)".to_owned()
        } else {
            id.tee.to_string()
        }
    );
    if id.tee != TeeKind::None {
        println!("image hash   {}", hex::encode(id.image_hash));
    }
    match binding {
        Some(true) => println!("binding      quote report_data = SHA-512(claims)"),
        Some(false) => println!("binding      MISMATCH: the quote was not made for these claims"),
        None => println!("binding      no quote"),
    }
    println!("note         decoded only; `cocoon attest endpoint` or `verify` judge the evidence");
    Ok(())
}

/// Lets every image through so that the endpoint's image hash can be shown when no allowlist is given.
#[derive(Debug)]
struct ShowAnyImage;

impl ImageAllowlist for ShowAnyImage {
    fn status(
        &self,
        _role: Role,
        _image_hash: &[u8; 32],
    ) -> cocoon_attestation::Result<ImageStatus> {
        Ok(ImageStatus::Allowed)
    }
}

struct EndpointOpts {
    roles: Vec<String>,
    allow_images: Vec<String>,
    allow_configs: Vec<String>,
    insecure: bool,
    collateral: Option<PathBuf>,
    pccs: Option<String>,
    pccs_cache: PathBuf,
    tcb_allow: Vec<String>,
    json: bool,
}

async fn endpoint(addr: &str, o: EndpointOpts) -> Result<()> {
    let roles: BTreeSet<Role> = if o.roles.is_empty() {
        BTreeSet::from([Role::Proxy, Role::Worker])
    } else {
        o.roles
            .iter()
            .map(|r| r.parse())
            .collect::<Result<_, _>>()?
    };
    let roles: Vec<Role> = roles.into_iter().collect();
    let allowlist: Arc<dyn ImageAllowlist> = if o.allow_images.is_empty() {
        Arc::new(ShowAnyImage)
    } else {
        let list = InMemoryAllowlist::new();
        for h in &o.allow_images {
            let hash: [u8; 32] = hex::decode(h)
                .ok()
                .and_then(|v| v.try_into().ok())
                .with_context(|| format!("--allow-image {h:?} is not 32 bytes of hex"))?;
            for role in &roles {
                list.allow(*role, hash);
            }
        }
        Arc::new(list)
    };
    let collateral: Arc<dyn CollateralSource> = match (&o.collateral, &o.pccs) {
        (Some(file), _) => Arc::new(CollateralStore::fixed(load_collateral_file(file)?)),
        (None, Some(url)) => {
            // First pass: learn the endpoint's quote (verification stops at the missing collateral),
            // then ask the operator's PCCS for that platform's collateral, then verify for real.
            let recorder = Arc::new(RecordQuote::default());
            let probe =
                Policy::strict(&roles, Arc::new(ShowAnyImage)).with_collateral(recorder.clone());
            let _ = attempt(addr, probe).await;
            let quote = recorder
                .0
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .take();
            let quote =
                quote.context("the endpoint presented no DCAP quote to fetch collateral for")?;
            let pccs = PccsClient::new(url, o.pccs_cache.clone())?;
            let now = cocoon_attestation::Clock::now_unix(&SystemClock);
            let (key, c) = pccs.collateral_for(&quote, now).await?;
            let store = CollateralStore::new();
            store.insert(key, c);
            Arc::new(store)
        }
        (None, None) => Arc::new(CollateralStore::new()),
    };
    let mut policy = Policy::strict(&roles, allowlist)
        .with_collateral(collateral)
        .with_tcb(tcb_policy(&o.tcb_allow)?);
    if o.insecure {
        policy = policy.insecure_dev();
    }
    for h in &o.allow_configs {
        let hash: [u8; 32] = hex::decode(h)
            .ok()
            .and_then(|v| v.try_into().ok())
            .with_context(|| format!("--allow-config {h:?} is not 32 bytes of hex"))?;
        for role in &roles {
            policy = policy.require_configs(*role, [hash]);
        }
    }
    let (verified, outcome) = attempt(addr, policy).await?;
    let Some(id) = verified.first() else {
        let err = outcome.err().map(|e| match attest_error_in_io(&e) {
            Some(a) => format!("refused: {a}"),
            None => format!("handshake failed: {e}"),
        });
        bail!(
            "{}",
            err.unwrap_or_else(|| "no certificate verified".into())
        );
    };
    if o.json {
        let config_hash = id.claims.config_hash().ok().flatten().map(hex::encode);
        let v = json!({"endpoint": addr, "identity": &**id, "image_checked": !o.allow_images.is_empty(), "config_hash": config_hash, "config_checked": !o.allow_configs.is_empty(), "handshake_completed": outcome.is_ok()});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("endpoint     {addr}");
        println!("role         {}", id.role);
        println!("public key   {}", hex::encode(id.public_key));
        println!(
            "TEE          {}{}",
            id.tee,
            if id.tee == TeeKind::Simulated {
                " (SIMULATED: INSECURE, proves nothing)"
            } else {
                ""
            }
        );
        println!(
            "image hash   {}{}",
            hex::encode(id.image_hash),
            if o.allow_images.is_empty() {
                " (not checked: no --allow-image)"
            } else {
                " (allowed)"
            }
        );
        let config_hash = id.claims.config_hash().ok().flatten();
        println!(
            "config hash  {}{}",
            config_hash.map_or_else(|| "none (not measured)".to_owned(), hex::encode),
            if o.allow_configs.is_empty() {
                " (not checked: no --allow-config)"
            } else {
                " (allowed)"
            }
        );
        println!("valid until  {}", id.not_after);
        println!(
            "verified     certificate lifetime, claims/key binding, quote, TCB, image; TLS 1.3 signature"
        );
        if let Err(e) = &outcome {
            // Our check of the server passed; the server may still refuse an unattested client.
            println!("handshake    not completed by the server: {e}");
        }
    }
    Ok(())
}

/// Records the quote it is asked collateral for, and has none.
#[derive(Debug, Default)]
struct RecordQuote(std::sync::Mutex<Option<Vec<u8>>>);

impl CollateralSource for RecordQuote {
    fn collateral_for(&self, quote: &[u8]) -> cocoon_attestation::Result<Arc<QuoteCollateralV3>> {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(quote.to_vec());
        }
        Err(cocoon_attestation::AttestError::Collateral(
            "recording the quote only".into(),
        ))
    }
}

type Attempt = (Vec<Arc<PeerIdentity>>, std::io::Result<()>);

/// One handshake as an unattested client; returns what our verifier accepted and how it ended.
async fn attempt(addr: &str, policy: Policy) -> Result<Attempt> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let peers = Arc::new(PeerVerifier::new(policy));
    let config = client_config_with(Credential::unattested(Role::Client)?, Arc::clone(&peers))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let host = addr
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(addr)
        .trim_matches(['[', ']'])
        .to_owned();
    let name = rustls::pki_types::ServerName::try_from(host).context("endpoint host")?;
    let outcome = connector.connect(name, tcp).await.map(|_| ());
    Ok((peers.cached_identities(), outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        cocoon_attestation::fixtures_dir().join(name)
    }

    #[test]
    fn verify_output_for_the_cocoon_fixture() {
        let q = std::fs::read(fixture("cocoon-tdx-quote.bin")).expect("fixture");
        let c =
            load_collateral_file(&fixture("cocoon-tdx-quote.collateral.json")).expect("collateral");
        let at = parse_time(Some("2026-03-01T00:00:00Z")).expect("time");
        let report = verify_quote(&q, &c, u64::try_from(at).expect("positive")).expect("verifies");
        insta::assert_snapshot!("verify_cocoon_text", render_report(&report, at));
        insta::assert_json_snapshot!("verify_cocoon_json", report_json(&report, at));
    }

    #[test]
    fn verify_fails_with_a_reason_outside_the_window_and_under_strict_tcb() {
        let err = verify(
            &fixture("cocoon-tdx-quote.bin"),
            &fixture("cocoon-tdx-quote.collateral.json"),
            Some("2027-01-01T00:00:00Z"),
            &[],
            true,
        )
        .expect_err("expired collateral");
        assert!(format!("{err:#}").contains("does not verify"), "{err:#}");
        let err = verify(
            &fixture("phala-sgx-quote.bin"),
            &fixture("phala-sgx-quote.collateral.json"),
            Some("2025-07-04T00:00:00Z"),
            &[],
            true,
        )
        .expect_err("strict TCB");
        assert!(
            format!("{err:#}").contains("ConfigurationAndSWHardeningNeeded"),
            "{err:#}"
        );
        verify(
            &fixture("phala-sgx-quote.bin"),
            &fixture("phala-sgx-quote.collateral.json"),
            Some("2025-07-04T00:00:00Z"),
            &["ConfigurationAndSWHardeningNeeded".into()],
            true,
        )
        .expect("allowed status");
    }

    #[test]
    fn bad_time_and_status_are_clear_errors() {
        assert!(parse_time(Some("yesterday")).is_err());
        assert!(tcb_policy(&["Fine".into()]).is_err());
    }

    fn proxy_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>, [u8; 32]) {
        proxy_server_measuring(None)
    }

    /// A simulated proxy whose claims (and RTMR3) carry `config` when given.
    fn proxy_server_measuring(
        config: Option<[u8; 32]>,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>, [u8; 32]) {
        use cocoon_attestation::provider::simulated::SimulatedProvider;
        let provider = match &config {
            Some(h) => SimulatedProvider::with_config("cli-test", h),
            None => SimulatedProvider::new("cli-test"),
        };
        let image = provider.image_hash();
        let mut extra = std::collections::BTreeMap::new();
        if let Some(h) = config {
            extra.insert(
                cocoon_attestation::claims::CONFIG_HASH_KEY.to_owned(),
                hex::encode(h),
            );
        }
        let key = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
        let cred = Credential::issue(
            Role::Proxy,
            &key,
            Some(&provider),
            cocoon_attestation::Clock::now_unix(&SystemClock),
            std::time::Duration::from_secs(3600),
            extra,
        )
        .expect("credential");
        let policy = Policy::strict(&[Role::Client], Arc::new(InMemoryAllowlist::new()))
            .accept_unattested(Role::Client);
        let config =
            Arc::new(cocoon_attestation::server_config(cred, policy).expect("server config"));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&config));
                tokio::spawn(async move {
                    let _ = acceptor.accept(tcp).await;
                });
            }
        });
        (addr, task, image)
    }

    fn opts(allow_images: Vec<String>, insecure: bool) -> EndpointOpts {
        EndpointOpts {
            roles: vec!["proxy".into()],
            allow_images,
            allow_configs: vec![],
            insecure,
            collateral: None,
            pccs: None,
            pccs_cache: PathBuf::from("/nonexistent"),
            tcb_allow: vec![],
            json: true,
        }
    }

    #[tokio::test]
    async fn endpoint_reports_a_simulated_proxy_only_when_insecure_is_asked_for() {
        let (addr, server, image) = proxy_server();
        let addr = addr.to_string();
        endpoint(&addr, opts(vec![hex::encode(image)], true))
            .await
            .expect("dev mode accepts");
        let err = endpoint(&addr, opts(vec![], false))
            .await
            .expect_err("strict refuses");
        assert!(format!("{err:#}").contains("simulated"), "{err:#}");
        let err = endpoint(&addr, opts(vec![hex::encode([7u8; 32])], true))
            .await
            .expect_err("wrong image");
        assert!(format!("{err:#}").contains("not allowed"), "{err:#}");
        server.abort();
    }

    #[tokio::test]
    async fn endpoint_checks_the_measured_configuration_when_allow_config_is_given() {
        let (addr, server, image) = proxy_server_measuring(Some([0x33; 32]));
        let addr = addr.to_string();
        let with = |configs: Vec<String>| EndpointOpts {
            allow_configs: configs,
            ..opts(vec![hex::encode(image)], true)
        };
        endpoint(&addr, with(vec![]))
            .await
            .expect("shown, not checked");
        endpoint(&addr, with(vec![hex::encode([0x33; 32])]))
            .await
            .expect("allowed configuration");
        let err = endpoint(&addr, with(vec![hex::encode([0x34; 32])]))
            .await
            .expect_err("another configuration");
        assert!(format!("{err:#}").contains("configuration hash"), "{err:#}");
        server.abort();
        let (addr, server, image) = proxy_server_measuring(None);
        let err = endpoint(
            &addr.to_string(),
            EndpointOpts {
                allow_configs: vec![hex::encode([0x33; 32])],
                ..opts(vec![hex::encode(image)], true)
            },
        )
        .await
        .expect_err("an unmeasured endpoint");
        assert!(format!("{err:#}").contains("none"), "{err:#}");
        server.abort();
    }

    #[test]
    fn cert_decodes_pem_and_der_and_refuses_garbage() {
        let provider = cocoon_attestation::provider::simulated::SimulatedProvider::default();
        let cred = Credential::generate(Role::Worker, &provider).expect("credential");
        let dir = std::env::temp_dir().join(format!("cocoon-attest-cert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (pem, der, junk) = (dir.join("c.pem"), dir.join("c.der"), dir.join("junk"));
        std::fs::write(&pem, cred.cert_pem()).expect("write");
        std::fs::write(&der, cred.cert_der()).expect("write");
        std::fs::write(&junk, b"not a certificate").expect("write");
        cert(&pem, false).expect("PEM");
        cert(&der, true).expect("DER");
        assert!(cert(&junk, false).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
