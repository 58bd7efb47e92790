//! Connected workers and how one is chosen for a request.
//!
//! Health: only a worker's own faults count against it (it failed before or after the first byte,
//! refused with a 5xx, sent a bad receipt, or missed the proxy's own deadline); a deadline the
//! client chose, or a client that went away, is nobody's fault. The lifetime counters `ok` and
//! `failed` only grow; what `pick` judges is their recent history: each new result enters a score
//! that halves every `half_life`, so a bad spell fades. A worker skipped for its success rate is
//! given one request again every `probe_interval`; a good answer lifts its rate back.
//!
//! Capacity: an announced capacity is believed up to `max_capacity` (a worker announcing
//! `u32::MAX` would otherwise win every tie-break), and totals are summed without overflow.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Recent results, decayed (see the module docs).
    pub(crate) health: Mutex<Health>,
    pub(crate) sender: SendRequest<Body>,
}

/// A worker's recent results: decayed scores of the counters' growth.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Health {
    /// Decayed successes and faults.
    ok: f64,
    failed: f64,
    /// The lifetime counters when the scores were last brought up to date.
    seen_ok: u64,
    seen_failed: u64,
    /// When the scores were last decayed.
    at: Instant,
    /// When a skipped worker may next be given a request.
    next_probe: Option<Instant>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            ok: 0.0,
            failed: 0.0,
            seen_ok: 0,
            seen_failed: 0,
            at: Instant::now(),
            next_probe: None,
        }
    }
}

/// How the registry judges workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Workers whose recent success rate is below this (over 5+ recent results) are skipped,
    /// thousandths.
    pub min_success_milli: u64,
    /// Scores halve in this time.
    pub half_life: Duration,
    /// A skipped worker gets one request again this often.
    pub probe_interval: Duration,
    /// Announced capacities are believed up to this.
    pub max_capacity: u32,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            min_success_milli: 500,
            half_life: Duration::from_secs(60),
            probe_interval: Duration::from_secs(5),
            max_capacity: 1024,
        }
    }
}

/// Recent results below this many are too few to judge a worker by.
const MIN_RESULTS: f64 = 5.0;

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

    /// Lifetime success rate in thousandths (1000 until anything failed); `pick` judges the
    /// recent rate instead ([`WorkerEntry::recent_success_milli`]).
    pub fn success_milli(&self) -> u64 {
        let ok = self.ok.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        ok.saturating_mul(1000)
            .checked_div(ok.saturating_add(failed))
            .unwrap_or(1000)
    }

    /// Brings the decayed scores up to date at `now`: old scores decay, the counters' growth since
    /// the last update enters at full weight.
    fn update_health(&self, h: &mut Health, now: Instant, half_life: Duration) {
        let dt = now.saturating_duration_since(h.at).as_secs_f64();
        let factor = 0.5f64.powf(dt / half_life.as_secs_f64().max(1e-3));
        let ok = self.ok.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        // Precision loss above 2^53 results is irrelevant to a rate.
        #[allow(clippy::cast_precision_loss)]
        let (d_ok, d_failed) = (
            ok.saturating_sub(h.seen_ok) as f64,
            failed.saturating_sub(h.seen_failed) as f64,
        );
        h.ok = h.ok * factor + d_ok;
        h.failed = h.failed * factor + d_failed;
        h.seen_ok = ok;
        h.seen_failed = failed;
        h.at = h.at.max(now);
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Recent success rate in thousandths, and the (decayed) number of results it is made of
    /// (1000 with none).
    pub fn recent_success_milli(&self, half_life: Duration) -> (u64, f64) {
        let mut h = self.health();
        self.update_health(&mut h, Instant::now(), half_life);
        let total = h.ok + h.failed;
        if total <= f64::EPSILON {
            return (1000, 0.0);
        }
        // A rate in [0, 1000]: the cast cannot truncate meaningfully.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let milli = ((h.ok / total) * 1000.0).round() as u64;
        (milli.min(1000), total)
    }

    /// Whether `pick` may give this worker a request now: healthy, or skipped and due a probe
    /// (which this call then takes: the next probe is one interval later).
    fn may_serve(&self, policy: &HealthPolicy, now: Instant) -> bool {
        let mut h = self.health();
        self.update_health(&mut h, now, policy.half_life);
        let total = h.ok + h.failed;
        #[allow(clippy::cast_precision_loss)]
        let min = policy.min_success_milli as f64 / 1000.0;
        if total < MIN_RESULTS || h.ok >= min * total {
            h.next_probe = None;
            return true;
        }
        match h.next_probe {
            Some(at) if at > now => false,
            // Just found unhealthy: skipped for one probe interval, then probed.
            None => {
                h.next_probe = Some(now + policy.probe_interval);
                false
            }
            Some(_) => {
                h.next_probe = Some(now + policy.probe_interval);
                true
            }
        }
    }

    /// Announced capacity, as believed (at most `max`).
    pub fn capacity_capped(&self, max: u32) -> u32 {
        self.capacity.load(Ordering::Relaxed).min(max)
    }

    /// Free capacity.
    pub fn free(&self) -> u32 {
        self.capacity
            .load(Ordering::Relaxed)
            .saturating_sub(self.in_flight.load(Ordering::Relaxed))
    }

    /// Free capacity as believed (announced capacity capped at `max`).
    fn free_capped(&self, max: u32) -> u32 {
        self.capacity_capped(max)
            .saturating_sub(self.in_flight.load(Ordering::Relaxed))
    }

    /// A sender for one request.
    pub(crate) fn sender(&self) -> SendRequest<Body> {
        self.sender.clone()
    }
}

/// Holds one unit of a worker's capacity. The second field says whether the request's deadline is
/// the proxy's own (then missing it is the worker's fault) or one the client chose (nobody's).
#[derive(Debug)]
pub struct Lease(pub Arc<WorkerEntry>, bool);

impl Lease {
    /// Marks whether this request's deadline is the proxy's own `request_timeout_ms`.
    pub fn deadline_is_proxys(&mut self, own: bool) {
        self.1 = own;
    }

    /// The request's deadline passed on this worker: a fault only when the deadline was the
    /// proxy's own (a client's short `x-cocoon-timeout-ms` is not the worker's fault).
    pub fn deadline_passed(&self) {
        if self.1 {
            self.0.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

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
    /// How workers are judged.
    pub policy: HealthPolicy,
}

impl Registry {
    /// An empty registry.
    pub fn new(policy: HealthPolicy) -> Self {
        Registry {
            workers: Mutex::new(Vec::new()),
            policy,
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
        let now = Instant::now();
        let max = self.policy.max_capacity;
        let mut serving = false;
        let mut candidates: Vec<&Arc<WorkerEntry>> = Vec::new();
        for w in workers
            .iter()
            .filter(|w| w.model == model && !w.closed.load(Ordering::Relaxed))
        {
            serving = true;
            if tried.contains(&w.id)
                || w.coefficient.load(Ordering::Relaxed) > cap
                || w.free_capped(max) == 0
            {
                continue;
            }
            candidates.push(w);
        }
        let key = |w: &WorkerEntry| {
            (
                w.coefficient.load(Ordering::Relaxed),
                u32::MAX - w.free_capped(max),
                w.latency_us.load(Ordering::Relaxed),
            )
        };
        candidates.sort_by_key(|w| key(w));
        // The best-ranked worker that may serve now; judging health last means only the worker
        // actually chosen takes a probe.
        let best = candidates
            .into_iter()
            .find(|w| w.may_serve(&self.policy, now));
        match best {
            Some(w) => {
                w.in_flight.fetch_add(1, Ordering::AcqRel);
                Ok(Lease(w.clone(), false))
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
            let max = self.policy.max_capacity;
            let e = by_model
                .entry(w.model.clone())
                .or_insert((0, u32::MAX, 0, 0, 0));
            e.0 = e.0.saturating_add(1);
            e.1 = e.1.min(coef);
            e.2 = e.2.max(coef);
            e.3 = e.3.saturating_add(w.capacity_capped(max));
            e.4 = e.4.saturating_add(w.free_capped(max));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use cocoon_daemon::tls::{DevTls, HopTls, Role};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    /// A worker entry whose sender talks to nothing (the registry never sends).
    async fn entry(
        id: u64,
        capacity: u32,
        latency_us: u64,
    ) -> (Arc<WorkerEntry>, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake::<_, Body>(TokioIo::new(ours))
            .await
            .unwrap();
        tokio::spawn(conn);
        let identity = DevTls::generate(Role::Worker).unwrap().identity();
        let w = Arc::new(WorkerEntry {
            id,
            identity,
            certificate: Vec::new(),
            model: "m".into(),
            coefficient: AtomicU32::new(1000),
            capacity: AtomicU32::new(capacity),
            in_flight: AtomicU32::new(0),
            latency_us: AtomicU64::new(latency_us),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            health: Mutex::new(Health::default()),
            sender,
        });
        (w, theirs)
    }

    #[tokio::test]
    async fn faults_fade_and_a_skipped_worker_is_probed_again() {
        let registry = Registry::new(HealthPolicy {
            min_success_milli: 500,
            half_life: Duration::from_millis(300),
            probe_interval: Duration::from_millis(100),
            max_capacity: 1024,
        });
        let (w, _peer) = entry(1, 4, 0).await;
        registry.add(w.clone());
        w.failed.store(10, Ordering::Relaxed);
        assert_eq!(
            registry.pick("m", 4000, &[]).err(),
            Some(NoWorker::NoneAvailable),
            "ten recent faults: skipped"
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        let probe = registry
            .pick("m", 4000, &[])
            .expect("probed after the interval");
        drop(probe);
        assert_eq!(
            registry.pick("m", 4000, &[]).err(),
            Some(NoWorker::NoneAvailable),
            "one probe per interval"
        );
        // The faults fade (10 -> under 5 in a little more than one half-life): back for good.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(registry.pick("m", 4000, &[]).is_ok());
        assert!(registry.pick("m", 4000, &[]).is_ok());
        let (milli, total) = w.recent_success_milli(registry.policy.half_life);
        assert_eq!(milli, 0);
        assert!(total < 5.0, "{total}");
        // The lifetime counters are untouched.
        assert_eq!(w.failed.load(Ordering::Relaxed), 10);
    }

    #[tokio::test]
    async fn a_huge_announced_capacity_neither_wins_ties_nor_overflows() {
        let registry = Registry::new(HealthPolicy::default());
        // Same price; the braggart announces u32::MAX but is slower.
        let (braggart, _p1) = entry(1, u32::MAX, 900).await;
        let (honest, _p2) = entry(2, 1024, 100).await;
        registry.add(braggart.clone());
        registry.add(honest.clone());
        let lease = registry.pick("m", 4000, &[]).unwrap();
        assert_eq!(
            lease.0.id, 2,
            "capped at 1024 the capacities tie; latency decides"
        );
        drop(lease);
        let models = registry.models_json();
        let cocoon = &models["data"][0]["cocoon"];
        assert_eq!(cocoon["capacity"], 2048, "{models}");
        assert_eq!(cocoon["workers"], 2);
    }
}
