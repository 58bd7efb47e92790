//! Receipt checks on the gateway side, and the streaming body that hashes and verifies as it forwards.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use cocoon_daemon::http::BoxError;
use cocoon_daemon::shutdown::InFlight;
use cocoon_protocol::{SignedReceipt, headers};
use hyper::HeaderMap;
use hyper::body::Frame;
use sha2::{Digest, Sha256};

use crate::{Gateway, ReceiptRecord};

/// Checks the trailers of one response against what was sent and received.
pub(crate) fn check(
    trailers: Option<&HeaderMap>,
    worker_key: Option<[u8; 32]>,
    request_sha256: &[u8; 32],
    response_sha256: &[u8; 32],
    max_coefficient: u32,
) -> ReceiptRecord {
    let charged_nano = trailers
        .and_then(|t| t.get(headers::CHARGED_NANO))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(raw) = trailers.and_then(|t| t.get(headers::RECEIPT)) else {
        return ReceiptRecord {
            receipt: None,
            status: "no receipt".into(),
            charged_nano,
        };
    };
    let receipt = match SignedReceipt::from_wire(raw.as_bytes()) {
        Ok(r) => r,
        Err(e) => {
            return ReceiptRecord {
                receipt: None,
                status: e.to_string(),
                charged_nano,
            };
        }
    };
    let status = match worker_key {
        None => "no attested worker key".to_owned(),
        Some(key) => match receipt.verify_for(&key, request_sha256, response_sha256) {
            Err(e) => e.to_string(),
            Ok(()) if receipt.receipt.coefficient > max_coefficient => {
                "price above the cap".to_owned()
            }
            Ok(()) => "verified".to_owned(),
        },
    };
    ReceiptRecord {
        receipt: Some(receipt),
        status,
        charged_nano,
    }
}

/// Forwards a streamed response to the app frame by frame, hashing it, and checks the receipt trailer
/// at the end. Trailers are not forwarded (the app speaks HTTP/1.1).
pub(crate) struct VerifyBody {
    pub(crate) inner: hyper::body::Incoming,
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) hasher: Sha256,
    pub(crate) request_sha256: [u8; 32],
    pub(crate) worker_key: Option<[u8; 32]>,
    pub(crate) max_coefficient: u32,
    pub(crate) done: bool,
    pub(crate) _in_flight: InFlight,
}

impl VerifyBody {
    fn finish(&mut self, trailers: Option<&HeaderMap>) {
        if self.done {
            return;
        }
        self.done = true;
        let response_sha256: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        let record = check(
            trailers,
            self.worker_key,
            &self.request_sha256,
            &response_sha256,
            self.max_coefficient,
        );
        self.gateway.record(record);
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
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Err(frame) => {
                        let trailers = frame.into_trailers().ok();
                        this.finish(trailers.as_ref());
                    }
                },
                Some(Err(e)) => {
                    this.finish(None);
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                None => this.finish(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
