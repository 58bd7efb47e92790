//! Receipt checks on the gateway side, and the streaming body that hashes and verifies as it forwards.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use cocoon_audit::Hex32;
use cocoon_daemon::http::BoxError;
use cocoon_daemon::shutdown::InFlight;
use cocoon_protocol::{SignedReceipt, headers};
use hyper::HeaderMap;
use hyper::body::Frame;
use sha2::{Digest, Sha256};

use crate::receipts::{Kept, MAX_KEPT_BODY_BYTES};
use crate::{Gateway, ReceiptRecord, ReceiptStatus};

/// What the gateway knows about one exchange before the response ends.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    /// The response's `x-request-id`.
    pub(crate) request_id: String,
    pub(crate) endpoint: &'static str,
    pub(crate) stream: bool,
    /// The request bytes as sent to the proxy.
    pub(crate) request: Bytes,
    pub(crate) request_sha256: [u8; 32],
    /// The worker key the proxy attested (response header).
    pub(crate) worker_key: Option<[u8; 32]>,
    pub(crate) worker_image: Option<String>,
    pub(crate) worker_insecure: Option<bool>,
    pub(crate) max_coefficient: u32,
}

impl Exchange {
    /// Reads what the proxy forwarded about the worker from the response headers.
    pub(crate) fn forwarded(mut self, h: &HeaderMap) -> Self {
        let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        self.worker_key = text(headers::WORKER_KEY).and_then(|k| crate::parse_key(&k));
        self.worker_image = text(headers::WORKER_IMAGE);
        self.worker_insecure = text(headers::WORKER_INSECURE).map(|v| v == "1");
        self
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks the trailers of one response against what was sent and received, and builds what the
/// store keeps of it.
pub(crate) fn check(
    trailers: Option<&HeaderMap>,
    ex: &Exchange,
    response: Option<Bytes>,
    response_sha256: &[u8; 32],
) -> Kept {
    let charged_nano = trailers
        .and_then(|t| t.get(headers::CHARGED_NANO))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let raw = trailers.and_then(|t| t.get(headers::RECEIPT));
    let (receipt, status) = match raw.map(|r| SignedReceipt::from_wire(r.as_bytes())) {
        None => (None, ReceiptStatus::NoReceipt),
        Some(Err(e)) => (None, ReceiptStatus::Invalid(e.to_string())),
        Some(Ok(receipt)) => {
            let status = match ex.worker_key {
                None => ReceiptStatus::NoAttestedWorkerKey,
                Some(key) => match receipt.verify_for(&key, &ex.request_sha256, response_sha256) {
                    Err(e) => ReceiptStatus::Invalid(e.to_string()),
                    Ok(()) if receipt.receipt.coefficient > ex.max_coefficient => {
                        ReceiptStatus::PriceAboveCap
                    }
                    Ok(()) => ReceiptStatus::Verified,
                },
            };
            (Some(receipt), status)
        }
    };
    Kept {
        record: ReceiptRecord {
            id: 0,
            request_id: Some(ex.request_id.clone()),
            endpoint: ex.endpoint.to_owned(),
            stream: ex.stream,
            received_at: unix_now(),
            request_sha256: Hex32(ex.request_sha256),
            response_sha256: Hex32(*response_sha256),
            worker_key: ex.worker_key.map(Hex32),
            worker_image: ex.worker_image.clone(),
            worker_insecure: ex.worker_insecure,
            receipt,
            receipt_wire: raw.and_then(|r| r.to_str().ok()).map(str::to_owned),
            status,
            charged_nano,
        },
        request: Some(ex.request.clone()),
        response,
    }
}

/// Forwards a streamed response to the app frame by frame, hashing (and keeping) it, and checks the
/// receipt trailer at the end. Trailers are not forwarded (the app speaks HTTP/1.1).
pub(crate) struct VerifyBody {
    pub(crate) inner: hyper::body::Incoming,
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) hasher: Sha256,
    pub(crate) exchange: Exchange,
    /// The frames so far (cheap clones of the forwarded bytes), until they pass the keep limit.
    pub(crate) kept: Option<Vec<Bytes>>,
    pub(crate) kept_len: usize,
    pub(crate) done: bool,
    /// Set when the gateway added `include_usage` itself: the usage event is not forwarded.
    pub(crate) hide_usage: Option<crate::sse_filter::HideUsage>,
    pub(crate) _in_flight: InFlight,
}

impl VerifyBody {
    fn keep(&mut self, data: &Bytes) {
        self.kept_len = self.kept_len.saturating_add(data.len());
        if self.kept_len > MAX_KEPT_BODY_BYTES {
            self.kept = None;
        } else if let Some(k) = self.kept.as_mut() {
            k.push(data.clone());
        }
    }

    fn finish(&mut self, trailers: Option<&HeaderMap>) {
        if self.done {
            return;
        }
        self.done = true;
        let response_sha256: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        let response = self.kept.take().map(|parts| Bytes::from(parts.concat()));
        let kept = check(trailers, &self.exchange, response, &response_sha256);
        self.gateway.record(kept);
    }

    /// Bytes the usage filter still holds when the stream ends.
    fn leftover(&mut self) -> Option<Bytes> {
        self.hide_usage
            .as_mut()
            .map(crate::sse_filter::HideUsage::finish)
            .filter(|b| !b.is_empty())
    }
}

impl hyper::body::Body for VerifyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        this.hasher.update(&data);
                        this.keep(&data);
                        let data = match this.hide_usage.as_mut() {
                            Some(filter) => filter.push(&data),
                            None => data,
                        };
                        if data.is_empty() {
                            continue;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Err(frame) => {
                        let trailers = frame.into_trailers().ok();
                        this.finish(trailers.as_ref());
                        if let Some(rest) = this.leftover() {
                            return Poll::Ready(Some(Ok(Frame::data(rest))));
                        }
                    }
                },
                Some(Err(e)) => {
                    this.finish(None);
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                None => {
                    this.finish(None);
                    if let Some(rest) = this.leftover() {
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
