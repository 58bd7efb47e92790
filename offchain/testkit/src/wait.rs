//! Polling helpers: wait for something that must happen, bounded, asserting nothing about speed.

use std::future::Future;
use std::time::Duration;

/// Generous bound for waiting on an event that must happen (not a speed assertion).
pub const WAIT: Duration = Duration::from_secs(30);
/// How often [`until`] looks.
const POLL: Duration = Duration::from_millis(10);

/// Awaits `f`, or panics naming `what` after [`WAIT`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// Polls `cond` until it holds; false when `limit` passed first.
pub async fn poll_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `cond` until it holds, or panics naming `what` after [`WAIT`].
pub async fn until(what: &str, cond: impl FnMut() -> bool) {
    assert!(
        poll_until(WAIT, cond).await,
        "timed out after {WAIT:?} waiting for {what}"
    );
}
