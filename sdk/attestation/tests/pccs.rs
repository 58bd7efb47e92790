//! The PCCS client against a local stand-in PCCS that serves the fixture collateral.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cocoon_attestation::collateral::{PccsClient, PlatformKey, load_collateral_file};
use cocoon_attestation::dcap::{QuoteCollateralV3, verify_quote};
use cocoon_attestation::fixtures_dir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Serves Intel's v4 PCCS routes from `c`; counts requests.
async fn serve(c: QuoteCollateralV3, hits: Arc<AtomicUsize>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            hits.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 4096];
            let n = tcp.read(&mut buf).await.unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("").to_owned();
            let reply = if path.starts_with("/sgx/certification/v4/pckcrl?ca=platform&encoding=der")
            {
                response(
                    "200 OK",
                    &[(
                        "SGX-PCK-CRL-Issuer-Chain",
                        url_encode(&c.pck_crl_issuer_chain),
                    )],
                    &c.pck_crl,
                )
            } else if path.starts_with("/tdx/certification/v4/tcb?fmspc=90C06F000000") {
                let body = format!(
                    r#"{{"tcbInfo":{},"signature":"{}"}}"#,
                    c.tcb_info,
                    hex::encode(&c.tcb_info_signature)
                );
                response(
                    "200 OK",
                    &[(
                        "TCB-Info-Issuer-Chain",
                        url_encode(&c.tcb_info_issuer_chain),
                    )],
                    body.as_bytes(),
                )
            } else if path == "/tdx/certification/v4/qe/identity" {
                let body = format!(
                    r#"{{"enclaveIdentity":{},"signature":"{}"}}"#,
                    c.qe_identity,
                    hex::encode(&c.qe_identity_signature)
                );
                response(
                    "200 OK",
                    &[(
                        "SGX-Enclave-Identity-Issuer-Chain",
                        url_encode(&c.qe_identity_issuer_chain),
                    )],
                    body.as_bytes(),
                )
            } else if path == "/sgx/certification/v4/rootcacrl" {
                response("200 OK", &[], hex::encode(&c.root_ca_crl).as_bytes())
            } else {
                response("404 Not Found", &[], b"")
            };
            let _ = tcp.write_all(&reply).await;
        }
    });
    addr
}

#[tokio::test]
async fn collateral_from_the_operators_pccs_verifies_and_is_cached_on_disk() {
    let fixture = load_collateral_file(&fixtures_dir().join("cocoon-tdx-quote.collateral.json"))
        .expect("collateral");
    let quote = std::fs::read(fixtures_dir().join("cocoon-tdx-quote.bin")).expect("quote");
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(fixture.clone(), hits.clone()).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let client =
        PccsClient::new(&format!("http://{addr}"), cache.path().to_path_buf()).expect("client");
    let at = time::macros::datetime!(2026-03-01 00:00 UTC).unix_timestamp();

    let (key, fetched) = client.collateral_for(&quote, at).await.expect("fetched");
    assert_eq!(
        key,
        PlatformKey {
            tee: "tdx",
            fmspc: "90c06f000000".into(),
            ca: "platform"
        }
    );
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    assert_eq!(
        fetched.tcb_info, fixture.tcb_info,
        "signed JSON kept byte for byte"
    );
    assert_eq!(fetched.pck_crl_issuer_chain, fixture.pck_crl_issuer_chain);
    verify_quote(&quote, &fetched, u64::try_from(at).expect("positive"))
        .expect("verifies with PCCS collateral");

    let (_, cached) = client.collateral_for(&quote, at).await.expect("cached");
    assert_eq!(hits.load(Ordering::SeqCst), 4, "served from the disk cache");
    assert_eq!(cached, fetched);

    // After the TCB info's nextUpdate the cache is stale and the PCCS is asked again.
    let later = time::macros::datetime!(2026-04-01 00:00 UTC).unix_timestamp();
    client
        .collateral_for(&quote, later)
        .await
        .expect("refetched");
    assert_eq!(hits.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn pccs_errors_name_the_url() {
    let quote = std::fs::read(fixtures_dir().join("cocoon-tdx-quote.bin")).expect("quote");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let cache = tempfile::tempdir().expect("tempdir");
    let client =
        PccsClient::new(&format!("http://{addr}"), cache.path().to_path_buf()).expect("client");
    let err = client
        .collateral_for(&quote, 0)
        .await
        .expect_err("nobody listening");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
