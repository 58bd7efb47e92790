//! Proof-bundle export: the gateway's records and the worker certificates it fetched, written in the
//! `cocoon-audit` format (which also holds the offline verifier; auditing needs no gateway).

use std::collections::BTreeSet;

use cocoon_audit::{
    BUNDLE_FORMAT, BUNDLE_VERSION, BodyEvidence, ChargeEvidence, Forwarded, ResponseEvidence,
    WorkerEvidence,
};

/// The bundle and the selection of `GET /cocoon/v1/bundle`, as the export writes and reads them.
pub use cocoon_audit::{ProofBundle, Selection};

use crate::Gateway;
use crate::receipts::Kept;

impl Gateway {
    /// A proof bundle of the selected records. Worker certificates not fetched yet are fetched from
    /// the proxy now (a worker that left is then missing, and the bundle says so by a `null`).
    pub async fn bundle(&self, selection: &Selection) -> ProofBundle {
        let kept = self.selected(selection);
        let mut keys = BTreeSet::new();
        for k in &kept {
            keys.extend(k.record.receipt.as_ref().map(|r| r.receipt.worker_key));
            keys.extend(k.record.worker_key.map(|key| key.0));
        }
        let mut workers = Vec::new();
        for key in keys {
            if self.worker_certificate(&key).is_none()
                && let Err(e) = self.fetch_certificate(key).await
            {
                tracing::warn!(worker = %hex::encode(key), error = %e, "bundle without this worker's certificate");
            }
            let der = self.worker_certificate(&key);
            workers.push(WorkerEvidence::new(&key, der.as_deref()));
        }
        let responses = kept
            .iter()
            .map(|k| response_evidence(k, selection.include_bodies))
            .collect();
        ProofBundle {
            format: BUNDLE_FORMAT.to_owned(),
            version: BUNDLE_VERSION,
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            workers,
            responses,
        }
    }

    /// The kept records `selection` names, oldest first.
    fn selected(&self, selection: &Selection) -> Vec<Kept> {
        let mut kept: Vec<_> = self
            .lock_store()
            .records()
            .filter(|k| selection.contains(k.record.id, k.record.request_id.as_deref()))
            .cloned()
            .collect();
        if let Some(n) = selection.last {
            kept.drain(..kept.len().saturating_sub(n));
        }
        kept
    }
}

/// One record as bundle evidence; the bodies only when `include_bodies`.
fn response_evidence(k: &Kept, include_bodies: bool) -> ResponseEvidence {
    let r = &k.record;
    let body = |sha256: &cocoon_audit::Hex32, bytes: Option<&bytes::Bytes>| {
        BodyEvidence::new(&sha256.0, bytes.filter(|_| include_bodies).map(|b| &b[..]))
    };
    ResponseEvidence {
        id: r.id,
        request_id: r.request_id.clone(),
        endpoint: r.endpoint.clone(),
        stream: r.stream,
        received_at: r.received_at,
        receipt: r.receipt_wire.clone(),
        receipt_decoded: r.receipt.clone(),
        request: body(&r.request_sha256, k.request.as_ref()),
        response: body(&r.response_sha256, k.response.as_ref()),
        forwarded: Forwarded {
            worker_key: r.worker_key.map(|k| k.to_string()),
            image_hash: r.worker_image.clone(),
            insecure: r.worker_insecure,
        },
        gateway_status: r.status.to_string(),
        charge: ChargeEvidence {
            charged_nano: r.charged_nano.clone(),
            signed_charge: None,
        },
    }
}
