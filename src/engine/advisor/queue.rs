//! `queue`: the queue-length rule of the elastic inference autoscaler (seed E):
//! `desired = ceil(current × q / target)`, `q = 0 → min`, `0 < q ≤ target → max(min, …)`, clamped
//! to `[min, max]`. Each tick it first skips (holds the current count) while a cooldown since the
//! last scale runs, then while any pod is not ready, then when there is no queue figure. `q` is
//! the traffic's requests waiting (queued, not in service: the seed's dispatcher queue length) or,
//! with `signal = "in_flight"`, waiting or in service; with `recommenders.queue.query` set, that
//! PromQL query's value at the tick's time (summed over the series it returns) from
//! `metrics.prometheus_url`.

use async_trait::async_trait;

use super::{RecOutput, RecommendInput, Recommender};
pub use crate::config::{QueueConfig, QueueSignal};
use crate::engine::metrics::prometheus::{PLACEHOLDERS, PromClient, templates};
use crate::engine::record::Row;

/// The queue's PromQL query, checked against the template placeholders.
pub fn check_query(q: &QueueConfig) -> Result<(), (String, String)> {
    templates::check(&q.query, &PLACEHOLDERS).map_err(|e| ("recommenders.queue.query".to_string(), e))
}

/// The rule itself.
pub fn queue_rule(current: i32, q: f64, target: f64, min: i32, max: i32) -> i32 {
    let want = if q <= 0.0 {
        min
    } else {
        let d = (f64::from(current) * q / target).ceil();
        let d = if d.is_finite() { d.min(f64::from(i32::MAX)) as i32 } else { max };
        if q > target { d } else { d.max(min) }
    };
    want.clamp(min, max.max(min))
}

/// When the deployment last changed scale, from the recorded rows and this tick's spec: a row
/// where scaletui applied a different count, a row whose count differs from the one before, or
/// a change seen now that the last row did not apply.
pub fn last_scale_at(history: &[Row], now: f64, spec: i32) -> Option<f64> {
    if let Some(last) = history.last()
        && last.current_replicas.is_some_and(|c| c != spec)
        && last.applied_replicas != Some(spec)
    {
        return Some(now);
    }
    let mut at = None;
    for (i, r) in history.iter().enumerate() {
        let applied_change =
            r.applied_replicas.is_some() && r.current_replicas.is_some() && r.applied_replicas != r.current_replicas;
        // A count that differs from the previous row's, unless that row applied it.
        let seen_change = i > 0
            && r.current_replicas.is_some()
            && r.current_replicas != history[i - 1].current_replicas
            && r.current_replicas != history[i - 1].applied_replicas;
        if seen_change {
            at = Some(at.map_or(r.t, |a: f64| a.max(r.t)));
        }
        if applied_change {
            at = Some(r.t);
        }
    }
    at
}

/// Where q comes from.
enum QueueSource {
    /// A figure of the traffic.
    Traffic(QueueSignal),
    /// A rendered PromQL query.
    Prometheus { client: PromClient, query: String },
}

pub struct QueueRecommender {
    cfg: QueueConfig,
    max: i32,
    source: QueueSource,
}

impl QueueRecommender {
    /// q from the traffic's figure named by `cfg.signal`.
    pub fn new(cfg: QueueConfig, scaling_max: i32) -> Self {
        let max = if cfg.max_replicas > 0 { cfg.max_replicas } else { scaling_max };
        Self { source: QueueSource::Traffic(cfg.signal), cfg, max }
    }

    /// q from `query` (placeholders already replaced) sent to `client` each tick.
    pub fn with_query(cfg: QueueConfig, scaling_max: i32, client: PromClient, query: String) -> Self {
        Self { source: QueueSource::Prometheus { client, query }, ..Self::new(cfg, scaling_max) }
    }

    /// This tick's q, or why there is none.
    async fn q(&self, input: &RecommendInput<'_>) -> Result<f64, String> {
        match &self.source {
            QueueSource::Traffic(signal) => {
                let v = input.sample.traffic.map(|t| match signal {
                    QueueSignal::Waiting => t.waiting,
                    QueueSignal::InFlight => t.in_flight,
                });
                match v {
                    Some(v) if v.is_finite() => Ok(v),
                    _ => Err(format!(
                        "no {} figure",
                        if *signal == QueueSignal::Waiting { "waiting" } else { "in-flight" }
                    )),
                }
            }
            QueueSource::Prometheus { client, query } => match client.instant(query, input.now).await {
                Ok(series) => {
                    let values: Vec<f64> = series.iter().map(|s| s.value).filter(|v| v.is_finite()).collect();
                    if values.is_empty() { Err("queue query: no data".into()) } else { Ok(values.iter().sum()) }
                }
                Err(e) => Err(format!("queue query: {e}")),
            },
        }
    }
}

#[async_trait]
impl Recommender for QueueRecommender {
    fn name(&self) -> &str {
        "queue"
    }

    fn columns(&self) -> Vec<String> {
        vec!["q".into(), "cooldown_left_s".into()]
    }

    async fn recommend(&mut self, input: &RecommendInput<'_>) -> RecOutput {
        let q = self.q(input).await;
        let q_cell = q.as_ref().map_or(String::new(), |v| format!("{v:.3}"));
        let Some(dep) = input.deployment else {
            return RecOutput {
                replicas: None,
                status: "deployment state unknown".into(),
                values: vec![q_cell, String::new()],
                ..RecOutput::default()
            };
        };
        let current = dep.spec_replicas;
        let hold = |status: String, left: f64| RecOutput {
            replicas: Some(current),
            status,
            values: vec![q_cell.clone(), if left > 0.0 { format!("{left:.0}") } else { String::new() }],
            ..RecOutput::default()
        };
        if let Some(at) = last_scale_at(input.history, input.now, current) {
            let left = self.cfg.cooldown_s - (input.now - at);
            if left > 1e-9 {
                return hold(format!("cooldown: {left:.0}s left"), left);
            }
        }
        if !dep.converged() {
            return hold(format!("waiting for pods: {}/{} ready", dep.ready_replicas, dep.spec_replicas), 0.0);
        }
        let q = match q {
            Ok(q) => q,
            Err(why) => return hold(format!("{why}: holding"), 0.0),
        };
        let want = queue_rule(current, q, self.cfg.target, self.cfg.min_replicas, self.max);
        RecOutput {
            replicas: Some(want),
            status: "ok".into(),
            values: vec![q_cell, String::new()],
            ..RecOutput::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::HpaSim;
    use crate::engine::types::{DeploymentState, MetricsSample, Traffic};

    #[test]
    fn the_seed_rule() {
        // q = 0 → min; q > target → ceil(current·q/target); 0 < q ≤ target → max(min, …).
        assert_eq!(queue_rule(3, 0.0, 50.0, 1, 6), 1);
        assert_eq!(queue_rule(3, 120.0, 50.0, 1, 6), 6, "ceil(7.2) = 8, clamped to 6");
        assert_eq!(queue_rule(2, 60.0, 50.0, 1, 6), 3);
        assert_eq!(queue_rule(4, 10.0, 50.0, 1, 6), 1);
        assert_eq!(queue_rule(4, 10.0, 50.0, 2, 6), 2);
        assert_eq!(queue_rule(5, 50.0, 50.0, 1, 6), 5);
    }

    fn row(t: f64, current: i32, applied: i32) -> Row {
        Row { t, current_replicas: Some(current), applied_replicas: Some(applied), ..Row::default() }
    }

    #[test]
    fn last_scale_comes_from_the_record() {
        let h = vec![row(0.0, 3, 3), row(30.0, 3, 5), row(60.0, 5, 5)];
        assert_eq!(last_scale_at(&h, 90.0, 5), Some(30.0));
        // A change nobody applied through scaletui is seen now.
        assert_eq!(last_scale_at(&h, 90.0, 7), Some(90.0));
        assert_eq!(last_scale_at(&[row(0.0, 3, 3)], 30.0, 3), None);
    }

    async fn ask(
        rec: &mut QueueRecommender,
        history: &[Row],
        dep: DeploymentState,
        q: Option<f64>,
        now: f64,
    ) -> RecOutput {
        let sample = MetricsSample {
            traffic: q.map(|waiting| Traffic { waiting, in_flight: waiting + 1.0, ..Traffic::default() }),
            ..MetricsSample::default()
        };
        let sim = HpaSim::default();
        let input = RecommendInput { deployment: Some(dep), history, ..RecommendInput::at(now, &sample, &sim) };
        rec.recommend(&input).await
    }

    fn dep(spec: i32, ready: i32) -> DeploymentState {
        DeploymentState { spec_replicas: spec, status_replicas: spec, ready_replicas: ready, available_replicas: ready }
    }

    #[tokio::test]
    async fn cooldown_readiness_and_missing_data_hold() {
        let cfg = QueueConfig { target: 50.0, cooldown_s: 150.0, max_replicas: 6, ..QueueConfig::default() };
        let mut r = QueueRecommender::new(cfg, 10);
        let h = vec![row(0.0, 2, 4), row(30.0, 4, 4)];
        let out = ask(&mut r, &h, dep(4, 4), Some(200.0), 60.0).await;
        assert_eq!(out.replicas, Some(4));
        assert!(out.status.starts_with("cooldown"), "{}", out.status);
        assert_eq!(out.values[1], "90");
        let out = ask(&mut r, &h, dep(4, 3), Some(200.0), 200.0).await;
        assert_eq!(out.replicas, Some(4));
        assert!(out.status.contains("3/4 ready"), "{}", out.status);
        let out = ask(&mut r, &h, dep(4, 4), None, 200.0).await;
        assert_eq!((out.replicas, out.status.contains("holding")), (Some(4), true));
        let out = ask(&mut r, &h, dep(4, 4), Some(100.0), 200.0).await;
        assert_eq!((out.replicas, out.status.as_str()), (Some(6), "ok"), "ceil(4·100/50) = 8 → max 6");
        assert_eq!(out.values[0], "100.000");
    }
}
