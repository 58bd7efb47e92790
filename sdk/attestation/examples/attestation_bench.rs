//! Attestation benchmark: prints JSON medians.
//!
//! - `quote_verify_ms`: DCAP verification of the cocoon fixture quote at 2026-03-01 (inside its
//!   collateral window), dcap-qvl offline, pinned-root check included;
//! - `ratls_handshake_ms`: a full mutual RA-TLS 1.3 handshake over loopback with fresh verifiers
//!   (both sides parse and verify the other's certificate and simulated quote, check the allowlist and
//!   the handshake signature), TCP connect included;
//! - `ratls_handshake_cached_ms`: the same with verifiers that have seen the certificates before;
//! - `ratls_handshake_dcap_estimate_ms`: `ratls_handshake_ms + 2 * quote_verify_ms`, what a
//!   handshake between two TDX peers costs (each side verifies one DCAP quote once per certificate).
//!
//! `cargo run --release -p cocoon-attestation --example attestation_bench`

use std::sync::Arc;
use std::time::{Duration, Instant};

use cocoon_attestation::collateral::load_collateral_file;
use cocoon_attestation::dcap::verify_quote;
use cocoon_attestation::provider::simulated::SimulatedProvider;
use cocoon_attestation::tls::{client_config_with, server_config_with};
use cocoon_attestation::verify::PeerVerifier;
use cocoon_attestation::{
    CredentialManager, InMemoryAllowlist, Policy, Role, SystemClock, fixtures_dir,
};
use ed25519_dalek::SigningKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    let mid = samples.len() / 2;
    samples
        .get(mid)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(f64::NAN)
}

fn manager(role: Role, label: &str) -> anyhow::Result<CredentialManager> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let provider = Arc::new(SimulatedProvider::new(label));
    Ok(CredentialManager::new(
        role,
        key,
        Some(provider),
        Arc::new(SystemClock),
        Duration::from_secs(86_400),
    )?)
}

async fn one_handshake(
    listener: &tokio::net::TcpListener,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> anyhow::Result<Duration> {
    let addr = listener.local_addr()?;
    let start = Instant::now();
    let accept = async {
        let (tcp, _) = listener.accept().await?;
        let mut tls = tokio_rustls::TlsAcceptor::from(server).accept(tcp).await?;
        let mut b = [0u8; 1];
        tls.read_exact(&mut b).await?;
        tls.write_all(&b).await?;
        anyhow::Ok(())
    };
    let connect = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = rustls::pki_types::ServerName::try_from("worker")?;
        let mut tls = tokio_rustls::TlsConnector::from(client)
            .connect(name, tcp)
            .await?;
        // One round trip so that both sides have finished (the server verifies the client last).
        tls.write_all(b"x").await?;
        let mut b = [0u8; 1];
        tls.read_exact(&mut b).await?;
        anyhow::Ok(())
    };
    let (a, c) = tokio::join!(accept, connect);
    a?;
    c?;
    Ok(start.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let quote = std::fs::read(fixtures_dir().join("cocoon-tdx-quote.bin"))?;
    let collateral =
        load_collateral_file(&fixtures_dir().join("cocoon-tdx-quote.collateral.json"))?;
    let at = u64::try_from(time::macros::datetime!(2026-03-01 00:00 UTC).unix_timestamp())?;
    let runs = 200;
    for _ in 0..10 {
        verify_quote(&quote, &collateral, at)?;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        verify_quote(&quote, &collateral, at)?;
        samples.push(t.elapsed());
    }
    let quote_verify_ms = median_ms(samples);

    let (proxy, worker) = (
        manager(Role::Proxy, "proxy-img")?,
        manager(Role::Worker, "worker-img")?,
    );
    let allow = InMemoryAllowlist::new();
    allow.allow(
        Role::Proxy,
        SimulatedProvider::new("proxy-img").image_hash(),
    );
    allow.allow(
        Role::Worker,
        SimulatedProvider::new("worker-img").image_hash(),
    );
    let allow = Arc::new(allow);
    let server_policy = Policy::strict(&[Role::Proxy], allow.clone()).insecure_dev();
    let client_policy = Policy::strict(&[Role::Worker], allow).insecure_dev();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;

    let warm_server = Arc::new(PeerVerifier::new(server_policy.clone()));
    let warm_client = Arc::new(PeerVerifier::new(client_policy.clone()));
    let warm = (
        Arc::new(server_config_with(worker.clone(), warm_server)?),
        Arc::new(client_config_with(proxy.clone(), warm_client)?),
    );
    let (mut fresh_samples, mut cached_samples) =
        (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for i in 0..runs + 10 {
        let fresh_server = Arc::new(server_config_with(
            worker.clone(),
            Arc::new(PeerVerifier::new(server_policy.clone())),
        )?);
        let fresh_client = Arc::new(client_config_with(
            proxy.clone(),
            Arc::new(PeerVerifier::new(client_policy.clone())),
        )?);
        let fresh = one_handshake(&listener, fresh_server, fresh_client).await?;
        let cached = one_handshake(&listener, warm.0.clone(), warm.1.clone()).await?;
        if i >= 10 {
            fresh_samples.push(fresh);
            cached_samples.push(cached);
        }
    }
    let ratls_handshake_ms = median_ms(fresh_samples);
    let out = serde_json::json!({
        "quote_verify_ms": quote_verify_ms,
        "ratls_handshake_ms": ratls_handshake_ms,
        "ratls_handshake_cached_ms": median_ms(cached_samples),
        "ratls_handshake_dcap_estimate_ms": ratls_handshake_ms + 2.0 * quote_verify_ms,
        "runs": runs,
    });
    println!("{out}");
    Ok(())
}
