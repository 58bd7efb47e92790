//! The gateway's one multiplexed HTTP/2 connection to its proxy, redialed when it drops.

use std::sync::Arc;

use cocoon_daemon::http::Body;
use cocoon_daemon::tls::HopTls;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Mutex;

type DialError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) struct ProxyConn {
    addr: String,
    tls: Arc<dyn HopTls>,
    pinned: Option<[u8; 32]>,
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
    pub(crate) fn new(addr: String, tls: Arc<dyn HopTls>, pinned: Option<[u8; 32]>) -> Self {
        ProxyConn {
            addr,
            tls,
            pinned,
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
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake::<_, Body>(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "proxy connection ended");
            }
        });
        Ok(sender)
    }
}
