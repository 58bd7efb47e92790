//! Start, stop and inspect the local devnet (a toncenter-compatible server over @ton/sandbox).
//!
//! [`Devnet::start`] runs `node --import tsx devnet/server.ts` from the `sandbox-tests` folder as a
//! child process on a free 127.0.0.1 port, waits for its ready line and stops it (the whole process
//! group, by PID) when dropped. [`DetachedDevnet`] does the same for a devnet that outlives the
//! calling process (`cocoon devnet up|down|status|reset`), keeping its PID and URL in a folder.

mod control;
mod detached;
mod error;
mod process;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

pub use control::{DevnetControl, DevnetInfo, FundReceipt};
pub use detached::{DetachedDevnet, DetachedState, DetachedStatus};
pub use error::DevnetError;

/// The line prefix the server prints on stdout once it accepts requests.
pub const READY_PREFIX: &str = "devnet listening on ";

/// The global id (config param 19) of the devnet's chain: @ton/sandbox runs mainnet's configuration.
/// A root deployed on the devnet must carry it as its network id, or the root refuses to open stakes
/// and escrows (`WRONG_NETWORK`).
pub const GLOBAL_ID: i32 = -239;

/// How long to wait for the ready line by default (node + tsx + the TVM's WASM take a few seconds).
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a devnet gets to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Options for [`Devnet::start`].
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// State file to load on start and write after every change; `None` keeps the chain in memory only.
    pub state_file: Option<PathBuf>,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The `sandbox-tests` folder; `None` uses [`sandbox_dir`].
    pub sandbox_dir: Option<PathBuf>,
    /// The node executable.
    pub node: PathBuf,
    /// How long to wait for the ready line.
    pub ready_timeout: Duration,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        Self {
            state_file: None,
            port: 0,
            sandbox_dir: None,
            node: PathBuf::from("node"),
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }
}

impl DevnetOptions {
    /// Options that persist the chain to `path` (and reload it from there on start).
    pub fn with_state_file(path: impl Into<PathBuf>) -> Self {
        Self {
            state_file: Some(path.into()),
            ..Self::default()
        }
    }
}

/// The `sandbox-tests` folder: `$COCOON_SANDBOX_DIR`, else the one next to this crate in the repository.
pub fn sandbox_dir() -> PathBuf {
    match std::env::var_os("COCOON_SANDBOX_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sandbox-tests"),
    }
}

/// Checks that `dir` holds the devnet server and its installed npm dependencies.
pub fn check_sandbox_dir(dir: &Path) -> Result<PathBuf, DevnetError> {
    let server = dir.join("devnet/server.ts");
    if !server.is_file() {
        return Err(DevnetError::SandboxDirMissing(dir.to_path_buf()));
    }
    if !dir.join("node_modules/@ton/sandbox").is_dir() || !dir.join("node_modules/tsx").is_dir() {
        return Err(DevnetError::NodeModulesMissing(dir.to_path_buf()));
    }
    Ok(dir.to_path_buf())
}

/// The command line that runs the server; shared by [`Devnet`] and [`DetachedDevnet`].
pub(crate) fn server_args(port: u16, state_file: Option<&Path>) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "--import".into(),
        "tsx".into(),
        "devnet/server.ts".into(),
        "--port".into(),
        port.to_string().into(),
    ];
    if let Some(state) = state_file {
        args.push("--state".into());
        args.push(state.as_os_str().to_owned());
    }
    args
}

/// Parses the server's ready line into its URL.
pub(crate) fn parse_ready_line(line: &str) -> Option<String> {
    let url = line.trim().strip_prefix(READY_PREFIX)?;
    url.starts_with("http://127.0.0.1:")
        .then(|| url.to_string())
}

const STDERR_TAIL: usize = 8 * 1024;

/// A running devnet child process; stopped (with its process group) when dropped.
#[derive(Debug)]
pub struct Devnet {
    child: Option<Child>,
    pid: i32,
    control: DevnetControl,
    stderr_tail: Arc<Mutex<String>>,
}

impl Devnet {
    /// Starts the devnet and waits until it accepts requests.
    pub async fn start(opts: DevnetOptions) -> Result<Self, DevnetError> {
        let dir = check_sandbox_dir(&opts.sandbox_dir.clone().unwrap_or_else(sandbox_dir))?;
        let state_file = match &opts.state_file {
            Some(p) => Some(std::path::absolute(p).map_err(|e| DevnetError::io(p, e))?),
            None => None,
        };
        let mut cmd = Command::new(&opts.node);
        cmd.args(server_args(opts.port, state_file.as_deref()))
            // We hold its stdin: if this process dies without dropping the Devnet, it exits too.
            .arg("--stdin-lifeline")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that stopping it stops anything it started.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| DevnetError::Spawn {
            node: opts.node.clone(),
            source: e,
        })?;
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or(DevnetError::NoPid)?;

        let stderr_tail = Arc::new(Mutex::new(String::new()));
        let stderr_task = child.stderr.take().map(|stderr| {
            let tail = Arc::clone(&stderr_tail);
            tokio::spawn(collect_stderr(stderr, tail))
        });
        let Some(stdout) = child.stdout.take() else {
            return Err(DevnetError::NoPid);
        };
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(opts.ready_timeout, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = parse_ready_line(&line) {
                    return Some(url);
                }
            }
            None
        })
        .await;
        let mut devnet = Devnet {
            child: Some(child),
            pid,
            control: DevnetControl::new(String::new()),
            stderr_tail,
        };
        match ready {
            Ok(Some(url)) => {
                // Keep draining stdout so the server never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                devnet.control = DevnetControl::new(url);
                Ok(devnet)
            }
            Ok(None) => {
                let status = match devnet.child.as_mut() {
                    Some(c) => c.wait().await.map(|s| s.to_string()).unwrap_or_default(),
                    None => String::new(),
                };
                if let Some(task) = stderr_task {
                    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
                }
                Err(DevnetError::ExitedEarly {
                    status,
                    stderr: devnet.stderr(),
                })
            }
            Err(_) => Err(DevnetError::ReadyTimeout {
                waited: opts.ready_timeout,
                stderr: devnet.stderr(),
            }),
        }
    }

    /// The toncenter v2 base URL, e.g. `http://127.0.0.1:41305` (`/jsonRPC` and `/api/v2/<method>` under it).
    pub fn url(&self) -> &str {
        self.control.url()
    }

    /// The server's process ID.
    pub fn pid(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// The test-only routes.
    pub fn control(&self) -> &DevnetControl {
        &self.control
    }

    /// Sends `nanotons` from the devnet treasury to `address` (deployed or not), non-bounceable.
    pub async fn fund(
        &self,
        address: impl std::fmt::Display,
        nanotons: u128,
    ) -> Result<FundReceipt, DevnetError> {
        self.control.fund(address, nanotons).await
    }

    /// Sets chain time (unix seconds); it cannot move backwards. Returns the new chain time.
    pub async fn set_time(&self, unix: u64) -> Result<u64, DevnetError> {
        self.control.set_time(unix).await
    }

    /// Moves chain time forward by `secs`. Returns the new chain time.
    pub async fn advance_time(&self, secs: u64) -> Result<u64, DevnetError> {
        self.control.advance_time(secs).await
    }

    /// Chain time, block counter and transaction count.
    pub async fn status(&self) -> Result<DevnetInfo, DevnetError> {
        self.control.status().await
    }

    /// The last lines the server wrote on stderr (diagnostics).
    pub fn stderr(&self) -> String {
        self.stderr_tail
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Stops the server (SIGTERM, then SIGKILL after [`STOP_GRACE`]) and waits until it is gone.
    pub async fn stop(mut self) -> Result<(), DevnetError> {
        let child = self.child.take();
        let pid = self.pid;
        tokio::task::spawn_blocking(move || shutdown(child, pid))
            .await
            .map_err(|_| DevnetError::StopFailed { pid })?
    }
}

fn shutdown(child: Option<Child>, pid: i32) -> Result<(), DevnetError> {
    let mut child = child;
    process::terminate(pid, STOP_GRACE, || match child.as_mut() {
        // Reaping our own child is what makes it disappear from the process table.
        Some(c) => matches!(c.try_wait(), Ok(Some(_))),
        None => false,
    })
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if let Some(child) = self.child.take()
            && let Err(e) = shutdown(Some(child), self.pid)
        {
            tracing::warn!("devnet: {e}");
        }
    }
}

async fn collect_stderr(stderr: tokio::process::ChildStderr, tail: Arc<Mutex<String>>) {
    let mut reader = BufReader::new(stderr);
    let mut buf = vec![0u8; 4096];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                tracing::debug!(target: "cocoon_devnet::server", "{}", text.trim_end());
                if let Ok(mut t) = tail.lock() {
                    t.push_str(&text);
                    if t.len() > STDERR_TAIL {
                        let mut cut = t.len() - STDERR_TAIL;
                        while !t.is_char_boundary(cut) {
                            cut += 1;
                        }
                        t.drain(..cut);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_parses_only_loopback_urls() {
        assert_eq!(
            parse_ready_line("devnet listening on http://127.0.0.1:4242\n").as_deref(),
            Some("http://127.0.0.1:4242")
        );
        assert_eq!(
            parse_ready_line("devnet listening on http://0.0.0.0:1"),
            None
        );
        assert_eq!(parse_ready_line("something else"), None);
    }

    #[test]
    fn missing_node_modules_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("devnet")).expect("mkdir");
        std::fs::write(dir.path().join("devnet/server.ts"), "").expect("write");
        let err = check_sandbox_dir(dir.path()).expect_err("no node_modules");
        assert!(err.to_string().contains("make setup"), "{err}");
        let err = check_sandbox_dir(&dir.path().join("nope")).expect_err("no server");
        assert!(err.to_string().contains("COCOON_SANDBOX_DIR"), "{err}");
    }
}
