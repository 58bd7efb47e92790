//! The HTTP server: routing, body limits, generation slots, streaming and graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::backend::{Backend, Prompt, SamplingParams, Session};
use crate::error::{ApiError, EngineError};
use crate::generate::{self, FinishReason, Outcome};
use crate::request::{GenerationRequest, PromptSource, Route};
use crate::response::{Responder, Usage};

/// Limits of the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// Concurrent generations.
    pub slots: usize,
    /// Requests that may wait for a slot; more get 503 `engine_overloaded`.
    pub max_queued: usize,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}

/// A response body: either ready bytes or SSE chunks arriving from a generation.
pub(crate) enum EngineBody {
    Ready(Option<Bytes>),
    Channel(mpsc::UnboundedReceiver<Bytes>),
}

impl hyper::body::Body for EngineBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Ready(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Self::Channel(rx) => rx.poll_recv(cx).map(|o| o.map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Ready(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Ready(Some(d)) => SizeHint::with_exact(d.len() as u64),
            Self::Ready(None) => SizeHint::with_exact(0),
            Self::Channel(_) => SizeHint::default(),
        }
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    active: AtomicUsize,
}

struct State {
    backend: Arc<dyn Backend>,
    opts: ServerOptions,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    sessions: Mutex<Vec<Box<dyn Session>>>,
    shutting_down: AtomicBool,
    next_id: AtomicU64,
    id_prefix: u64,
    counters: Counters,
}

/// A generation slot: a semaphore permit plus a session taken from the pool.
struct Slot {
    state: Arc<State>,
    session: Option<Box<dyn Session>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.counters.active.fetch_sub(1, Ordering::Relaxed);
        if let Some(s) = self.session.take()
            && let Ok(mut pool) = self.state.sessions.lock()
        {
            pool.push(s);
        }
    }
}

struct WaitGuard<'a>(&'a AtomicUsize);
impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl State {
    async fn acquire(self: &Arc<Self>) -> Result<Slot, ApiError> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.opts.max_queued {
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                    return Err(ApiError::overloaded(self.opts.slots, self.opts.max_queued));
                }
                let _guard = WaitGuard(&self.waiting);
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| ApiError::shutting_down())?
            }
        };
        self.counters.active.fetch_add(1, Ordering::Relaxed);
        let pooled = self.sessions.lock().ok().and_then(|mut p| p.pop());
        let mut slot = Slot {
            state: self.clone(),
            session: None,
            _permit: permit,
        };
        slot.session = Some(match pooled {
            Some(s) => s,
            None => self.backend.new_session()?,
        });
        Ok(slot)
    }

    fn new_id(&self, route: Route) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let prefix = match route {
            Route::Chat => "chatcmpl",
            Route::Completion => "cmpl",
        };
        format!("{prefix}-{:016x}{n:08x}", self.id_prefix)
    }
}

/// A running engine server.
#[derive(Debug)]
pub struct EngineHandle {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl EngineHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the base URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, lets in-flight generations finish, then returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Waits until the server stops (after [`EngineHandle::shutdown`] from a clone of the signal,
    /// or never); used by the binary together with [`EngineHandle::shutdown_signal`].
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// A sender that triggers graceful shutdown when `true` is sent.
    pub fn shutdown_signal(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Serves `backend` on an already bound listener.
pub fn serve_backend(
    backend: Arc<dyn Backend>,
    opts: ServerOptions,
    listener: TcpListener,
) -> Result<EngineHandle, EngineError> {
    let addr = listener.local_addr().map_err(EngineError::Listen)?;
    let state = Arc::new(State {
        backend,
        opts,
        slots: Arc::new(Semaphore::new(opts.slots)),
        waiting: AtomicUsize::new(0),
        sessions: Mutex::new(Vec::new()),
        shutting_down: AtomicBool::new(false),
        next_id: AtomicU64::new(0),
        id_prefix: rand::random(),
        counters: Counters::default(),
    });
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(state, listener, rx));
    Ok(EngineHandle {
        addr,
        shutdown: tx,
        task,
    })
}

async fn accept_loop(state: Arc<State>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).keep_alive(true);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(state, req).await) }
                });
                let conn = http.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = async { let _ = stop.wait_for(|s| *s).await.map(|_| ()); } => break,
        }
    }
    drop(listener);
    state.shutting_down.store(true, Ordering::SeqCst);
    graceful.shutdown().await;
}

fn json_response(status: StatusCode, body: Bytes) -> Response<EngineBody> {
    let mut resp = Response::new(EngineBody::Ready(Some(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(err: &ApiError) -> Response<EngineBody> {
    let body = Bytes::from(err.to_json().to_string());
    let mut resp = json_response(err.status, body);
    if err.status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    resp
}

fn sse_response(body: EngineBody) -> Response<EngineBody> {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    resp
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<EngineBody> {
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    let result = route(&state, req).await;
    result.unwrap_or_else(|err| {
        state.counters.errors.fetch_add(1, Ordering::Relaxed);
        error_response(&err)
    })
}

async fn route(
    state: &Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<EngineBody>, ApiError> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match (path.as_str(), &method) {
        ("/v1/chat/completions", &Method::POST) => generate_route(state, Route::Chat, req).await,
        ("/v1/completions", &Method::POST) => generate_route(state, Route::Completion, req).await,
        ("/v1/models", &Method::GET) => Ok(models(state)),
        ("/health" | "/healthz", &Method::GET) => Ok(health(state)),
        ("/metrics", &Method::GET) => Ok(metrics(state)),
        (
            "/v1/chat/completions"
            | "/v1/completions"
            | "/v1/models"
            | "/health"
            | "/healthz"
            | "/metrics",
            _,
        ) => Err(ApiError::method_not_allowed(&method, &path)),
        _ => Err(ApiError::route_not_found(&path)),
    }
}

fn models(state: &State) -> Response<EngineBody> {
    let info = state.backend.info();
    let body = serde_json::json!({
        "object": "list",
        "data": [{
            "id": info.id,
            "object": "model",
            "created": 0,
            "owned_by": info.owned_by,
            "max_model_len": info.context_length,
        }]
    });
    json_response(StatusCode::OK, Bytes::from(body.to_string()))
}

fn health(state: &State) -> Response<EngineBody> {
    if state.shutting_down.load(Ordering::Relaxed) {
        return error_response(&ApiError::shutting_down());
    }
    if !state.backend.healthy() {
        return error_response(&ApiError::unhealthy());
    }
    let body = serde_json::json!({"status": "ok", "model": state.backend.info().id});
    json_response(StatusCode::OK, Bytes::from(body.to_string()))
}

fn metrics(state: &State) -> Response<EngineBody> {
    let c = &state.counters;
    let text = format!(
        "# TYPE engine_requests_total counter\nengine_requests_total {}\n\
         # TYPE engine_errors_total counter\nengine_errors_total {}\n\
         # TYPE engine_prompt_tokens_total counter\nengine_prompt_tokens_total {}\n\
         # TYPE engine_completion_tokens_total counter\nengine_completion_tokens_total {}\n\
         # TYPE engine_active_generations gauge\nengine_active_generations {}\n\
         # TYPE engine_waiting_requests gauge\nengine_waiting_requests {}\n\
         # TYPE engine_slots gauge\nengine_slots {}\n",
        c.requests.load(Ordering::Relaxed),
        c.errors.load(Ordering::Relaxed),
        c.prompt_tokens.load(Ordering::Relaxed),
        c.completion_tokens.load(Ordering::Relaxed),
        c.active.load(Ordering::Relaxed),
        state.waiting.load(Ordering::Relaxed),
        state.opts.slots,
    );
    let mut resp = Response::new(EngineBody::Ready(Some(Bytes::from(text))));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

/// A request ready to run: prompt tokenised, limits resolved.
struct Job {
    prompt: Prompt,
    sampling: SamplingParams,
    max_tokens: usize,
    stop: Vec<String>,
    stream: bool,
    responder: Responder,
}

async fn generate_route(
    state: &Arc<State>,
    route: Route,
    req: Request<Incoming>,
) -> Result<Response<EngineBody>, ApiError> {
    if state.shutting_down.load(Ordering::Relaxed) {
        return Err(ApiError::shutting_down());
    }
    let limit = state.opts.max_body_bytes;
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH)
        && len
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|n| n > limit as u64)
    {
        return Err(ApiError::body_too_large(limit));
    }
    let body = Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::body_too_large(limit)
            } else {
                ApiError::invalid_json(format!("failed to read the request body: {e}"))
            }
        })?
        .to_bytes();
    let request = GenerationRequest::parse(route, &body)?;
    let job = prepare(state, request)?;
    let mut slot = state.acquire().await?;
    state
        .counters
        .prompt_tokens
        .fetch_add(job.prompt.tokens.len() as u64, Ordering::Relaxed);
    if state.backend.is_compute_heavy() {
        Ok(run_blocking(state, slot, job).await)
    } else {
        let session = slot
            .session
            .as_deref_mut()
            .ok_or_else(|| ApiError::internal("slot without a session"))?;
        Ok(run_inline(state, session, &job))
    }
}

fn prepare(state: &State, req: GenerationRequest) -> Result<Job, ApiError> {
    let info = state.backend.info();
    if let Some(model) = &req.model
        && model != &info.id
    {
        return Err(ApiError::model_not_found(model, &info.id));
    }
    let text = match &req.prompt {
        PromptSource::Chat(messages) => state.backend.render_chat(messages)?,
        PromptSource::Text(text) => text.clone(),
    };
    let tokens = state.backend.encode(&text)?;
    if tokens.is_empty() && req.route == Route::Completion {
        return Err(ApiError::invalid_parameter(
            "prompt",
            "'prompt' must not be empty",
        ));
    }
    let room = info.context_length.saturating_sub(tokens.len());
    if room == 0 {
        return Err(ApiError::context_length_exceeded(format!(
            "the prompt has {} tokens; this model's context is {} tokens",
            tokens.len(),
            info.context_length
        )));
    }
    let max_tokens = req.max_tokens.map_or(room, |m| (m as usize).min(room));
    let responder = Responder::new(
        req.route,
        state.new_id(req.route),
        info.id.clone(),
        req.include_usage,
    );
    Ok(Job {
        prompt: Prompt { text, tokens },
        sampling: SamplingParams {
            temperature: req.temperature,
            top_p: req.top_p,
            seed: req.seed.unwrap_or_else(rand::random),
        },
        max_tokens,
        stop: req.stop,
        stream: req.stream,
        responder,
    })
}

fn record(state: &State, outcome: &Outcome) {
    state
        .counters
        .completion_tokens
        .fetch_add(outcome.completion_tokens as u64, Ordering::Relaxed);
}

/// Zero-latency backends: generate on the spot and answer in one body.
fn run_inline(state: &State, session: &mut dyn Session, job: &Job) -> Response<EngineBody> {
    let usage_of = |o: &Outcome| Usage::new(job.prompt.tokens.len(), o.completion_tokens);
    if job.stream {
        let mut out = BytesMut::with_capacity(1024);
        job.responder.sse_start(&mut out);
        let result = generate::run(
            session,
            &job.prompt,
            &job.sampling,
            job.max_tokens,
            &job.stop,
            &mut |piece| {
                job.responder.sse_piece(&mut out, piece);
                true
            },
        );
        match result {
            Ok(outcome) => {
                record(state, &outcome);
                job.responder
                    .sse_finish(&mut out, &outcome, usage_of(&outcome));
            }
            Err(e) => Responder::sse_error(&mut out, &ApiError::from(e)),
        }
        sse_response(EngineBody::Ready(Some(out.freeze())))
    } else {
        let mut text = String::new();
        let result = generate::run(
            session,
            &job.prompt,
            &job.sampling,
            job.max_tokens,
            &job.stop,
            &mut |piece| {
                text.push_str(piece);
                true
            },
        );
        match result {
            Ok(outcome) => {
                record(state, &outcome);
                json_response(
                    StatusCode::OK,
                    job.responder.full(&text, &outcome, usage_of(&outcome)),
                )
            }
            Err(e) => error_response(&ApiError::from(e)),
        }
    }
}

/// Compute-heavy backends: generate on a blocking thread, streaming chunks through a channel.
async fn run_blocking(state: &Arc<State>, mut slot: Slot, job: Job) -> Response<EngineBody> {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let stream = job.stream;
    let worker_state = state.clone();
    let generation = tokio::task::spawn_blocking(move || {
        let Some(session) = slot.session.as_deref_mut() else {
            return Err(ApiError::internal("slot without a session"));
        };
        let mut text = String::new();
        let mut buf = BytesMut::new();
        if stream {
            job.responder.sse_start(&mut buf);
            if !buf.is_empty() && tx.send(buf.split().freeze()).is_err() {
                return Ok(None);
            }
        }
        let result = generate::run(
            session,
            &job.prompt,
            &job.sampling,
            job.max_tokens,
            &job.stop,
            &mut |piece| {
                if stream {
                    job.responder.sse_piece(&mut buf, piece);
                    tx.send(buf.split().freeze()).is_ok()
                } else {
                    text.push_str(piece);
                    !tx.is_closed()
                }
            },
        );
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                let err = ApiError::from(e);
                if stream {
                    Responder::sse_error(&mut buf, &err);
                    let _ = tx.send(buf.split().freeze());
                    return Ok(None);
                }
                return Err(err);
            }
        };
        record(&worker_state, &outcome);
        let usage = Usage::new(job.prompt.tokens.len(), outcome.completion_tokens);
        if outcome.finish_reason == FinishReason::Cancelled {
            return Ok(None);
        }
        if stream {
            job.responder.sse_finish(&mut buf, &outcome, usage);
            let _ = tx.send(buf.split().freeze());
            Ok(None)
        } else {
            Ok(Some(job.responder.full(&text, &outcome, usage)))
        }
    });
    if stream {
        // The blocking task ends on its own; a dropped body closes the channel and cancels it.
        drop(generation);
        return sse_response(EngineBody::Channel(rx));
    }
    // Keep the receiver alive so the generation knows the client is still waiting.
    let _alive = rx;
    match generation.await {
        Ok(Ok(Some(body))) => json_response(StatusCode::OK, body),
        Ok(Ok(None)) => error_response(&ApiError::internal("generation was cancelled")),
        Ok(Err(err)) => error_response(&err),
        Err(e) => error_response(&ApiError::internal(format!("generation task failed: {e}"))),
    }
}
