//! The `cocoon-proxy` binary as its own OS process, for the kill -9 drills.

#![allow(clippy::unwrap_used, clippy::expect_used)] // drill harness: a failed step should panic

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `COCOON_PROXY_BIN`, or `cocoon-proxy` next to this test's `deps/` directory.
fn proxy_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("COCOON_PROXY_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    dir.join("cocoon-proxy")
}

pub(crate) struct ProxyProcess {
    child: Child,
}

/// Starts the proxy binary on `config` with `args`; returns once it printed its bound addresses.
/// `quiet` drops its stderr (the development drill); otherwise errors show in the test output.
pub(crate) fn spawn_proxy(
    config: &Path,
    args: &[&str],
    quiet: bool,
) -> (ProxyProcess, serde_json::Value) {
    let bin = proxy_bin();
    assert!(
        bin.is_file(),
        "{} not found: build it first (cargo build -p cocoon-proxy --bin cocoon-proxy) or set COCOON_PROXY_BIN",
        bin.display()
    );
    let mut child = Command::new(&bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(if quiet {
            Stdio::null()
        } else {
            Stdio::inherit()
        })
        .spawn()
        .expect("spawn cocoon-proxy");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read proxy stdout");
    let addrs: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("proxy did not print its addresses ({e}): {line:?}"));
    (ProxyProcess { child }, addrs)
}

impl ProxyProcess {
    pub(crate) fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    pub(crate) fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(status.is_ok_and(|s| s.success()), "SIGTERM {pid}");
        let exit = self.child.wait().expect("reap");
        assert!(exit.success(), "proxy exited with {exit}");
    }
}
