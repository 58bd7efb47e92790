//! Errors of the devnet launcher and its control routes.

use std::path::PathBuf;
use std::time::Duration;

/// What can go wrong starting, driving or stopping a devnet.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// The sandbox-tests folder (with `devnet/server.ts`) was not found.
    #[error(
        "devnet server not found at {0}/devnet/server.ts: set COCOON_SANDBOX_DIR to the sandbox-tests folder"
    )]
    SandboxDirMissing(PathBuf),
    /// npm dependencies are not installed.
    #[error("npm dependencies are missing in {0}/node_modules: run `make setup`")]
    NodeModulesMissing(PathBuf),
    /// node could not be started.
    #[error("cannot start {node:?} (is Node.js >= 20 installed?): {source}")]
    Spawn {
        /// the executable that failed
        node: PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// The child has no PID (it exited at once) or no stdout.
    #[error("devnet process has no PID or output pipe")]
    NoPid,
    /// The server exited before printing its ready line.
    #[error("devnet exited before it was ready ({status}); its stderr:\n{stderr}")]
    ExitedEarly {
        /// exit status
        status: String,
        /// last lines of stderr
        stderr: String,
    },
    /// The ready line did not come in time.
    #[error("devnet not ready after {waited:?}; its stderr:\n{stderr}")]
    ReadyTimeout {
        /// how long we waited
        waited: Duration,
        /// last lines of stderr
        stderr: String,
    },
    /// A control route could not be reached or answered garbage.
    #[error("devnet route {route}: {source}")]
    Http {
        /// route, e.g. `/devnet/fund`
        route: String,
        /// the transport or decode error
        source: reqwest::Error,
    },
    /// A control route answered `ok: false`.
    #[error("devnet route {route} refused ({code}): {error}")]
    Refused {
        /// route, e.g. `/devnet/time`
        route: String,
        /// HTTP-like code from the envelope
        code: i64,
        /// the server's message
        error: String,
    },
    /// A control route answered with an unexpected shape.
    #[error("devnet route {route}: unexpected answer: {detail}")]
    BadAnswer {
        /// route
        route: String,
        /// what was wrong
        detail: String,
    },
    /// The process did not go away.
    #[error("devnet process {pid} did not stop")]
    StopFailed {
        /// its PID
        pid: i32,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// the file
        path: PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// The detached devnet's folder holds no running devnet.
    #[error("no devnet is running in {0}")]
    NotRunning(PathBuf),
    /// A detached devnet is already running.
    #[error("a devnet is already running in {dir} at {url} (pid {pid})")]
    AlreadyRunning {
        /// folder
        dir: PathBuf,
        /// its URL
        url: String,
        /// its PID
        pid: i32,
    },
}

impl DevnetError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DevnetError::Io {
            path: path.into(),
            source,
        }
    }
}
