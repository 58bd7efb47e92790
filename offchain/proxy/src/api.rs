//! The client-facing HTTP/2 service: admission, reservation, worker selection with retry, forwarding.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cocoon_daemon::http::{Body, full, json_response, read_limited};
use cocoon_daemon::serve::{BodyReadError, HttpVersion, ServeOptions, read_request_body, serve};
use cocoon_daemon::tls::PeerIdentity;
use cocoon_protocol::api::{Endpoint, ParsedRequest, normalize_request};
use cocoon_protocol::{ApiError, Coefficient, ErrorCode, headers, wire};
use hyper::{Method, Request, Response};
use tokio::net::TcpListener;

use crate::Proxy;
use crate::chain::BindError;
use crate::charge_body::{ChargeContext, charge_body};
use crate::registry::{Lease, NoWorker};

/// Serves the client port (mutual TLS, HTTP/2) until the proxy shuts down, then drains.
pub(crate) async fn accept_clients(proxy: Arc<Proxy>, listener: TcpListener) {
    let options = ServeOptions {
        limits: proxy.config.limits.limits(),
        ..ServeOptions::tls(proxy.tls.clone(), HttpVersion::Http2)
    };
    let shutdown = proxy.shutdown.clone();
    serve(listener, options, shutdown, move |peer| {
        let client = peer.identity?;
        if client.role != cocoon_daemon::tls::Role::Client {
            tracing::warn!(peer_addr = %peer.addr, role = ?client.role, "non-client peer on the client port");
            return None;
        }
        let (proxy, client, addr) = (proxy.clone(), Arc::new(client), peer.addr);
        Some(hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(PeerAddr(addr));
            let (proxy, client) = (proxy.clone(), client.clone());
            async move { Ok::<_, std::convert::Infallible>(handle(proxy, &client, req).await) }
        }))
    })
    .await;
}

/// The connection's remote address, in every request's extensions: the peer whose share of the
/// bind-lookup budget a new client key spends.
#[derive(Debug, Clone, Copy)]
struct PeerAddr(std::net::SocketAddr);

pub(crate) fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.status(), e.to_json())
}

async fn handle(
    proxy: Arc<Proxy>,
    client: &PeerIdentity,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let resp = match (req.method(), path.as_str(), Endpoint::from_path(&path)) {
        (&Method::GET, "/v1/models", _) => {
            json_response(200, proxy.workers.models_json().to_string().into_bytes())
        }
        (&Method::GET, p, _) if p.starts_with(wire::WORKER_CERTIFICATE_PREFIX) => {
            worker_certificate(&proxy, p)
        }
        (&Method::POST, _, Some(endpoint)) => match infer(&proxy, client, endpoint, req).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        },
        (_, _, Some(_)) => error_response(&ApiError::new(ErrorCode::MethodNotAllowed, "use POST")),
        _ => error_response(&ApiError::new(
            ErrorCode::NotFound,
            format!("no route {path}"),
        )),
    };
    let status = resp.status().as_u16().to_string();
    proxy
        .metrics
        .counter(
            "cocoon_proxy_responses_total",
            "Responses by status.",
            &[("status", &status)],
        )
        .inc();
    resp
}

/// `GET /cocoon/v1/workers/{key hex}/certificate`: the RA-TLS certificate (DER) a connected worker
/// presented, so that a gateway can put the evidence behind a receipt into a proof bundle.
fn worker_certificate(proxy: &Proxy, path: &str) -> Response<Body> {
    let key = wire::worker_certificate_key(path).unwrap_or_default();
    let found = proxy
        .workers
        .all()
        .into_iter()
        .find(|w| hex::encode(w.identity.public_key) == key && !w.certificate.is_empty());
    match found.map(|w| w.certificate.clone()) {
        Some(der) => Response::builder()
            .header(hyper::header::CONTENT_TYPE, "application/pkix-cert")
            .body(full(der))
            .unwrap_or_else(|e| {
                error_response(&ApiError::new(ErrorCode::InternalError, e.to_string()))
            }),
        None => error_response(&ApiError::new(
            ErrorCode::NotFound,
            format!("no connected worker with key {key}"),
        )),
    }
}

/// Releases a client's reservation when dropped.
pub(crate) struct Reservation {
    proxy: Arc<Proxy>,
    client: [u8; 32],
    amount: u128,
}

impl Reservation {
    /// What was reserved, nanoTON: the most the request may be charged.
    pub(crate) fn amount(&self) -> u128 {
        self.amount
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut r = self
            .proxy
            .reservations
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(v) = r.get_mut(&self.client) {
            *v = v.saturating_sub(self.amount);
            if *v == 0 {
                r.remove(&self.client);
            }
        }
    }
}

fn reserve(proxy: &Arc<Proxy>, client: [u8; 32], worst: u128) -> Result<Reservation, ApiError> {
    let escrow = proxy.chain.escrow(&client).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownClient,
            "no open escrow for this client key",
        )
    })?;
    // The ledger is read under the reservations lock: a charge is committed before its reservation
    // is released (under this lock), so this read sees each request's cost at least once.
    let mut reservations = proxy.reservations.lock().unwrap_or_else(|p| p.into_inner());
    let account = proxy.store.client(&escrow.escrow).map_err(|e| {
        tracing::error!(error = %e, "ledger read failed");
        ApiError::new(ErrorCode::InternalError, "ledger unavailable")
    })?;
    if account.charged < escrow.settled {
        tracing::error!(client = %hex::encode(client), "ledger is behind the chain for this client: rolled-back store");
        return Err(ApiError::new(
            ErrorCode::InternalError,
            "ledger inconsistent with chain",
        ));
    }
    let unsettled = account.charged - escrow.settled;
    let reserved = reservations.get(&client).copied().unwrap_or(0);
    let available = escrow
        .credit
        .saturating_sub(unsettled)
        .saturating_sub(reserved);
    if worst > available {
        return Err(ApiError::new(
            ErrorCode::InsufficientCredit,
            format!("worst-case cost {worst} nanoTON exceeds available credit {available} nanoTON"),
        ));
    }
    let held = reservations.entry(client).or_insert(0);
    *held = held.saturating_add(worst);
    Ok(Reservation {
        proxy: proxy.clone(),
        client,
        amount: worst,
    })
}

/// Admits the client key before anything is read or reserved: bound already (no chain read), or
/// bound now to the wallet the gateway names, when that wallet's escrow holds this key; then the
/// client must have some credit left (an open escrow, its credit not all charged or reserved)
/// before its body is read: a client without credit cannot make the proxy buffer bodies.
async fn admit(
    proxy: &Proxy,
    client: &PeerIdentity,
    req: &Request<hyper::body::Incoming>,
) -> Result<(), ApiError> {
    bind(proxy, client, req).await?;
    any_credit(proxy, client.public_key)
}

/// Refuses a client whose credit is all charged or reserved, without reading anything more.
/// (The exact worst case is checked once the body is read, by `reserve`.)
fn any_credit(proxy: &Proxy, client: [u8; 32]) -> Result<(), ApiError> {
    let escrow = proxy.chain.escrow(&client).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownClient,
            "no open escrow for this client key",
        )
    })?;
    let account = proxy.store.client(&escrow.escrow).map_err(|e| {
        tracing::error!(error = %e, "ledger read failed");
        ApiError::new(ErrorCode::InternalError, "ledger unavailable")
    })?;
    let unsettled = account.charged.saturating_sub(escrow.settled);
    let reserved = proxy
        .reservations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&client)
        .copied()
        .unwrap_or(0);
    let available = escrow
        .credit
        .saturating_sub(unsettled)
        .saturating_sub(reserved);
    if available == 0 {
        return Err(ApiError::new(
            ErrorCode::InsufficientCredit,
            "no credit left: every nanoTON of the escrow is charged or reserved",
        ));
    }
    Ok(())
}

/// Binds the client's key (see [`admit`]).
async fn bind(
    proxy: &Proxy,
    client: &PeerIdentity,
    req: &Request<hyper::body::Incoming>,
) -> Result<(), ApiError> {
    let wallet = req
        .headers()
        .get(headers::CLIENT_WALLET)
        .and_then(|v| v.to_str().ok());
    let peer = req
        .extensions()
        .get::<PeerAddr>()
        .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |a| {
            a.0.ip()
        });
    proxy
        .chain
        .bind_client(client.public_key, wallet, peer)
        .await
        .map_err(|e| {
            let code = match &e {
                BindError::NoWallet(_) => ErrorCode::UnknownClient,
                BindError::Refused(_) => ErrorCode::ClientKeyMismatch,
                BindError::Busy | BindError::Unavailable(_) => ErrorCode::ChainUnavailable,
            };
            if matches!(e, BindError::Unavailable(_)) {
                tracing::warn!(error = %e, "cannot read the client's escrow");
            }
            ApiError::new(code, e.to_string())
        })
}

fn header_u64(req: &Request<hyper::body::Incoming>, name: &str) -> Result<Option<u64>, ()> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or(()),
    }
}

/// What a request may cost and how long it may take, from its headers.
struct Terms {
    /// Highest worker coefficient, thousandths.
    cap: u32,
    /// When the client stops waiting (`x-cocoon-timeout-ms`, at most the proxy's): for the worker's
    /// answer headers, and for the client's side of the body.
    deadline: tokio::time::Instant,
    /// The proxy's own deadline (`request_timeout_ms`): a worker still answering then is cut (its
    /// capacity freed) and nobody pays.
    proxy_deadline: tokio::time::Instant,
}

fn terms(proxy: &Proxy, req: &Request<hyper::body::Incoming>) -> Result<Terms, ApiError> {
    let cap = match header_u64(req, headers::MAX_COEFFICIENT) {
        Ok(Some(c)) => u32::try_from(c).unwrap_or(u32::MAX),
        Ok(None) => proxy.config.default_max_coefficient,
        Err(()) => {
            return Err(ApiError::new(
                ErrorCode::InvalidPriceCap,
                "x-cocoon-max-coefficient must be an integer",
            ));
        }
    };
    let timeout_ms = match header_u64(req, headers::TIMEOUT_MS) {
        Ok(Some(t)) => t.min(proxy.config.request_timeout_ms),
        Ok(None) => proxy.config.request_timeout_ms,
        Err(()) => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                "x-cocoon-timeout-ms must be an integer",
            ));
        }
    };
    let now = tokio::time::Instant::now();
    Ok(Terms {
        cap,
        deadline: now + Duration::from_millis(timeout_ms),
        proxy_deadline: now + Duration::from_millis(proxy.config.request_timeout_ms),
    })
}

/// Whether the request runs to the proxy's own deadline (`request_timeout_ms`): only then is a
/// worker that misses it at fault. A shorter `x-cocoon-timeout-ms` is the client's choice.
fn deadline_is_proxys(proxy: &Proxy, req: &Request<hyper::body::Incoming>) -> bool {
    match header_u64(req, headers::TIMEOUT_MS) {
        Ok(Some(t)) => t >= proxy.config.request_timeout_ms,
        _ => true,
    }
}

/// Reads and checks the body, puts it in the form every hop forwards (usage on streams, one explicit
/// generation limit: [`normalize_request`]) and reserves its worst-case cost from the client's
/// credit. Returns the body to forward.
async fn read_and_reserve(
    proxy: &Arc<Proxy>,
    client: &PeerIdentity,
    endpoint: Endpoint,
    cap: u32,
    req: Request<hyper::body::Incoming>,
) -> Result<(bytes::Bytes, ParsedRequest, Reservation), ApiError> {
    let limits = proxy.config.limits();
    let body = read_request_body(req, limits.max_body_bytes)
        .await
        .map_err(|e| match e {
            BodyReadError::Timeout => ApiError::new(ErrorCode::Timeout, e.to_string()),
            BodyReadError::Body(_) => ApiError::new(ErrorCode::InvalidJson, e.to_string()),
        })?
        .ok_or_else(|| ApiError::body_too_large(limits.max_body_bytes))?;
    let (parsed, normalized) = normalize_request(endpoint, &body, &limits)?;
    let body = normalized.map_or(body, bytes::Bytes::from);
    // Every token of the prompt covers at least one byte of the body, so the body length bounds it.
    let prompt_bound = u64::try_from(body.len()).unwrap_or(u64::MAX);
    let worst = proxy
        .chain
        .params()
        .worst_case(prompt_bound, parsed.max_generated_tokens, Coefficient(cap))
        .map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidPriceCap,
                format!("price cap too large: {e}"),
            )
        })?;
    let reservation = reserve(proxy, client.public_key, worst)?;
    Ok((body, parsed, reservation))
}

/// One worker's answer to one attempt.
enum Attempt {
    /// It answered with headers the client may see.
    Answered(Response<hyper::body::Incoming>),
    /// It failed before the first byte: try another.
    Retry(ApiError),
}

/// Sends the request to the leased worker and waits for its response headers.
async fn send_to_worker(
    proxy: &Proxy,
    lease: &Lease,
    endpoint: Endpoint,
    terms: &Terms,
    body: &bytes::Bytes,
) -> Result<Attempt, ApiError> {
    let worker = &lease.0;
    let request_id = proxy.next_id.fetch_add(1, Ordering::Relaxed);
    let upstream = Request::builder()
        .method(Method::POST)
        .uri(format!("http://worker{}", endpoint.path()))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(headers::MAX_COEFFICIENT, terms.cap)
        .header(headers::REQUEST_ID, request_id)
        .body(full(body.clone()))
        .map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))?;
    let started = Instant::now();
    let mut sender = worker.sender();
    let sent = tokio::time::timeout_at(terms.deadline, async {
        sender.ready().await?;
        sender.send_request(upstream).await
    })
    .await;
    let resp = match sent {
        Err(_) => {
            lease.deadline_passed();
            return Err(ApiError::new(
                ErrorCode::Timeout,
                "no response before the deadline",
            ));
        }
        Ok(Err(e)) => {
            worker.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(worker = %hex::encode(worker.identity.public_key), error = %e, "worker failed before answering; retrying");
            return Ok(Attempt::Retry(ApiError::new(
                ErrorCode::UpstreamFailed,
                "worker failed before answering",
            )));
        }
        Ok(Ok(r)) => r,
    };
    worker.observe_latency(started.elapsed());
    let status = resp.status();
    if status.is_server_error() || status == hyper::StatusCode::CONFLICT {
        // Busy, over the cap after a live price change, engine down: nothing reached the client yet.
        worker.failed.fetch_add(1, Ordering::Relaxed);
        let bytes = read_limited(resp.into_body(), 64 * 1024)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        tracing::info!(%status, code = ?ApiError::code_of(&bytes), "worker refused before the first byte; retrying");
        return Ok(Attempt::Retry(ApiError::new(
            ErrorCode::UpstreamFailed,
            format!("worker answered {status}"),
        )));
    }
    Ok(Attempt::Answered(resp))
}

/// Forwards the worker's response with the worker's identity headers; a success is charged on its
/// receipt trailer ([`charge_body`], read to its end whatever the client does), a client error is
/// forwarded and never charged.
fn forward(
    resp: Response<hyper::body::Incoming>,
    ctx: ChargeContext,
    terms: &Terms,
) -> Result<Response<Body>, ApiError> {
    let (parts, incoming) = resp.into_parts();
    let worker = ctx.lease.0.clone();
    let mut out = Response::builder().status(parts.status);
    if let Some(ct) = parts.headers.get(hyper::header::CONTENT_TYPE) {
        out = out.header(hyper::header::CONTENT_TYPE, ct);
    }
    let insecure = if worker.identity.insecure { "1" } else { "0" };
    out = out
        .header(headers::WORKER_KEY, hex::encode(worker.identity.public_key))
        .header(
            headers::WORKER_IMAGE,
            hex::encode(worker.identity.image_hash),
        )
        .header(headers::WORKER_INSECURE, insecure);
    let body = if parts.status.is_success() {
        charge_body(incoming, ctx, terms.deadline, terms.proxy_deadline)
    } else {
        worker.ok.fetch_add(1, Ordering::Relaxed);
        http_body_util::BodyExt::boxed_unsync(http_body_util::BodyExt::map_err(
            incoming,
            |e| -> cocoon_daemon::http::BoxError { Box::new(e) },
        ))
    };
    out.body(body)
        .map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))
}

/// One inference request: admit the client, reserve the worst case, try up to `max_attempts`
/// workers under the price cap, and forward the first answer.
async fn infer(
    proxy: &Arc<Proxy>,
    client: &PeerIdentity,
    endpoint: Endpoint,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, ApiError> {
    if proxy.shutdown.is_triggered() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "proxy is shutting down",
        ));
    }
    let in_flight = proxy.shutdown.track();
    admit(proxy, client, &req).await?;
    let terms = terms(proxy, &req)?;
    let own_deadline = deadline_is_proxys(proxy, &req);
    let (body, parsed, reservation) =
        read_and_reserve(proxy, client, endpoint, terms.cap, req).await?;
    let mut tried = Vec::new();
    let mut last_error = ApiError::new(
        ErrorCode::NoWorkerAvailable,
        "no worker available under the price cap",
    );
    for attempt in 0..proxy.config.max_attempts {
        let mut lease = match proxy.workers.pick(&parsed.model, terms.cap, &tried) {
            Ok(l) => l,
            Err(NoWorker::UnknownModel) if attempt == 0 => {
                return Err(ApiError::new(
                    ErrorCode::ModelNotFound,
                    format!("no worker serves `{}`", parsed.model),
                ));
            }
            Err(_) => break,
        };
        tried.push(lease.0.id);
        lease.deadline_is_proxys(own_deadline);
        let resp = match send_to_worker(proxy, &lease, endpoint, &terms, &body).await? {
            Attempt::Answered(resp) => resp,
            Attempt::Retry(e) => {
                last_error = e;
                continue;
            }
        };
        let ctx = ChargeContext {
            proxy: proxy.clone(),
            client: client.public_key,
            lease,
            cap: terms.cap,
            model: parsed.model.clone(),
            streaming: parsed.stream,
            reservation,
            _in_flight: in_flight,
        };
        return forward(resp, ctx, &terms);
    }
    Err(last_error)
}
