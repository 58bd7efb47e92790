//! The whole path over RA-TLS from cocoon-attestation (simulated quotes, insecure development policy):
//! every hop is mutually attested, and the receipt carries the worker's attested image hash.

mod common;

use cocoon_attestation as att;
use cocoon_attestation::provider::simulated::SimulatedProvider;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_path_runs_over_mutual_ra_tls_and_receipts_carry_the_attested_image() {
    let worker_hash = SimulatedProvider::new("cocoon-worker-test").image_hash();
    let kit = TlsKit::simulated("cocoon-proxy-test", "cocoon-worker-test").unwrap();
    let net = Net::builder().tls(kit).start().await;

    let attested = net.proxy().proxy.workers.all();
    assert_eq!(attested[0].identity.image_hash, worker_hash);
    assert_eq!(attested[0].identity.tee, att::TeeKind::Simulated);
    assert!(
        attested[0].identity.insecure,
        "simulated evidence must be flagged insecure"
    );

    for stream in [false, true] {
        let r = net
            .post("/v1/chat/completions", &chat("attested hello", stream), &[])
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let receipts = net.gateway.gateway.receipts();
    assert_eq!(receipts.len(), 2);
    for rec in &receipts {
        assert_eq!(rec.status, "verified");
        let r = &rec.receipt.as_ref().unwrap().receipt;
        assert_eq!(r.image_hash, worker_hash);
        assert_eq!(r.worker_key, net.workers[0].state_key());
    }
    assert_eq!(
        net.charged(),
        receipts
            .iter()
            .map(|r| r.receipt.as_ref().unwrap().receipt.cost_nano)
            .sum::<u128>()
    );
}
