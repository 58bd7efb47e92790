//! The devnet survives its own restart: the docs/cli.md walk-through (deploy, register and stake a
//! proxy, open an escrow) on `cocoon devnet up`, then `cocoon devnet down` and `up` again. The chain
//! must come back whole (accounts, contract state, every transaction with the hash clients saw) and
//! take further transactions, and survive a second restart after those.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cocoon_ton::{HttpTonClient, TonAddress, TonClient, Transaction};
use serde_json::Value;

const PASS: &str = "test passphrase";

/// `cocoon` run as a user would, against the devnet kept in `<tmp>/devnet`.
struct User {
    tmp: tempfile::TempDir,
    root: Option<String>,
}

impl User {
    fn devnet_dir(&self) -> PathBuf {
        self.tmp.path().join("devnet")
    }

    fn command(&self, keystore: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocoon"));
        for (k, _) in std::env::vars() {
            if k.starts_with("COCOON_") && k != "COCOON_SANDBOX_DIR" {
                cmd.env_remove(k);
            }
        }
        cmd.env("COCOON_DEVNET_DIR", self.devnet_dir())
            .env("COCOON_PASSPHRASE", PASS)
            .env(
                "COCOON_KEYSTORE",
                self.tmp.path().join(format!("{keystore}.json")),
            )
            .env("HOME", self.tmp.path())
            .stdin(Stdio::null());
        if let Some(root) = &self.root {
            cmd.env("COCOON_ROOT", root);
        }
        cmd
    }

    fn output(&self, keystore: &str, args: &[&str]) -> Output {
        self.command(keystore)
            .args(args)
            .output()
            .expect("run cocoon")
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, keystore: &str, args: &[&str]) -> String {
        let o = self.output(keystore, args);
        assert!(
            o.status.success(),
            "cocoon {args:?} failed ({:?}):\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("utf-8 stdout")
    }

    /// Runs a command with `--json` that must succeed; returns its JSON.
    fn json(&self, keystore: &str, args: &[&str]) -> Value {
        let text = self.ok(keystore, &[args, &["--json"]].concat());
        serde_json::from_str(&text).expect("JSON on stdout")
    }

    fn devnet(&self, args: &[&str]) -> String {
        self.ok("nobody", &[&["devnet"][..], args].concat())
            .trim()
            .to_string()
    }

    /// A new funded wallet; returns its address.
    fn wallet(&self, name: &str, tons: &str) -> String {
        let v = self.json(name, &["wallet", "new"]);
        let address = v["address"].as_str().expect("address").to_string();
        self.devnet(&["fund", &address, tons]);
        address
    }
}

impl Drop for User {
    fn drop(&mut self) {
        // Never leave a devnet behind, whatever failed.
        let _ = self.output("nobody", &["devnet", "down"]);
    }
}

/// Every transaction of `accounts`, newest first, as toncenter's getTransactions shows them.
async fn history(url: &str, accounts: &[TonAddress]) -> Vec<Vec<Transaction>> {
    let client = HttpTonClient::new(cocoon_ton::TonClientConfig::new(url)).expect("client");
    let mut all = Vec::new();
    for a in accounts {
        all.push(
            client
                .get_transactions(a, 100, None)
                .await
                .expect("getTransactions"),
        );
    }
    all
}

fn addr(text: &str) -> TonAddress {
    cocoon_ton::parse_address(text).expect("address")
}

/// What must read the same before and after a restart.
struct Snapshot {
    network: Value,
    proxy: Value,
    escrow: Value,
    history: Vec<Vec<Transaction>>,
}

async fn snapshot(user: &User, url: &str, proxy: &str, accounts: &[TonAddress]) -> Snapshot {
    Snapshot {
        network: user.json("owner", &["audit", "network"]),
        proxy: user.json("proxy", &["proxy", "status"]),
        escrow: user.json("client", &["client", "--proxy", proxy, "status"]),
        history: history(url, accounts).await,
    }
}

fn assert_same(before: &Snapshot, after: &Snapshot) {
    assert_eq!(before.network, after.network, "audit network changed");
    assert_eq!(before.proxy, after.proxy, "proxy status changed");
    assert_eq!(before.escrow, after.escrow, "escrow status changed");
    for (b, a) in before.history.iter().zip(&after.history) {
        assert!(!b.is_empty(), "every account has transactions");
        assert_eq!(b, a, "transactions (hashes, messages) changed");
    }
}

fn deposit(v: &Value) -> u128 {
    v["deposit_balance_nano"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("deposit_balance_nano in {v}"))
}

fn restart(user: &User, url: &str) -> String {
    assert_eq!(user.devnet(&["down"]), "stopped");
    let again = user.output("nobody", &["devnet", "up"]);
    let log = std::fs::read_to_string(user.devnet_dir().join("devnet.log")).unwrap_or_default();
    assert!(
        again.status.success(),
        "devnet up after down failed:\n{}\nlog:\n{log}",
        String::from_utf8_lossy(&again.stderr)
    );
    let new_url = String::from_utf8_lossy(&again.stdout).trim().to_string();
    assert!(
        new_url.starts_with("http://127.0.0.1:"),
        "{new_url} (was {url})"
    );
    new_url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_restarts_after_the_walk_through_with_its_chain_intact() {
    let mut user = User {
        tmp: tempfile::tempdir().expect("tmp"),
        root: None,
    };
    let url = user.devnet(&["up"]);
    let owner = user.wallet("owner", "50");
    let proxy = user.wallet("proxy", "50");
    let client = user.wallet("client", "10");

    let params = user.tmp.path().join("params.toml");
    std::fs::write(&params, user.ok("owner", &["deploy", "--example-params"])).expect("params");
    let d = user.json("owner", &["deploy", "--params", path(&params)]);
    let root = d["root"].as_str().expect("root").to_string();
    // --root is global: before or after the command (docs/cli.md, "Global options")
    let before_cmd = user.json("owner", &["--root", &root, "audit", "network"]);
    let after_cmd = user.json("owner", &["audit", "network", "--root", &root]);
    assert_eq!(before_cmd, after_cmd);
    assert_eq!(before_cmd["params_version"], 1, "{before_cmd}");
    user.root = Some(root.clone());
    let key = "52".repeat(32);
    user.json(
        "owner",
        &["gov", "allow-image", "--role", "worker", &"11".repeat(32)],
    );
    user.json(
        "owner",
        &[
            "gov",
            "register-proxy",
            &proxy,
            "--key",
            &key,
            "--endpoint",
            "127.0.0.1:9000",
        ],
    );
    let p = user.json(
        "proxy",
        &["proxy", "stake", "--amount", "25", "--key", &key],
    );
    let vault = p["stake"].as_str().expect("vault").to_string();
    let e = user.json(
        "client",
        &[
            "client", "--proxy", &proxy, "open", "--amount", "3", "--stake", "1",
        ],
    );
    let escrow = e["escrow"].as_str().expect("escrow").to_string();

    let accounts: Vec<TonAddress> = [&owner, &proxy, &client, &root, &vault, &escrow]
        .iter()
        .map(|a| addr(a))
        .collect();
    let before = snapshot(&user, &url, &proxy, &accounts).await;
    let url = restart(&user, &url);
    let after = snapshot(&user, &url, &proxy, &accounts).await;
    assert_same(&before, &after);

    // Still usable: a further transaction through the restored contracts, then a second restart.
    let t = user.json(
        "client",
        &["client", "--proxy", &proxy, "top-up", "--amount", "1"],
    );
    assert!(deposit(&t) >= deposit(&after.escrow) + 900_000_000, "{t}");
    let before = snapshot(&user, &url, &proxy, &accounts).await;
    let url = restart(&user, &url);
    assert_same(&before, &snapshot(&user, &url, &proxy, &accounts).await);
    assert_eq!(user.devnet(&["down"]), "stopped");
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
