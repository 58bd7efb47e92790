//! A minimal Prometheus registry: counters and gauges with fixed label sets, rendered as text format 0.0.4.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Adds `n` (may be negative).
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Sets the value.
    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone)]
enum Metric {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
}

#[derive(Debug)]
struct Family {
    help: &'static str,
    series: BTreeMap<String, Metric>,
}

/// The registry a daemon's `/metrics` renders.
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

fn label_string(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

impl Registry {
    /// A new empty registry.
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// The counter `name{labels}`, created on first use.
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
    ) -> Arc<Counter> {
        let new = || Metric::Counter(Arc::default());
        match self.series(name, help, labels, new) {
            Metric::Counter(c) => c,
            // A name registered as a gauge stays a gauge; hand out a detached counter rather than panic.
            Metric::Gauge(_) => Arc::default(),
        }
    }

    /// The gauge `name{labels}`, created on first use.
    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
    ) -> Arc<Gauge> {
        match self.series(name, help, labels, || Metric::Gauge(Arc::default())) {
            Metric::Gauge(g) => g,
            Metric::Counter(_) => Arc::default(),
        }
    }

    /// The series `name{labels}` (a clone of its handle), made by `new` on first use.
    fn series(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        new: impl FnOnce() -> Metric,
    ) -> Metric {
        let mut fams = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let fam = fams.entry(name).or_insert_with(|| Family {
            help,
            series: BTreeMap::new(),
        });
        fam.series
            .entry(label_string(labels))
            .or_insert_with(new)
            .clone()
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let fams = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, fam) in fams.iter() {
            let kind = match fam.series.values().next() {
                Some(Metric::Gauge(_)) => "gauge",
                _ => "counter",
            };
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", fam.help);
            for (labels, m) in &fam.series {
                let v = match m {
                    Metric::Counter(c) => c.get().to_string(),
                    Metric::Gauge(g) => g.get().to_string(),
                };
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_format() {
        let r = Registry::new();
        r.counter("cocoon_requests_total", "Requests.", &[("code", "200")])
            .add(3);
        r.counter("cocoon_requests_total", "Requests.", &[("code", "200")])
            .inc();
        r.gauge("cocoon_in_flight", "In flight.", &[]).set(-2);
        let text = r.render();
        assert!(text.contains("# TYPE cocoon_requests_total counter\n"));
        assert!(text.contains("cocoon_requests_total{code=\"200\"} 4\n"));
        assert!(text.contains("cocoon_in_flight -2\n"));
    }
}
