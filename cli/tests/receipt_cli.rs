//! `cocoon receipt` and `cocoon audit receipt|endpoint` end to end: a network runs in this process over
//! RA-TLS with simulated quotes (engine → worker → proxy → gateway on 127.0.0.1:0), real requests go
//! through it, `cocoon receipt export` takes the bundle from the gateway, and the `cocoon` binary
//! verifies it offline. Help texts and outputs are insta snapshots with volatile fields redacted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use cocoon_attestation::provider::simulated::SimulatedProvider;
use cocoon_testkit::{FAKE_MODEL, MemoryNetwork, TlsKit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WORKER_LABEL: &str = "cocoon-worker-cli-test";

fn cocoon(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocoon"));
    for (k, _) in std::env::vars() {
        if k.starts_with("COCOON_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).output().expect("run cocoon")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Replaces what changes from run to run: 64-hex keys and hashes, unix times, the temp path.
fn redact(text: &str, dir: &Path) -> String {
    let text = text.replace(&dir.display().to_string(), "<dir>");
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() == 64 && run.chars().all(|c| c.is_ascii_hexdigit()) {
            out.push_str("<hex>");
        } else if run.len() == 10 && run.chars().all(|c| c.is_ascii_digit()) {
            out.push_str("<time>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// [`redact`] on every string of a JSON value; unix times (10-digit numbers) become `"<time>"`.
fn redact_json(v: serde_json::Value, dir: &Path) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(redact(&s, dir)),
        Value::Number(n) if n.as_u64().is_some_and(|n| n.to_string().len() == 10) => {
            Value::String("<time>".into())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|x| redact_json(x, dir)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, x)| (k, redact_json(x, dir)))
                .collect(),
        ),
        other => other,
    }
}

/// The network over RA-TLS with simulated quotes (engine → worker → proxy → gateway).
async fn start_net() -> MemoryNetwork {
    let kit = TlsKit::simulated("cocoon-proxy-cli-test", WORKER_LABEL).unwrap();
    MemoryNetwork::builder().tls(kit).start().await
}

/// One POST over plain HTTP/1.1, as an app would send it; returns status line and body.
async fn post(addr: std::net::SocketAddr, body: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

/// Six prompt and three completion tokens from the echo engine: 18000 nanoTON at the defaults.
fn chat(stream: bool) -> String {
    serde_json::json!({"model": FAKE_MODEL, "stream": stream, "max_tokens": 3,
        "messages": [{"role": "user", "content": "audit me and my six words"}]})
    .to_string()
}

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cocoon(&refs)
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// `cocoon receipt verify BUNDLE EXTRA...`.
async fn verify(bundle: &str, extra: &[&str]) -> Output {
    run(args(&[&["receipt", "verify", bundle], extra].concat())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_bundles_verify_offline_through_the_binary() {
    let net = start_net().await;
    let mut request_ids = Vec::new();
    for stream in [false, true] {
        let resp = post(net.gateway.addr, &chat(stream)).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        let id = resp
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .unwrap_or_else(|| panic!("no x-request-id: {resp}"));
        request_ids.push(id.to_owned());
    }
    let worker_key = net.workers[0].state_key();
    cocoon_testkit::wait::until("the gateway to fetch the worker certificate", || {
        net.gateway
            .gateway
            .worker_certificate(&worker_key)
            .is_some()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.json");
    let bundle_s = bundle.display().to_string();
    let gateway = format!("http://{}", net.gateway.addr);

    let o = run(args(&[
        "receipt",
        "export",
        "--gateway",
        &gateway,
        "--bodies",
        "--out",
        &bundle_s,
    ]))
    .await;
    assert!(o.status.success(), "{}", err(&o));
    insta::assert_snapshot!("export", redact(&out(&o), dir.path()));

    // Without an image allowlist (the root's, or --image) nothing is verified.
    let o = run(args(&["receipt", "verify", &bundle_s])).await;
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("no image allowlist"), "{}", err(&o));
    // The old behaviour stays behind its flag and says what it did not check.
    let o = verify(
        &bundle_s,
        &["--allow-insecure", "--trust-bundle-collateral"],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        err(&o).contains("NOT CHECKED (--trust-bundle-collateral): no image allowlist"),
        "{}",
        err(&o)
    );

    // Simulated TEE: verifies, says INSECURE loudly, and exits 10 unless allowed.
    let image = hex::encode(SimulatedProvider::new(WORKER_LABEL).image_hash());
    let o = verify(&bundle_s, &["--image", &image]).await;
    assert_eq!(o.status.code(), Some(10), "{}", err(&o));
    assert!(out(&o).contains("INSECURE (simulated TEE)"));
    assert!(err(&o).contains("--allow-insecure"));
    insta::assert_snapshot!("verify_text", redact(&out(&o), dir.path()));
    let o = verify(&bundle_s, &["--allow-insecure", "--image", &image]).await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));

    let o = verify(
        &bundle_s,
        &["--allow-insecure", "--json", "--image", &image],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "insecure");
    assert_eq!(v["accepted"], true);
    assert_eq!(v["responses"][0]["worker_key"], hex::encode(worker_key));
    assert_eq!(v["insecure_reason"], "simulated TEE");
    let redacted = redact_json(v, dir.path());
    insta::with_settings!({sort_maps => true}, {
        insta::assert_json_snapshot!("verify_json", redacted);
    });

    let o = run(args(&[
        "audit",
        "receipt",
        &bundle_s,
        "--allow-insecure",
        "--image",
        &image,
    ]))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    insta::assert_snapshot!("audit_receipt_text", redact(&out(&o), dir.path()));

    // The image the worker really runs is allowed; another image or model is a failure (exit 9).
    let o = verify(&bundle_s, &["--image", &"22".repeat(32)]).await;
    assert_eq!(o.status.code(), Some(9), "{}", err(&o));
    assert!(err(&o).contains("image_hash"), "{}", err(&o));
    let o = verify(
        &bundle_s,
        &["--model-hash", &"11".repeat(32), "--image", &image],
    )
    .await;
    assert_eq!(o.status.code(), Some(9));
    assert!(err(&o).contains("model_hash"), "{}", err(&o));

    // One flipped byte of the response bytes: exit 9 naming the check.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let b64 = doc["responses"][1]["response"]["bytes"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bytes = base64_decode(&b64);
    bytes[5] ^= 0x01;
    doc["responses"][1]["response"]["bytes"] = base64_encode(&bytes).into();
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec(&doc).unwrap()).unwrap();
    let t = tampered.display().to_string();
    let o = run(args(&[
        "audit",
        "receipt",
        &t,
        "--allow-insecure",
        "--image",
        &image,
    ]))
    .await;
    assert_eq!(o.status.code(), Some(9));
    assert!(out(&o).contains("[FAIL    ] response_hash"), "{}", out(&o));
    assert!(err(&o).contains("response 2: response_hash: the "));

    // Hashes only: the prompts stay out, the bundle still verifies.
    let hashes = dir.path().join("hashes.json").display().to_string();
    let o = run(args(&[
        "receipt",
        "export",
        "--gateway",
        &gateway,
        "--id",
        "1",
        "--hashes-only",
        "--out",
        &hashes,
    ]))
    .await;
    assert!(o.status.success(), "{}", err(&o));
    let text = std::fs::read_to_string(&hashes).unwrap();
    assert!(!text.contains(&base64_encode(chat(false).as_bytes())));
    let o = verify(&hashes, &["--allow-insecure", "--image", &image]).await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).contains("1 responses"));

    // The record of one request, by the x-request-id its response carried.
    let one = dir.path().join("one.json");
    let o = run(args(&[
        "receipt",
        "export",
        "--gateway",
        &gateway,
        "--request-id",
        &request_ids[1],
        "--out",
        &one.display().to_string(),
    ]))
    .await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("(1 responses, 1 workers)"), "{}", out(&o));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&one).unwrap()).unwrap();
    assert_eq!(doc["responses"][0]["id"], 2);
    assert_eq!(doc["responses"][0]["request_id"], request_ids[1].as_str());
    let o = run(args(&[
        "receipt",
        "export",
        "--gateway",
        &gateway,
        "--request-id",
        "not sane",
        "--out",
        &one.display().to_string(),
    ]))
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));

    // `audit endpoint` is `attest endpoint`: the proxy's simulated attestation is reported.
    let proxy = net.proxy().client_addr.to_string();
    let o = run(args(&["audit", "endpoint", &proxy, "--insecure"])).await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("role         proxy"), "{}", out(&o));
    assert!(out(&o).contains("SIMULATED: INSECURE"));
    let o = run(args(&["audit", "endpoint", &proxy])).await;
    assert!(!o.status.success());
    net.gateway.shutdown(Duration::from_secs(1)).await;
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn unreadable_bundles_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json").display().to_string();
    assert_eq!(
        cocoon(&["receipt", "verify", &missing]).status.code(),
        Some(3)
    );
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"format\": \"something-else\"}").unwrap();
    let o = cocoon(&["receipt", "verify", &junk.display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("is not a cocoon-proof-bundle"));
    let o = cocoon(&["receipt", "export", "--gateway", "ftp://x", "--out", "x"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn help_texts_are_stable() {
    for path in [
        "receipt",
        "receipt verify",
        "receipt export",
        "audit receipt",
        "audit endpoint",
    ] {
        let mut a: Vec<&str> = path.split(' ').collect();
        a.push("--help");
        let o = cocoon(&a);
        assert!(o.status.success(), "{path}: {}", err(&o));
        insta::assert_snapshot!(format!("help_{}", path.replace(' ', "_")), out(&o));
    }
    let top = out(&cocoon(&["--help"]));
    assert!(top.contains("\n  9  a receipt or proof bundle does not verify"));
    assert!(top.contains("\n  10 a proof bundle verifies only under simulated"));
}
