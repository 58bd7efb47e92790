//! The whole path over RA-TLS from cocoon-attestation (simulated quotes, insecure development policy):
//! every hop is mutually attested, and the receipt carries the worker's attested image hash.

mod common;

use std::sync::Arc;

use cocoon_attestation as att;
use cocoon_attestation::provider::simulated::SimulatedProvider;
use cocoon_daemon::ra_tls::RaTls;
use cocoon_daemon::tls::{HopTls, Role};
use common::*;
use ed25519_dalek::SigningKey;

fn key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_path_runs_over_mutual_ra_tls_and_receipts_carry_the_attested_image() {
    let proxy_image = SimulatedProvider::new("cocoon-proxy-test");
    let worker_image = SimulatedProvider::new("cocoon-worker-test");
    let allow = Arc::new(att::InMemoryAllowlist::new());
    allow.allow(att::Role::Proxy, proxy_image.image_hash());
    allow.allow(att::Role::Worker, worker_image.image_hash());
    let list: Arc<dyn att::ImageAllowlist> = allow.clone();
    let proxy_policy = att::Policy::strict(&[att::Role::Client, att::Role::Worker], list.clone())
        .insecure_dev()
        .accept_unattested(att::Role::Client);
    let to_proxy = att::Policy::strict(&[att::Role::Proxy], list.clone()).insecure_dev();
    let worker_hash = worker_image.image_hash();
    let proxy: Arc<dyn HopTls> = Arc::new(
        RaTls::new(
            Role::Proxy,
            key(),
            Some(Arc::new(proxy_image)),
            proxy_policy,
        )
        .unwrap(),
    );
    let gateway: Arc<dyn HopTls> =
        Arc::new(RaTls::new(Role::Client, key(), None, to_proxy.clone()).unwrap());
    let worker = Arc::new(move || {
        let provider = Arc::new(SimulatedProvider::new("cocoon-worker-test"));
        Arc::new(RaTls::new(Role::Worker, key(), Some(provider), to_proxy.clone()).unwrap())
            as Arc<dyn HopTls>
    });
    let kit = TlsKit {
        proxy,
        gateway,
        worker,
    };
    let net = Net::start_full(&[1000], None, |_| {}, |_| {}, kit).await;
    net.chain.open_escrow(net.client_key, CREDIT);

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
