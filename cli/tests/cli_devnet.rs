//! `cocoon` against a devnet started per test: the walk-through of docs/cli.md end to end, then the
//! failure paths (wrong owner, not enough funds, unknown contracts, wrong passphrase).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use cocoon_contracts::CellCodec;
use cocoon_contracts::statements::{ChargeVoucher, PayoutVoucher, public_key};
use cocoon_devnet::{Devnet, DevnetOptions};
use ed25519_dalek::SigningKey;
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

    /// Runs `cocoon` as wallet `who` with the given passphrase.
    fn run_as(&self, who: &str, pass: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocoon"));
        for (k, _) in std::env::vars() {
            if k.starts_with("COCOON_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("COCOON_API_URL", &self.url)
            .env("COCOON_PASSPHRASE", pass)
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

    fn run(&self, who: &str, args: &[&str]) -> Output {
        self.run_as(who, PASS, args)
    }

    /// Runs a command that must succeed with `--json` and returns its JSON.
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

    /// Runs a command that must fail with `code`; returns its stderr.
    fn fails(&self, who: &str, args: &[&str], code: i32) -> String {
        let o = self.run(who, args);
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(code), "cocoon {args:?}: {stderr}");
        assert!(o.stdout.is_empty(), "nothing on stdout when failing");
        stderr
    }
}

async fn start() -> (Devnet, Env) {
    let devnet = Devnet::start(DevnetOptions::default())
        .await
        .expect("devnet (run `make setup` for sandbox-tests/node_modules)");
    let env = Env {
        dir: tempfile::tempdir().expect("tmp"),
        url: devnet.url().to_string(),
        root: None,
    };
    (devnet, env)
}

/// Creates wallet `name` and funds it with `tons` TON; returns its address.
async fn funded_wallet(devnet: &Devnet, env: &Env, name: &str, tons: u128) -> String {
    let v = env.json(name, &["wallet", "new"]);
    let address = v["address"].as_str().expect("address").to_string();
    if tons > 0 {
        devnet.fund(&address, tons * TON).await.expect("fund");
    }
    address
}

fn nano(v: &Value, key: &str) -> u128 {
    v[format!("{key}_nano")]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{key}_nano in {v}"))
}

const VARYING: &[&str] = &[
    "tx_hash",
    "lt",
    "fee",
    "fee_nano",
    "balance",
    "balance_nano",
    "staked",
    "staked_nano",
    "deposit_balance",
    "deposit_balance_nano",
    "code_hash",
    "expected_code_hash",
    "stake_code_hash",
    "escrow_code_hash",
    "key",
    "unbond_at",
    "closing_at",
    "kept",
    "kept_nano",
    "worker_account",
    "revoked_at",
    "payout_pool",
    "payout_pool_nano",
    "earnings_available",
    "earnings_available_nano",
];

/// Replaces what differs between runs (addresses, hashes, fees, times) by stable placeholders.
fn redact(v: &Value, names: &BTreeMap<String, String>) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, x)| {
                    let x = if VARYING.contains(&k.as_str()) || k.ends_with("_raw") {
                        Value::from("[varies]")
                    } else {
                        redact(x, names)
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|x| redact(x, names)).collect()),
        Value::String(s) => match names.get(s) {
            Some(n) => Value::from(format!("[{n}]")),
            None if s.len() == 48 && !s.contains(' ') => Value::from("[address]"),
            None => v.clone(),
        },
        other => other.clone(),
    }
}

/// The text form with the same redactions: `key  value` lines, nested objects indented.
fn redact_text(text: &str, names: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        let redacted = match body.split_once("  ") {
            Some((key, value)) => {
                let value = value.trim_start();
                let value = if VARYING.contains(&key) || key.ends_with("_raw") {
                    "[varies]".to_string()
                } else if let Some(n) = names.get(value) {
                    format!("[{n}]")
                } else if value.len() == 48 && !value.contains(' ') {
                    "[address]".to_string()
                } else {
                    value.to_string()
                };
                format!("{key}  {value}")
            }
            None => body.to_string(),
        };
        out.push_str(&" ".repeat(indent));
        out.push_str(&redacted);
        out.push('\n');
    }
    out
}

/// Both user-friendly forms of an address map to one name.
fn name_all(names: &mut BTreeMap<String, String>, address: &str, name: &str) {
    let raw = cocoon_ton::parse_address(address).expect("address");
    for bounce in [true, false] {
        let f = cocoon_ton::to_friendly(&raw, bounce, cocoon_ton::Network::Testnet);
        names.insert(f, name.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walkthrough_deploy_govern_stake_escrow_claim_audit() {
    let (devnet, mut env) = start().await;
    let owner = funded_wallet(&devnet, &env, "owner", 50).await;
    let proxy = funded_wallet(&devnet, &env, "proxy", 50).await;
    let worker = funded_wallet(&devnet, &env, "worker", 30).await;
    let client = funded_wallet(&devnet, &env, "client", 10).await;

    let params = env.dir.path().join("params.toml");
    let example = env.run("owner", &["deploy", "--example-params"]);
    std::fs::write(&params, &example.stdout).expect("params");
    let d = env.json(
        "owner",
        &["deploy", "--params", params.to_str().expect("p")],
    );
    let root = d["root"].as_str().expect("root").to_string();
    assert_eq!(d["owner"], owner.as_str());
    env.root = Some(root.clone());

    let image = "11".repeat(32);
    let model = "22".repeat(32);
    let proxy_key = SigningKey::from_bytes(&[0x52; 32]);
    let proxy_key_hex = hex::encode(public_key(&proxy_key));
    env.json("owner", &["gov", "allow-image", "--role", "worker", &image]);
    env.json("owner", &["gov", "allow-image", "--role", "proxy", &image]);
    env.json(
        "owner",
        &["gov", "allow-model", &model, "--name", "qwen3-0.6b"],
    );
    env.json("owner", &["gov", "revoke-image", "--role", "proxy", &image]);
    let reg = env.json(
        "owner",
        &[
            "gov",
            "register-proxy",
            &proxy,
            "--key",
            &proxy_key_hex,
            "--endpoint",
            "127.0.0.1:9000",
        ],
    );
    assert_eq!(reg["action"], "register-proxy");

    // proxy and worker stakes
    let p = env.json(
        "proxy",
        &["proxy", "stake", "--amount", "25", "--key", &proxy_key_hex],
    );
    assert_eq!(p["state"], "active");
    assert_eq!(p["can_serve"], true);
    assert_eq!(p["key"], proxy_key_hex.as_str());
    assert!(nano(&p, "staked") >= 25 * TON);
    let w = env.json("worker", &["worker", "stake", "--amount", "12"]);
    assert!(nano(&w, "staked") >= 12 * TON && nano(&w, "staked") < 13 * TON);
    let worker_stake = w["stake"].as_str().expect("stake").to_string();
    let vault = p["stake"].as_str().expect("vault").to_string();
    rekey_vault_through_the_registry(&env, &proxy, &proxy_key_hex);

    // client escrow: open, top up, withdraw above the credit line
    let e = env.json(
        "client",
        &[
            "client", "--proxy", &proxy, "open", "--amount", "3", "--stake", "1",
        ],
    );
    assert_eq!(e["state"], "open");
    assert_eq!(e["stake"], "1");
    assert_eq!(e["proxy_key"], proxy_key_hex.as_str());
    assert_eq!(e["client_key"], serde_json::Value::Null, "no key named yet");
    // the gateway's key: named from its key file, then rotated to another by hex
    let gateway_key = env.dir.path().join("gateway.key");
    cocoon_daemon::secret_file::write_private(&gateway_key, "44".repeat(32).as_bytes())
        .expect("key file");
    let gateway_pub = hex::encode(
        ed25519_dalek::SigningKey::from_bytes(&[0x44; 32])
            .verifying_key()
            .to_bytes(),
    );
    let k = env.json(
        "client",
        &[
            "client",
            "--proxy",
            &proxy,
            "set-key",
            "--client-key-file",
            gateway_key.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(k["client_key"], gateway_pub.as_str());
    let rotated = "ab".repeat(32);
    let k = env.json(
        "client",
        &[
            "client",
            "--proxy",
            &proxy,
            "set-key",
            "--client-key",
            &rotated,
        ],
    );
    assert_eq!(k["client_key"], rotated.as_str());
    env.fails(
        "client",
        &[
            "client",
            "--proxy",
            &proxy,
            "set-key",
            "--client-key",
            "xyz",
        ],
        2,
    );
    let escrow = e["escrow"].as_str().expect("escrow").to_string();
    let before = nano(&e, "deposit_balance");
    let t = env.json(
        "client",
        &["client", "--proxy", &proxy, "top-up", "--amount", "1"],
    );
    assert!(nano(&t, "deposit_balance") >= before + TON);
    let wd = env.json(
        "client",
        &["client", "--proxy", &proxy, "withdraw", "--amount", "0.5"],
    );
    assert_eq!(
        nano(&wd, "deposit_balance"),
        nano(&t, "deposit_balance") - TON / 2
    );

    // the proxy charges 1 TON with a final voucher: the escrow closes and pays the vault
    let escrow_addr = cocoon_ton::parse_address(&escrow).expect("escrow address");
    let charge = ChargeVoucher {
        escrow: escrow_addr,
        seqno: 1,
        charged: TON,
        is_final: true,
    }
    .sign(&proxy_key)
    .expect("sign charge");
    let charge_hex = hex::encode(charge.to_boc().expect("boc"));
    let closed = env.json(
        "client",
        &[
            "client",
            "--proxy",
            &proxy,
            "close",
            "--final-voucher",
            &charge_hex,
        ],
    );
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["charged"], "1");

    // the worker claims a proxy-signed payout from the vault
    let payout = PayoutVoucher {
        vault: cocoon_ton::parse_address(&vault).expect("vault"),
        worker: cocoon_ton::parse_address(&worker).expect("worker"),
        seqno: 1,
        paid: TON / 2,
    }
    .sign(&proxy_key)
    .expect("sign payout");
    let payout_hex = hex::encode(payout.to_boc().expect("boc"));
    let balance_before = nano(&env.json("worker", &["wallet", "balance"]), "balance");
    let c = env.json("worker", &["worker", "claim", "--voucher", &payout_hex]);
    assert_eq!(c["cumulative_paid"], "0.5");
    let balance_after = nano(&env.json("worker", &["wallet", "balance"]), "balance");
    assert!(
        balance_after > balance_before + TON / 2 - TON / 50,
        "payout arrived"
    );
    // the same voucher twice is refused by the vault (replay)
    env.fails("worker", &["worker", "claim", "--voucher", &payout_hex], 6);

    // the proxy takes its share (20 % of the 1 TON charged), not more
    let st = env.json("proxy", &["proxy", "status"]);
    let available = nano(&st, "earnings_available");
    assert!(
        available > TON / 10 && available < TON / 5 + TON / 50,
        "{available}"
    );
    let e = env.json("proxy", &["proxy", "withdraw-earnings", "--amount", "0.1"]);
    assert_eq!(e["owner_withdrawn"], "0.1");
    let msg = env.fails(
        "proxy",
        &["proxy", "withdraw-earnings", "--amount", "0.5"],
        6,
    );
    assert!(msg.contains("EARNINGS_ABOVE_SHARE"), "{msg}");

    // unbond, early withdraw refused, withdraw after the delay
    let u = env.json("worker", &["worker", "unbond", "--all"]);
    assert_eq!(u["staked"], "0");
    assert_eq!(nano(&u, "unbonding"), nano(&w, "staked"));
    env.fails("worker", &["worker", "withdraw"], 6);
    devnet.advance_time(86_400 + 1).await.expect("advance");
    let wd = env.json("worker", &["worker", "withdraw"]);
    assert_eq!(wd["unbonding"], "0");

    // ownership moves in two steps
    let new_owner = funded_wallet(&devnet, &env, "owner2", 5).await;
    env.json("owner", &["gov", "transfer-owner", &new_owner]);
    env.json("owner2", &["gov", "accept-owner"]);

    // wallet send waits for the transaction
    let s = env.json(
        "client",
        &["wallet", "send", &owner, "0.25", "--comment", "thanks"],
    );
    assert_eq!(s["amount_nano"], "250000000");
    assert_eq!(s["transaction"]["tx_hash"].as_str().map(str::len), Some(64));

    // audits, snapshotted with varying values redacted
    let mut names = BTreeMap::new();
    for (a, n) in [
        (&root, "root"),
        (&owner, "owner"),
        (&new_owner, "owner2"),
        (&proxy, "proxy"),
        (&worker, "worker"),
        (&client, "client"),
        (&vault, "vault"),
        (&worker_stake, "worker_stake"),
        (&escrow, "escrow"),
    ] {
        name_all(&mut names, a, n);
    }
    let net = env.json("owner", &["audit", "network"]);
    assert_eq!(net["owner"], names_key(&names, &new_owner, "owner2"));
    insta::assert_json_snapshot!("audit_network", redact(&net, &names));
    let audit = env.json(
        "owner",
        &[
            "audit",
            "contracts",
            "--stake",
            &worker_stake,
            "--escrow",
            &escrow,
        ],
    );
    assert_eq!(audit["all_code_matches"], true);
    insta::assert_json_snapshot!("audit_contracts", redact(&audit, &names));
    for (who, args, snap) in [
        ("worker", &["worker", "status"][..], "worker_status_text"),
        (
            "client",
            &["client", "--proxy", proxy.as_str(), "status"][..],
            "client_status_text",
        ),
    ] {
        let o = env.run(who, args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8(o.stdout).expect("utf-8");
        insta::assert_snapshot!(snap, redact_text(&text, &names));
    }
    let status = env.json("proxy", &["proxy", "status"]);
    insta::assert_json_snapshot!("proxy_status", redact(&status, &names));
    drop(env);
    devnet.stop().await.expect("stop devnet");
}

fn names_key(names: &BTreeMap<String, String>, address: &str, name: &str) -> Value {
    // audit prints owners in bounceable form; find that form of `address`
    let raw = cocoon_ton::parse_address(address).expect("address");
    let f = cocoon_ton::to_friendly(&raw, true, cocoon_ton::Network::Testnet);
    assert_eq!(names.get(&f).map(String::as_str), Some(name));
    Value::from(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_say_what_to_do_and_exit_with_their_codes() {
    let (devnet, mut env) = start().await;
    let owner = funded_wallet(&devnet, &env, "owner", 20).await;
    let _stranger = funded_wallet(&devnet, &env, "stranger", 5).await;
    let poor = funded_wallet(&devnet, &env, "poor", 0).await;
    let params = env.dir.path().join("params.toml");
    std::fs::write(
        &params,
        env.run("owner", &["deploy", "--example-params"]).stdout,
    )
    .expect("params");

    // unknown contract: nothing deployed at the root yet
    env.root = Some(poor.clone());
    let msg = env.fails("owner", &["audit", "network"], 3);
    assert!(msg.contains("no contract"), "{msg}");

    let d = env.json(
        "owner",
        &["deploy", "--params", params.to_str().expect("p")],
    );
    env.root = Some(d["root"].as_str().expect("root").to_string());

    // new parameters bump the version and show up in the audit
    let changed = env.dir.path().join("changed.toml");
    let text = String::from_utf8(env.run("owner", &["deploy", "--example-params"]).stdout)
        .expect("utf-8")
        .replace("price_per_token_nano = 100", "price_per_token_nano = 250");
    std::fs::write(&changed, text).expect("write");
    env.json(
        "owner",
        &[
            "gov",
            "set-params",
            "--params",
            changed.to_str().expect("p"),
        ],
    );
    let net = env.json("owner", &["audit", "network"]);
    assert_eq!(net["params_version"], 2);
    assert_eq!(net["params"]["price_per_token_nano"], "250");

    // deploying the same root twice is refused before sending anything
    env.fails(
        "owner",
        &["deploy", "--params", params.to_str().expect("p")],
        2,
    );

    // wrong owner: the root refuses, the error names the contract error
    let msg = env.fails(
        "stranger",
        &["gov", "allow-model", &"ab".repeat(32), "--name", "x"],
        6,
    );
    assert!(msg.contains("NOT_OWNER"), "{msg}");

    // not enough funds: says how much is missing and which address to fund
    let msg = env.fails("poor", &["worker", "stake", "--amount", "10"], 4);
    assert!(msg.contains(&poor), "{msg}");
    assert!(msg.contains("cocoon devnet fund"), "{msg}");
    assert!(msg.contains("10.075"), "missing amount = 10 + fees: {msg}");
    let msg = env.fails("poor", &["wallet", "send", &owner, "1"], 4);
    assert!(msg.contains("1.02"), "{msg}");

    // no stake, no escrow yet
    let msg = env.fails("stranger", &["worker", "status"], 3);
    assert!(msg.contains("worker stake --amount"), "{msg}");
    env.fails("stranger", &["client", "--proxy", &owner, "status"], 3);

    // unilateral close: request, too early to finish, finish after the close delay
    let key = "44".repeat(32);
    env.json(
        "owner",
        &[
            "gov",
            "register-proxy",
            &owner,
            "--key",
            &key,
            "--endpoint",
            "p:1",
        ],
    );
    let px = ["client", "--proxy", owner.as_str()];
    let o = env.json("stranger", &[&px[..], &["open", "--amount", "1"]].concat());
    assert_eq!(o["state"], "open");
    let c = env.json("stranger", &[&px[..], &["close"]].concat());
    assert_eq!(c["state"], "closing");
    env.fails("stranger", &[&px[..], &["close", "--finish"]].concat(), 6);
    devnet.advance_time(3_600 + 1).await.expect("advance");
    let f = env.json("stranger", &[&px[..], &["close", "--finish"]].concat());
    assert_eq!(f["state"], "closed");

    // wrong passphrase
    let o = env.run_as("owner", "not the passphrase", &["gov", "accept-owner"]);
    assert_eq!(o.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&o.stderr).contains("wrong passphrase"));

    // bad input
    env.fails(
        "owner",
        &["gov", "allow-image", "--role", "worker", "xyz"],
        2,
    );
    env.fails("owner", &["wallet", "send", &owner, "1.0000000001"], 2);
    devnet.stop().await.expect("stop devnet");
}

/// A vault's payout key follows the registry, never its owner: registering another key and syncing
/// moves it there; registering the original key back and syncing restores it.
fn rekey_vault_through_the_registry(env: &Env, proxy: &str, key_hex: &str) {
    let other = "ab".repeat(32);
    for key in [other.as_str(), key_hex] {
        let register = [
            "gov",
            "register-proxy",
            proxy,
            "--key",
            key,
            "--endpoint",
            "127.0.0.1:9000",
        ];
        env.json("owner", &register);
        let sync = env.json("client", &["gov", "sync-vault-key", proxy]);
        assert_eq!(sync["action"], "sync-vault-key");
        let status = env.json("proxy", &["proxy", "status"]);
        assert_eq!(status["key"], key, "{status}");
    }
}
