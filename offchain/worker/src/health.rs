//! The engine health monitor: `GET {engine_url}{health_path}` every `health_interval_ms`; after
//! `health_failures` consecutive failures the worker leaves rotation, and the first success brings it
//! back.

use std::sync::Arc;
use std::time::Duration;

use cocoon_daemon::http::{Body, empty};
use cocoon_daemon::shutdown::Shutdown;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::WorkerState;

/// One health check: a 2xx answer within the timeout.
async fn probe(
    client: &Client<HttpConnector, Body>,
    url: &str,
    timeout: Duration,
) -> Result<(), String> {
    let req = hyper::Request::get(url)
        .body(empty())
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(resp)) if resp.status().is_success() => Ok(()),
        Ok(Ok(resp)) => Err(format!("status {}", resp.status())),
    }
}

/// Runs until shutdown.
pub(crate) async fn monitor(state: Arc<WorkerState>, shutdown: Shutdown) {
    let config = &state.config;
    let interval = Duration::from_millis(config.health_interval_ms);
    let timeout = Duration::from_millis(config.health_timeout_ms);
    let url = format!(
        "{}{}",
        config.engine_url.trim_end_matches('/'),
        config.health_path
    );
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new()).build(connector);
    let gauge = state.registry.gauge(
        "cocoon_worker_engine_healthy",
        "1 while the engine passes health checks.",
        &[],
    );
    gauge.set(1);
    let mut failures: u32 = 0;
    let mut first = true;
    loop {
        // The first check runs at once: a dead engine at start leaves rotation without waiting.
        if !std::mem::take(&mut first) {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.triggered() => return,
            }
        }
        match probe(&client, &url, timeout).await {
            Ok(()) => {
                if failures >= config.health_failures {
                    tracing::info!(%url, "engine healthy again: rejoining rotation");
                }
                failures = 0;
                gauge.set(1);
                state.set_engine(true, 0);
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                state
                    .registry
                    .counter(
                        "cocoon_worker_engine_health_failures_total",
                        "Failed engine health checks.",
                        &[],
                    )
                    .inc();
                let healthy = failures < config.health_failures;
                if failures == config.health_failures {
                    tracing::error!(%url, error = %e, failures, "engine unhealthy: leaving rotation (announcing zero capacity)");
                } else {
                    tracing::warn!(%url, error = %e, failures, "engine health check failed");
                }
                gauge.set(i64::from(healthy));
                state.set_engine(healthy, failures);
            }
        }
    }
}
