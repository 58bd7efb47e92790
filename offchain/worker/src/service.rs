//! The HTTP/2 service a worker runs on each proxy connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use cocoon_daemon::http::{Body, full, json_response, read_limited};
use cocoon_daemon::serve::{BodyReadError, read_request_body};
use cocoon_daemon::shutdown::Shutdown;
use cocoon_daemon::tls::HopTls;
use cocoon_protocol::api::{Endpoint, parse_request};
use cocoon_protocol::wire::{ANNOUNCE_PATH, Announcement, PAYOUT_PATH};
use cocoon_protocol::{ApiError, ErrorCode, RequestLimits, headers};
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

use crate::WorkerState;
use crate::receipt_body::{ReceiptContext, Slot, receipt_body};

#[derive(Clone)]
pub(crate) struct WorkerService {
    pub(crate) state: Arc<WorkerState>,
    tls: Arc<dyn HopTls>,
    shutdown: Shutdown,
    engine: Client<HttpConnector, Body>,
}

fn error(code: ErrorCode, message: impl Into<String>) -> Response<Body> {
    let e = ApiError::new(code, message);
    json_response(e.status(), e.to_json())
}

impl WorkerService {
    pub(crate) fn new(state: Arc<WorkerState>, tls: Arc<dyn HopTls>, shutdown: Shutdown) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let engine = Client::builder(TokioExecutor::new()).build(connector);
        WorkerService {
            state,
            tls,
            shutdown,
            engine,
        }
    }

    pub(crate) async fn handle(
        self,
        req: Request<hyper::body::Incoming>,
    ) -> Result<Response<Body>, std::convert::Infallible> {
        let path = req.uri().path().to_owned();
        let resp = if req.method() == Method::GET && path == ANNOUNCE_PATH {
            self.announce()
        } else if path == PAYOUT_PATH {
            if req.method() != Method::POST {
                error(ErrorCode::MethodNotAllowed, "use POST")
            } else {
                self.payout(req).await
            }
        } else if let Some(endpoint) = Endpoint::from_path(&path) {
            if req.method() != Method::POST {
                error(ErrorCode::MethodNotAllowed, "use POST")
            } else {
                self.infer(endpoint, req).await
            }
        } else {
            error(ErrorCode::NotFound, format!("no route {path}"))
        };
        let code = resp.status().as_u16().to_string();
        self.state
            .registry
            .counter(
                "cocoon_worker_responses_total",
                "Responses by status.",
                &[("status", &code)],
            )
            .inc();
        Ok(resp)
    }

    fn announce(&self) -> Response<Body> {
        let a = Announcement {
            model: self.state.config.model.clone(),
            model_hash: hex::encode(self.state.model_hash),
            coefficient: self.state.coefficient(),
            capacity: self.state.announced_capacity(),
            in_flight: self.state.in_flight(),
            owner: self.state.config.chain.owner.clone(),
        };
        json_response(200, serde_json::to_vec(&a).unwrap_or_default())
    }

    /// A proxy hands over a signed payout voucher (BoC body).
    async fn payout(&self, req: Request<hyper::body::Incoming>) -> Response<Body> {
        let Some(payouts) = &self.state.payouts else {
            return error(
                ErrorCode::NotFound,
                "this worker has no chain configured and claims nothing",
            );
        };
        let body = match read_limited(req.into_body(), 16 * 1024).await {
            Ok(Some(b)) => b,
            Ok(None) => return json_response(413, ApiError::body_too_large(16 * 1024).to_json()),
            Err(e) => return error(ErrorCode::InvalidJson, format!("request body: {e}")),
        };
        match payouts.offer_boc(&body).await {
            Ok(offered) => json_response(200, serde_json::to_vec(&offered).unwrap_or_default()),
            Err(e @ crate::payouts::OfferError::Chain(_)) => {
                error(ErrorCode::UpstreamFailed, e.to_string())
            }
            Err(e) => error(ErrorCode::InvalidField, e.to_string()),
        }
    }

    async fn infer(
        &self,
        endpoint: Endpoint,
        req: Request<hyper::body::Incoming>,
    ) -> Response<Body> {
        if self.shutdown.is_triggered() {
            return error(ErrorCode::ShuttingDown, "worker is shutting down");
        }
        if !self.state.status.borrow().in_rotation() {
            // Before the first byte: the proxy retries elsewhere and charges nothing.
            return error(
                ErrorCode::NoWorkerAvailable,
                "worker is out of rotation (engine unhealthy or not allowed on chain)",
            );
        }
        let coefficient = self.state.coefficient();
        if let Some(cap) = req.headers().get(headers::MAX_COEFFICIENT) {
            match cap.to_str().ok().and_then(|s| s.parse::<u32>().ok()) {
                Some(cap) if cap >= coefficient => {}
                Some(_) => {
                    return error(
                        ErrorCode::NoWorkerAvailable,
                        "worker price is above the client's cap",
                    );
                }
                None => return error(ErrorCode::InvalidPriceCap, "bad price cap header"),
            }
        }
        // Claim a capacity slot before reading anything.
        let previous = self.state.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.state.clone());
        if previous >= self.state.config.capacity {
            return error(ErrorCode::NoWorkerAvailable, "worker is at capacity");
        }
        let body = match read_request_body(req, self.state.config.max_body_bytes).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return json_response(
                    413,
                    ApiError::body_too_large(self.state.config.max_body_bytes).to_json(),
                );
            }
            Err(e @ BodyReadError::Timeout) => return error(ErrorCode::Timeout, e.to_string()),
            Err(e) => return error(ErrorCode::InvalidJson, e.to_string()),
        };
        let limits = RequestLimits {
            max_body_bytes: self.state.config.max_body_bytes,
            ..Default::default()
        };
        let parsed = match parse_request(endpoint, &body, &limits) {
            Ok((p, _)) => p,
            Err(e) => return json_response(e.status(), e.to_json()),
        };
        if parsed.model != self.state.config.model {
            return error(
                ErrorCode::ModelNotFound,
                format!("this worker serves {}", self.state.config.model),
            );
        }
        let request_sha256: [u8; 32] = Sha256::digest(&body).into();
        let engine_resp = match self.forward(endpoint, body).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "engine unreachable");
                return error(ErrorCode::UpstreamFailed, "inference engine unreachable");
            }
        };
        let (parts, incoming) = engine_resp.into_parts();
        let mut resp = Response::builder().status(parts.status);
        if let Some(ct) = parts.headers.get(hyper::header::CONTENT_TYPE) {
            resp = resp.header(hyper::header::CONTENT_TYPE, ct);
        }
        if !parts.status.is_success() {
            // Engine refused the request: pass its bytes through without a receipt (nothing is charged).
            return resp
                .body(http_body_util::BodyExt::boxed_unsync(
                    http_body_util::BodyExt::map_err(
                        incoming,
                        |e| -> cocoon_daemon::http::BoxError { Box::new(e) },
                    ),
                ))
                .unwrap_or_else(|_| error(ErrorCode::InternalError, "response build failed"));
        }
        let identity = self.tls.identity();
        let ctx = ReceiptContext {
            state: self.state.clone(),
            signing_key: self.tls.signing_key().clone(),
            image_hash: identity.image_hash,
            request_sha256,
            model: parsed.model,
            coefficient,
            params: self.state.params(),
            streaming: parsed.stream,
            max_whole: self.state.config.max_response_bytes,
            _in_flight: self.shutdown.track(),
            _slot: slot,
        };
        resp.body(receipt_body(incoming, ctx))
            .unwrap_or_else(|_| error(ErrorCode::InternalError, "response build failed"))
    }

    async fn forward(
        &self,
        endpoint: Endpoint,
        body: Bytes,
    ) -> Result<Response<hyper::body::Incoming>, Box<dyn std::error::Error + Send + Sync>> {
        let uri = format!(
            "{}{}",
            self.state.config.engine_url.trim_end_matches('/'),
            endpoint.path()
        );
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(full(body))?;
        Ok(self.engine.request(req).await?)
    }
}
