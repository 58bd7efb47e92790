//! The receipts journal through the gateway: receipts (with their exact bodies) survive a restart,
//! and a gateway started on the same journal exports the same proof bundle.

mod common;

use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::{DevTls, Role};
use cocoon_gateway::GatewayConfig;
use cocoon_gateway::bundle::Selection;
use common::*;

fn chat(content: &str, stream: bool) -> String {
    serde_json::json!({
        "model": MODEL,
        "max_tokens": 4,
        "stream": stream,
        "messages": [{"role": "user", "content": content}],
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_and_their_bodies_survive_a_restart_of_the_gateway() {
    let keep = tempfile::tempdir().unwrap();
    let journal = keep.path().join("receipts.journal");
    let path = journal.display().to_string();
    let net = Net::start_with(
        &[1000],
        Some(CREDIT),
        |_| {},
        |g| g.receipts_path = path.clone(),
    )
    .await;
    for (i, stream) in [false, true, false].into_iter().enumerate() {
        let r = net
            .post(
                "/v1/chat/completions",
                &chat(&format!("keep {i}"), stream),
                &[],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let before = net.gateway.gateway.receipts();
    assert_eq!(before.len(), 3);
    assert!(before.iter().all(|r| r.status == "verified"));
    let bundle_before = net.gateway.gateway.bundle(&Selection::default()).await;
    assert!(journal.metadata().unwrap().len() > 0);

    // A second gateway process on the same journal (the first one is gone as far as it knows).
    let config = GatewayConfig {
        listen: "127.0.0.1:0".into(),
        proxy: net.proxy().client_addr.to_string(),
        receipts_path: path.clone(),
        ..Default::default()
    };
    let restarted = cocoon_gateway::start(
        config,
        std::sync::Arc::new(DevTls::generate(Role::Client).unwrap()),
        Registry::new(),
    )
    .await
    .unwrap();
    let after = restarted.gateway.receipts();
    assert_eq!(
        after, before,
        "every receipt, with its id, status and hashes"
    );
    let bundle_after = restarted.gateway.bundle(&Selection::default()).await;
    assert_eq!(
        bundle_after.responses, bundle_before.responses,
        "the exact request and response bytes came back too"
    );

    // A journal path in a directory that does not exist is refused before any port is bound.
    let bad = GatewayConfig {
        listen: "127.0.0.1:0".into(),
        proxy: net.proxy().client_addr.to_string(),
        receipts_path: keep
            .path()
            .join("missing/dir/r.journal")
            .display()
            .to_string(),
        ..Default::default()
    };
    let refused = cocoon_gateway::start(
        bad,
        std::sync::Arc::new(DevTls::generate(Role::Client).unwrap()),
        Registry::new(),
    )
    .await;
    assert!(
        refused
            .err()
            .is_some_and(|e| e.to_string().contains("receipts_path")),
    );
}
