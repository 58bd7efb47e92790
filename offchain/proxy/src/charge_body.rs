//! The response body the proxy forwards, and the charge on it.
//!
//! The worker's response is read by a task of its own ([`pump`]), not by the client: it runs to the
//! worker's end (or the proxy's deadline) whatever the client does, and the receipt trailer is
//! verified, priced, capped at the reservation and committed to the ledger there. The client reads
//! what the task hands it through a bounded buffer ([`CLIENT_BUFFER_BYTES`]); a client that resets
//! the stream, closes its connection or stops granting HTTP/2 window only stops receiving (what it
//! does not read is dropped), it does not stop the charge. The charging rule for every ending is in
//! docs/protocol.md ("Charging rule"):
//!
//! - receipt trailer: charged `min(receipt, reservation)`, the receipt forwarded after the commit;
//! - the worker's body ends without a receipt, fails, or is still running at the proxy's deadline: a
//!   worker failure, nobody pays (the worker's stream is dropped there, which frees its capacity);
//! - the client's own deadline (`x-cocoon-timeout-ms`) ends the client's side only, like a reset.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use cocoon_daemon::http::{Body, BoxError};
use cocoon_daemon::shutdown::InFlight;
use cocoon_protocol::{ApiError, Coefficient, Cost, ErrorCode, SignedReceipt, headers};
use http_body_util::BodyExt;
use hyper::HeaderMap;
use hyper::body::{Frame, SizeHint};
use tokio::sync::mpsc;

use crate::Proxy;
use crate::api::Reservation;
use crate::registry::Lease;

/// Most response bytes held for one client that does not read: past this, the rest of the answer is
/// dropped for that client (its stream ends with an error) while the worker's stream still runs to
/// its receipt. Each buffered frame also counts [`FRAME_OVERHEAD`].
pub(crate) const CLIENT_BUFFER_BYTES: usize = 4 << 20;
const FRAME_OVERHEAD: usize = 64;

/// Everything the charge needs; dropping it releases the reservation, the lease and the in-flight mark
/// (after the charge is committed, so that a reservation read never misses it).
pub(crate) struct ChargeContext {
    pub(crate) proxy: Arc<Proxy>,
    pub(crate) client: [u8; 32],
    pub(crate) lease: Lease,
    pub(crate) cap: u32,
    pub(crate) model: String,
    pub(crate) streaming: bool,
    pub(crate) reservation: Reservation,
    pub(crate) _in_flight: InFlight,
}

/// What the pump hands the client's body.
enum Item {
    Data(Bytes),
    /// The last data (an SSE error event), outside the buffer bound.
    Last(Bytes),
    Trailers(HeaderMap),
    /// The stream ends with this error (a non-streamed answer cut, or a client that fell behind).
    Fail(BoxError),
}

/// The worker's response as the client receives it. The worker's side runs until `deadline` (the
/// proxy's own); the client's side ends at `client_deadline` (never later than `deadline`).
pub(crate) fn charge_body(
    inner: hyper::body::Incoming,
    ctx: ChargeContext,
    client_deadline: tokio::time::Instant,
    deadline: tokio::time::Instant,
) -> Body {
    let (tx, rx) = mpsc::unbounded_channel();
    let buffered = Arc::new(AtomicUsize::new(0));
    let streaming = ctx.streaming;
    let out = Outbox {
        tx,
        buffered: buffered.clone(),
        detached: false,
    };
    tokio::spawn(pump(inner, ctx, out, deadline));
    ClientBody {
        rx,
        buffered,
        streaming,
        client_deadline: Box::pin(tokio::time::sleep_until(client_deadline.min(deadline))),
        done: false,
    }
    .boxed_unsync()
}

/// The pump's side of the client buffer.
struct Outbox {
    tx: mpsc::UnboundedSender<Item>,
    buffered: Arc<AtomicUsize>,
    /// The client is gone or fell behind: nothing more is sent to it.
    detached: bool,
}

impl Outbox {
    fn data(&mut self, data: Bytes) {
        if self.detached {
            return;
        }
        let cost = data.len().saturating_add(FRAME_OVERHEAD);
        let held = self.buffered.fetch_add(cost, Ordering::AcqRel);
        if held.saturating_add(cost) > CLIENT_BUFFER_BYTES {
            self.buffered.fetch_sub(cost, Ordering::AcqRel);
            self.detached = true;
            let _ = self.tx.send(Item::Fail(
                "client did not read its answer; the rest was dropped".into(),
            ));
            return;
        }
        if self.tx.send(Item::Data(data)).is_err() {
            self.detached = true;
        }
    }

    /// A last item, past the buffer bound (one per stream).
    fn last(&mut self, item: Item) {
        if !self.detached {
            let _ = self.tx.send(item);
        }
        self.detached = true;
    }
}

/// Reads the worker's response to its end, independently of the client, and charges its receipt.
async fn pump(
    mut inner: hyper::body::Incoming,
    ctx: ChargeContext,
    mut out: Outbox,
    deadline: tokio::time::Instant,
) {
    let cut = tokio::time::sleep_until(deadline);
    tokio::pin!(cut);
    loop {
        let frame = tokio::select! {
            frame = inner.frame() => frame,
            () = &mut cut => {
                // Dropping the worker's body resets its stream: its capacity is free from here.
                drop(inner);
                fail(ctx, &mut out, ErrorCode::Timeout, "request deadline passed".into());
                return;
            }
        };
        match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => out.data(data),
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        drop(inner);
                        if let Some(t) = commit(ctx, &trailers).await {
                            out.last(Item::Trailers(t));
                        }
                        return;
                    }
                }
            },
            Some(Err(e)) => {
                fail(
                    ctx,
                    &mut out,
                    ErrorCode::UpstreamFailed,
                    format!("worker failed mid-response: {e}"),
                );
                return;
            }
            None => {
                unreceipted(&ctx, "response ended without a receipt");
                return;
            }
        }
    }
}

/// The worker failed, or the proxy's deadline passed, after the first byte: end the client's stream
/// cleanly (an SSE error event for streams), charge nothing, count it against the worker.
fn fail(ctx: ChargeContext, out: &mut Outbox, code: ErrorCode, why: String) {
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
        out.last(Item::Last(Bytes::from(event)));
    } else {
        out.last(Item::Fail(why.into()));
    }
}

/// A finished response without a (valid) receipt: the worker's fault, nobody pays.
fn unreceipted(ctx: &ChargeContext, why: &str) {
    ctx.lease.0.failed.fetch_add(1, Ordering::Relaxed);
    ctx.proxy
        .metrics
        .counter(
            "cocoon_proxy_unreceipted_total",
            "Finished responses without a valid receipt (worker faults, not charged).",
            &[],
        )
        .inc();
    tracing::warn!(worker = %hex::encode(ctx.lease.0.identity.public_key), why, "worker fault; not charged");
}

/// Verifies, prices, caps and commits the receipt; the trailers to forward once committed.
async fn commit(ctx: ChargeContext, trailers: &HeaderMap) -> Option<HeaderMap> {
    let worker = &ctx.lease.0;
    let Some(raw) = trailers.get(headers::RECEIPT) else {
        unreceipted(&ctx, "worker sent no receipt");
        return None;
    };
    let receipt = match SignedReceipt::from_wire(raw.as_bytes())
        .and_then(|r| r.verify_signature().map(|_| r))
    {
        Ok(r) => r,
        Err(e) => {
            unreceipted(&ctx, &format!("invalid receipt: {e}"));
            return None;
        }
    };
    let r = &receipt.receipt;
    if r.worker_key != worker.identity.public_key || r.model != ctx.model || r.coefficient > ctx.cap
    {
        unreceipted(
            &ctx,
            "receipt does not match the worker, model or price cap",
        );
        return None;
    }
    let params = ctx.proxy.chain.params();
    let cost = match params
        .cost(&r.usage, Coefficient(r.coefficient))
        .and_then(|c| cap_at_reservation(&ctx, &params, c))
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot price receipt; not charged");
            return None;
        }
    };
    // This task is never cancelled by the client: once the ledger has the charge, the metrics do too.
    let outcome = match crate::settle::charge(&ctx.proxy, &ctx.client, worker, cost).await {
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
    crate::settle::maybe_settle(&ctx.proxy, &ctx.client, worker, &outcome);
    let mut out = HeaderMap::new();
    out.insert(headers::RECEIPT, raw.clone());
    if let Ok(v) = hyper::header::HeaderValue::from_str(&cost.client.to_string()) {
        out.insert(headers::CHARGED_NANO, v);
    }
    Some(out)
}

/// A receipt above the reservation is the worker's fault: the client pays the reservation, the
/// split follows the same rule (the worker's share of what was actually charged).
fn cap_at_reservation(
    ctx: &ChargeContext,
    params: &cocoon_protocol::PriceParams,
    cost: Cost,
) -> Result<Cost, cocoon_protocol::PricingError> {
    let reserved = ctx.reservation.amount();
    if cost.client <= reserved {
        return Ok(cost);
    }
    ctx.proxy
        .metrics
        .counter(
            "cocoon_proxy_receipts_over_reservation_total",
            "Receipts above their reservation (worker faults; charged the reservation).",
            &[],
        )
        .inc();
    tracing::warn!(
        worker = %hex::encode(ctx.lease.0.identity.public_key),
        receipt = %cost.client,
        reserved = %reserved,
        "receipt above the reservation; the client pays the reservation"
    );
    params.split(reserved)
}

/// The client's side: what the pump handed over, until the client's deadline.
struct ClientBody {
    rx: mpsc::UnboundedReceiver<Item>,
    buffered: Arc<AtomicUsize>,
    streaming: bool,
    client_deadline: Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

impl hyper::body::Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(Item::Data(data))) => {
                this.buffered
                    .fetch_sub(data.len().saturating_add(FRAME_OVERHEAD), Ordering::AcqRel);
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            Poll::Ready(Some(Item::Last(data))) => {
                this.done = true;
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            Poll::Ready(Some(Item::Trailers(t))) => {
                this.done = true;
                return Poll::Ready(Some(Ok(Frame::trailers(t))));
            }
            Poll::Ready(Some(Item::Fail(e))) => {
                this.done = true;
                return Poll::Ready(Some(Err(e)));
            }
            Poll::Ready(None) => {
                this.done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if this.client_deadline.as_mut().poll(cx).is_ready() {
            // The client stops waiting; the worker's stream still runs and is charged (see module docs).
            this.done = true;
            this.rx.close();
            let why = "client deadline passed";
            if this.streaming {
                let e = ApiError::new(ErrorCode::Timeout, why);
                let mut event = b"data: ".to_vec();
                event.extend_from_slice(&e.to_json());
                event.extend_from_slice(b"\n\n");
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))));
            }
            return Poll::Ready(Some(Err(why.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
