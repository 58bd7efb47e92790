//! The gateway's one multiplexed HTTP/2 connection to its proxy, redialed when it drops, and
//! closed when the proxy no longer passes attestation: its certificate is re-verified every
//! `recheck` (the chain refresh interval) against the current image allowlist and registered
//! keys, and at its expiry.

use std::sync::Arc;

use cocoon_daemon::http::Body;
use cocoon_daemon::tls::{HopTls, next_recheck, peer_certificate};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Mutex;

type DialError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) struct ProxyConn {
    addr: String,
    tls: Arc<dyn HopTls>,
    pinned: Option<[u8; 32]>,
    recheck: std::time::Duration,
    current: Mutex<Option<SendRequest<Body>>>,
}

impl std::fmt::Debug for ProxyConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConn")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ProxyConn {
    pub(crate) fn new(
        addr: String,
        tls: Arc<dyn HopTls>,
        pinned: Option<[u8; 32]>,
        recheck: std::time::Duration,
    ) -> Self {
        ProxyConn {
            addr,
            tls,
            pinned,
            recheck: recheck.max(std::time::Duration::from_millis(1)),
            current: Mutex::new(None),
        }
    }

    /// A sender on a live connection (dialing if needed).
    pub(crate) async fn sender(&self) -> Result<SendRequest<Body>, DialError> {
        let mut cur = self.current.lock().await;
        if let Some(s) = cur.as_ref().filter(|s| !s.is_closed()) {
            return Ok(s.clone());
        }
        let s = self.dial().await?;
        *cur = Some(s.clone());
        Ok(s)
    }

    /// Whether a connection to the proxy is open now (none is dialed by asking).
    pub(crate) async fn connected(&self) -> bool {
        self.current
            .lock()
            .await
            .as_ref()
            .is_some_and(|s| !s.is_closed())
    }

    /// Forgets the current connection (after it failed).
    pub(crate) async fn reset(&self) {
        *self.current.lock().await = None;
    }

    async fn dial(&self) -> Result<SendRequest<Body>, DialError> {
        let tcp = tokio::net::TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        let connector = tokio_rustls::TlsConnector::from(self.tls.client_config());
        let name = rustls::pki_types::ServerName::try_from("proxy.cocoon.invalid")?;
        let stream = connector.connect(name, tcp).await?;
        let peer = self
            .tls
            .peer_identity(stream.get_ref().1)
            .ok_or("proxy presented no identity")?;
        if self.pinned.is_some_and(|p| p != peer.public_key) {
            let shown = hex::encode(peer.public_key);
            return Err(format!("proxy key {shown} is not the configured one").into());
        }
        if peer.insecure {
            tracing::warn!(proxy = %hex::encode(peer.public_key), "connected to an INSECURE (unattested) proxy");
        }
        let certificate =
            peer_certificate(stream.get_ref().1).ok_or("proxy presented no certificate")?;
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake::<_, Body>(TokioIo::new(stream))
            .await?;
        let tls = Arc::clone(&self.tls);
        let every = self.recheck;
        tokio::spawn(async move {
            tokio::pin!(conn);
            loop {
                tokio::select! {
                    r = &mut conn => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "proxy connection ended");
                        }
                        return;
                    }
                    _ = tokio::time::sleep(next_recheck(&peer, every)) => {
                        if let Err(reason) = tls.recheck_peer(&certificate) {
                            // Dropping the connection closes it; requests in flight fail, the
                            // next one redials (and a handshake judges the proxy afresh).
                            tracing::warn!(proxy = %hex::encode(peer.public_key), %reason, "proxy connection closed: the proxy no longer passes attestation");
                            return;
                        }
                    }
                }
            }
        });
        Ok(sender)
    }
}
