//! Graceful shutdown: a broadcast signal plus a count of in-flight work to wait for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// Shared shutdown state of one daemon.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    in_flight: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

/// Held while one unit of work (a request, a stream) is in flight.
#[derive(Debug)]
pub struct InFlight {
    in_flight: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }
}

impl Shutdown {
    /// Not yet triggered.
    pub fn new() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
            in_flight: Arc::new(AtomicUsize::new(0)),
            idle: Arc::new(Notify::new()),
        }
    }

    /// Starts the shutdown: listeners stop accepting, new requests are refused.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether shutdown has started.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once shutdown has started.
    pub async fn triggered(&self) {
        let mut rx = self.tx.subscribe();
        // An error means the sender is gone, which only happens when the daemon is dropped.
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Marks one unit of in-flight work until the guard drops.
    pub fn track(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight {
            in_flight: self.in_flight.clone(),
            idle: self.idle.clone(),
        }
    }

    /// Work in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Waits until nothing is in flight or `grace` passes; returns whether it drained.
    pub async fn drained(&self, grace: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(grace, wait).await.is_ok()
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn os_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drains_when_the_last_guard_drops() {
        let s = Shutdown::new();
        let guard = s.track();
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.drained(Duration::from_secs(30)).await });
        s.trigger();
        assert!(s.is_triggered());
        drop(guard);
        assert!(waiter.await.unwrap());
        assert_eq!(s.in_flight(), 0);
    }
}
