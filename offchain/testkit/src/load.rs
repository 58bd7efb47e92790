//! [`ChatLoad`]: closed-loop chat clients against a gateway, counting what completed, for drills
//! that kill daemons under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;

use crate::http::{app_client, post_json};
use crate::wait::poll_until;

/// Requests the load completed (whole body read after a 200) and those that failed.
#[derive(Debug, Default)]
pub struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Tally {
    /// Completed so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Failed so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Waits until `target` requests completed; false when `limit` passed first.
    pub async fn reach(&self, target: u64, limit: Duration) -> bool {
        poll_until(limit, || self.ok() >= target).await
    }
}

/// `clients` tasks, each sending one chat request after the other to a gateway (odd clients
/// stream), pausing `pause` after a failure.
#[derive(Debug)]
pub struct ChatLoad {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ChatLoad {
    /// Starts the clients against `gateway` (`http://host:port`) asking `model` for up to 8 tokens.
    pub fn start(gateway: &str, model: &str, clients: usize, pause: Duration) -> ChatLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let url = format!("{gateway}/v1/chat/completions");
        let tasks = (0..clients)
            .map(|i| {
                let body = serde_json::json!({"model": model, "stream": i % 2 == 1,
                    "max_tokens": 8,
                    "messages": [{"role": "user", "content": "one two three four five six"}]})
                .to_string();
                tokio::spawn(client(
                    url.clone(),
                    body,
                    pause,
                    stop.clone(),
                    tally.clone(),
                ))
            })
            .collect();
        ChatLoad { stop, tally, tasks }
    }

    /// What completed and failed so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Stops every client after its request in flight, and returns the final tally.
    pub async fn stop(self) -> Arc<Tally> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        self.tally
    }
}

async fn client(
    url: String,
    body: String,
    pause: Duration,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let http = app_client();
    while !stop.load(Ordering::Relaxed) {
        let req = post_json(&url, body.clone(), &[]);
        let done = match http.request(req).await {
            Ok(resp) if resp.status() == 200 => resp.into_body().collect().await.is_ok(),
            Ok(resp) => {
                let _ = resp.into_body().collect().await;
                false
            }
            Err(_) => false,
        };
        let counter = if done { &tally.ok } else { &tally.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        if !done {
            tokio::time::sleep(pause).await;
        }
    }
}
