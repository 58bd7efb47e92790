//! `cocoon kms` against a devnet: governance allows a key-service image with the CLI, a (simulated)
//! key service runs on that root, `kms public-key` asks it over RA-TLS for the proxy key it releases,
//! and `kms bind` writes a binding signed by the keystore wallet that the key service accepts for
//! the TD holding that boot key (and nothing else).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use cocoon_daemon::chain_endpoint::ChainEndpoint;
use cocoon_daemon::keys::{BootKeyBinding, KeyRequest};
use cocoon_daemon::tls::{PeerIdentity, Role};
use cocoon_daemon::tls_config::{TlsMode, TlsSection};
use cocoon_devnet::{Devnet, DevnetOptions};
use cocoon_kms::{ChainWalletKeys, KmsConfig, WalletKeys};
use cocoon_ton::Network;
use serde_json::Value;

const TON: u128 = 1_000_000_000;
const PASS: &str = "test passphrase";

struct Env {
    dir: tempfile::TempDir,
    url: String,
    root: Option<String>,
}

impl Env {
    fn keystore(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.json"))
    }

    fn run(&self, who: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocoon"));
        for (k, _) in std::env::vars() {
            if k.starts_with("COCOON_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("COCOON_API_URL", &self.url)
            .env("COCOON_PASSPHRASE", PASS)
            .env("COCOON_KEYSTORE", self.keystore(who))
            .env("HOME", self.dir.path());
        if let Some(root) = &self.root {
            cmd.env("COCOON_ROOT", root);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run cocoon")
    }

    fn json(&self, who: &str, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let o = self.run(who, &all);
        assert!(
            o.status.success(),
            "cocoon {args:?} failed ({:?}):\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("JSON on stdout")
    }
}

fn kms_tls() -> TlsSection {
    TlsSection {
        mode: TlsMode::Simulated,
        image_label: "cli-kms".into(),
        ..TlsSection::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_bind_and_public_key_through_the_cli() {
    let devnet = Devnet::start(DevnetOptions::default())
        .await
        .expect("devnet (run `make setup` for sandbox-tests/node_modules)");
    let mut env = Env {
        dir: tempfile::tempdir().expect("tmp"),
        url: devnet.url().to_string(),
        root: None,
    };
    let owner = env.json("owner", &["wallet", "new"])["address"]
        .as_str()
        .unwrap()
        .to_owned();
    devnet.fund(&owner, 50 * TON).await.unwrap();
    let operator = env.json("operator", &["wallet", "new"])["address"]
        .as_str()
        .unwrap()
        .to_owned();
    devnet.fund(&operator, 5 * TON).await.unwrap();
    let params = env.dir.path().join("params.toml");
    std::fs::write(
        &params,
        env.run("owner", &["deploy", "--example-params"]).stdout,
    )
    .unwrap();
    let d = env.json("owner", &["deploy", "--params", params.to_str().unwrap()]);
    let root = d["root"].as_str().unwrap().to_owned();
    env.root = Some(root.clone());
    let kms_image = hex::encode(kms_tls().simulated_image_hash());
    let allowed = env.json(
        "owner",
        &["gov", "allow-image", "--role", "kms", &kms_image],
    );
    assert_eq!(allowed["action"], "allow-image", "{allowed}");
    // The operator's wallet is deployed by its first transfer (the key service reads its key).
    env.json("operator", &["wallet", "send", &owner, "0.1"]);

    let mut config = KmsConfig {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        tls: kms_tls(),
        ..KmsConfig::default()
    };
    config.chain.endpoint = ChainEndpoint::new(devnet.url(), Network::Testnet);
    config.chain.root = root.clone();
    let kms = cocoon_kms::daemon::build(config, &Default::default())
        .await
        .expect("kms");
    let kms_addr = kms.addr.to_string();

    // The public key governance registers, over RA-TLS after checking the service's image.
    let pk = env.json(
        "owner",
        &[
            "kms",
            "public-key",
            "--kms",
            &kms_addr,
            "--wallet",
            &operator,
            "--tls-mode",
            "simulated",
        ],
    );
    let operator_addr = cocoon_ton::parse_address(&operator).unwrap();
    let expected = kms.service.public_key(Role::Proxy, &operator_addr).unwrap();
    assert_eq!(pk["public_key"], expected.public_key.as_str());
    // Without --tls-mode simulated the CLI demands a TDX quote (and its collateral).
    let o = env.run(
        "owner",
        &[
            "kms",
            "public-key",
            "--kms",
            &kms_addr,
            "--wallet",
            &operator,
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The operator binds a TD's boot key with its keystore wallet.
    let boot = ed25519_dalek::SigningKey::from_bytes(&[0x61; 32]);
    let boot_file = env.dir.path().join("proxy.binding.boot-key");
    std::fs::write(&boot_file, hex::encode(boot.verifying_key().to_bytes())).unwrap();
    let out = env.dir.path().join("proxy.binding");
    let bound = env.json(
        "operator",
        &[
            "kms",
            "bind",
            "--role",
            "proxy",
            "--boot-key-file",
            boot_file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(bound["role"], "proxy");
    let binding: BootKeyBinding = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let parsed = binding.parse().unwrap();
    // Signed by the key the chain reports for the operator's wallet.
    let client = ChainEndpoint::new(devnet.url(), Network::Testnet)
        .client()
        .unwrap();
    let wallet_key = ChainWalletKeys::new(client)
        .public_key(&operator_addr)
        .await
        .unwrap()
        .expect("a deployed wallet has a public key");
    assert!(parsed.verify(&wallet_key));

    // The key service accepts it for the TD holding that boot key, and for no other.
    let td = |key: [u8; 32]| {
        let claims = cocoon_attestation::Claims::new(Role::Proxy, key, 0);
        PeerIdentity {
            role: Role::Proxy,
            public_key: key,
            image_hash: [7; 32],
            tee: cocoon_attestation::TeeKind::Simulated,
            insecure: true,
            claims,
            not_after: i64::MAX,
        }
    };
    let request = KeyRequest { binding };
    let keys = kms
        .service
        .release(&td(boot.verifying_key().to_bytes()), &request)
        .await
        .expect("the bound TD gets its keys");
    let p = ed25519_dalek::SigningKey::from_bytes(
        &hex::decode(keys.signing.unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    assert_eq!(
        hex::encode(p.verifying_key().to_bytes()),
        expected.public_key
    );
    let other = kms.service.release(&td([0x99; 32]), &request).await;
    assert!(other.is_err(), "another TD cannot use this binding");
}
