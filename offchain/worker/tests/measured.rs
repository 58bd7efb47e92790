//! Issue 15, measured configuration, at the worker's real start (`cocoon_worker::daemon::build`, as
//! the binary runs it): in `tdx` mode a worker whose engine is not local, or whose chain endpoint is
//! plain http, refuses to start before any key, quote or port exists; in every mode a worker whose
//! weights file does not hash to its model hash refuses to start; a worker that starts carries its
//! measured configuration hash in its certificate's claims.

use std::time::Duration;

use cocoon_daemon::launch::Daemon;
use cocoon_daemon::tls_config::{TlsMode, TlsSection};
use cocoon_worker::WorkerConfig;
use cocoon_worker::daemon::{BuildOptions, build};
use cocoon_worker::measured::{MeasuredError, config_hash};
use sha2::{Digest, Sha256};

const WEIGHTS: &[u8] = b"GGUF pretend weights for the measured-configuration tests";

fn weights_file(dir: &tempfile::TempDir, content: &[u8]) -> String {
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, content).expect("weights file");
    path.display().to_string()
}

fn tdx_tls() -> TlsSection {
    TlsSection {
        mode: TlsMode::Tdx,
        collateral_file: cocoon_attestation::fixtures_dir()
            .join("cocoon-tdx-quote.collateral.json")
            .display()
            .to_string(),
        tsm_dir: "/nonexistent/tsm".into(),
        ..TlsSection::default()
    }
}

fn config(tls: TlsSection, model_path: String) -> WorkerConfig {
    let mut c = WorkerConfig {
        proxies: vec!["127.0.0.1:9".into()],
        engine_url: "http://127.0.0.1:8000".into(),
        model_hash: hex::encode(Sha256::digest(WEIGHTS)),
        model_path,
        admin_listen: "127.0.0.1:0".into(),
        health_interval_ms: 0,
        tls,
        ..WorkerConfig::default()
    };
    c.chain.root = "0:".to_owned() + &"11".repeat(32);
    c.chain.owner = "0:".to_owned() + &"22".repeat(32);
    c.chain.endpoint.api_url = "https://toncenter.com/api/v2".into();
    c
}

async fn refusal(config: WorkerConfig) -> anyhow::Error {
    match build(config, &BuildOptions::default()).await {
        Ok(_) => panic!("the worker started"),
        Err(e) => e,
    }
}

fn refused_field(e: &anyhow::Error) -> &'static str {
    match e.downcast_ref::<MeasuredError>() {
        Some(MeasuredError::Config(cocoon_daemon::config::ConfigError::Invalid {
            field, ..
        })) => field,
        _ => panic!("expected a measured-configuration refusal, got {e:#}"),
    }
}

#[tokio::test]
async fn a_tdx_worker_with_a_remote_engine_or_plain_http_chain_refuses_to_start() {
    let dir = tempfile::tempdir().expect("dir");
    let ok = config(tdx_tls(), weights_file(&dir, WEIGHTS));

    let mut remote = ok.clone();
    remote.engine_url = "http://10.20.30.40:8000".into();
    let e = refusal(remote).await;
    assert_eq!(refused_field(&e), "engine_url", "{e:#}");

    let mut named = ok.clone();
    named.engine_url = "http://engine.internal:8000".into();
    assert_eq!(refused_field(&refusal(named).await), "engine_url");

    let mut plain = ok.clone();
    plain.chain.endpoint.api_url = "http://my-own-toncenter.example/api/v2".into();
    assert_eq!(refused_field(&refusal(plain).await), "chain.api_url");

    let mut second = ok.clone();
    second.chain.endpoint.cross_check_url = "http://second.example/api/v2".into();
    assert_eq!(
        refused_field(&refusal(second).await),
        "chain.cross_check_url"
    );

    let mut unhashed = ok.clone();
    unhashed.model_path.clear();
    assert_eq!(refused_field(&refusal(unhashed).await), "model_path");

    // Everything measured is in order: it gets as far as the TDX device, which this machine lacks.
    let e = refusal(ok).await;
    assert!(e.downcast_ref::<MeasuredError>().is_none(), "{e:#}");
    assert!(format!("{e:#}").contains("no TDX quote provider"), "{e:#}");
}

#[tokio::test]
async fn a_worker_whose_weights_are_not_the_model_hash_refuses_to_start_in_every_mode() {
    let dir = tempfile::tempdir().expect("dir");
    let swapped = weights_file(&dir, b"fine-tuned to leak prompts");
    for tls in [
        tdx_tls(),
        TlsSection::with_mode(TlsMode::Simulated),
        TlsSection::with_mode(TlsMode::DevInsecure),
    ] {
        let e = refusal(config(tls, swapped.clone())).await;
        match e.downcast_ref::<MeasuredError>() {
            Some(MeasuredError::WeightsMismatch {
                file_hash,
                configured,
                ..
            }) => {
                assert_eq!(
                    *file_hash,
                    hex::encode(Sha256::digest(b"fine-tuned to leak prompts"))
                );
                assert_eq!(*configured, hex::encode(Sha256::digest(WEIGHTS)));
            }
            _ => panic!("expected a weights mismatch, got {e:#}"),
        }
    }
}

#[tokio::test]
async fn a_started_worker_carries_its_measured_configuration_hash() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(
        TlsSection::with_mode(TlsMode::DevInsecure),
        weights_file(&dir, WEIGHTS),
    );
    c.chain = Default::default();
    let expected = config_hash(&c, TlsMode::DevInsecure).expect("hash");
    let worker = build(c.clone(), &BuildOptions::default())
        .await
        .expect("worker starts");
    let claims = worker.tls.identity().claims;
    assert_eq!(claims.config_hash().expect("claim"), Some(expected));
    let banner = worker.banner();
    worker.shutdown(Duration::ZERO).await;
    assert!(banner.is_object());

    // A different price is a different configuration.
    let mut pricier = c;
    pricier.coefficient += 1;
    assert_ne!(
        config_hash(&pricier, TlsMode::DevInsecure).expect("hash"),
        expected
    );
}
