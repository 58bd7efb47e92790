//! The app-facing HTTP service.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cocoon_daemon::http::{Body, BoxError, empty, full, json_response, read_limited};
use cocoon_daemon::serve::{BodyReadError, read_request_body};
use cocoon_protocol::api::{Endpoint, ParsedRequest, normalize_request};
use cocoon_protocol::{ApiError, ErrorCode, RequestLimits, headers, wire};
use http_body_util::BodyExt;
use hyper::{Method, Request, Response};
use sha2::{Digest, Sha256};

use crate::Gateway;
use crate::verify::{Exchange, check, verify_body};

fn error(e: ApiError) -> Response<Body> {
    json_response(e.status(), e.to_json())
}

pub(crate) async fn handle(
    gw: Arc<Gateway>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let started = std::time::Instant::now();
    let request_id = crate::request_id::of_request(req.headers());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = match route(&gw, req, &request_id).await {
        Ok(r) => r,
        Err(e) => error(e),
    };
    if let Ok(v) = hyper::header::HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(crate::request_id::HEADER, v);
    }
    let status = resp.status().as_u16();
    let ms = started.elapsed().as_millis();
    // Refusals are worth a line at the default level; answers only at debug (one per request).
    if status >= 400 {
        tracing::info!(%request_id, %method, %path, status, ms, "request refused");
    } else {
        tracing::debug!(%request_id, %method, %path, status, ms, "request answered");
    }
    gw.metrics
        .counter(
            "cocoon_gateway_responses_total",
            "Responses by status.",
            &[("status", &status.to_string())],
        )
        .inc();
    Ok(resp)
}

async fn route(
    gw: &Arc<Gateway>,
    req: Request<hyper::body::Incoming>,
    request_id: &str,
) -> Result<Response<Body>, ApiError> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    crate::local_api::check_host(host.as_deref(), gw.listen_addr, &gw.config.allowed_hosts)
        .and_then(|()| crate::local_api::check_origin(req.headers(), &gw.config.allowed_origins))
        .map_err(|e| {
            gw.metrics
                .counter(
                    "cocoon_gateway_local_refused_total",
                    "Local API requests refused for their Host or Origin (browser pages).",
                    &[(
                        "why",
                        match e {
                            crate::local_api::Refused::Origin(_) => "origin",
                            _ => "host",
                        },
                    )],
                )
                .inc();
            ApiError::new(ErrorCode::Unauthorized, e.to_string())
        })?;
    if !gw.config.api_token.is_empty() {
        let given = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if !crate::local_api::token_matches(given, &gw.config.api_token) {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "missing or wrong bearer token",
            ));
        }
    }
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("");
    match (req.method(), path.as_str(), Endpoint::from_path(&path)) {
        (&Method::GET, "/v1/models", _) => models(gw).await,
        (&Method::GET, p, _) if p.starts_with(MODEL_PREFIX) => {
            model(gw, &p[MODEL_PREFIX.len()..]).await
        }
        (&Method::GET, "/cocoon/v1/receipts", _) => {
            let wanted = receipts_query(query)?;
            let records: Vec<_> = gw
                .receipts()
                .into_iter()
                .filter(|r| wanted.is_none() || r.request_id.as_deref() == wanted)
                .collect();
            Ok(json_response(
                200,
                serde_json::to_vec(&records).unwrap_or_default(),
            ))
        }
        (&Method::GET, "/cocoon/v1/bundle", _) => {
            let selection = crate::bundle::Selection::from_query(query)
                .map_err(|e| ApiError::new(ErrorCode::InvalidField, e))?;
            let bundle = gw.bundle(&selection).await;
            let body = serde_json::to_vec_pretty(&bundle)
                .map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))?;
            Ok(json_response(200, body))
        }
        (&Method::POST, _, Some(endpoint)) => infer(gw, endpoint, req, request_id).await,
        (_, _, Some(_)) => Err(ApiError::new(ErrorCode::MethodNotAllowed, "use POST")),
        _ => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no route {path}"),
        )),
    }
}

/// `GET /v1/models/{id}` (OpenAI's retrieve model); the id may contain `/`, percent-encoded or not.
const MODEL_PREFIX: &str = "/v1/models/";

/// `GET /cocoon/v1/receipts` takes nothing or `request_id=…` (one request's receipt).
fn receipts_query(query: &str) -> Result<Option<&str>, ApiError> {
    let mut wanted = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("request_id", v)) if crate::request_id::is_sane(v) => wanted = Some(v),
            Some(("request_id", _)) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidField,
                    "request_id: 1 to 128 characters of A-Z a-z 0-9 - _ . :",
                )
                .with_param("request_id"));
            }
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidField,
                    format!("unknown receipts parameter {pair:?} (only request_id)"),
                ));
            }
        }
    }
    Ok(wanted)
}

/// Decodes `%XX` escapes; None when an escape is malformed or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    // percent-encoding passes a malformed escape through as text; a path with one is refused.
    let malformed = s.split('%').skip(1).any(|after| {
        !after
            .as_bytes()
            .get(..2)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return None;
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// `GET /cocoon/v1/workers/{key}/certificate` on the proxy: the certificate the worker presented.
pub(crate) async fn fetch_worker_certificate(
    gw: &Gateway,
    key: &[u8; 32],
) -> Result<Bytes, String> {
    let path = format!("http://proxy{}", wire::worker_certificate_path(key));
    let resp = send(gw, || {
        Request::get(path.as_str())
            .body(empty())
            .map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))
    })
    .await
    .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = read_limited(resp.into_body(), 256 << 10)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("certificate larger than 256 KiB")?;
    if !status.is_success() {
        return Err(format!(
            "proxy answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body)
}

async fn send(
    gw: &Gateway,
    build: impl Fn() -> Result<Request<Body>, ApiError>,
) -> Result<Response<hyper::body::Incoming>, ApiError> {
    let unreachable = |e: BoxError| {
        tracing::warn!(error = %e, "proxy unreachable");
        ApiError::new(ErrorCode::UpstreamFailed, "proxy unreachable")
    };
    // A dead pooled connection fails before the proxy saw the request, so one redial is safe.
    for attempt in 0..2 {
        let mut sender = gw.proxy.sender().await.map_err(unreachable)?;
        let sent = async {
            sender.ready().await?;
            sender.send_request(build()?).await.map_err(BoxError::from)
        };
        match sent.await {
            Ok(r) => return Ok(r),
            Err(e) if attempt == 0 => {
                tracing::debug!(error = %e, "proxy connection failed; redialing");
                gw.proxy.reset().await;
            }
            Err(e) => return Err(unreachable(e)),
        }
    }
    Err(ApiError::new(
        ErrorCode::UpstreamFailed,
        "proxy unreachable",
    ))
}

/// The proxy's model list: its status and body.
async fn model_list(gw: &Gateway) -> Result<(u16, Bytes), ApiError> {
    let resp = send(gw, || {
        Request::get("http://proxy/v1/models")
            .body(empty())
            .map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))
    })
    .await?;
    let status = resp.status().as_u16();
    let body = read_limited(resp.into_body(), 4 << 20)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::new(ErrorCode::UpstreamFailed, "bad model list from proxy"))?;
    Ok((status, body))
}

async fn models(gw: &Gateway) -> Result<Response<Body>, ApiError> {
    let (status, body) = model_list(gw).await?;
    Ok(json_response(status, body.to_vec()))
}

/// One entry of the proxy's model list, or `model_not_found` (404) in OpenAI's error shape.
async fn model(gw: &Gateway, raw_id: &str) -> Result<Response<Body>, ApiError> {
    let id = percent_decode(raw_id)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidField, "malformed model id in the path")
                .with_param("model")
        })?;
    let (status, body) = model_list(gw).await?;
    if status != 200 {
        return Ok(json_response(status, body.to_vec()));
    }
    let list: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::new(ErrorCode::UpstreamFailed, "bad model list from proxy"))?;
    let found = list
        .get("data")
        .and_then(serde_json::Value::as_array)
        .and_then(|models| {
            models
                .iter()
                .find(|m| m.get("id").and_then(|v| v.as_str()) == Some(id.as_str()))
        });
    match found {
        Some(m) => Ok(json_response(
            200,
            serde_json::to_vec(m).unwrap_or_default(),
        )),
        None => Err(ApiError::new(
            ErrorCode::ModelNotFound,
            format!("The model `{id}` does not exist or no worker serves it"),
        )
        .with_param("model")),
    }
}

/// The app's price cap, never above the configured one.
fn price_cap(gw: &Gateway, req: &Request<hyper::body::Incoming>) -> Result<u32, ApiError> {
    let Some(v) = req.headers().get(headers::MAX_COEFFICIENT) else {
        return Ok(gw.config.max_coefficient);
    };
    let cap = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidPriceCap,
                "x-cocoon-max-coefficient must be an integer",
            )
        })?;
    Ok(cap.min(gw.config.max_coefficient))
}

/// Reads and checks the app's body and puts it in the form the proxy forwards
/// ([`normalize_request`]: usage on streams, one explicit generation limit), so that the proxy passes
/// it on unchanged and the receipt covers the bytes hashed here. Returns `true` when the gateway
/// asked for usage itself on a stream (the usage event is then not shown to the app).
async fn read_request(
    gw: &Gateway,
    endpoint: Endpoint,
    req: Request<hyper::body::Incoming>,
) -> Result<(Bytes, ParsedRequest, bool), ApiError> {
    let limits = RequestLimits {
        max_body_bytes: gw.config.max_body_bytes,
        max_tokens: gw.config.max_tokens,
        max_n: gw.config.max_n,
        ..Default::default()
    };
    let body = read_request_body(req, limits.max_body_bytes)
        .await
        .map_err(|e| match e {
            BodyReadError::Timeout => ApiError::new(ErrorCode::Timeout, e.to_string()),
            BodyReadError::Body(_) => ApiError::new(ErrorCode::InvalidJson, e.to_string()),
        })?
        .ok_or_else(|| ApiError::body_too_large(limits.max_body_bytes))?;
    let (parsed, normalized) = normalize_request(endpoint, &body, &limits)?;
    let added_usage = parsed.stream && !parsed.include_usage;
    Ok((normalized.map_or(body, Bytes::from), parsed, added_usage))
}

/// The request to the proxy: the body, the cap, the app's timeout and the client wallet.
fn proxy_request(
    gw: &Gateway,
    endpoint: Endpoint,
    cap: u32,
    timeout: Option<&hyper::header::HeaderValue>,
    body: &Bytes,
) -> Result<Request<Body>, ApiError> {
    let mut b = Request::post(format!("http://proxy{}", endpoint.path()))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(headers::MAX_COEFFICIENT, cap);
    if let Some(t) = timeout {
        b = b.header(headers::TIMEOUT_MS, t);
    }
    if !gw.config.chain.wallet.is_empty() {
        b = b.header(headers::CLIENT_WALLET, gw.config.chain.wallet.as_str());
    }
    b.body(full(body.clone()))
        .map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))
}

fn build_err(e: hyper::http::Error) -> ApiError {
    ApiError::new(ErrorCode::InternalError, e.to_string())
}

/// A whole (non-streamed) response: collected, its receipt checked and kept, refused when it
/// does not verify and receipts are required.
async fn verify_whole(
    gw: &Arc<Gateway>,
    out: hyper::http::response::Builder,
    incoming: hyper::body::Incoming,
    exchange: &Exchange,
) -> Result<Response<Body>, ApiError> {
    let max = gw.config.max_response_bytes;
    let collected = http_body_util::Limited::new(incoming, max)
        .collect()
        .await
        .map_err(|e| {
            let why = if e.is::<http_body_util::LengthLimitError>() {
                format!("response larger than max_response_bytes ({max} bytes): refused")
            } else {
                format!("response cut: {e}")
            };
            ApiError::new(ErrorCode::UpstreamFailed, why)
        })?;
    let trailers = collected.trailers().cloned();
    let bytes = collected.to_bytes();
    let response_sha256: [u8; 32] = Sha256::digest(&bytes).into();
    let kept = check(
        trailers.as_ref(),
        exchange,
        Some(bytes.clone()),
        &response_sha256,
    );
    let status = kept.record.status.clone();
    gw.record(kept);
    if !status.is_verified() && gw.config.require_receipts {
        return Err(ApiError::new(
            ErrorCode::UpstreamFailed,
            format!("response receipt rejected: {status}"),
        ));
    }
    out.header(headers::RECEIPT_STATUS, status.as_str())
        .body(full(bytes))
        .map_err(build_err)
}

/// One inference request: checked, sent to the proxy, and its response verified (a stream as it
/// passes, a whole response before it is answered).
async fn infer(
    gw: &Arc<Gateway>,
    endpoint: Endpoint,
    req: Request<hyper::body::Incoming>,
    request_id: &str,
) -> Result<Response<Body>, ApiError> {
    if gw.shutdown.is_triggered() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "gateway is shutting down",
        ));
    }
    let in_flight = gw.shutdown.track();
    let cap = price_cap(gw, &req)?;
    let timeout = req.headers().get(headers::TIMEOUT_MS).cloned();
    let (body, parsed, added_usage) = read_request(gw, endpoint, req).await?;
    let request_sha256: [u8; 32] = Sha256::digest(&body).into();
    let deadline = Duration::from_millis(gw.config.request_timeout_ms);
    let sent = send(gw, || {
        proxy_request(gw, endpoint, cap, timeout.as_ref(), &body)
    });
    let resp = tokio::time::timeout(deadline, sent)
        .await
        .map_err(|_| ApiError::new(ErrorCode::Timeout, "no response before the deadline"))??;
    let (parts, incoming) = resp.into_parts();
    let exchange = Exchange {
        request_id: request_id.to_owned(),
        endpoint: endpoint.path(),
        stream: parsed.stream,
        request: body,
        request_sha256,
        worker_key: None,
        worker_image: None,
        worker_insecure: None,
        attested: None,
        max_coefficient: cap,
    }
    .forwarded(&parts.headers);
    // Only a successful answer carries a receipt to check against the worker.
    let exchange = if parts.status.is_success() {
        exchange.attest(gw).await
    } else {
        exchange
    };
    let mut out = Response::builder().status(parts.status);
    if let Some(ct) = parts.headers.get(hyper::header::CONTENT_TYPE) {
        out = out.header(hyper::header::CONTENT_TYPE, ct);
    }
    if !parts.status.is_success() {
        let body = incoming
            .map_err(|e| -> BoxError { Box::new(e) })
            .boxed_unsync();
        return out.body(body).map_err(build_err);
    }
    if parsed.stream {
        let hide_usage = added_usage.then(crate::sse_filter::HideUsage::default);
        let body = verify_body(incoming, gw.clone(), exchange, hide_usage, in_flight);
        return out.body(body).map_err(build_err);
    }
    verify_whole(gw, out, incoming, &exchange).await
}
