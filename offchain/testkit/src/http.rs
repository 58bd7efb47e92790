//! An app's HTTP/1.1 client for a test network's gateway, and the answer it collects.

use bytes::Bytes;
use cocoon_daemon::http::{Body, full};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An HTTP/1.1 client as an app uses it.
pub type AppClient = Client<HttpConnector, Body>;

/// A new [`AppClient`].
pub fn app_client() -> AppClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Its status code.
    pub status: u16,
    /// Its headers.
    pub headers: hyper::HeaderMap,
    /// Its body, collected.
    pub body: Bytes,
}

impl Resp {
    /// Collects `resp` (panics when the body breaks off: tests read whole bodies).
    pub async fn collect(resp: hyper::Response<hyper::body::Incoming>) -> Resp {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => panic!("response body broke off: {e}"),
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    /// The body as JSON (panics, showing the body, when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `error.code` of an OpenAI-shaped error body (empty when there is none).
    pub fn error_code(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.pointer("/error/code")?.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// A JSON `POST` to `url` with extra `headers`.
pub fn post_json(
    url: &str,
    body: impl Into<Bytes>,
    headers: &[(&str, &str)],
) -> hyper::Request<Body> {
    let mut b = hyper::Request::post(url).header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(full(body.into()))
        .unwrap_or_else(|e| panic!("request to {url}: {e}"))
}

/// A chat request for `model` with one user message and at most 4 completion tokens.
pub fn chat_body(model: &str, content: &str, stream: bool) -> String {
    serde_json::json!({"model": model, "stream": stream, "max_tokens": 4,
        "messages": [{"role": "user", "content": content}]})
    .to_string()
}
