//! A tiny deterministic OpenAI-compatible engine for tests, drills and benches (zero latency).
//!
//! It answers `/v1/chat/completions` and `/v1/completions`, streamed or not, with `min(max_tokens, 5)`
//! tokens `tok0 tok1 …`, counts one prompt token per whitespace-separated word, and reports usage (for
//! streams only when `stream_options.include_usage` is set, like OpenAI). A prompt containing `HOLD`
//! streams its first chunk and then waits until [`FakeEngine::release`] is called, so tests can act
//! in the middle of a stream without timing anything. `GET /health` answers 200, or 503 after
//! [`FakeEngine::set_healthy`]`(false)`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use cocoon_daemon::http::{Body, BoxError, json_response, read_limited};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

/// A running fake engine.
#[derive(Debug)]
pub struct FakeEngine {
    addr: SocketAddr,
    release: Arc<Notify>,
    requests: Arc<AtomicU64>,
    healthy: Arc<AtomicBool>,
    health_checks: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    release: Arc<Notify>,
    requests: Arc<AtomicU64>,
    healthy: Arc<AtomicBool>,
    health_checks: Arc<AtomicU64>,
}

impl FakeEngine {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub async fn start() -> std::io::Result<FakeEngine> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            release: Arc::new(Notify::new()),
            requests: Arc::new(AtomicU64::new(0)),
            healthy: Arc::new(AtomicBool::new(true)),
            health_checks: Arc::new(AtomicU64::new(0)),
        };
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = tcp.set_nodelay(true);
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(req, s.clone()));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Ok(FakeEngine {
            addr,
            release: shared.release,
            requests: shared.requests,
            healthy: shared.healthy,
            health_checks: shared.health_checks,
            task,
        })
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Lets every held stream continue.
    pub fn release(&self) {
        self.release.notify_waiters();
    }

    /// Makes `/health` answer 200 (`true`) or 503 (`false`).
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Release);
    }

    /// Health checks answered so far.
    pub fn health_checks(&self) -> u64 {
        self.health_checks.load(Ordering::Acquire)
    }

    /// Inference requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

fn words(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.split_whitespace().count() as u64,
        Value::Array(a) => a.iter().map(words).sum(),
        Value::Object(o) => o.get("content").map(words).unwrap_or(0),
        _ => 0,
    }
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    s: Shared,
) -> Result<Response<Body>, Infallible> {
    let (release, requests) = (s.release, s.requests);
    let chat = match req.uri().path() {
        "/health" => {
            s.health_checks.fetch_add(1, Ordering::AcqRel);
            return Ok(if s.healthy.load(Ordering::Acquire) {
                json_response(200, b"{}".to_vec())
            } else {
                json_response(
                    503,
                    br#"{"error":{"message":"unhealthy","code":"unhealthy"}}"#.to_vec(),
                )
            });
        }
        "/v1/chat/completions" => true,
        "/v1/completions" => false,
        _ => {
            return Ok(json_response(
                404,
                br#"{"error":{"message":"no route","code":"not_found"}}"#.to_vec(),
            ));
        }
    };
    let Ok(Some(body)) = read_limited(req.into_body(), 1 << 22).await else {
        return Ok(json_response(
            400,
            br#"{"error":{"message":"bad body","code":"invalid_json"}}"#.to_vec(),
        ));
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return Ok(json_response(
            400,
            br#"{"error":{"message":"bad json","code":"invalid_json"}}"#.to_vec(),
        ));
    };
    requests.fetch_add(1, Ordering::Relaxed);
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake")
        .to_owned();
    let input = if chat {
        v.get("messages")
    } else {
        v.get("prompt")
    };
    let prompt_tokens = input.map(words).unwrap_or(0);
    let hold = input.is_some_and(|i| i.to_string().contains("HOLD"));
    let n = v
        .get("max_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(5)
        .min(5);
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": prompt_tokens + n});
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if !stream {
        let text: String = (0..n).map(|i| format!("tok{i} ")).collect();
        let choice = if chat {
            json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
        } else {
            json!({"index": 0, "text": text, "finish_reason": "stop"})
        };
        let object = if chat {
            "chat.completion"
        } else {
            "text_completion"
        };
        let out = json!({"id": "fake-1", "object": object, "created": 0, "model": model,
            "choices": [choice], "usage": usage});
        return Ok(json_response(200, out.to_string().into_bytes()));
    }
    let include_usage = v
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let object = if chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        for i in 0..n {
            let piece = format!("tok{i} ");
            let choice = if chat {
                json!({"index": 0, "delta": {"content": piece}, "finish_reason": null})
            } else {
                json!({"index": 0, "text": piece, "finish_reason": null})
            };
            let chunk = json!({"id": "fake-1", "object": object, "created": 0, "model": model, "choices": [choice]});
            if tx
                .send(Bytes::from(format!("data: {chunk}\n\n")))
                .await
                .is_err()
            {
                return;
            }
            if i == 0 && hold {
                release.notified().await;
            }
        }
        let last = json!({"id": "fake-1", "object": object, "created": 0, "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
        let _ = tx.send(Bytes::from(format!("data: {last}\n\n"))).await;
        if include_usage {
            let u = json!({"id": "fake-1", "object": object, "created": 0, "model": model, "choices": [], "usage": usage});
            let _ = tx.send(Bytes::from(format!("data: {u}\n\n"))).await;
        }
        let _ = tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
    });
    let mut resp = Response::new(ChannelBody(rx).boxed_unsync());
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    Ok(resp)
}
