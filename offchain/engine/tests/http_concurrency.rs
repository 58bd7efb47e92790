//! Generation slots, the wait queue, overload errors and graceful shutdown, driven by a backend whose
//! tokens are released by the test.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should panic

use std::sync::{Arc, Condvar, Mutex};

use cocoon_engine::{
    Backend, BackendError, ChatMessage, EngineHandle, ModelInfo, Prompt, SamplingParams,
    ServerOptions, Session, TokenStep, serve_backend,
};
use serde_json::{Value, json};

/// Each token waits until the test has released one more permit.
#[derive(Default)]
struct Gate {
    released: Mutex<usize>,
    cv: Condvar,
}

impl Gate {
    fn release(&self, n: usize) {
        *self.released.lock().unwrap() += n;
        self.cv.notify_all();
    }
    fn take(&self) {
        let mut released = self.released.lock().unwrap();
        while *released == 0 {
            released = self.cv.wait(released).unwrap();
        }
        *released -= 1;
    }
}

struct GatedBackend {
    info: ModelInfo,
    gate: Arc<Gate>,
}

/// Produces `"tok "` forever, one token per gate permit; `max_tokens` ends it.
struct GatedSession {
    gate: Arc<Gate>,
}

impl Backend for GatedBackend {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn render_chat(&self, messages: &[ChatMessage]) -> Result<String, BackendError> {
        Ok(messages.iter().map(|m| m.content.clone()).collect())
    }
    fn encode(&self, text: &str) -> Result<Vec<u32>, BackendError> {
        Ok(text.bytes().map(u32::from).collect())
    }
    fn new_session(&self) -> Result<Box<dyn Session>, BackendError> {
        Ok(Box::new(GatedSession {
            gate: self.gate.clone(),
        }))
    }
    fn is_compute_heavy(&self) -> bool {
        true
    }
}

impl Session for GatedSession {
    fn start(&mut self, _: &Prompt, _: &SamplingParams) -> Result<(), BackendError> {
        Ok(())
    }
    fn next_token(&mut self, out: &mut Vec<u8>) -> Result<TokenStep, BackendError> {
        self.gate.take();
        out.extend_from_slice(b"tok ");
        Ok(TokenStep::Token)
    }
}

async fn start(slots: usize, max_queued: usize) -> (EngineHandle, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let backend = GatedBackend {
        info: ModelInfo {
            id: "gated".into(),
            context_length: 4096,
            owned_by: "test".into(),
        },
        gate: gate.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let opts = ServerOptions {
        slots,
        max_queued,
        max_body_bytes: 1 << 16,
    };
    (
        serve_backend(Arc::new(backend), opts, listener).unwrap(),
        gate,
    )
}

fn request(url: String, stream: bool, max_tokens: u32) -> tokio::task::JoinHandle<(u16, String)> {
    tokio::spawn(async move {
        let body = json!({"prompt": "hi", "stream": stream, "max_tokens": max_tokens});
        let resp = reqwest::Client::new()
            .post(format!("{url}/v1/completions"))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

async fn metric(url: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap()
}

/// Polls the metrics until `name` reaches `want` (the server state is reached asynchronously).
async fn until_metric(url: &str, name: &str, want: u64) {
    while metric(url, name).await != want {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn full_slots_queue_then_overflow_with_503() {
    let (engine, gate) = start(1, 1).await;
    let url = engine.url();
    let first = request(url.clone(), false, 2);
    until_metric(&url, "engine_active_generations", 1).await;
    let second = request(url.clone(), false, 2);
    until_metric(&url, "engine_waiting_requests", 1).await;

    let (status, text) = request(url.clone(), false, 2).await.unwrap();
    assert_eq!(status, 503, "{text}");
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["error"]["code"], "engine_overloaded");

    gate.release(4);
    for handle in [first, second] {
        let (status, text) = handle.await.unwrap();
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["choices"][0]["text"], "tok tok ");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["completion_tokens"], 2);
    }
    engine.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_streams() {
    let (engine, gate) = start(2, 0).await;
    let url = engine.url();
    let stream = request(url.clone(), true, 2);
    until_metric(&url, "engine_active_generations", 1).await;

    let shutdown = tokio::spawn(engine.shutdown());
    // New connections are refused once shutdown began; the stream in flight keeps going.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!shutdown.is_finished());
    gate.release(2);
    let (status, body) = stream.await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"finish_reason\":\"length\""), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"));
    shutdown.await.unwrap();
    assert!(reqwest::get(format!("{url}/health")).await.is_err());
}

#[tokio::test]
async fn disconnected_client_cancels_its_generation() {
    let (engine, gate) = start(1, 0).await;
    let url = engine.url();
    let streaming = request(url.clone(), true, 1000);
    until_metric(&url, "engine_active_generations", 1).await;
    streaming.abort();
    let _ = streaming.await;
    // Enough permits for the whole generation: only cancellation can stop it early.
    gate.release(1000);
    until_metric(&url, "engine_active_generations", 0).await;
    let produced = metric(&url, "engine_completion_tokens_total").await;
    assert!(
        produced < 1000,
        "generation ran to the end ({produced} tokens) after the client left"
    );
    let (status, _) = request(url.clone(), false, 2).await.unwrap();
    assert_eq!(status, 200);
    engine.shutdown().await;
}
