//! Issue 15, measured configuration: a `tdx` proxy reading the chain through a plain-http API (an
//! operator's own "toncenter" on the wire in clear) refuses to start, before any key, quote or port
//! exists; https endpoints pass the rule (the build then stops at the next missing setting).

use cocoon_daemon::tls_config::{TlsMode, TlsSection};
use cocoon_proxy::ProxyConfig;
use cocoon_proxy::daemon::{RunOptions, build};

fn tdx_config(api_url: &str, cross_check_url: &str) -> ProxyConfig {
    let mut c = ProxyConfig {
        client_listen: "127.0.0.1:0".into(),
        worker_listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        tls: TlsSection {
            mode: TlsMode::Tdx,
            collateral_file: cocoon_attestation::fixtures_dir()
                .join("cocoon-tdx-quote.collateral.json")
                .display()
                .to_string(),
            tsm_dir: "/nonexistent/tsm".into(),
            ..TlsSection::default()
        },
        ..ProxyConfig::default()
    };
    c.chain.root = "0:".to_owned() + &"11".repeat(32);
    c.chain.operator = "0:".to_owned() + &"22".repeat(32);
    c.chain.endpoint.api_url = api_url.into();
    c.chain.endpoint.cross_check_url = cross_check_url.into();
    c
}

async fn refusal(config: ProxyConfig) -> String {
    match build(config, &RunOptions::default()).await {
        Ok(_) => panic!("the proxy started"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn a_tdx_proxy_with_a_plain_http_chain_endpoint_refuses_to_start() {
    let e = refusal(tdx_config(
        "http://operators-own-toncenter.example/api/v2",
        "",
    ))
    .await;
    assert!(e.contains("chain.api_url") && e.contains("https"), "{e}");
    let e = refusal(tdx_config(
        "https://toncenter.com/api/v2",
        "http://second.example/api/v2",
    ))
    .await;
    assert!(e.contains("chain.cross_check_url"), "{e}");
    let e = refusal(tdx_config(
        "https://toncenter.com/api/v2",
        "https://tonapi.example/api/v2",
    ))
    .await;
    assert!(!e.contains("[chain] in tdx mode"), "{e}");
    eprintln!("https endpoints pass the rule; then: {e}");
}
