//! The async runtime for one command (commands are synchronous functions from `main`).

use std::future::Future;

use anyhow::{Context, Result};

/// Runs `fut` to completion on a fresh current-thread runtime.
pub(crate) fn block_on<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(fut)
}

/// Runs a long-lived daemon on a multi-threaded runtime (the one-shot commands use a single thread).
pub(crate) fn block_on_daemon<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(fut)
}
