//! The admin endpoint every daemon serves: `/metrics` (Prometheus), `/healthz`, and `/status` (JSON).

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use tokio::net::TcpListener;

use crate::http::{Body, full, json_response};
use crate::metrics::Registry;
use crate::serve::{HttpVersion, ServeOptions, serve};
use crate::shutdown::Shutdown;

/// Produces the `/status` document.
pub type StatusFn = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// Serves the admin endpoint on `listener` until `stop` triggers; `/healthz` answers 503 once the
/// daemon's own `draining` shutdown has started.
pub async fn serve_admin(
    listener: TcpListener,
    registry: Arc<Registry>,
    status: StatusFn,
    draining: Shutdown,
    stop: Shutdown,
) {
    let options = ServeOptions::plain(HttpVersion::Auto);
    serve(listener, options, stop, move |_peer| {
        let (registry, status, draining) = (registry.clone(), status.clone(), draining.clone());
        Some(service_fn(move |req: Request<hyper::body::Incoming>| {
            let resp = admin_response(&req, &registry, &status, &draining);
            async move { Ok::<_, std::convert::Infallible>(resp) }
        }))
    })
    .await;
}

/// A daemon's running admin endpoint.
#[derive(Debug)]
pub struct AdminEndpoint {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

impl AdminEndpoint {
    /// Binds `listen` and serves `/metrics`, `/healthz` (503 once `draining` triggers) and `/status`.
    pub async fn start(
        listen: &str,
        registry: Arc<Registry>,
        status: StatusFn,
        draining: Shutdown,
    ) -> std::io::Result<AdminEndpoint> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let stop = Shutdown::new();
        let task = tokio::spawn(serve_admin(
            listener,
            registry,
            status,
            draining,
            stop.clone(),
        ));
        Ok(AdminEndpoint { addr, stop, task })
    }

    /// Stops serving.
    pub fn stop(self) {
        self.stop.trigger();
        self.task.abort();
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    async fn get(url: &str) -> (u16, String) {
        let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build_http();
        let resp = client.get(url.parse().unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn metrics_health_and_status() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let registry = Registry::new();
        registry
            .counter("cocoon_test_total", "Test.", &[("k", "v")])
            .add(7);
        let (draining, stop) = (Shutdown::new(), Shutdown::new());
        let status: StatusFn = Arc::new(|| serde_json::json!({"role": "test"}));
        let server = tokio::spawn(serve_admin(
            listener,
            registry,
            status,
            draining.clone(),
            stop.clone(),
        ));
        let (code, text) = get(&format!("{base}/metrics")).await;
        assert_eq!(code, 200);
        assert!(text.contains("cocoon_test_total{k=\"v\"} 7"), "{text}");
        assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
        assert_eq!(get(&format!("{base}/status")).await.1, r#"{"role":"test"}"#);
        assert_eq!(get(&format!("{base}/nope")).await.0, 404);
        draining.trigger();
        assert_eq!(get(&format!("{base}/healthz")).await.0, 503);
        stop.trigger();
        server.await.unwrap();
    }
}
