//! A devnet that outlives the process that started it (`cocoon devnet up|down|status|reset`).
//!
//! The folder (default `.cache/devnet/`) holds `devnet.json` (PID and URL), `state.json` (the chain)
//! and `devnet.log` (the server's output).

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::control::DevnetControl;
use crate::{
    DEFAULT_READY_TIMEOUT, DevnetError, STOP_GRACE, check_sandbox_dir, parse_ready_line, process,
    sandbox_dir, server_args,
};

const PID_FILE: &str = "devnet.json";
const STATE_FILE: &str = "state.json";
const LOG_FILE: &str = "devnet.log";

/// What `devnet.json` records about a running detached devnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachedState {
    /// the server's PID (it leads its own process group)
    pub pid: i32,
    /// its base URL
    pub url: String,
    /// its state file
    pub state_file: PathBuf,
}

/// Whether a detached devnet runs, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetachedStatus {
    /// running and answering
    Running {
        /// PID, URL and state file
        state: DetachedState,
        /// masterchain seqno from `getMasterchainInfo`
        seqno: u64,
    },
    /// not running (a stale PID file is ignored)
    Stopped,
}

/// A devnet managed through a state folder rather than as a child process.
#[derive(Debug, Clone)]
pub struct DetachedDevnet {
    dir: PathBuf,
    sandbox_dir: PathBuf,
    node: PathBuf,
}

impl DetachedDevnet {
    /// A manager for the devnet kept in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            sandbox_dir: sandbox_dir(),
            node: PathBuf::from("node"),
        }
    }

    /// Uses another `sandbox-tests` folder.
    pub fn with_sandbox_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.sandbox_dir = dir.into();
        self
    }

    /// The state folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The recorded devnet, if its process is still the devnet server.
    pub fn running(&self) -> Result<Option<DetachedState>, DevnetError> {
        let path = self.file(PID_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DevnetError::io(path, e)),
        };
        let Ok(state) = serde_json::from_str::<DetachedState>(&text) else {
            return Ok(None);
        };
        Ok(is_devnet_process(state.pid).then_some(state))
    }

    /// Starts the devnet on `port` (0: any free one) unless one already runs; returns its PID and URL.
    pub async fn up(&self, port: u16) -> Result<DetachedState, DevnetError> {
        if let Some(state) = self.running()? {
            return Ok(state);
        }
        let sandbox = check_sandbox_dir(&self.sandbox_dir)?;
        fs::create_dir_all(&self.dir).map_err(|e| DevnetError::io(&self.dir, e))?;
        let dir = std::path::absolute(&self.dir).map_err(|e| DevnetError::io(&self.dir, e))?;
        let state_file = dir.join(STATE_FILE);
        let log_path = dir.join(LOG_FILE);
        let log = File::create(&log_path).map_err(|e| DevnetError::io(&log_path, e))?;
        let log_err = log.try_clone().map_err(|e| DevnetError::io(&log_path, e))?;
        let mut child = Command::new(&self.node)
            .args(server_args(port, Some(&state_file)))
            .current_dir(&sandbox)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: it survives our exit and a Ctrl-C in our terminal.
            .process_group(0)
            .spawn()
            .map_err(|e| DevnetError::Spawn {
                node: self.node.clone(),
                source: e,
            })?;
        let pid = i32::try_from(child.id()).map_err(|_| DevnetError::NoPid)?;
        let deadline = Instant::now() + DEFAULT_READY_TIMEOUT;
        let url = loop {
            let text = fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(url) = text.lines().find_map(parse_ready_line) {
                break url;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(DevnetError::ExitedEarly {
                    status: status.to_string(),
                    stderr: text,
                });
            }
            if Instant::now() > deadline {
                let _ =
                    process::terminate(pid, STOP_GRACE, || matches!(child.try_wait(), Ok(Some(_))));
                return Err(DevnetError::ReadyTimeout {
                    waited: DEFAULT_READY_TIMEOUT,
                    stderr: text,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let state = DetachedState {
            pid,
            url,
            state_file,
        };
        let pid_path = self.file(PID_FILE);
        let json = serde_json::to_string_pretty(&state).unwrap_or_default();
        fs::write(&pid_path, json).map_err(|e| DevnetError::io(&pid_path, e))?;
        Ok(state)
    }

    /// Stops the devnet by PID and checks that it is gone. Returns false if none was running.
    pub async fn down(&self) -> Result<bool, DevnetError> {
        let Some(state) = self.running()? else {
            let _ = fs::remove_file(self.file(PID_FILE));
            return Ok(false);
        };
        let pid = state.pid;
        tokio::task::spawn_blocking(move || process::terminate(pid, STOP_GRACE, || false))
            .await
            .map_err(|_| DevnetError::StopFailed { pid })??;
        if process::is_alive(pid) {
            return Err(DevnetError::StopFailed { pid });
        }
        let _ = fs::remove_file(self.file(PID_FILE));
        Ok(true)
    }

    /// Running (with URL and masterchain seqno) or stopped.
    pub async fn status(&self) -> Result<DetachedStatus, DevnetError> {
        let Some(state) = self.running()? else {
            return Ok(DetachedStatus::Stopped);
        };
        let seqno = DevnetControl::new(state.url.clone())
            .masterchain_seqno()
            .await?;
        Ok(DetachedStatus::Running { state, seqno })
    }

    /// Stops the devnet if it runs and deletes its state, so the next `up` starts from genesis.
    pub async fn reset(&self) -> Result<(), DevnetError> {
        self.down().await?;
        for name in [STATE_FILE, LOG_FILE, PID_FILE] {
            let path = self.file(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(DevnetError::io(path, e)),
            }
        }
        Ok(())
    }
}

/// True if `pid` is alive and runs the devnet server (guards against a recycled PID).
fn is_devnet_process(pid: i32) -> bool {
    if !process::is_alive(pid) {
        return false;
    }
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("devnet/server.ts"))
        .unwrap_or(false)
}
