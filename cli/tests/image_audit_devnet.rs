//! `cocoon audit image` against a devnet root: the allowed hash matches; another image names the
//! register and event that differ.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use cocoon_devnet::{Devnet, DevnetOptions};
use serde_json::Value;

const PASS: &str = "test passphrase";

fn fixture(path: &str) -> String {
    format!(
        "{}/../sdk/measure/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    )
}

struct Env {
    dir: tempfile::TempDir,
    url: String,
    root: Option<String>,
}

impl Env {
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocoon"));
        for (k, _) in std::env::vars() {
            if k.starts_with("COCOON_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("COCOON_API_URL", &self.url)
            .env("COCOON_PASSPHRASE", PASS)
            .env("COCOON_KEYSTORE", self.dir.path().join("owner.json"))
            .env("HOME", self.dir.path());
        if let Some(root) = &self.root {
            cmd.env("COCOON_ROOT", root);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run cocoon")
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let o = self.run(&all);
        assert!(
            o.status.success(),
            "cocoon {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("JSON on stdout")
    }
}

/// The MRTD of the dstack quote-report fixture (its firmware is not available; RTMRs come from the log).
fn dstack_mrtd() -> String {
    let raw: Value =
        serde_json::from_slice(&std::fs::read(fixture("dstack/quote-report.json")).expect("read"))
            .expect("json");
    let quote = hex::decode(raw["quote"].as_str().expect("quote")).expect("hex");
    let (_, _, m, _) = cocoon_attestation::dcap::parse_quote(&quote).expect("parse");
    let cocoon_attestation::dcap::Measurements::Td(td) = m else {
        panic!("not TDX")
    };
    hex::encode(td.mrtd)
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_image_matches_the_allowed_hash_and_names_the_differing_register() {
    let devnet = Devnet::start(DevnetOptions::default())
        .await
        .expect("devnet (run `make setup`)");
    let mut env = Env {
        dir: tempfile::tempdir().expect("tmp"),
        url: devnet.url().to_string(),
        root: None,
    };
    let owner = env.json(&["wallet", "new"]);
    devnet
        .fund(owner["address"].as_str().expect("address"), 50_000_000_000)
        .await
        .expect("fund");
    let params: PathBuf = env.dir.path().join("params.toml");
    std::fs::write(&params, env.run(&["deploy", "--example-params"]).stdout).expect("params");
    let d = env.json(&["deploy", "--params", params.to_str().expect("utf8")]);
    env.root = Some(d["root"].as_str().expect("root").to_owned());

    let mrtd = dstack_mrtd();
    let allowed_log = fixture("dstack/quote-report.json");
    let allowed = env.json(&[
        "image",
        "measure",
        "--event-log",
        &allowed_log,
        "--mrtd",
        &mrtd,
    ]);
    let hash = allowed["image_hash"]
        .as_str()
        .expect("image hash")
        .to_owned();
    env.json(&["gov", "allow-image", "--role", "worker", &hash]);

    let v = env.json(&[
        "audit",
        "image",
        "--role",
        "worker",
        "--event-log",
        &allowed_log,
        "--mrtd",
        &mrtd,
    ]);
    assert_eq!(v["status"], "allowed");
    assert_eq!(v["image_hash"], hash.as_str());

    // Another image (dstack's 2 GiB lite VM) with the same MRTD: RTMR0 differs from its first event.
    let expected = env.dir.path().join("allowed.json");
    std::fs::write(&expected, serde_json::to_vec(&allowed).expect("ser")).expect("write");
    let o = env.run(&[
        "audit",
        "image",
        "--role",
        "worker",
        "--event-log",
        &fixture("dstack/tdx-lite-getquote.json"),
        "--mrtd",
        &mrtd,
        "--expected",
        expected.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(9));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not in the allowlist") && err.contains("rtmr0 differs at its event 0"),
        "{err}"
    );
    let o = env.run(&[
        "audit",
        "image",
        "--role",
        "proxy",
        "--event-log",
        &allowed_log,
        "--mrtd",
        &mrtd,
    ]);
    assert_eq!(
        o.status.code(),
        Some(9),
        "the worker hash is not a proxy hash"
    );
    devnet.stop().await.expect("stop");
}
