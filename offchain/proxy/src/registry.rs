//! Connected workers and how one is chosen for a request.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cocoon_daemon::http::Body;
use cocoon_daemon::tls::PeerIdentity;
use hyper::client::conn::http2::SendRequest;

/// One connected worker.
#[derive(Debug)]
pub struct WorkerEntry {
    /// Connection id (unique per proxy run).
    pub id: u64,
    /// Attested identity from the TLS handshake.
    pub identity: PeerIdentity,
    /// The worker's certificate (DER) from that handshake (its RA-TLS evidence), served to gateways
    /// at `GET /cocoon/v1/workers/{key}/certificate` for their proof bundles.
    pub certificate: Vec<u8>,
    /// Served model.
    pub model: String,
    /// Current coefficient, thousandths.
    pub coefficient: AtomicU32,
    /// Announced capacity.
    pub capacity: AtomicU32,
    /// Requests this proxy has in flight on it.
    pub in_flight: AtomicU32,
    /// Exponentially weighted time to response headers, µs (0 = unmeasured).
    pub latency_us: AtomicU64,
    /// Successful responses.
    pub ok: AtomicU64,
    /// Failures (before or after the first byte).
    pub failed: AtomicU64,
    /// Set when the connection closed.
    pub closed: AtomicBool,
    pub(crate) sender: SendRequest<Body>,
}

impl WorkerEntry {
    /// Records a response's time to headers.
    pub fn observe_latency(&self, d: Duration) {
        let sample = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let old = self.latency_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old * 7 + sample) / 8
        };
        self.latency_us.store(new, Ordering::Relaxed);
    }

    /// Success rate in thousandths (1000 until anything failed).
    pub fn success_milli(&self) -> u64 {
        let ok = self.ok.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        (ok * 1000).checked_div(ok + failed).unwrap_or(1000)
    }

    /// Free capacity.
    pub fn free(&self) -> u32 {
        self.capacity
            .load(Ordering::Relaxed)
            .saturating_sub(self.in_flight.load(Ordering::Relaxed))
    }

    /// A sender for one request.
    pub(crate) fn sender(&self) -> SendRequest<Body> {
        self.sender.clone()
    }
}

/// Holds one unit of a worker's capacity.
#[derive(Debug)]
pub struct Lease(pub Arc<WorkerEntry>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why no worker was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoWorker {
    /// Nobody serves the model.
    UnknownModel,
    /// Someone serves it, but none under the cap, with capacity, healthy and untried.
    NoneAvailable,
}

/// All connected workers.
#[derive(Debug, Default)]
pub struct Registry {
    workers: Mutex<Vec<Arc<WorkerEntry>>>,
    /// Workers whose success rate is below this (after 5+ responses) are skipped, thousandths.
    pub min_success_milli: u64,
}

impl Registry {
    /// An empty registry.
    pub fn new(min_success_milli: u64) -> Self {
        Registry {
            workers: Mutex::new(Vec::new()),
            min_success_milli,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<WorkerEntry>>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a worker.
    pub fn add(&self, w: Arc<WorkerEntry>) {
        self.lock().push(w);
    }

    /// Removes a worker by connection id.
    pub fn remove(&self, id: u64) {
        self.lock().retain(|w| w.id != id);
    }

    /// Every connected worker.
    pub fn all(&self) -> Vec<Arc<WorkerEntry>> {
        self.lock().clone()
    }

    /// Picks the cheapest acceptable worker and leases one unit of its capacity. Among equal prices it
    /// prefers more free capacity, then lower measured latency.
    pub fn pick(&self, model: &str, cap: u32, tried: &[u64]) -> Result<Lease, NoWorker> {
        let workers = self.lock();
        let mut serving = false;
        let mut best: Option<&Arc<WorkerEntry>> = None;
        for w in workers
            .iter()
            .filter(|w| w.model == model && !w.closed.load(Ordering::Relaxed))
        {
            serving = true;
            let failures = w.failed.load(Ordering::Relaxed) + w.ok.load(Ordering::Relaxed);
            let healthy = failures < 5 || w.success_milli() >= self.min_success_milli;
            if tried.contains(&w.id)
                || w.coefficient.load(Ordering::Relaxed) > cap
                || w.free() == 0
                || !healthy
            {
                continue;
            }
            let key = |w: &WorkerEntry| {
                (
                    w.coefficient.load(Ordering::Relaxed),
                    u32::MAX - w.free(),
                    w.latency_us.load(Ordering::Relaxed),
                )
            };
            if best.is_none_or(|b| key(w) < key(b)) {
                best = Some(w);
            }
        }
        match best {
            Some(w) => {
                w.in_flight.fetch_add(1, Ordering::AcqRel);
                Ok(Lease(w.clone()))
            }
            None if serving => Err(NoWorker::NoneAvailable),
            None => Err(NoWorker::UnknownModel),
        }
    }

    /// `/v1/models`: each model with live workers, price range and capacity.
    pub fn models_json(&self) -> serde_json::Value {
        let mut by_model: std::collections::BTreeMap<String, (u32, u32, u32, u32, u32)> =
            Default::default();
        for w in self
            .lock()
            .iter()
            .filter(|w| !w.closed.load(Ordering::Relaxed))
        {
            let coef = w.coefficient.load(Ordering::Relaxed);
            let e = by_model
                .entry(w.model.clone())
                .or_insert((0, u32::MAX, 0, 0, 0));
            e.0 += 1;
            e.1 = e.1.min(coef);
            e.2 = e.2.max(coef);
            e.3 += w.capacity.load(Ordering::Relaxed);
            e.4 += w.free();
        }
        let data: Vec<_> = by_model
            .into_iter()
            .map(|(id, (workers, min, max, capacity, free))| {
                serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": "cocoon",
                    "cocoon": {"workers": workers, "min_coefficient": min, "max_coefficient": max,
                               "capacity": capacity, "free_capacity": free}})
            })
            .collect();
        serde_json::json!({"object": "list", "data": data})
    }
}
