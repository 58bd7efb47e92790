//! The API corpus against live daemons (see tests/common): every `http` case is sent to the gateway
//! (HTTP/1.1), to the proxy directly (HTTP/2 over its mutual TLS, as a gateway talks to it) and,
//! where the manifest says so, to the engine. Each must answer with the expected OpenAI-shaped error
//! code, and after every case each daemon must still serve a good request. At the end the client has
//! been charged exactly what its verified receipts say: nothing for refused requests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness: a failed setup step should panic

mod common;

use bytes::Bytes;
use cocoon_drills::manifest::{Case, Manifest};
use common::{Answer, Net, good, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_case_is_refused_clearly_and_the_daemons_keep_serving() {
    let manifest = Manifest::load().expect("manifest");
    let mut net = Net::start().await;
    let mut failures = Vec::new();
    let mut sent = 0usize;
    let cases: Vec<&Case> = manifest
        .cases
        .iter()
        .filter(|c| c.target == "http")
        .collect();
    for case in &cases {
        let body = Bytes::from(case.bytes().expect("case file"));
        let mut check = |surface: &str, expected: &str, got: Answer| {
            let class = got.class();
            if class != expected {
                failures.push(format!(
                    "{} at the {surface}: expected {expected}, got {class} (status {})",
                    case.file, got.status
                ));
            } else if expected != "ok" && !(400..600).contains(&got.status) {
                failures.push(format!(
                    "{} at the {surface}: status {}",
                    case.file, got.status
                ));
            }
        };
        let answer = net.http1(request(case, &net.gateway, body.clone())).await;
        check("gateway", &case.expect, answer);
        let answer = net.proxy(request(case, "http://proxy", body.clone())).await;
        check("proxy", &case.expect, answer);
        if let Some(engine_expect) = &case.expect_engine {
            let answer = net.http1(request(case, &net.engine, body.clone())).await;
            check("engine", engine_expect, answer);
            sent += 1;
        }
        sent += 2;
        // Everything still serves a good request.
        let g = net.http1(good(&net.gateway)).await;
        let p = net.proxy(good("http://proxy")).await;
        let e = net.http1(good(&net.engine)).await;
        for (surface, a) in [("gateway", g), ("proxy", p), ("engine", e)] {
            if a.status != 200 {
                failures.push(format!(
                    "after {} the {surface} failed a good request: {} {}",
                    case.file, a.status, a.code
                ));
            }
        }
    }
    eprintln!(
        "api corpus: {} cases, {sent} malformed requests",
        cases.len()
    );
    // The gateway's client paid exactly its verified receipts: refused requests cost nothing.
    let receipts = net.inner.gateway.gateway.receipts();
    assert!(
        receipts.iter().all(|r| r.status == "verified"),
        "unverified receipts"
    );
    let receipted: u128 = receipts
        .iter()
        .filter_map(|r| r.receipt.as_ref().map(|s| s.receipt.cost_nano))
        .sum();
    let charged = net.inner.charged();
    assert!(charged > 0);
    assert_eq!(
        charged, receipted,
        "charged {charged}, receipts say {receipted}"
    );
    assert_eq!(receipts.len(), cases.len(), "one receipt per good request");
    assert!(net.inner.chain.snapshot().charges.len() <= cases.len());
    assert!(
        failures.is_empty(),
        "{} API drill failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
