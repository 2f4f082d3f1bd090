//! Prometheus metrics in the text exposition format, kept with atomics: request counts by
//! endpoint and status, task failures by kind, and per-stage latency histograms.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Histogram bucket bounds, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

use crate::{models::LoadState, pipeline::Stage};

struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            counts: Default::default(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            if secs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    failures: Mutex<BTreeMap<String, u64>>,
    stages: Vec<Histogram>,
    tasks: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Mutex::default(),
            failures: Mutex::default(),
            stages: Stage::ALL.iter().map(|_| Histogram::new()).collect(),
            tasks: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn request(&self, endpoint: &str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry((endpoint.to_string(), status)).or_default() += 1;
    }

    pub fn task_failed(&self, kind: &str) {
        let mut map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(kind.to_string()).or_default() += 1;
    }

    pub fn task_done(&self) {
        self.tasks.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stage(&self, stage: Stage, d: Duration) {
        if let Some(i) = Stage::ALL.iter().position(|s| *s == stage) {
            self.stages[i].observe(d);
        }
    }

    /// Renders everything, with `models` as the number of models by state.
    pub fn render(&self, models: &BTreeMap<LoadState, usize>) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP ls_ml_requests_total HTTP requests by endpoint and status.\n# TYPE ls_ml_requests_total counter\n",
        );
        for ((endpoint, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "ls_ml_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP ls_ml_tasks_total Tasks predicted (failed ones included).\n# TYPE ls_ml_tasks_total counter\n",
        );
        let _ = writeln!(out, "ls_ml_tasks_total {}", self.tasks.load(Ordering::Relaxed));
        out.push_str("# HELP ls_ml_task_failures_total Tasks that got an empty result, by cause.\n# TYPE ls_ml_task_failures_total counter\n");
        for (kind, n) in self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(out, "ls_ml_task_failures_total{{kind=\"{kind}\"}} {n}");
        }
        out.push_str(
            "# HELP ls_ml_stage_seconds Time spent per task in each stage.\n# TYPE ls_ml_stage_seconds histogram\n",
        );
        for (stage, h) in Stage::ALL.iter().map(|s| s.as_str()).zip(&self.stages) {
            for (bound, count) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(
                    out,
                    "ls_ml_stage_seconds_bucket{{stage=\"{stage}\",le=\"{bound}\"}} {}",
                    count.load(Ordering::Relaxed)
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "ls_ml_stage_seconds_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "ls_ml_stage_seconds_sum{{stage=\"{stage}\"}} {}",
                h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(out, "ls_ml_stage_seconds_count{{stage=\"{stage}\"}} {count}");
        }
        out.push_str("# HELP ls_ml_models Models by state.\n# TYPE ls_ml_models gauge\n");
        for (state, n) in models {
            let _ = writeln!(out, "ls_ml_models{{state=\"{}\"}} {n}", state.as_str());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("predict", 200);
        m.request("predict", 200);
        m.stage(Stage::Infer, Duration::from_millis(12));
        m.task_failed("fetch");
        let text = m.render(&BTreeMap::from([(LoadState::Ready, 1)]));
        assert!(text.contains("ls_ml_requests_total{endpoint=\"predict\",status=\"200\"} 2"));
        assert!(text.contains("ls_ml_stage_seconds_bucket{stage=\"infer\",le=\"0.01\"} 0"));
        assert!(text.contains("ls_ml_stage_seconds_bucket{stage=\"infer\",le=\"0.025\"} 1"));
        assert!(text.contains("ls_ml_stage_seconds_bucket{stage=\"infer\",le=\"+Inf\"} 1"));
        assert!(text.contains("ls_ml_task_failures_total{kind=\"fetch\"} 1"));
        assert!(text.contains("ls_ml_models{state=\"ready\"} 1"));
    }
}
