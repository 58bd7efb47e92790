//! A compromised proxy against the gateway (issue 16, finding 3): it names a worker key of its own
//! and signs receipts with it. The gateway verifies the certificate and quote of that key itself,
//! under its own policy, and compares the proxy's charge with the receipt's price.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cocoon_gateway::{GatewayConfig, ReceiptStatus};
use cocoon_testkit::{RogueCertificate, RogueOptions, RogueProxy};
use common::*;

const WORKER_LABEL: &str = "cocoon-worker-rogue-test";

/// The simulated kit (its policy allows `WORKER_LABEL`'s image), a rogue proxy with the kit's
/// genuine proxy identity, and a gateway pointed at it; the app's client too.
async fn against_rogue(
    options: RogueOptions,
    tweak: impl FnOnce(&mut GatewayConfig),
) -> (
    RogueProxy,
    cocoon_gateway::GatewayHandle,
    std::sync::Arc<cocoon_daemon::metrics::Registry>,
) {
    cocoon_daemon::init_tracing(false);
    let kit = TlsKit::simulated("cocoon-proxy-rogue-test", WORKER_LABEL).unwrap();
    let rogue = RogueProxy::start(kit.proxy.clone(), options).await.unwrap();
    let proxy_key = kit.proxy.identity().public_key;
    let mut config = cocoon_testkit::gateway_config(&rogue.addr.to_string(), Some(&proxy_key));
    tweak(&mut config);
    let metrics = cocoon_daemon::metrics::Registry::new();
    let gw = cocoon_gateway::start(config, kit.gateway.clone(), metrics.clone())
        .await
        .unwrap();
    (rogue, gw, metrics)
}

async fn post(gw: &cocoon_gateway::GatewayHandle, body: &str) -> Resp {
    let req = cocoon_testkit::http::post_json(
        &format!("http://{}/v1/chat/completions", gw.addr),
        body.to_owned(),
        &[],
    );
    Resp::collect(
        cocoon_testkit::http::app_client()
            .request(req)
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_naming_a_key_it_did_not_attest_yields_an_unverified_receipt() {
    // A certificate without a quote, and one whose (simulated) image is not allowed.
    for certificate in [
        RogueCertificate::Unattested,
        RogueCertificate::Simulated("an-image-nobody-allowed".into()),
        RogueCertificate::Missing,
    ] {
        let options = RogueOptions {
            certificate: certificate.clone(),
            ..Default::default()
        };
        let (rogue, gw, _) = against_rogue(options, |_| {}).await;
        let r = post(&gw, &chat("who answers?", false)).await;
        // require_receipts (the default): the made-up answer never reaches the app.
        assert_eq!(r.status, 502, "{certificate:?}: {}", r.text());
        assert!(r.text().contains("worker key not attested"), "{}", r.text());
        assert!(!r.text().contains("made up"));
        let records = gw.gateway.receipts();
        assert_eq!(records.len(), 1);
        let rec = &records[0];
        assert!(
            matches!(rec.status, ReceiptStatus::WorkerNotAttested(_)),
            "{certificate:?}: {}",
            rec.status
        );
        // The signature itself holds: only the gateway's own attestation catches it.
        let receipt = rec.receipt.as_ref().unwrap();
        assert!(receipt.verify_signature().is_ok());
        assert_eq!(receipt.receipt.worker_key, rogue.worker_key);

        // A stream is delivered (its bytes pass before the trailer), and its receipt is unverified.
        let r = post(&gw, &chat("who streams?", true)).await;
        assert_eq!(r.status, 200);
        let last = gw.gateway.receipts().pop().unwrap();
        assert!(!last.status.is_verified(), "{}", last.status);
        rogue.stop();
        gw.shutdown(std::time::Duration::from_secs(1)).await;
    }

    // Without require_receipts the app gets the answer, marked with why it is not verified.
    let (_rogue, gw, _) =
        against_rogue(RogueOptions::default(), |g| g.require_receipts = false).await;
    let r = post(&gw, &chat("tell me", false)).await;
    assert_eq!(r.status, 200);
    let status = r.headers["x-cocoon-receipt-status"].to_str().unwrap();
    assert!(status.starts_with("worker key not attested: "), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attested_key_verifies_and_an_overcharge_is_kept_with_the_receipt() {
    // The rogue proxy's key now has a certificate with the allowed (simulated) image: attested.
    let options = RogueOptions {
        certificate: RogueCertificate::Simulated(WORKER_LABEL.into()),
        charged_nano: Some("9000".into()),
        cost_nano: 7000,
    };
    let (_rogue, gw, metrics) = against_rogue(options, |_| {}).await;
    let r = post(&gw, &chat("price me", false)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rec = gw.gateway.receipts().pop().unwrap();
    assert!(rec.status.is_verified(), "{}", rec.status);
    let mismatch = rec.charge_mismatch.as_deref().unwrap();
    assert!(
        mismatch.contains("charged 9000") && mismatch.contains("at 7000"),
        "{mismatch}"
    );
    let metrics = metrics.render();
    assert!(
        metrics.contains("cocoon_gateway_charge_mismatches_total 1"),
        "{metrics}"
    );
}
