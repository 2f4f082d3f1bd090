//! Prometheus metrics (OpenMetrics text, through `prometheus-client`): request counts by
//! endpoint and status, task failures by cause, per-stage latency histograms, and models by
//! state.

use std::time::Duration;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::{models::LoadState, stages::Stage};

/// Histogram bucket bounds, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: &'static str,
    state: &'static str,
}

fn stage_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    tasks: Counter,
    stages: Family<StageLabels, Histogram, fn() -> Histogram>,
    models: Family<StateLabels, Gauge>,
    jobs: Family<JobLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let tasks = Counter::default();
        let stages = Family::<StageLabels, Histogram, fn() -> Histogram>::new_with_constructor(stage_histogram);
        let models = Family::<StateLabels, Gauge>::default();
        let jobs = Family::<JobLabels, Gauge>::default();
        registry.register(
            "ls_ml_requests",
            "HTTP requests by endpoint and status",
            requests.clone(),
        );
        registry.register("ls_ml_tasks", "Tasks predicted (failed ones included)", tasks.clone());
        registry.register(
            "ls_ml_task_failures",
            "Tasks that got an empty result, by cause",
            failures.clone(),
        );
        registry.register(
            "ls_ml_stage_seconds",
            "Time spent per task in each stage",
            stages.clone(),
        );
        registry.register("ls_ml_models", "Models by state", models.clone());
        registry.register(
            "ls_ml_jobs",
            "Jobs (training, project prediction) by kind and state, since the state folder was made",
            jobs.clone(),
        );
        // Every stage is listed from the start, so a dashboard sees zeros rather than nothing.
        for stage in Stage::ALL {
            let _ = stages.get_or_create(&StageLabels { stage: stage.as_str() });
        }
        Self {
            registry,
            requests,
            failures,
            tasks,
            stages,
            models,
            jobs,
        }
    }
}

impl Metrics {
    pub fn request(&self, endpoint: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_string(),
                status,
            })
            .inc();
    }

    pub fn task_failed(&self, kind: &'static str) {
        self.failures.get_or_create(&FailureLabels { kind }).inc();
    }

    pub fn task_done(&self) {
        self.tasks.inc();
    }

    pub fn stage(&self, stage: Stage, d: Duration) {
        self.stages
            .get_or_create(&StageLabels { stage: stage.as_str() })
            .observe(d.as_secs_f64());
    }

    /// Renders everything, with the models counted by state and the jobs by kind and state.
    pub fn render(
        &self,
        models: impl IntoIterator<Item = LoadState>,
        jobs: impl IntoIterator<Item = ((&'static str, &'static str), usize)>,
    ) -> String {
        for ((kind, state), n) in jobs {
            self.jobs.get_or_create(&JobLabels { kind, state }).set(n as i64);
        }
        let mut counts = [0i64; 3];
        for state in models {
            counts[state as usize] += 1;
        }
        for state in [LoadState::Loading, LoadState::Ready, LoadState::Failed] {
            self.models
                .get_or_create(&StateLabels { state: state.as_str() })
                .set(counts[state as usize]);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
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
        let text = m.render([LoadState::Ready], [(("train", "running"), 1)]);
        assert!(
            text.contains("ls_ml_requests_total{endpoint=\"predict\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("ls_ml_stage_seconds_bucket{le=\"0.01\",stage=\"infer\"} 0"),
            "{text}"
        );
        assert!(text.contains("ls_ml_stage_seconds_bucket{le=\"0.025\",stage=\"infer\"} 1"));
        assert!(text.contains("ls_ml_stage_seconds_bucket{le=\"+Inf\",stage=\"infer\"} 1"));
        assert!(
            text.contains("ls_ml_jobs{kind=\"train\",state=\"running\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ls_ml_stage_seconds_count{stage=\"decode\"} 0"),
            "every stage is listed"
        );
        assert!(text.contains("ls_ml_task_failures_total{kind=\"fetch\"} 1"));
        assert!(text.contains("ls_ml_models{state=\"ready\"} 1"));
        assert!(text.contains("ls_ml_models{state=\"failed\"} 0"));
        assert!(text.ends_with("# EOF\n"));
    }
}
