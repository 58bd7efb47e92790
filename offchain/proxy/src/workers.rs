//! Accepting workers: TLS, attestation check, HTTP/2 client handshake, announcement polling.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use cocoon_daemon::http::{Body, empty, read_limited};
use cocoon_daemon::serve::{accept_loop, accept_tls};
use cocoon_daemon::tls::{Role, next_recheck};
use cocoon_protocol::wire::{ANNOUNCE_PATH, Announcement, WORKER_AUTHORITY};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::Proxy;
use crate::registry::WorkerEntry;

/// Accepts workers on the worker port until the proxy shuts down, then waits for their connections.
pub(crate) async fn accept_workers(proxy: Arc<Proxy>, listener: TcpListener) {
    let shutdown = proxy.shutdown.clone();
    accept_loop(
        listener,
        proxy.config.limits.limits(),
        shutdown,
        move |tcp, peer_addr| {
            let proxy = proxy.clone();
            async move {
                if let Err(e) = serve_worker(proxy, tcp, peer_addr).await {
                    tracing::warn!(%peer_addr, error = %e, "worker connection ended");
                }
            }
        },
    )
    .await;
}

/// The worker's announcement, or an error when it does not come within `timeout`.
async fn announcement(
    sender: &mut SendRequest<Body>,
    timeout: Duration,
) -> Result<Announcement, Box<dyn std::error::Error + Send + Sync>> {
    tokio::time::timeout(timeout, announcement_now(sender))
        .await
        .map_err(|_| format!("no announcement within {timeout:?}"))?
}

async fn announcement_now(
    sender: &mut SendRequest<Body>,
) -> Result<Announcement, Box<dyn std::error::Error + Send + Sync>> {
    sender.ready().await?;
    let req =
        hyper::Request::get(format!("http://{WORKER_AUTHORITY}{ANNOUNCE_PATH}")).body(empty())?;
    let resp = sender.send_request(req).await?;
    if !resp.status().is_success() {
        return Err(format!("announcement status {}", resp.status()).into());
    }
    let body = read_limited(resp.into_body(), 64 * 1024)
        .await?
        .ok_or("announcement too large")?;
    Ok(serde_json::from_slice(&body)?)
}

async fn serve_worker(
    proxy: Arc<Proxy>,
    tcp: tokio::net::TcpStream,
    peer_addr: std::net::SocketAddr,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let stream = accept_tls(proxy.tls.as_ref(), tcp, &proxy.config.limits.limits()).await?;
    let identity = proxy
        .tls
        .peer_identity(stream.get_ref().1)
        .ok_or("worker presented no identity")?;
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    if identity.role != Role::Worker {
        return Err(format!("peer on the worker port has role {:?}", identity.role).into());
    }
    if identity.insecure {
        tracing::warn!(worker = %hex::encode(identity.public_key), "accepting an INSECURE (unattested) worker");
    }
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Body>(TokioIo::new(stream))
        .await?;
    let closed = Arc::new(tokio::sync::Notify::new());
    let conn_closed = closed.clone();
    let driver = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "worker h2 connection error");
        }
        conn_closed.notify_one();
    }));
    let announce_timeout = Duration::from_millis(proxy.config.announce_timeout_ms);
    let a = announcement(&mut sender, announce_timeout).await?;
    // The worker names the wallet that owns its stake; the chain must bind that stake to this key.
    let bound = proxy
        .chain
        .bind_worker(identity.public_key, &a.owner, peer_addr.ip())
        .await;
    if let Err(e) = &bound {
        tracing::warn!(worker = %hex::encode(identity.public_key), owner = %a.owner, error = %e, "worker refused: its announced owner does not stake for this key");
    }
    if bound.is_err() || !proxy.chain.worker_allowed(&identity) {
        proxy
            .metrics
            .counter(
                "cocoon_proxy_workers_refused_total",
                "Workers refused at connect.",
                &[],
            )
            .inc();
        return Err(format!(
            "worker {} is not allowed to serve",
            hex::encode(identity.public_key)
        )
        .into());
    }
    let id = proxy.next_id.fetch_add(1, Ordering::Relaxed);
    let entry = Arc::new(WorkerEntry {
        id,
        identity,
        certificate,
        model: a.model.clone(),
        coefficient: AtomicU32::new(a.coefficient),
        capacity: AtomicU32::new(a.capacity),
        in_flight: AtomicU32::new(0),
        latency_us: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        closed: AtomicBool::new(false),
        health: Default::default(),
        sender: sender.clone(),
    });
    proxy.workers.add(entry.clone());
    proxy
        .metrics
        .gauge("cocoon_proxy_workers", "Connected workers.", &[])
        .add(1);
    tracing::info!(worker = %hex::encode(entry.identity.public_key), model = %a.model, coefficient = a.coefficient, "worker connected");
    let poll = Duration::from_millis(proxy.config.announce_poll_ms);
    loop {
        let wait = next_recheck(&entry.identity, poll);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = closed.notified() => break,
            _ = proxy.shutdown.triggered() => {
                // Draining: no new requests go to this worker, but the connection stays until every
                // response in flight has been received.
                entry.closed.store(true, Ordering::Release);
                let grace = Duration::from_millis(proxy.config.request_timeout_ms);
                tokio::select! {
                    _ = proxy.shutdown.drained(grace) => {}
                    _ = closed.notified() => {}
                }
                break;
            }
        }
        if let Err((kind, reason)) = reverify(&proxy, &entry) {
            tracing::warn!(worker = %hex::encode(entry.identity.public_key), %reason, "worker dropped: it no longer passes the checks it was admitted on");
            proxy
                .metrics
                .counter(
                    "cocoon_proxy_workers_dropped_total",
                    "Connected workers dropped at a refresh: attestation (expired, stale, image revoked) or chain (stake, image).",
                    &[("reason", kind)],
                )
                .inc();
            break;
        }
        match announcement(&mut sender, announce_timeout).await {
            Ok(a) => {
                entry.coefficient.store(a.coefficient, Ordering::Relaxed);
                entry.capacity.store(a.capacity, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(worker = %hex::encode(entry.identity.public_key), error = %e, "announcement poll failed; disconnecting the worker");
                break;
            }
        }
    }
    entry.closed.store(true, Ordering::Release);
    proxy.workers.remove(id);
    proxy
        .metrics
        .gauge("cocoon_proxy_workers", "Connected workers.", &[])
        .add(-1);
    drop(driver);
    Ok(())
}

/// Re-verifies a connected worker as at admission, against the current view: its certificate
/// (lifetime, age, image allowlist) and the chain (image allowed, stake at least the minimum).
fn reverify(proxy: &Proxy, entry: &WorkerEntry) -> Result<(), (&'static str, String)> {
    let identity = proxy
        .tls
        .recheck_peer(&entry.certificate)
        .map_err(|e| ("attestation", e.to_string()))?;
    if !proxy.chain.worker_allowed(&identity) {
        return Err((
            "chain",
            "the chain no longer allows it to serve (image not allowed, or stake below the minimum)"
                .into(),
        ));
    }
    Ok(())
}

/// Aborts the connection driver when the serving task ends or is aborted (a killed proxy must not
/// leave worker connections half-alive).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
