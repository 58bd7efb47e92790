//! `cocoon devnet up|status|fund|down|reset` as a user runs them: a real background devnet.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};

fn cocoon(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cocoon"))
        .arg("devnet")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("COCOON_DEVNET_DIR")
        .output()
        .expect("run cocoon")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "cocoon failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// POSTs a toncenter JSON-RPC call with a plain socket and returns the response body.
fn json_rpc(url: &str, method: &str) -> String {
    let hostport = url.strip_prefix("http://").expect("http url");
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{}}}}"#);
    let mut s = TcpStream::connect(hostport).expect("connect");
    write!(
        s,
        "POST /jsonRPC HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn up_answers_toncenter_and_down_leaves_no_process() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("devnet");
    assert_eq!(stdout(&cocoon(&dir, &["status"])), "stopped");

    let url = stdout(&cocoon(&dir, &["up"]));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let info: serde_json::Value =
        serde_json::from_str(&json_rpc(&url, "getMasterchainInfo")).expect("json");
    assert_eq!(info["ok"], true, "{info}");
    assert!(info["result"]["last"]["seqno"].as_u64().is_some(), "{info}");

    let status = stdout(&cocoon(&dir, &["status"]));
    assert!(
        status.starts_with(&format!("running {url} pid ")),
        "{status}"
    );
    let pid = status.split_whitespace().nth(3).expect("pid").to_string();
    assert!(alive(&pid));

    let funded = stdout(&cocoon(
        &dir,
        &[
            "fund",
            "0:1111111111111111111111111111111111111111111111111111111111111111",
            "2.5",
        ],
    ));
    assert!(funded.ends_with("balance 2.5 TON"), "{funded}");
    let bad = cocoon(&dir, &["fund", "nowhere", "1"]);
    assert!(!bad.status.success());

    assert_eq!(stdout(&cocoon(&dir, &["down"])), "stopped");
    assert!(!alive(&pid), "devnet {pid} still running after down");
    assert_eq!(stdout(&cocoon(&dir, &["status"])), "stopped");
    assert_eq!(stdout(&cocoon(&dir, &["down"])), "not running");

    assert!(dir.join("state.json").exists());
    stdout(&cocoon(&dir, &["reset"]));
    assert!(!dir.join("state.json").exists());
}

#[test]
fn help_lists_the_devnet_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_cocoon"))
        .args(["devnet", "--help"])
        .env_remove("COCOON_DEVNET_DIR")
        .output()
        .expect("run cocoon");
    assert!(out.status.success());
    // Only the subcommands: the global options belong to the rest of the CLI.
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let commands: String = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .take_while(|l| !l.starts_with("Options:"))
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(commands);
}
