//! Metrics from Prometheus: the PromQL templates of `[metrics.queries]`, one instant query each
//! per tick (in parallel, at the tick's time), range queries for history.
//!
//! A dead or broken Prometheus never stops a run: every tick still gives a sample, with empty
//! values and a status that says why — `Unreachable { since, error }` when no query could reach
//! Prometheus (connection refused, timeouts, not ready), `Degraded` naming the template and the
//! server's message when a query was refused (HTTP 400 …), when core values have no data, or when
//! the newest sample is too old to be shown as current. Values come back as soon as Prometheus does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use futures::future::join_all;

use super::{MetricsQuery, MetricsSource};
use crate::config::MetricsConfig;
use crate::engine::types::{MetricsSample, PodUsage, SourceStatus, Traffic};

pub mod client;
pub mod templates;

pub use client::{PromClient, PromError, RangeSeries, Sample};
pub use templates::{PLACEHOLDERS, Vars};

/// Templates whose lack of data is a problem; the others (traffic, sample age) are optional.
const CORE: [&str; 5] = ["cpu", "memory", "cpu_request", "memory_request", "running_pods"];

/// Check the `[metrics]` keys a Prometheus source uses: (dotted key, message).
pub fn validate_config(m: &MetricsConfig) -> Result<(), (String, String)> {
    let err = |k: &str, msg: String| Err((k.to_string(), msg));
    if let Err(e) = client::parse_base(&m.prometheus_url) {
        return err("metrics.prometheus_url", e);
    }
    if templates::parse_duration(&m.rate_window).is_none() {
        return err(
            "metrics.rate_window",
            format!("must be a Prometheus duration such as 1m or 30s, not {:?}", m.rate_window),
        );
    }
    if !(m.max_sample_age_s.is_finite() && m.max_sample_age_s >= 0.0) {
        return err(
            "metrics.max_sample_age_s",
            format!("must be seconds >= 0 (0 = no check), not {}", m.max_sample_age_s),
        );
    }
    if m.pod_regex.trim().is_empty() {
        return err("metrics.pod_regex", "must not be empty (.+ matches every pod)".into());
    }
    if let Err(e) = templates::check(&m.pod_regex, &["namespace", "deployment"]) {
        return err("metrics.pod_regex", e);
    }
    if let Err(e) = templates::check(&m.container_filter, &["container", "namespace", "deployment"]) {
        return err("metrics.container_filter", e);
    }
    for (key, t) in m.queries.all() {
        if let Err(e) = templates::check(t, &PLACEHOLDERS) {
            return err(&format!("metrics.queries.{key}"), e);
        }
    }
    Ok(())
}

/// The queries to send for a deployment: (template key, PromQL), empty templates left out.
pub fn render_queries(
    m: &MetricsConfig,
    namespace: &str,
    deployment: &str,
    container: &str,
) -> Vec<(&'static str, String)> {
    let vars = Vars::of(m, namespace, deployment, container);
    m.queries.all().into_iter().filter(|(_, t)| !t.trim().is_empty()).map(|(k, t)| (k, vars.render(t))).collect()
}

impl Vars {
    /// The placeholders' values for a deployment under the `[metrics]` settings.
    pub fn of(m: &MetricsConfig, namespace: &str, deployment: &str, container: &str) -> Self {
        Vars {
            namespace: namespace.to_string(),
            deployment: deployment.to_string(),
            container: container.to_string(),
            pod_regex: m.pod_regex.clone(),
            container_filter: m.container_filter.clone(),
            rate_window: m.rate_window.clone(),
        }
    }
}

pub struct PrometheusSource {
    client: PromClient,
    cfg: MetricsConfig,
    window_s: f64,
    /// Start of the current unreachable stretch (run clock).
    down_since: Mutex<Option<f64>>,
}

impl PrometheusSource {
    pub fn new(cfg: &MetricsConfig) -> Result<Self, String> {
        validate_config(cfg).map_err(|(k, m)| format!("{k}: {m}"))?;
        let client = PromClient::new(&cfg.prometheus_url, cfg.prometheus_timeout_s)
            .map_err(|e| format!("metrics.prometheus_url: {e}"))?;
        Ok(Self {
            client,
            window_s: templates::parse_duration(&cfg.rate_window).unwrap_or(60.0),
            cfg: cfg.clone(),
            down_since: Mutex::new(None),
        })
    }

    pub fn client(&self) -> &PromClient {
        &self.client
    }

    fn queries(&self, q: &MetricsQuery) -> Vec<(&'static str, String)> {
        render_queries(&self.cfg, &q.namespace, &q.deployment, &q.container)
    }

    fn down_since(&self) -> std::sync::MutexGuard<'_, Option<f64>> {
        match self.down_since.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

type Outcome = Result<Vec<Sample>, PromError>;

/// Per-pod values of one query (series with a `pod` label, finite values, restricted to `pods`
/// when given; several series of one pod are added up) and the mean of series without one.
struct PerPod {
    pods: BTreeMap<String, f64>,
    unlabelled: Option<f64>,
}

impl PerPod {
    fn from(samples: &[Sample], pods: Option<&BTreeSet<String>>) -> Self {
        let mut by_pod = BTreeMap::new();
        let mut rest = Vec::new();
        for s in samples.iter().filter(|s| s.value.is_finite()) {
            match s.labels.get("pod") {
                Some(p) if pods.is_none_or(|set| set.contains(p)) => *by_pod.entry(p.clone()).or_insert(0.0) += s.value,
                Some(_) => {}
                None => rest.push(s.value),
            }
        }
        Self { pods: by_pod, unlabelled: mean(&rest) }
    }

    fn average(&self) -> Option<f64> {
        let v: Vec<f64> = self.pods.values().copied().collect();
        mean(&v).or(self.unlabelled)
    }
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sum of the finite values of a single-number query.
fn total(samples: &[Sample]) -> Option<f64> {
    let v: Vec<f64> = samples.iter().map(|s| s.value).filter(|v| v.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum())
}

/// Names, at most a few of them.
fn some_names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let all: Vec<&String> = names.collect();
    let mut out: Vec<String> = all.iter().take(5).map(|s| s.to_string()).collect();
    if all.len() > 5 {
        out.push(format!("… {} more", all.len() - 5));
    }
    out.join(", ")
}

/// Why a query gave no value: no series at all, or series for pods other than those expected
/// (a label mismatch), so the fix is found at once.
fn no_data_detail(key: &str, samples: &[Sample], pods: Option<&BTreeSet<String>>) -> String {
    let finite: Vec<&Sample> = samples.iter().filter(|s| s.value.is_finite()).collect();
    if samples.is_empty() {
        return format!("{key} (the query returned no series)");
    }
    if finite.is_empty() {
        return format!("{key} ({} series, none with a number)", samples.len());
    }
    let with_pod: BTreeSet<&String> = finite.iter().filter_map(|s| s.labels.get("pod")).collect();
    let expected =
        pods.map_or_else(|| "any".to_string(), |p| if p.is_empty() { "none".into() } else { some_names(p.iter()) });
    if with_pod.is_empty() {
        let labels: BTreeSet<&String> = finite.iter().flat_map(|s| s.labels.keys()).collect();
        return format!(
            "{key} ({} series without a pod label (labels: {}); expected pods {expected})",
            finite.len(),
            if labels.is_empty() { "none".into() } else { some_names(labels.into_iter()) }
        );
    }
    format!("{key} (series for pods {}; expected pods {expected})", some_names(with_pod.into_iter()))
}

/// Build a sample from the outcome of each template at `at`. Returns the sample (status `Ok`)
/// and the problems found: failed templates, core values without data, stale data.
fn assemble(
    at: f64,
    outcomes: &[(&'static str, Outcome)],
    pods: Option<&BTreeSet<String>>,
    window_s: f64,
    max_age_s: f64,
) -> (MetricsSample, Vec<String>) {
    let get = |k: &str| outcomes.iter().find(|(key, _)| *key == k).and_then(|(_, o)| o.as_ref().ok());
    let per_pod = |k: &str| get(k).map(|s| PerPod::from(s, pods));
    let single = |k: &str| get(k).and_then(|s| total(s));
    let (cpu, memory) = (per_pod("cpu"), per_pod("memory"));
    let mut names: BTreeSet<&String> = BTreeSet::new();
    for p in [&cpu, &memory].into_iter().flatten() {
        names.extend(p.pods.keys());
    }
    let usage: Vec<PodUsage> = names
        .into_iter()
        .map(|pod| PodUsage {
            pod: pod.clone(),
            cpu_m: cpu.as_ref().and_then(|c| c.pods.get(pod).copied()),
            memory_mib: memory.as_ref().and_then(|m| m.pods.get(pod).copied()),
            at,
            window_s,
            ..PodUsage::default()
        })
        .collect();
    let traffic = single("rps").map(|rps| Traffic {
        rps,
        // Unknown figures are NaN: the record writes them as empty cells.
        served_rps: single("served_rps").unwrap_or(f64::NAN),
        errors_per_s: single("errors_per_s").unwrap_or(f64::NAN),
        p50_ms: single("latency_p50_ms"),
        p95_ms: single("latency_p95_ms"),
        p99_ms: single("latency_p99_ms"),
        mean_ms: None,
        in_flight: single("in_flight").unwrap_or(f64::NAN),
        waiting: single("waiting").unwrap_or(f64::NAN),
        in_flight_per_pod: f64::NAN,
        waiting_per_pod: f64::NAN,
        counts: None,
    });
    let mut sample = MetricsSample {
        at,
        cpu_millicores: cpu.as_ref().and_then(PerPod::average),
        memory_mebibytes: memory.as_ref().and_then(PerPod::average),
        cpu_request_millicores: per_pod("cpu_request").and_then(|p| p.average()),
        memory_request_mebibytes: per_pod("memory_request").and_then(|p| p.average()),
        pod_count: single("running_pods").map(|v| v.round().max(0.0) as u32),
        per_pod: usage,
        traffic,
        status: SourceStatus::Ok,
    };
    let mut problems: Vec<String> = outcomes
        .iter()
        .filter_map(|(k, o)| match o {
            Err(e) if e.is_unreachable() => Some(format!("{k}: {e}")),
            Err(e) => Some(format!("template {k}: {e}")),
            Ok(_) => None,
        })
        .collect();
    if let Some(age) = single("sample_age").filter(|a| max_age_s > 0.0 && *a > max_age_s) {
        problems.push(format!("stale: the newest sample is {age:.0} s old (max_sample_age_s {max_age_s})"));
        sample = MetricsSample { at, status: SourceStatus::Ok, ..MetricsSample::default() };
        return (sample, problems);
    }
    let missing: Vec<&str> = CORE
        .iter()
        .copied()
        .filter(|k| {
            get(k).is_some()
                && match *k {
                    "cpu" => sample.cpu_millicores.is_none(),
                    "memory" => sample.memory_mebibytes.is_none(),
                    "cpu_request" => sample.cpu_request_millicores.is_none(),
                    "memory_request" => sample.memory_request_mebibytes.is_none(),
                    _ => sample.pod_count.is_none(),
                }
        })
        .collect();
    if !missing.is_empty() {
        let detail: Vec<String> =
            missing.iter().map(|k| no_data_detail(k, get(k).map_or(&[][..], |v| v), pods)).collect();
        problems.push(format!("no data: {}", detail.join("; ")));
    }
    (sample, problems)
}

/// Whether every query failed to reach Prometheus; then the first such error.
fn all_unreachable<T>(outcomes: &[(&'static str, Result<T, PromError>)]) -> Option<String> {
    let mut errors = outcomes.iter().map(|(_, o)| o.as_ref().err().filter(|e| e.is_unreachable()));
    let first = errors.next()??;
    errors.all(|e| e.is_some()).then(|| first.to_string())
}

#[async_trait]
impl MetricsSource for PrometheusSource {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    async fn sample(&self, q: &MetricsQuery) -> MetricsSample {
        let queries = self.queries(q);
        let outcomes: Vec<(&'static str, Outcome)> =
            join_all(queries.iter().map(|(k, expr)| async move { (*k, self.client.instant(expr, q.now).await) })).await;
        if let Some(error) = all_unreachable(&outcomes) {
            let since = *self.down_since().get_or_insert(q.now);
            return MetricsSample {
                at: q.now,
                status: SourceStatus::Unreachable { since, error },
                ..Default::default()
            };
        }
        *self.down_since() = None;
        // Series of pods the cluster no longer lists (deleted, still inside the rate window) are
        // left out; with no pod list (the cluster did not answer) every series counts.
        let listed: BTreeSet<String> = q.pods.iter().map(|p| p.name.clone()).collect();
        let pods = (!listed.is_empty()).then_some(&listed);
        let (mut sample, problems) = assemble(q.now, &outcomes, pods, self.window_s, self.cfg.max_sample_age_s);
        if !problems.is_empty() {
            sample.status = SourceStatus::Degraded(problems.join("; "));
        }
        sample
    }

    async fn history(&self, q: &MetricsQuery, minutes: f64, step_s: f64) -> Result<Vec<MetricsSample>, String> {
        let end = q.now;
        let start = end - minutes * 60.0;
        let queries = self.queries(q);
        let outcomes: Vec<(&'static str, Result<Vec<RangeSeries>, PromError>)> = join_all(
            queries.iter().map(|(k, expr)| async move { (*k, self.client.range(expr, start, end, step_s).await) }),
        )
        .await;
        if let Some(error) = all_unreachable(&outcomes) {
            return Err(format!("Prometheus unreachable: {error}"));
        }
        // Regroup by timestamp (ms): at each step, what each template gave.
        let mut steps: BTreeMap<i64, BTreeMap<&'static str, Vec<Sample>>> = BTreeMap::new();
        for (k, o) in &outcomes {
            for series in o.iter().flatten() {
                for (t, v) in &series.points {
                    let key = (t * 1000.0).round() as i64;
                    let by_key = steps.entry(key).or_default();
                    by_key.entry(*k).or_default().push(Sample { labels: series.labels.clone(), value: *v });
                }
            }
        }
        Ok(steps
            .into_iter()
            .map(|(t_ms, mut by_key)| {
                let at = t_ms as f64 / 1000.0;
                let per_step: Vec<(&'static str, Outcome)> = outcomes
                    .iter()
                    .map(|(k, o)| match o {
                        Ok(_) => (*k, Ok(by_key.remove(k).unwrap_or_default())),
                        Err(e) => (*k, Err(e.clone())),
                    })
                    .collect();
                let (mut s, problems) = assemble(at, &per_step, None, self.window_s, self.cfg.max_sample_age_s);
                // Gaps in history are normal (pods come and go); only failures are reported.
                let failures: Vec<&String> = problems.iter().filter(|p| !p.starts_with("no data")).collect();
                if !failures.is_empty() {
                    s.status =
                        SourceStatus::Degraded(failures.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; "));
                }
                s
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pod: Option<&str>, v: f64) -> Sample {
        let mut labels = client::Labels::new();
        if let Some(p) = pod {
            labels.insert("pod".into(), p.into());
        }
        Sample { labels, value: v }
    }

    #[test]
    fn per_pod_values_are_averaged_over_listed_pods_and_nan_is_dropped() {
        let outcomes = vec![
            ("cpu", Ok(vec![s(Some("a"), 100.0), s(Some("b"), 300.0), s(Some("gone"), 900.0)])),
            ("memory", Ok(vec![s(Some("a"), 10.0), s(Some("b"), f64::NAN)])),
            ("cpu_request", Ok(vec![s(Some("a"), 100.0), s(Some("b"), 100.0)])),
            ("memory_request", Ok(vec![s(None, 64.0)])),
            ("running_pods", Ok(vec![s(None, 2.0)])),
        ];
        let listed: BTreeSet<String> = ["a", "b"].iter().map(|p| p.to_string()).collect();
        let (sample, problems) = assemble(10.0, &outcomes, Some(&listed), 60.0, 120.0);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(sample.cpu_millicores, Some(200.0));
        assert_eq!(sample.memory_mebibytes, Some(10.0));
        assert_eq!(sample.memory_request_mebibytes, Some(64.0), "an unlabelled series is the average");
        assert_eq!(sample.pod_count, Some(2));
        assert_eq!(sample.per_pod.len(), 2);
        assert_eq!(sample.per_pod[1].memory_mib, None);
        // Without a pod list every series counts.
        let (sample, _) = assemble(10.0, &outcomes, None, 60.0, 120.0);
        assert_eq!(sample.cpu_millicores, Some(1300.0 / 3.0));
    }

    #[test]
    fn failures_missing_data_and_stale_samples_are_reported() {
        let outcomes = vec![
            (
                "cpu",
                Err(PromError::Api {
                    status: 400,
                    error_type: "bad_data".into(),
                    error: "1:19: parse error: unclosed left parenthesis".into(),
                }),
            ),
            ("memory", Ok(vec![])),
            ("rps", Ok(vec![])),
        ];
        let (sample, problems) = assemble(10.0, &outcomes, None, 60.0, 120.0);
        assert_eq!(sample.traffic, None, "no traffic is not a problem");
        assert_eq!(
            problems,
            vec![
                "template cpu: HTTP 400 bad_data: 1:19: parse error: unclosed left parenthesis",
                "no data: memory (the query returned no series)"
            ]
        );
        // Series for other pods than the backend expects: both lists, so a label mismatch shows.
        let expected: BTreeSet<String> = ["webapp-1".to_string(), "webapp-2".to_string()].into();
        let outcomes =
            vec![("cpu", Ok(vec![s(Some("web-a"), 10.0), s(Some("web-b"), 12.0)])), ("memory", Ok(vec![s(None, 5.0)]))];
        let (_, problems) = assemble(10.0, &outcomes, Some(&expected), 60.0, 120.0);
        assert_eq!(problems, vec!["no data: cpu (series for pods web-a, web-b; expected pods webapp-1, webapp-2)"]);
        let outcomes = vec![("memory", Ok(vec![s(Some("a"), 10.0)])), ("sample_age", Ok(vec![s(None, 300.0)]))];
        let (sample, problems) = assemble(10.0, &outcomes, None, 60.0, 120.0);
        assert_eq!(sample.memory_mebibytes, None);
        assert!(problems[0].starts_with("stale: the newest sample is 300 s old"), "{problems:?}");
    }

    #[test]
    fn unreachable_only_when_every_query_failed_to_connect() {
        let down = PromError::Unreachable("connection refused".into());
        let o: Vec<(&'static str, Outcome)> = vec![("cpu", Err(down.clone())), ("memory", Err(down.clone()))];
        assert_eq!(all_unreachable(&o).as_deref(), Some("connection refused"));
        let o: Vec<(&'static str, Outcome)> = vec![("cpu", Err(down)), ("memory", Ok(vec![]))];
        assert_eq!(all_unreachable(&o), None);
        assert_eq!(all_unreachable::<()>(&[]), None);
    }

    #[test]
    fn config_errors_name_the_line_and_key() {
        let text = "[metrics]\nrate_window = \"1m\"\n\n[metrics.queries]\ncpu = 'sum(x{namespace=\"{namespce}\"})'\n";
        let e = crate::config::parse_checked(text, "m.toml", crate::engine::check_config)
            .expect_err("typo in a placeholder");
        assert_eq!((e.line, e.key.as_deref()), (Some(5), Some("metrics.queries.cpu")), "{e}");
        assert!(e.message.contains("unknown placeholder {namespce}"), "{e}");
        let e =
            crate::config::parse_checked("[metrics]\nrate_window = \"soon\"\n", "m.toml", crate::engine::check_config)
                .expect_err("bad window");
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("metrics.rate_window")), "{e}");
        let e = crate::config::parse_checked(
            "[metrics]\nprometheus_url = \"localhost:9090\"\n",
            "m.toml",
            crate::engine::check_config,
        )
        .expect_err("no scheme");
        assert_eq!(e.key.as_deref(), Some("metrics.prometheus_url"), "{e}");
        let e = crate::config::parse("[sim]\nexporter_listen = \"9464\"\n", "m.toml").expect_err("no host");
        assert_eq!(e.key.as_deref(), Some("sim.exporter_listen"), "{e}");
    }

    #[test]
    fn shipped_templates_render_without_placeholders() {
        let cfg = MetricsConfig::default();
        validate_config(&cfg).expect("defaults are valid");
        let qs = render_queries(&cfg, "default", "webapp", "nginx");
        assert_eq!(qs.len(), 14);
        for (k, q) in &qs {
            assert!(
                !q.contains("{namespace}") && !q.contains("{rate_window}") && !q.contains("{pod_regex}"),
                "{k}: {q}"
            );
        }
        let cpu = &qs[0].1;
        assert_eq!(
            cpu,
            r#"sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="default", pod=~"webapp-[a-z0-9]+-[a-z0-9]+", container!="", container!="POD"}[1m])) * 1000"#
        );
    }
}
