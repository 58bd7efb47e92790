//! The one accept loop every listener runs: connection limits, optional TLS through the
//! [`HopTls`] seam, HTTP/1 or HTTP/2, and a graceful drain when the daemon's [`Shutdown`] triggers.
//!
//! Connections live in one `JoinSet`: aborting the serving task (a kill) aborts them all, while a
//! graceful shutdown stops accepting, lets each connection finish what is in flight, and returns
//! once they have all ended. [`Limits::default`] is no limit at all (tests of the loop itself);
//! daemons take theirs from a [`LimitsSection`] (`[limits]` in each role's config), whose defaults
//! bound every listener: TLS handshake, connections in total and per peer IP, idle connections,
//! request bodies read too slowly ([`BodyDeadline`], [`read_request_body`]) and HTTP/2 streams per
//! connection.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;

use crate::http::BoxError;
use crate::shutdown::Shutdown;
use crate::tls::{HopTls, PeerIdentity};

/// Which HTTP a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1 with keep-alive.
    Http1,
    /// HTTP/2 only (the hops between daemons).
    Http2,
    /// Either, chosen by the client's preface.
    Auto,
}

/// Per-listener limits and timeouts; `None` is "no limit", today's behaviour everywhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Longest TLS handshake before the connection is dropped.
    pub tls_handshake_timeout: Option<Duration>,
    /// Longest wait for a request's headers (HTTP/1).
    pub header_read_timeout: Option<Duration>,
    /// Longest a connection may stay open with no request in flight.
    pub idle_timeout: Option<Duration>,
    /// Most connections open at once; further ones are closed on accept.
    pub max_connections: Option<usize>,
    /// Most connections open at once from one IP address.
    pub max_connections_per_peer: Option<usize>,
    /// Longest time from a request's arrival until its body has been read (see [`BodyDeadline`]).
    pub body_read_timeout: Option<Duration>,
    /// Most HTTP/2 streams a peer may have open at once on one connection.
    pub max_concurrent_streams: Option<u32>,
}

/// The `[limits]` section of every role's config: what [`Limits`] each of its listeners runs with.
/// Durations in milliseconds; `0` turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    /// Longest TLS handshake, ms.
    pub tls_handshake_timeout_ms: u64,
    /// Longest wait for an HTTP/1 request's headers, ms.
    pub header_read_timeout_ms: u64,
    /// Longest a connection may stay open with no request in flight, ms.
    pub idle_timeout_ms: u64,
    /// Longest time to receive a request's body, ms.
    pub body_read_timeout_ms: u64,
    /// Most connections open at once on one listener.
    pub max_connections: usize,
    /// Most connections open at once from one IP address on one listener.
    pub max_connections_per_peer: usize,
    /// Most HTTP/2 streams open at once per connection.
    pub max_concurrent_streams: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            tls_handshake_timeout_ms: 10_000,
            header_read_timeout_ms: 30_000,
            idle_timeout_ms: 300_000,
            body_read_timeout_ms: 30_000,
            max_connections: 4096,
            max_connections_per_peer: 256,
            max_concurrent_streams: 256,
        }
    }
}

impl LimitsSection {
    /// The limits a listener runs with.
    pub fn limits(&self) -> Limits {
        let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
        let n = |v: usize| (v > 0).then_some(v);
        Limits {
            tls_handshake_timeout: ms(self.tls_handshake_timeout_ms),
            header_read_timeout: ms(self.header_read_timeout_ms),
            idle_timeout: ms(self.idle_timeout_ms),
            max_connections: n(self.max_connections),
            max_connections_per_peer: n(self.max_connections_per_peer),
            body_read_timeout: ms(self.body_read_timeout_ms),
            max_concurrent_streams: (self.max_concurrent_streams > 0)
                .then_some(self.max_concurrent_streams),
        }
    }

    /// A per-peer cap above the total cap can never be reached: refused.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        if self.max_connections > 0 && self.max_connections_per_peer > self.max_connections {
            return Err(crate::config::invalid(
                "limits.max_connections_per_peer",
                "at most limits.max_connections",
            ));
        }
        Ok(())
    }
}

/// Put into every request's extensions by [`serve`] when the listener has a body-read timeout:
/// the body must have been read by then. Read bodies with [`read_request_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyDeadline(pub tokio::time::Instant);

impl Limits {
    /// Stamps `req` with its [`BodyDeadline`] when these limits have a body-read timeout (the serve
    /// loop does this for every request; a hop serving a connection it dialed calls it itself).
    pub fn stamp<B>(&self, req: &mut Request<B>) {
        if let Some(t) = self.body_read_timeout {
            req.extensions_mut()
                .insert(BodyDeadline(tokio::time::Instant::now() + t));
        }
    }

    /// An HTTP/2 server builder with these limits' stream cap (for a hop serving a connection it
    /// dialed; the serve loop applies the same to its own).
    pub fn http2_server(&self) -> hyper::server::conn::http2::Builder<TokioExecutor> {
        let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        if let Some(n) = self.max_concurrent_streams {
            b.max_concurrent_streams(n);
        }
        b
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    /// The body broke off.
    #[error("request body: {0}")]
    Body(#[source] BoxError),
    /// The body was not received before the listener's body-read timeout.
    #[error("request body not received in time")]
    Timeout,
}

/// Reads a request's body up to `limit` bytes (`Ok(None)`: larger, see
/// [`crate::http::read_limited`]) before the request's [`BodyDeadline`], if it has one.
pub async fn read_request_body<B>(
    req: hyper::Request<B>,
    limit: usize,
) -> Result<Option<bytes::Bytes>, BodyReadError>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let deadline = req.extensions().get::<BodyDeadline>().copied();
    let read = crate::http::read_limited(req.into_body(), limit);
    let read = match deadline {
        Some(BodyDeadline(at)) => tokio::time::timeout_at(at, read)
            .await
            .map_err(|_| BodyReadError::Timeout)?,
        None => read.await,
    };
    read.map_err(|e| BodyReadError::Body(e.into()))
}

/// One accepted connection, as the service factory sees it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The remote address.
    pub addr: SocketAddr,
    /// The TLS peer's identity (`None` on a plain listener).
    pub identity: Option<PeerIdentity>,
}

/// How one listener serves.
#[derive(Clone)]
pub struct ServeOptions {
    /// TLS for every connection (`None`: plain TCP).
    pub tls: Option<Arc<dyn HopTls>>,
    /// HTTP version.
    pub http: HttpVersion,
    /// Limits and timeouts.
    pub limits: Limits,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("tls", &self.tls.is_some())
            .field("http", &self.http)
            .field("limits", &self.limits)
            .finish()
    }
}

impl ServeOptions {
    /// Plain TCP with this HTTP version and today's limits.
    pub fn plain(http: HttpVersion) -> Self {
        ServeOptions {
            tls: None,
            http,
            limits: Limits::default(),
        }
    }

    /// Mutual TLS through `tls` with this HTTP version and today's limits.
    pub fn tls(tls: Arc<dyn HopTls>, http: HttpVersion) -> Self {
        ServeOptions {
            tls: Some(tls),
            http,
            limits: Limits::default(),
        }
    }
}

/// Counts open connections, in total and per IP, against [`Limits`].
#[derive(Debug, Default)]
struct ConnectionCount {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Held while one connection is open.
struct Slot {
    count: Arc<ConnectionCount>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.count.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

impl ConnectionCount {
    fn admit(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let from_peer = open.1.get(&ip).copied().unwrap_or(0);
        if limits.max_connections.is_some_and(|max| open.0 >= max)
            || limits
                .max_connections_per_peer
                .is_some_and(|max| from_peer >= max)
        {
            return None;
        }
        open.0 += 1;
        *open.1.entry(ip).or_insert(0) += 1;
        Some(Slot {
            count: self.clone(),
            ip,
        })
    }
}

/// Accepts on `listener` until `shutdown` triggers, running `handle` for each admitted
/// connection in the loop's `JoinSet`, then waits for every connection to end.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    limits: Limits,
    shutdown: Shutdown,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let count = Arc::new(ConnectionCount::default());
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            _ = shutdown.triggered() => {
                while conns.join_next().await.is_some() {}
                return;
            }
        };
        let Ok((tcp, peer_addr)) = accepted else {
            continue;
        };
        let Some(slot) = count.admit(peer_addr.ip(), &limits) else {
            tracing::debug!(%peer_addr, "connection limit reached: closing");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let conn = handle(tcp, peer_addr);
        conns.spawn(async move {
            conn.await;
            drop(slot);
        });
    }
}

/// Completes the TLS handshake of an accepted connection within the handshake timeout.
pub async fn accept_tls(
    tls: &dyn HopTls,
    tcp: TcpStream,
    limits: &Limits,
) -> std::io::Result<TlsStream<TcpStream>> {
    let handshake = tokio_rustls::TlsAcceptor::from(tls.server_config()).accept(tcp);
    match limits.tls_handshake_timeout {
        Some(t) => tokio::time::timeout(t, handshake)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake"))?,
        None => handshake.await,
    }
}

/// Serves HTTP on `listener` until `shutdown` triggers, then drains. `make_service` sees each
/// connection's peer and returns its service, or `None` to close the connection.
pub async fn serve<M, S, B>(
    listener: TcpListener,
    options: ServeOptions,
    shutdown: Shutdown,
    make_service: M,
) where
    M: Fn(Peer) -> Option<S> + Send + Sync + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let make_service = Arc::new(make_service);
    let limits = options.limits;
    let drain = shutdown.clone();
    accept_loop(listener, limits, shutdown, move |tcp, addr| {
        let (make_service, options, shutdown) =
            (make_service.clone(), options.clone(), drain.clone());
        async move {
            match &options.tls {
                Some(tls) => {
                    let stream = match accept_tls(tls.as_ref(), tcp, &options.limits).await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::debug!(peer_addr = %addr, error = %e, "TLS handshake failed");
                            return;
                        }
                    };
                    let Some(identity) = tls.peer_identity(stream.get_ref().1) else {
                        return;
                    };
                    let peer = Peer {
                        addr,
                        identity: Some(identity),
                    };
                    if let Some(svc) = make_service(peer) {
                        serve_connection(stream, svc, &options, &shutdown).await;
                    }
                }
                None => {
                    let peer = Peer {
                        addr,
                        identity: None,
                    };
                    if let Some(svc) = make_service(peer) {
                        serve_connection(tcp, svc, &options, &shutdown).await;
                    }
                }
            }
        }
    })
    .await;
}

/// Serves one connection until it ends, or gracefully once `shutdown` triggers or it has been
/// idle for `limits.idle_timeout`.
async fn serve_connection<I, S, B>(io: I, svc: S, options: &ServeOptions, shutdown: &Shutdown)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let activity = Shutdown::new();
    let svc = Arc::new(svc);
    let tracked = {
        let activity = activity.clone();
        let limits = options.limits;
        service_fn(move |mut req: Request<Incoming>| {
            let guard = activity.track();
            limits.stamp(&mut req);
            let fut = svc.call(req);
            async move {
                let resp = fut.await?;
                Ok::<_, Infallible>(resp.map(|body| crate::observe::Guarded::new(body, guard)))
            }
        })
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Some(t) = options.limits.header_read_timeout {
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(t);
    }
    if let Some(n) = options.limits.max_concurrent_streams {
        builder.http2().max_concurrent_streams(n);
    }
    let builder = match options.http {
        HttpVersion::Http1 => builder.http1_only(),
        HttpVersion::Http2 => builder.http2_only(),
        HttpVersion::Auto => builder,
    };
    let conn = builder.serve_connection(TokioIo::new(io), tracked);
    tokio::pin!(conn);
    let idle = idle_expired(&activity, options.limits.idle_timeout);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.triggered() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
        _ = idle => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once no request has been in flight for `timeout` (never when `None`).
async fn idle_expired(activity: &Shutdown, timeout: Option<Duration>) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    loop {
        // `drained` waits for in-flight work to end; then the connection must stay idle.
        activity.drained(Duration::MAX).await;
        let busy = async {
            while activity.in_flight() == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        if tokio::time::timeout(timeout, busy).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Body, full};
    use http_body_util::BodyExt;
    use hyper_util::client::legacy::Client;

    async fn hello(listener: TcpListener, limits: Limits, shutdown: Shutdown) {
        let options = ServeOptions {
            limits,
            ..ServeOptions::plain(HttpVersion::Auto)
        };
        serve(listener, options, shutdown, |_peer| {
            Some(service_fn(|_req| async {
                Ok::<_, Infallible>(Response::new(full("hello")))
            }))
        })
        .await;
    }

    #[tokio::test]
    async fn serves_then_drains_on_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let shutdown = Shutdown::new();
        let server = tokio::spawn(hello(listener, Limits::default(), shutdown.clone()));
        let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build_http();
        let resp = client.get(url.parse().unwrap()).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello");
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("drains")
            .unwrap();
    }

    #[tokio::test]
    async fn the_per_peer_cap_closes_extra_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let limits = Limits {
            max_connections_per_peer: Some(1),
            ..Limits::default()
        };
        let server = tokio::spawn(hello(listener, limits, shutdown.clone()));
        let first = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::io::AsyncReadExt::read(&mut second, &mut buf);
        let n = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("closed promptly")
            .unwrap_or(0);
        assert_eq!(n, 0, "the second connection is closed");
        drop(first);
        shutdown.trigger();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_body_not_received_in_time_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let options = ServeOptions {
            limits: Limits {
                body_read_timeout: Some(Duration::from_millis(200)),
                ..Limits::default()
            },
            ..ServeOptions::plain(HttpVersion::Http1)
        };
        let server = tokio::spawn(serve(listener, options, shutdown.clone(), |_peer| {
            Some(service_fn(|req: Request<Incoming>| async move {
                let answer = match read_request_body(req, 1 << 20).await {
                    Ok(Some(b)) => format!("read {}", b.len()),
                    Ok(None) => "too large".to_owned(),
                    Err(BodyReadError::Timeout) => "timeout".to_owned(),
                    Err(e) => format!("error {e}"),
                };
                Ok::<_, Infallible>(Response::new(full(answer)))
            }))
        }));
        // Headers announcing 100 bytes, then only 10 of them.
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(
            &mut tcp,
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789",
        )
        .await
        .unwrap();
        let started = std::time::Instant::now();
        let mut reply = Vec::new();
        let mut buf = [0u8; 512];
        while !String::from_utf8_lossy(&reply).contains("timeout") {
            let read = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf);
            let n = tokio::time::timeout(Duration::from_secs(5), read)
                .await
                .expect("answered before the client sends the rest")
                .unwrap();
            assert!(n > 0, "closed without an answer: {reply:?}");
            reply.extend_from_slice(&buf[..n]);
        }
        assert!(started.elapsed() >= Duration::from_millis(150));
        drop(tcp);
        shutdown.trigger();
        server.await.unwrap();
    }

    #[test]
    fn the_limits_section_turns_zero_into_no_limit_and_checks_the_caps() {
        let s = LimitsSection::default();
        let l = s.limits();
        assert_eq!(l.tls_handshake_timeout, Some(Duration::from_secs(10)));
        assert_eq!(l.max_connections_per_peer, Some(256));
        assert_eq!(l.max_concurrent_streams, Some(256));
        let off = LimitsSection {
            tls_handshake_timeout_ms: 0,
            max_connections: 0,
            max_concurrent_streams: 0,
            ..s
        };
        let l = off.limits();
        assert_eq!(
            (
                l.tls_handshake_timeout,
                l.max_connections,
                l.max_concurrent_streams
            ),
            (None, None, None)
        );
        assert!(s.validate().is_ok());
        let bad = LimitsSection {
            max_connections: 10,
            max_connections_per_peer: 11,
            ..s
        };
        assert!(bad.validate().is_err());
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let limits = Limits {
            idle_timeout: Some(Duration::from_millis(200)),
            ..Limits::default()
        };
        let server = tokio::spawn(hello(listener, limits, shutdown.clone()));
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::io::AsyncReadExt::read(&mut idle, &mut buf);
        let n = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("closed by the idle timeout")
            .unwrap_or(0);
        assert_eq!(n, 0);
        shutdown.trigger();
        server.await.unwrap();
    }
}
