//! The admin endpoint every daemon serves: `/metrics` (Prometheus), `/healthz`, and `/status` (JSON).

use std::sync::Arc;

use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::http::{Body, full, json_response};
use crate::metrics::Registry;
use crate::shutdown::Shutdown;

/// Produces the `/status` document.
pub type StatusFn = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// Serves the admin endpoint on `listener` until shutdown.
pub async fn serve_admin(
    listener: TcpListener,
    registry: Arc<Registry>,
    status: StatusFn,
    shutdown: Shutdown,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.triggered() => return,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let registry = registry.clone();
        let status = status.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let resp = admin_response(&req, &registry, &status, &shutdown);
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

fn admin_response(
    req: &Request<hyper::body::Incoming>,
    registry: &Registry,
    status: &StatusFn,
    shutdown: &Shutdown,
) -> Response<Body> {
    if req.method() != Method::GET {
        return json_response(405, br#"{"error":"method not allowed"}"#.to_vec());
    }
    match req.uri().path() {
        "/metrics" => {
            let mut resp = Response::new(full(registry.render()));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        }
        "/healthz" if shutdown.is_triggered() => {
            json_response(503, br#"{"status":"draining"}"#.to_vec())
        }
        "/healthz" => json_response(200, br#"{"status":"ok"}"#.to_vec()),
        "/status" => json_response(200, status().to_string().into_bytes()),
        _ => json_response(404, br#"{"error":"not found"}"#.to_vec()),
    }
}
