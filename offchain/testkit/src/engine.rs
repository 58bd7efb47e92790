//! [`FakeEngine`]: the built-in engine (`cocoon-engine`) serving its fixed echo backend, with the
//! controls tests need: hold a stream open, turn health off, count requests and health checks.
//!
//! Replies are the fixed backend's: the prompt's words echoed one per token, then an end-of-turn
//! token (`"hello world"` → `"hello world"`, 2 prompt and 3 completion tokens), truncated by
//! `max_tokens`. A prompt containing `HOLD` streams its first token and then waits until
//! [`FakeEngine::release`] (or the engine is dropped), so tests can act in the middle of a stream
//! without timing anything.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cocoon_engine::{
    Backend, BackendError, ChatMessage, DEFAULT_MAX_BODY_BYTES, EngineHandle, FixedBackend,
    ModelInfo, Prompt, SamplingParams, ServerOptions, Session, TokenStep,
};

/// The model the fake engine serves unless told otherwise.
pub const FAKE_MODEL: &str = "fake-model";
/// The word in a prompt that makes the engine hold the stream after its first token.
pub const HOLD_WORD: &str = "HOLD";
/// Longest a held generation waits for [`FakeEngine::release`] (a forgotten release must not hang
/// a test run forever).
const MAX_HOLD: Duration = Duration::from_secs(600);

/// How a [`FakeEngine`] is set up.
#[derive(Debug, Clone)]
pub struct FakeEngineOptions {
    /// The served model id (requests naming another model are refused by the engine).
    pub model: String,
    /// Whether `HOLD` prompts hold their stream. Holding runs each generation on a blocking thread;
    /// without it generations run inline (lowest latency, for benches).
    pub holds: bool,
}

impl Default for FakeEngineOptions {
    fn default() -> Self {
        FakeEngineOptions {
            model: FAKE_MODEL.to_owned(),
            holds: true,
        }
    }
}

/// A running fake engine on 127.0.0.1 (see the module docs).
#[derive(Debug)]
pub struct FakeEngine {
    handle: Option<EngineHandle>,
    probe: Arc<Probe>,
}

#[derive(Debug, Default)]
struct Probe {
    requests: AtomicU64,
    health_checks: AtomicU64,
    unhealthy: AtomicBool,
    gate: Gate,
}

/// Held generations wait here: each [`Gate::open`] lets every generation waiting at that moment go.
#[derive(Debug, Default)]
struct Gate {
    /// (releases so far, closed for good).
    state: Mutex<(u64, bool)>,
    turned: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let seen = st.0;
        let deadline = std::time::Instant::now() + MAX_HOLD;
        while st.0 == seen && !st.1 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            st = match self.turned.wait_timeout(st, left) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
    }

    fn open(&self, for_good: bool) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.0 += 1;
        st.1 |= for_good;
        self.turned.notify_all();
    }
}

impl FakeEngine {
    /// Starts with the default options ([`FAKE_MODEL`], holding on).
    pub async fn start() -> std::io::Result<FakeEngine> {
        FakeEngine::start_with(FakeEngineOptions::default()).await
    }

    /// Starts with `options` on an ephemeral port.
    pub async fn start_with(options: FakeEngineOptions) -> std::io::Result<FakeEngine> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let probe = Arc::new(Probe::default());
        let backend = ProbedBackend {
            fixed: FixedBackend::new(options.model),
            probe: probe.clone(),
            holds: options.holds,
        };
        // Tests and benches hold many streams at once: no slot or queue limit gets in the way.
        let limits = ServerOptions {
            slots: 4096,
            max_queued: 4096,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        };
        let handle = cocoon_engine::serve_backend(Arc::new(backend), limits, listener)
            .map_err(std::io::Error::other)?;
        Ok(FakeEngine {
            handle: Some(handle),
            probe,
        })
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        self.handle
            .as_ref()
            .map(EngineHandle::url)
            .unwrap_or_default()
    }

    /// Lets every held stream continue.
    pub fn release(&self) {
        self.probe.gate.open(false);
    }

    /// Makes `/health` answer 200 (`true`) or 503 (`false`).
    pub fn set_healthy(&self, healthy: bool) {
        self.probe.unhealthy.store(!healthy, Ordering::Release);
    }

    /// Health checks answered so far.
    pub fn health_checks(&self) -> u64 {
        self.probe.health_checks.load(Ordering::Acquire)
    }

    /// Generations started so far (requests refused before generating are not counted).
    pub fn requests(&self) -> u64 {
        self.probe.requests.load(Ordering::Acquire)
    }

    /// Stops serving and waits for the engine's connections to close.
    pub async fn shutdown(mut self) {
        self.probe.gate.open(true);
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        // Held generations end (their clients are gone with the test), and the server stops.
        self.probe.gate.open(true);
        if let Some(handle) = &self.handle {
            let _ = handle.shutdown_signal().send(true);
        }
    }
}

/// The fixed backend, counting and holding as the probe says.
struct ProbedBackend {
    fixed: FixedBackend,
    probe: Arc<Probe>,
    holds: bool,
}

impl Backend for ProbedBackend {
    fn info(&self) -> &ModelInfo {
        self.fixed.info()
    }

    fn render_chat(&self, messages: &[ChatMessage]) -> Result<String, BackendError> {
        self.fixed.render_chat(messages)
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, BackendError> {
        self.fixed.encode(text)
    }

    fn new_session(&self) -> Result<Box<dyn Session>, BackendError> {
        Ok(Box::new(ProbedSession {
            inner: self.fixed.new_session()?,
            probe: self.probe.clone(),
            holds: self.holds,
            hold: false,
            produced: 0,
        }))
    }

    fn is_compute_heavy(&self) -> bool {
        // A held generation blocks its thread: it must not run on the async runtime.
        self.holds
    }

    fn healthy(&self) -> bool {
        self.probe.health_checks.fetch_add(1, Ordering::AcqRel);
        !self.probe.unhealthy.load(Ordering::Acquire)
    }
}

struct ProbedSession {
    inner: Box<dyn Session>,
    probe: Arc<Probe>,
    holds: bool,
    hold: bool,
    produced: usize,
}

impl Session for ProbedSession {
    fn start(&mut self, prompt: &Prompt, sampling: &SamplingParams) -> Result<(), BackendError> {
        self.probe.requests.fetch_add(1, Ordering::AcqRel);
        self.hold = self.holds && prompt.text.contains(HOLD_WORD);
        self.produced = 0;
        self.inner.start(prompt, sampling)
    }

    fn next_token(&mut self, out: &mut Vec<u8>) -> Result<TokenStep, BackendError> {
        if self.hold && self.produced == 1 {
            self.probe.gate.wait();
        }
        self.produced += 1;
        self.inner.next_token(out)
    }
}
