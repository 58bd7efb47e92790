//! The response body the proxy forwards: bytes pass through untouched; the worker's receipt trailer is
//! verified, priced and committed to the ledger before it is forwarded; a worker failing mid-stream ends
//! the stream cleanly (an SSE error event for streams) and nothing is charged.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use cocoon_daemon::http::{Body, BoxError};
use cocoon_daemon::observe::{Ending, Observer, ObservingBody};
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

/// Watches the worker's response on its way to the client and charges on its receipt trailer.
pub(crate) struct ChargeObserver {
    ctx: Option<ChargeContext>,
}

/// The worker's response as the client receives it; the stream ends at `deadline` if still open.
pub(crate) fn charge_body(
    inner: hyper::body::Incoming,
    ctx: ChargeContext,
    deadline: tokio::time::Instant,
) -> Body {
    ObservingBody::new(inner, ChargeObserver { ctx: Some(ctx) })
        .with_deadline(deadline)
        .boxed()
}

impl ChargeObserver {
    /// The worker failed or the deadline passed after the first byte: end cleanly, charge nothing.
    /// A deadline counts against the worker only when it was the proxy's own (see [`Lease`]).
    fn fail(&mut self, code: ErrorCode, why: String, deadline: bool) -> Ending {
        let Some(ctx) = self.ctx.take() else {
            return Ending::Done;
        };
        if deadline {
            ctx.lease.deadline_passed();
        } else {
            ctx.lease.0.failed.fetch_add(1, Ordering::Relaxed);
        }
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
            Ending::Frame(Frame::data(Bytes::from(event)))
        } else {
            Ending::Error(why.into())
        }
    }
}

impl Observer for ChargeObserver {
    fn data(&mut self, data: Bytes) -> Option<Bytes> {
        Some(data)
    }

    fn trailers(&mut self, trailers: HeaderMap) -> Ending {
        match self.ctx.take() {
            Some(ctx) => Ending::Later(Box::pin(commit(ctx, trailers))),
            None => Ending::Done,
        }
    }

    fn end(&mut self) -> Ending {
        if let Some(ctx) = self.ctx.take() {
            tracing::warn!(worker = %hex::encode(ctx.lease.0.identity.public_key), "response ended without a receipt; not charged");
        }
        Ending::Done
    }

    fn error(&mut self, error: BoxError) -> Ending {
        self.fail(
            ErrorCode::UpstreamFailed,
            format!("worker failed mid-response: {error}"),
            false,
        )
    }

    fn deadline(&mut self) -> Ending {
        self.fail(ErrorCode::Timeout, "request deadline passed".into(), true)
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
