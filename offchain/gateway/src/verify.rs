//! Receipt checks on the gateway side, and the observer that hashes and verifies a stream as it is
//! forwarded.

use std::sync::Arc;

use bytes::Bytes;
use cocoon_attestation::{PeerIdentity, TeeKind};
use cocoon_audit::Hex32;
use cocoon_daemon::http::{Body, BoxError};
use cocoon_daemon::observe::{Ending, Observer, ObservingBody};
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
    /// The gateway's own verification of `worker_key` (certificate and quote), when one was named.
    pub(crate) attested: Option<Result<Arc<PeerIdentity>, String>>,
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

    /// Verifies the named worker's certificate and quote through the gateway's own policy.
    pub(crate) async fn attest(mut self, gw: &Gateway) -> Self {
        if let Some(key) = self.worker_key {
            self.attested = Some(gw.attest_worker(key).await);
        }
        self
    }
}

/// The receipt's status once its signature over these bytes holds: the signer must be a worker the
/// gateway verified itself, running the image the receipt names, at an acceptable price.
fn attested_status(ex: &Exchange, receipt: &SignedReceipt) -> ReceiptStatus {
    let identity = match &ex.attested {
        None => return ReceiptStatus::not_attested("the gateway did not check the worker"),
        Some(Err(why)) => return ReceiptStatus::not_attested(why),
        Some(Ok(identity)) => identity,
    };
    if identity.public_key != receipt.receipt.worker_key {
        return ReceiptStatus::not_attested("the receipt is signed by another key");
    }
    let measured = !matches!(identity.tee, TeeKind::None) && identity.image_hash != [0u8; 32];
    if measured && identity.image_hash != receipt.receipt.image_hash {
        return ReceiptStatus::Invalid(format!(
            "the receipt names image {}, the worker's quote measures {}",
            hex::encode(receipt.receipt.image_hash),
            hex::encode(identity.image_hash)
        ));
    }
    if receipt.receipt.coefficient > ex.max_coefficient {
        return ReceiptStatus::PriceAboveCap;
    }
    ReceiptStatus::Verified
}

/// What differs between the proxy's charge and the receipt's price, if anything.
fn charge_mismatch(charged: Option<&str>, receipt: Option<&SignedReceipt>) -> Option<String> {
    let (charged, receipt) = (charged?, receipt?);
    let cost = receipt.receipt.cost_nano;
    match charged.parse::<u128>() {
        Err(_) => Some(format!("the proxy's charge {charged:?} is not an integer")),
        Ok(c) if c != cost => Some(format!(
            "the proxy charged {c} nanoTON, the worker's receipt prices the response at {cost}"
        )),
        Ok(_) => None,
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
                    Ok(()) => attested_status(ex, &receipt),
                },
            };
            (Some(receipt), status)
        }
    };
    let mismatch = charge_mismatch(charged_nano.as_deref(), receipt.as_ref());
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
            charge_mismatch: mismatch,
            charged_nano,
        },
        request: Some(ex.request.clone()),
        response,
    }
}

/// Watches a streamed response on its way to the app, hashing (and keeping) it, and checks the
/// receipt trailer at the end. Trailers are not forwarded (the app speaks HTTP/1.1).
pub(crate) struct VerifyObserver {
    gateway: Arc<Gateway>,
    hasher: Sha256,
    exchange: Exchange,
    /// The frames so far (cheap clones of the forwarded bytes), until they pass the keep limit.
    kept: Option<Vec<Bytes>>,
    kept_len: usize,
    done: bool,
    /// Set when the gateway added `include_usage` itself: the usage event is not forwarded.
    hide_usage: Option<crate::sse_filter::HideUsage>,
    _in_flight: InFlight,
}

/// The streamed response as the app receives it, verified as it passes.
pub(crate) fn verify_body(
    inner: hyper::body::Incoming,
    gateway: Arc<Gateway>,
    exchange: Exchange,
    hide_usage: Option<crate::sse_filter::HideUsage>,
    in_flight: InFlight,
) -> Body {
    let observer = VerifyObserver {
        gateway,
        hasher: Sha256::new(),
        exchange,
        kept: Some(Vec::new()),
        kept_len: 0,
        done: false,
        hide_usage,
        _in_flight: in_flight,
    };
    ObservingBody::new(inner, observer).boxed()
}

impl VerifyObserver {
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

    /// Ends the body, with the bytes the usage filter still holds, if any.
    fn ending(&mut self) -> Ending {
        let rest = self
            .hide_usage
            .as_mut()
            .map(crate::sse_filter::HideUsage::finish)
            .filter(|b| !b.is_empty());
        match rest {
            Some(rest) => Ending::Frame(Frame::data(rest)),
            None => Ending::Done,
        }
    }
}

impl Observer for VerifyObserver {
    fn data(&mut self, data: Bytes) -> Option<Bytes> {
        self.hasher.update(&data);
        self.keep(&data);
        let data = match self.hide_usage.as_mut() {
            Some(filter) => filter.push(&data),
            None => data,
        };
        (!data.is_empty()).then_some(data)
    }

    fn trailers(&mut self, trailers: HeaderMap) -> Ending {
        self.finish(Some(&trailers));
        self.ending()
    }

    fn end(&mut self) -> Ending {
        self.finish(None);
        self.ending()
    }

    fn error(&mut self, error: BoxError) -> Ending {
        self.finish(None);
        Ending::Error(error)
    }
}
