//! The devnet as a child process and as a detached process: start, routes, restart, stop.

use cocoon_devnet::{DetachedDevnet, DetachedStatus, Devnet, DevnetOptions};

const ADDR: &str = "EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG3";

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
}

async fn balance(url: &str, addr: &str) -> String {
    let v: serde_json::Value =
        reqwest::get(format!("{url}/api/v2/getAddressBalance?address={addr}"))
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
    v["result"].as_str().expect("balance").to_string()
}

#[tokio::test]
async fn funds_moves_time_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let devnet = Devnet::start(DevnetOptions::with_state_file(&state))
        .await
        .expect("start");
    assert!(devnet.url().starts_with("http://127.0.0.1:"));
    let receipt = devnet.fund(ADDR, 3_000_000_000).await.expect("fund");
    assert_eq!(receipt.balance, 3_000_000_000);
    assert!(receipt.lt.is_some());
    let again = devnet.fund(ADDR, 500_000_000).await.expect("fund again");
    // An uninitialised account pays a few nanotons of storage fee per second between transactions.
    assert!(
        again.balance <= 3_500_000_000 && again.balance > 3_499_990_000,
        "balance {}",
        again.balance
    );
    assert!(again.lt > receipt.lt);

    let before = devnet.status().await.expect("status");
    let now = devnet.advance_time(3600).await.expect("advance");
    assert!(now >= before.now + 3600);
    let err = devnet.set_time(now - 10).await.expect_err("backwards");
    assert!(err.to_string().contains("backwards"), "{err}");

    let pid = devnet.pid();
    devnet.stop().await.expect("stop");
    assert!(!pid_alive(pid), "devnet {pid} still running");

    let devnet = Devnet::start(DevnetOptions::with_state_file(&state))
        .await
        .expect("restart");
    assert_eq!(balance(devnet.url(), ADDR).await, again.balance.to_string());
    let after = devnet.status().await.expect("status");
    assert!(after.now >= now, "chain time went back after restart");
    assert_eq!(after.transactions, before.transactions);
    let pid = devnet.pid();
    drop(devnet);
    assert!(!pid_alive(pid), "devnet {pid} survived drop");
}

#[tokio::test]
async fn detached_up_status_down_reset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let detached = DetachedDevnet::new(dir.path().join("devnet"));
    assert_eq!(
        detached.status().await.expect("status"),
        DetachedStatus::Stopped
    );
    let state = detached.up(0).await.expect("up");
    assert!(state.url.starts_with("http://127.0.0.1:"));
    // up is idempotent while it runs
    assert_eq!(detached.up(0).await.expect("up again"), state);
    match detached.status().await.expect("status") {
        DetachedStatus::Running { state: s, seqno } => {
            assert_eq!(s, state);
            assert!(seqno >= 1);
        }
        DetachedStatus::Stopped => panic!("reported stopped while running"),
    }
    assert!(detached.down().await.expect("down"));
    assert!(!pid_alive(state.pid.unsigned_abs()));
    assert!(!detached.down().await.expect("down twice"));
    assert!(state.state_file.exists());
    detached.reset().await.expect("reset");
    assert!(!state.state_file.exists());
}

#[test]
fn server_exits_when_its_parent_goes_away() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    // What Devnet::start relies on: the server follows its stdin, which only the parent holds.
    let mut child = Command::new("node")
        .args([
            "--import",
            "tsx",
            "devnet/server.ts",
            "--port",
            "0",
            "--stdin-lifeline",
        ])
        .current_dir(cocoon_devnet::sandbox_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn node");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("ready line");
    assert!(line.starts_with("devnet listening on "), "{line}");
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "devnet outlived its stdin");
        std::thread::sleep(Duration::from_millis(20));
    }
}
