//! The response body the proxy forwards: bytes pass through untouched; the worker's receipt trailer is
//! verified, priced and committed to the ledger before it is forwarded; a worker failing mid-stream ends
//! the stream cleanly (an SSE error event for streams) and nothing is charged.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use cocoon_daemon::http::{Body, BoxError};
use cocoon_daemon::shutdown::InFlight;
use cocoon_protocol::{ApiError, Coefficient, ErrorCode, SignedReceipt, headers};
use hyper::HeaderMap;
use hyper::body::Frame;

use crate::Proxy;
use crate::api::Reservation;
use crate::registry::Lease;

/// Everything the charge needs; dropping it releases the reservation, the lease and the in-flight mark.
pub(crate) struct ChargeContext {
    pub(crate) proxy: Arc<Proxy>,
    pub(crate) client: [u8; 32],
    pub(crate) lease: Lease,
    pub(crate) cap: u32,
    pub(crate) model: String,
    pub(crate) streaming: bool,
    pub(crate) _reservation: Reservation,
    pub(crate) _in_flight: InFlight,
}

type Commit = Pin<Box<dyn Future<Output = Option<HeaderMap>> + Send>>;

enum State {
    Streaming,
    Committing(Commit),
    Done,
}

pub(crate) struct ChargeBody {
    inner: hyper::body::Incoming,
    ctx: Option<ChargeContext>,
    state: State,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl ChargeBody {
    pub(crate) fn new(
        inner: hyper::body::Incoming,
        ctx: ChargeContext,
        deadline: tokio::time::Instant,
    ) -> Self {
        ChargeBody {
            inner,
            ctx: Some(ctx),
            state: State::Streaming,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    pub(crate) fn boxed(self) -> Body {
        http_body_util::BodyExt::boxed_unsync(self)
    }

    /// The worker failed or the deadline passed after the first byte: end cleanly, charge nothing.
    fn fail(
        &mut self,
        code: ErrorCode,
        why: String,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.state = State::Done;
        let Some(ctx) = self.ctx.take() else {
            return Poll::Ready(None);
        };
        ctx.lease.0.failed.fetch_add(1, Ordering::Relaxed);
        ctx.proxy
            .metrics
            .counter(
                "cocoon_proxy_failed_midstream_total",
                "Responses cut after the first byte.",
                &[],
            )
            .inc();
        tracing::warn!(worker = %hex::encode(ctx.lease.0.identity.public_key), %why, "response cut after the first byte; not charged");
        if ctx.streaming {
            let e = ApiError::new(code, why);
            let mut event = b"data: ".to_vec();
            event.extend_from_slice(&e.to_json());
            event.extend_from_slice(b"\n\n");
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))))
        } else {
            Poll::Ready(Some(Err(why.into())))
        }
    }
}

async fn commit(ctx: ChargeContext, trailers: HeaderMap) -> Option<HeaderMap> {
    let worker = &ctx.lease.0;
    let Some(raw) = trailers.get(headers::RECEIPT) else {
        tracing::warn!("worker sent no receipt; not charged");
        return None;
    };
    let receipt = match SignedReceipt::from_wire(raw.as_bytes())
        .and_then(|r| r.verify_signature().map(|_| r))
    {
        Ok(r) => r,
        Err(e) => {
            worker.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "invalid receipt; not charged");
            return None;
        }
    };
    let r = &receipt.receipt;
    if r.worker_key != worker.identity.public_key || r.model != ctx.model || r.coefficient > ctx.cap
    {
        worker.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("receipt does not match the worker, model or price cap; not charged");
        return None;
    }
    let cost = match ctx
        .proxy
        .chain
        .params()
        .cost(&r.usage, Coefficient(r.coefficient))
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot price receipt; not charged");
            return None;
        }
    };
    let outcome = match ctx
        .proxy
        .store
        .charge(ctx.client, worker.identity.public_key, cost)
        .await
    {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "ledger commit failed; response not acknowledged");
            return None;
        }
    };
    worker.ok.fetch_add(1, Ordering::Relaxed);
    let m = &ctx.proxy.metrics;
    m.counter("cocoon_proxy_charges_total", "Committed charges.", &[])
        .inc();
    m.counter(
        "cocoon_proxy_charged_nanoton_total",
        "Charged to clients.",
        &[],
    )
    .add(u64::try_from(cost.client).unwrap_or(u64::MAX));
    crate::settle::maybe_settle(&ctx.proxy, ctx.client, worker.identity.public_key, &outcome);
    let mut out = HeaderMap::new();
    out.insert(headers::RECEIPT, raw.clone());
    if let Ok(v) = hyper::header::HeaderValue::from_str(&cost.client.to_string()) {
        out.insert(headers::CHARGED_NANO, v);
    }
    Some(out)
}

impl hyper::body::Body for ChargeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Committing(fut) => {
                    let out = std::task::ready!(fut.as_mut().poll(cx));
                    this.state = State::Done;
                    return Poll::Ready(out.map(|t| Ok(Frame::trailers(t))));
                }
                State::Streaming => {}
            }
            if this.deadline.as_mut().poll(cx).is_ready() {
                return this.fail(ErrorCode::Timeout, "request deadline passed".into());
            }
            match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_trailers() {
                    Ok(trailers) => {
                        let Some(ctx) = this.ctx.take() else {
                            return Poll::Ready(None);
                        };
                        this.state = State::Committing(Box::pin(commit(ctx, trailers)));
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Some(Err(e)) => {
                    return this.fail(
                        ErrorCode::UpstreamFailed,
                        format!("worker failed mid-response: {e}"),
                    );
                }
                None => {
                    if let Some(ctx) = this.ctx.take() {
                        tracing::warn!(worker = %hex::encode(ctx.lease.0.identity.public_key), "response ended without a receipt; not charged");
                    }
                    this.state = State::Done;
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }
}
