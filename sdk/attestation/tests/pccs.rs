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

mod refreshing_source {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use cocoon_attestation::AttestError;
    use cocoon_attestation::collateral::{CollateralSource, PccsClient, load_collateral_file};
    use cocoon_attestation::dcap::verify_quote;
    use cocoon_attestation::fixtures_dir;
    use cocoon_attestation::pccs_source::{PccsCollateral, PccsOptions};
    use cocoon_attestation::policy::FixedClock;

    fn fixture() -> (cocoon_attestation::dcap::QuoteCollateralV3, Vec<u8>) {
        (
            load_collateral_file(&fixtures_dir().join("cocoon-tdx-quote.collateral.json"))
                .expect("collateral"),
            std::fs::read(fixtures_dir().join("cocoon-tdx-quote.bin")).expect("quote"),
        )
    }

    fn options() -> PccsOptions {
        PccsOptions {
            retry_after: Duration::from_secs(60),
            refresh_margin: Duration::from_secs(3600),
            check_every: Duration::from_secs(3600),
            max_platforms: 4,
        }
    }

    async fn dead_url() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        format!("http://{addr}")
    }

    // The source never blocks (a TLS verifier runs on a runtime thread); it is called from a
    // blocking task all the same, which would hang the test if it waited for the PCCS.
    async fn ask(
        source: &Arc<PccsCollateral>,
        quote: &[u8],
    ) -> Result<Arc<cocoon_attestation::dcap::QuoteCollateralV3>, AttestError> {
        let source = Arc::clone(source);
        let quote = quote.to_vec();
        tokio::task::spawn_blocking(move || source.collateral_for(&quote))
            .await
            .expect("join")
    }

    /// Waits until no fetch for `key` is queued or running.
    async fn settle(source: &PccsCollateral, key: &cocoon_attestation::collateral::PlatformKey) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while source.in_flight(key) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!source.in_flight(key), "fetch for {key:?} did not settle");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quotes_of_made_up_platforms_do_not_lock_out_a_genuine_one() {
        use cocoon_attestation::collateral::PlatformKey;
        let (collateral, quote) = fixture();
        let hits = Arc::new(AtomicUsize::new(0));
        // The stand-in PCCS knows only the genuine FMSPC: made-up ones get 404 for their TCB info.
        let addr = super::serve(collateral.clone(), hits.clone()).await;
        let cache = tempfile::tempdir().expect("tempdir");
        let at = time::macros::datetime!(2026-03-01 00:00 UTC).unix_timestamp();
        let options = PccsOptions::default();
        let max = options.max_platforms;
        let source = Arc::new(
            PccsCollateral::start(
                PccsClient::new(&format!("http://{addr}"), cache.path().to_path_buf())
                    .expect("client"),
                None,
                Arc::new(FixedClock::new(at)),
                options,
            )
            .expect("start"),
        );
        // Quotes of 80 made-up platforms (more than the table holds), each refused at once.
        let fakes: Vec<PlatformKey> = (0..80u64)
            .map(|i| PlatformKey {
                tee: "tdx",
                fmspc: format!("{:012x}", 0xf0_0000_0000u64 + i),
                ca: "platform",
            })
            .collect();
        for fake in &fakes {
            let started = Instant::now();
            assert!(source.lookup(fake).is_err(), "no collateral for {fake:?}");
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "never waits"
            );
            settle(&source, fake).await;
            assert!(source.table_len() <= max, "the table is bounded");
        }
        assert!(source.platforms().is_empty(), "no fake got collateral");
        // A genuine platform is still served: first contact prefetches, the next finds it.
        let genuine = PlatformKey::of_quote(&quote).expect("key");
        let started = Instant::now();
        assert!(source.lookup(&genuine).is_err(), "first contact");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "never waits"
        );
        settle(&source, &genuine).await;
        let got = source
            .lookup(&genuine)
            .expect("the genuine platform is not locked out");
        assert_eq!(*got, collateral);
        assert!(source.table_len() <= max);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fetches_on_first_contact_serves_from_memory_then_refreshes_before_next_update() {
        let (collateral, quote) = fixture();
        let hits = Arc::new(AtomicUsize::new(0));
        let addr = super::serve(collateral.clone(), hits.clone()).await;
        let cache = tempfile::tempdir().expect("tempdir");
        let at = time::macros::datetime!(2026-03-01 00:00 UTC).unix_timestamp();
        let clock = Arc::new(FixedClock::new(at));
        let client =
            PccsClient::new(&format!("http://{addr}"), cache.path().to_path_buf()).expect("client");
        let source =
            Arc::new(PccsCollateral::start(client, None, clock.clone(), options()).expect("start"));

        // First contact: refused at once (nothing in memory), fetched in the background.
        let started = Instant::now();
        let err = ask(&source, &quote).await.expect_err("not fetched yet");
        assert!(
            matches!(err, AttestError::CollateralUnavailable { .. }),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "did not wait for the PCCS"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while source.platforms().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = ask(&source, &quote)
            .await
            .expect("fetched after first contact");
        assert_eq!(hits.load(Ordering::SeqCst), 4, "four PCCS routes");
        verify_quote(&quote, &got, u64::try_from(at).expect("positive")).expect("verifies");
        assert_eq!(source.platforms().len(), 1);

        ask(&source, &quote).await.expect("from memory");
        assert_eq!(hits.load(Ordering::SeqCst), 4, "no second fetch");

        // Past nextUpdate minus the margin: the held collateral is still answered at once, and a
        // refetch runs in the background.
        clock.set(time::macros::datetime!(2026-03-20 10:30 UTC).unix_timestamp());
        let started = Instant::now();
        ask(&source, &quote).await.expect("held collateral");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "did not wait for the refresh"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while hits.load(Ordering::SeqCst) < 8 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            hits.load(Ordering::SeqCst),
            8,
            "refetched before nextUpdate"
        );
        // The PCCS serves the same (now due) collateral: it is not asked again before the back-off.
        ask(&source, &quote).await.expect("held collateral");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            hits.load(Ordering::SeqCst),
            8,
            "backs off from a stale PCCS"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_uses_the_disk_cache_without_the_pccs() {
        let (collateral, quote) = fixture();
        let hits = Arc::new(AtomicUsize::new(0));
        let addr = super::serve(collateral.clone(), hits.clone()).await;
        let cache = tempfile::tempdir().expect("tempdir");
        let at = time::macros::datetime!(2026-03-01 00:00 UTC).unix_timestamp();
        let first = Arc::new(
            PccsCollateral::start(
                PccsClient::new(&format!("http://{addr}"), cache.path().to_path_buf())
                    .expect("client"),
                None,
                Arc::new(FixedClock::new(at)),
                options(),
            )
            .expect("start"),
        );
        ask(&first, &quote)
            .await
            .expect_err("first contact prefetches");
        let deadline = Instant::now() + Duration::from_secs(10);
        while first.platforms().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ask(&first, &quote).await.expect("fetched");
        drop(first);

        let restarted = Arc::new(
            PccsCollateral::start(
                PccsClient::new(&dead_url().await, cache.path().to_path_buf()).expect("client"),
                None,
                Arc::new(FixedClock::new(at)),
                options(),
            )
            .expect("start"),
        );
        assert_eq!(restarted.platforms().len(), 1, "loaded from the cache");
        let got = ask(&restarted, &quote).await.expect("from the cache");
        assert_eq!(*got, collateral);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_pccs_is_a_named_error_backs_off_and_falls_back_to_the_file() {
        let (collateral, quote) = fixture();
        let cache = tempfile::tempdir().expect("tempdir");
        let url = dead_url().await;
        let at = time::macros::datetime!(2026-03-01 00:00 UTC).unix_timestamp();
        let start = |fallback| {
            PccsCollateral::start(
                PccsClient::new(&url, cache.path().to_path_buf()).expect("client"),
                fallback,
                Arc::new(FixedClock::new(at)),
                options(),
            )
            .map(Arc::new)
            .expect("start")
        };
        let bare = start(None);
        let err = ask(&bare, &quote)
            .await
            .expect_err("nothing to verify with");
        assert!(
            matches!(&err, AttestError::CollateralUnavailable { fmspc } if fmspc == "90c06f000000"),
            "{err}"
        );
        let key = cocoon_attestation::collateral::PlatformKey::of_quote(&quote).expect("key");
        settle(&bare, &key).await;
        let reason = bare.last_error(&key).expect("recorded");
        assert!(
            reason.contains(url.trim_start_matches("http://")),
            "{reason}"
        );
        // Within the back-off the next handshake does not wait for another attempt.
        let started = Instant::now();
        ask(&bare, &quote).await.expect_err("still nothing");
        assert!(started.elapsed() < Duration::from_secs(1));

        let with_file = start(Some(collateral.clone()));
        let got = ask(&with_file, &quote)
            .await
            .expect("the file's collateral");
        assert_eq!(*got, collateral);
        assert!(
            ask(&with_file, b"not a quote").await.is_ok(),
            "fallback for any quote"
        );
    }
}
