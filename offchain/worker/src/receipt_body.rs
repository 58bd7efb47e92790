//! The observer that hashes every byte going to the proxy and appends the signed receipt.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cocoon_daemon::http::{Body, BoxError};
use cocoon_daemon::observe::{Ending, Observer, ObservingBody};
use cocoon_daemon::shutdown::InFlight;
use cocoon_protocol::sse::{UsageScanner, usage_of_body};
use cocoon_protocol::{Coefficient, Receipt, headers};
use hyper::body::Frame;
use sha2::{Digest, Sha256};

use crate::WorkerState;

/// Everything needed to sign when the body ends.
pub(crate) struct ReceiptContext {
    pub(crate) state: Arc<WorkerState>,
    pub(crate) signing_key: ed25519_dalek::SigningKey,
    pub(crate) image_hash: [u8; 32],
    pub(crate) request_sha256: [u8; 32],
    pub(crate) model: String,
    pub(crate) coefficient: u32,
    /// The price parameters when the request arrived.
    pub(crate) params: cocoon_protocol::PriceParams,
    pub(crate) streaming: bool,
    /// Largest non-streamed response held whole to read its usage (`max_response_bytes`).
    pub(crate) max_whole: usize,
    pub(crate) _in_flight: InFlight,
    pub(crate) _slot: Slot,
}

/// One unit of the worker's capacity, released on drop.
pub(crate) struct Slot(pub(crate) Arc<WorkerState>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Hashes every byte going to the proxy and signs the receipt trailer when the engine's body ends.
pub(crate) struct ReceiptObserver {
    hasher: Sha256,
    scanner: UsageScanner,
    whole: Vec<u8>,
    /// Set once a non-streamed response passed `max_whole`: nothing more is forwarded and the
    /// body ends with an error, without a receipt.
    too_large: bool,
    ctx: Option<ReceiptContext>,
}

/// The engine's response on its way to the proxy, receipt appended.
pub(crate) fn receipt_body(inner: hyper::body::Incoming, ctx: ReceiptContext) -> Body {
    let observer = ReceiptObserver {
        hasher: Sha256::new(),
        scanner: UsageScanner::new(),
        whole: Vec::new(),
        too_large: false,
        ctx: Some(ctx),
    };
    ObservingBody::new(inner, observer).boxed()
}

impl ReceiptObserver {
    fn finish(&mut self) -> Option<hyper::HeaderMap> {
        let ctx = self.ctx.take()?;
        let usage = if ctx.streaming {
            self.scanner.usage()
        } else {
            usage_of_body(&self.whole)
        };
        let Some(usage) = usage else {
            tracing::warn!(
                "engine reported no usage; response goes out without a receipt and is not charged"
            );
            ctx.state
                .registry
                .counter(
                    "cocoon_worker_unreceipted_total",
                    "Responses without usage.",
                    &[],
                )
                .inc();
            return None;
        };
        let cost = match ctx.params.cost(&usage, Coefficient(ctx.coefficient)) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot price response");
                return None;
            }
        };
        let receipt = Receipt {
            request_sha256: ctx.request_sha256,
            response_sha256: std::mem::take(&mut self.hasher).finalize().into(),
            model: ctx.model.clone(),
            model_hash: ctx.state.model_hash,
            usage,
            coefficient: ctx.coefficient,
            price_per_token: ctx.params.price_per_token,
            cost_nano: cost.client,
            timestamp: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            image_hash: ctx.image_hash,
            worker_key: ctx.signing_key.verifying_key().to_bytes(),
        };
        let signed = receipt.sign(&ctx.signing_key);
        let mut trailers = hyper::HeaderMap::new();
        // Base64url is always a valid header value.
        if let Ok(v) = hyper::header::HeaderValue::from_str(&signed.to_wire()) {
            trailers.insert(headers::RECEIPT, v);
        }
        ctx.state
            .registry
            .counter("cocoon_worker_receipts_total", "Signed receipts.", &[])
            .inc();
        ctx.state
            .registry
            .counter(
                "cocoon_worker_earned_client_nanoton_total",
                "Client cost of served responses.",
                &[],
            )
            .add(u64::try_from(cost.client).unwrap_or(u64::MAX));
        Some(trailers)
    }
}

impl Observer for ReceiptObserver {
    fn data(&mut self, data: Bytes) -> Option<Bytes> {
        if self.too_large {
            return None;
        }
        match self.ctx.as_ref() {
            Some(c) if c.streaming => self.scanner.feed(&data),
            Some(c) => {
                if self.whole.len().saturating_add(data.len()) > c.max_whole {
                    // Beyond the bound: no usage can be read, so no receipt; stop here.
                    self.too_large = true;
                    self.whole = Vec::new();
                    return None;
                }
                self.whole.extend_from_slice(&data);
            }
            None => {}
        }
        self.hasher.update(&data);
        Some(data)
    }

    /// Engine trailers are not forwarded; ours replace them.
    fn trailers(&mut self, _: hyper::HeaderMap) -> Ending {
        Ending::Continue
    }

    fn end(&mut self) -> Ending {
        if self.too_large
            && let Some(ctx) = self.ctx.take()
        {
            let max = ctx.max_whole;
            tracing::warn!(
                max,
                "non-streamed engine response over max_response_bytes: cut, no receipt"
            );
            ctx.state
                .registry
                .counter(
                    "cocoon_worker_oversized_total",
                    "Non-streamed responses cut at max_response_bytes.",
                    &[],
                )
                .inc();
            return Ending::Error(
                format!("non-streamed response larger than max_response_bytes ({max} bytes)")
                    .into(),
            );
        }
        match self.finish() {
            Some(trailers) => Ending::Frame(Frame::trailers(trailers)),
            None => Ending::Done,
        }
    }

    /// The engine failed mid-response: no receipt, the proxy charges nothing.
    fn error(&mut self, error: BoxError) -> Ending {
        self.ctx = None;
        Ending::Error(error)
    }
}
