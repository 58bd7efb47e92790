//! A client that speaks HTTP/2 over mutual TLS to a proxy's client port directly, as an untrusted
//! client may (it runs the gateway on its own machine, with its own key): [`RogueConn`] controls the
//! flow-control window, resets streams and cuts connections; [`RogueLoad`] keeps doing that under
//! load (drills).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cocoon_daemon::tls::HopTls;
use cocoon_protocol::headers;
use tokio::net::TcpStream;

/// The name a client dials the proxy by (its certificate is checked by key, not by name).
const PROXY_NAME: &str = "proxy.cocoon.invalid";

/// A rogue client's step failed (the proxy is down, refused, reset the connection).
#[derive(Debug, thiserror::Error)]
#[error("rogue client: {0}")]
pub struct RogueError(String);

fn err(e: impl std::fmt::Display) -> RogueError {
    RogueError(e.to_string())
}

/// An HTTP/2 connection to a proxy's client port, its driver running in a task.
#[derive(Debug)]
pub struct RogueConn {
    send: h2::client::SendRequest<Bytes>,
    driver: tokio::task::JoinHandle<()>,
}

/// One request in flight: the client's half (to reset it) and the response.
#[derive(Debug)]
pub struct RogueExchange {
    client_half: h2::SendStream<Bytes>,
    /// The response status.
    pub status: u16,
    body: h2::RecvStream,
}

impl RogueConn {
    /// Dials `addr` with `tls` (the client key); `window`: the initial stream window the client
    /// grants (HTTP/2's 65,535 when `None`).
    pub async fn connect(
        addr: &str,
        tls: &Arc<dyn HopTls>,
        window: Option<u32>,
    ) -> Result<RogueConn, RogueError> {
        let tcp = TcpStream::connect(addr).await.map_err(err)?;
        let name = rustls::pki_types::ServerName::try_from(PROXY_NAME).map_err(err)?;
        let stream = tokio_rustls::TlsConnector::from(tls.client_config())
            .connect(name, tcp)
            .await
            .map_err(err)?;
        let mut builder = h2::client::Builder::new();
        if let Some(w) = window {
            builder.initial_window_size(w);
        }
        let (send, conn) = builder.handshake::<_, Bytes>(stream).await.map_err(err)?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(RogueConn { send, driver })
    }

    /// `POST`s `body` to `path` with the coefficient cap `cap`; returns once the headers are in.
    pub async fn post(
        &mut self,
        path: &str,
        body: &str,
        cap: u32,
    ) -> Result<RogueExchange, RogueError> {
        self.post_with(path, body, cap, &[]).await
    }

    /// [`RogueConn::post`] with extra request headers.
    pub async fn post_with(
        &mut self,
        path: &str,
        body: &str,
        cap: u32,
        extra: &[(&str, &str)],
    ) -> Result<RogueExchange, RogueError> {
        let mut req = hyper::Request::post(format!("https://{PROXY_NAME}{path}"))
            .header("content-type", "application/json")
            .header(headers::MAX_COEFFICIENT, cap.to_string());
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = req.body(()).map_err(err)?;
        let mut send = self.send.clone().ready().await.map_err(err)?;
        let (resp, mut client_half) = send.send_request(req, false).map_err(err)?;
        client_half
            .send_data(Bytes::from(body.to_owned()), true)
            .map_err(err)?;
        let resp = resp.await.map_err(err)?;
        let status = resp.status().as_u16();
        Ok(RogueExchange {
            client_half,
            status,
            body: resp.into_body(),
        })
    }

    /// Cuts the connection at once (TCP closed, no GOAWAY).
    pub fn cut(self) {
        self.driver.abort();
    }
}

impl RogueExchange {
    /// Reads everything, granting window for every byte (an honest client): body and trailers.
    pub async fn read_all(mut self) -> Result<(Vec<u8>, Option<hyper::HeaderMap>), RogueError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.body.data().await {
            let chunk = chunk.map_err(err)?;
            let _ = self.body.flow_control().release_capacity(chunk.len());
            out.extend_from_slice(&chunk);
        }
        let trailers = self.body.trailers().await.map_err(err)?;
        Ok((out, trailers))
    }

    /// Reads, granting window only for what it read, until `stop` says so or the body ends.
    pub async fn read_until(&mut self, mut stop: impl FnMut(&[u8]) -> bool) -> Vec<u8> {
        let mut out = Vec::new();
        while !stop(&out) {
            match self.body.data().await {
                Some(Ok(chunk)) => {
                    let _ = self.body.flow_control().release_capacity(chunk.len());
                    out.extend_from_slice(&chunk);
                }
                _ => break,
            }
        }
        out
    }

    /// Resets the stream (RST_STREAM CANCEL).
    pub fn reset(&mut self) {
        self.client_half.send_reset(h2::Reason::CANCEL);
    }
}

/// What a [`RogueLoad`] did.
#[derive(Debug, Default)]
pub struct RogueTally {
    /// Streams reset after their first bytes arrived.
    pub reset: AtomicU64,
    /// Connections cut after their stream's first bytes arrived.
    pub cut: AtomicU64,
    /// Attempts that failed before any byte (proxy down, refused).
    pub failed: AtomicU64,
}

/// `clients` tasks sending `body` (streamed) to a proxy's client port one after the other; each
/// reads its stream's first bytes, then resets the stream (even attempts) or cuts the connection
/// (odd attempts).
#[derive(Debug)]
pub struct RogueLoad {
    stop: Arc<AtomicBool>,
    tally: Arc<RogueTally>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RogueLoad {
    /// Starts the clients.
    pub fn start(
        addr: &str,
        tls: Arc<dyn HopTls>,
        body: String,
        cap: u32,
        clients: usize,
    ) -> RogueLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(RogueTally::default());
        let tasks = (0..clients)
            .map(|_| {
                let (addr, tls, body) = (addr.to_owned(), tls.clone(), body.clone());
                let (stop, tally) = (stop.clone(), tally.clone());
                tokio::spawn(async move {
                    let mut attempt = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        attempt += 1;
                        match rogue_once(&addr, &tls, &body, cap, attempt.is_multiple_of(2)).await {
                            Ok(true) => tally.reset.fetch_add(1, Ordering::Relaxed),
                            Ok(false) => tally.cut.fetch_add(1, Ordering::Relaxed),
                            Err(_) => {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                tally.failed.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                })
            })
            .collect();
        RogueLoad { stop, tally, tasks }
    }

    /// What happened so far.
    pub fn tally(&self) -> &RogueTally {
        &self.tally
    }

    /// Stops every client after its attempt in flight.
    pub async fn stop(self) -> Arc<RogueTally> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        self.tally
    }
}

/// One attempt: `Ok(true)` reset, `Ok(false)` cut, after the first bytes of a 200.
async fn rogue_once(
    addr: &str,
    tls: &Arc<dyn HopTls>,
    body: &str,
    cap: u32,
    reset: bool,
) -> Result<bool, RogueError> {
    let mut conn = RogueConn::connect(addr, tls, Some(1024)).await?;
    let mut ex = conn.post("/v1/chat/completions", body, cap).await?;
    if ex.status != 200 {
        return Err(RogueError(format!("status {}", ex.status)));
    }
    if ex.read_until(|seen| !seen.is_empty()).await.is_empty() {
        return Err(RogueError("no byte before the end".into()));
    }
    if reset {
        ex.reset();
        // Let the reset leave before the connection closes.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    conn.cut();
    Ok(reset)
}
