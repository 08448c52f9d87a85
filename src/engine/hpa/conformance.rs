//! Runs conformance cases (`tests/data/hpa_cases.json`, schema in `conformance/hpa-spec.md` §12)
//! against this module. A case of a kind this runner does not know counts as failed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::calc;
use super::normalize;
use super::reconcile::{ReconcileInput, reconcile};
use super::types::*;

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub id: String,
    pub kind: String,
    pub passed: bool,
    pub detail: String,
}

/// Run every case of a JSON array.
pub fn run_all(cases: &Value) -> Result<Vec<CaseResult>, String> {
    let arr = cases.as_array().ok_or("the cases file must hold a JSON array")?;
    Ok(arr.iter().map(run_case).collect())
}

pub fn run_case(case: &Value) -> CaseResult {
    let id = case.get("id").and_then(Value::as_str).unwrap_or("?").to_string();
    let kind = case.get("kind").and_then(Value::as_str).unwrap_or("?").to_string();
    let input = case.get("input").cloned().unwrap_or(Value::Null);
    let expect = case.get("expect").cloned().unwrap_or(Value::Null);
    let outcome = match kind.as_str() {
        "replica_calc" => replica_calc(&input, &expect),
        "pod_grouping" => pod_grouping(&input, &expect),
        "pod_requests" => pod_requests(&input, &expect),
        "stabilize_legacy" => stabilize_legacy(&input, &expect),
        "stabilize_behavior" => stabilize_behavior(&input, &expect),
        "rate_limit_behavior" => rate_limit_behavior(&input, &expect),
        "scale_limit_function" => scale_limit_function(&input, &expect),
        "store_scale_event" => store_scale_event(&input, &expect),
        "legacy_convert" => legacy_convert(&input, &expect),
        "reconcile" => reconcile_case(&input, &expect),
        other => Err(format!("unknown case kind {other:?}")),
    };
    match outcome {
        Ok(()) => CaseResult { id, kind, passed: true, detail: String::new() },
        Err(detail) => CaseResult { id, kind, passed: false, detail },
    }
}

fn parse<T: DeserializeOwned>(v: &Value, what: &str) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("bad {what}: {e}"))
}

fn field<T: DeserializeOwned>(v: &Value, key: &str) -> Result<T, String> {
    parse(v.get(key).unwrap_or(&Value::Null), key)
}

fn opt_field<T: DeserializeOwned>(v: &Value, key: &str) -> Result<Option<T>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => parse(x, key).map(Some),
    }
}

fn check<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want { Ok(()) } else { Err(format!("{what}: got {got:?}, want {want:?}")) }
}

fn expect_error(result: Result<impl std::fmt::Debug, String>, expect: &Value) -> Option<Result<(), String>> {
    let want = expect.get("error_contains")?.as_str()?.to_string();
    Some(match result {
        Err(e) if e.contains(&want) => Ok(()),
        Err(e) => Err(format!("error {e:?} does not contain {want:?}")),
        Ok(v) => Err(format!("expected an error containing {want:?}, got {v:?}")),
    })
}

fn tolerances(input: &Value) -> Result<Tolerances, String> {
    match input.get("tolerance") {
        Some(Value::Number(n)) => Ok(Tolerances::both(n.as_f64().unwrap_or(0.1))),
        Some(v @ Value::Object(_)) => parse(v, "tolerance"),
        _ => Ok(Tolerances::default()),
    }
}

fn replica_calc(input: &Value, expect: &Value) -> Result<(), String> {
    let source: String = field(input, "metric_source")?;
    let current: i32 = field(input, "current_replicas")?;
    let tol = tolerances(input)?;
    let init: f64 = opt_field(input, "cpu_initialization_period_s")?.unwrap_or(300.0);
    let delay: f64 = opt_field(input, "initial_readiness_delay_s")?.unwrap_or(30.0);
    let resource: Option<String> = opt_field(input, "resource")?;
    let container: Option<String> = opt_field(input, "container")?;
    let target: MetricTarget = field(input, "target")?;
    let pods: Vec<Pod> = opt_field(input, "pods")?.unwrap_or_default();
    let result: Result<calc::Proposal, String> = match source.as_str() {
        "resource_utilization" => {
            let samples: Vec<PodResourceSample> = opt_field(input, "pod_metrics")?.unwrap_or_default();
            let pct = target.average_utilization_percent.ok_or("target lacks average_utilization_percent")?;
            calc::resource_utilization_replicas(
                current,
                pct,
                resource.as_deref().unwrap_or("cpu"),
                container.as_deref(),
                &tol,
                &pods,
                &samples,
                init,
                delay,
            )
        }
        "resource_average_value" => {
            let samples: Vec<PodResourceSample> = opt_field(input, "pod_metrics")?.unwrap_or_default();
            let avg = target.average_value_milli.ok_or("target lacks average_value_milli")?;
            let res = resource.as_deref().unwrap_or("cpu");
            calc::extract_resource_metrics(&samples, res, container.as_deref())
                .map_err(|e| format!("unable to get metrics for resource {res}: {e}"))
                .and_then(|m| calc::plain_metric_replicas(m, current, avg, &tol, &pods, Some(res), init, delay))
        }
        "pods_average_value" => {
            let samples: Vec<PodValueSample> = opt_field(input, "pod_metrics")?.unwrap_or_default();
            let avg = target.average_value_milli.ok_or("target lacks average_value_milli")?;
            calc::extract_value_metrics(&samples).and_then(|m| {
                calc::plain_metric_replicas(m, current, avg, &tol, &pods, resource.as_deref(), init, delay)
            })
        }
        "object_value" => {
            let usage: i64 = field(input, "object_metric_milli")?;
            let v = target.value_milli.ok_or("target lacks value_milli")?;
            calc::object_value_replicas(current, usage, v, &tol, &pods)
        }
        "object_average_value" => {
            let usage: i64 = field(input, "object_metric_milli")?;
            let avg = target.average_value_milli.ok_or("target lacks average_value_milli")?;
            Ok(calc::per_pod_average_replicas(current, usage, avg, &tol))
        }
        "external_value" => {
            let values: Vec<i64> = opt_field(input, "external_metric_values_milli")?.unwrap_or_default();
            let v = target.value_milli.ok_or("target lacks value_milli")?;
            calc::external_sum(&values).and_then(|usage| calc::object_value_replicas(current, usage, v, &tol, &pods))
        }
        "external_average_value" => {
            let values: Vec<i64> = opt_field(input, "external_metric_values_milli")?.unwrap_or_default();
            let avg = target.average_value_milli.ok_or("target lacks average_value_milli")?;
            calc::external_sum(&values).map(|usage| calc::per_pod_average_replicas(current, usage, avg, &tol))
        }
        other => return Err(format!("unknown metric_source {other:?}")),
    };
    if let Some(r) = expect_error(result.clone(), expect) {
        return r;
    }
    let p = result?;
    let want_replicas: i32 = field(expect, "replicas")?;
    check("replicas", p.replicas, want_replicas)?;
    if let Some(u) = opt_field::<i64>(expect, "utilization_percent")? {
        check("utilization_percent", p.utilization_percent, Some(u))?;
    }
    if let Some(r) = opt_field::<i64>(expect, "raw_average_milli")? {
        check("raw_average_milli", p.usage_milli, r)?;
    }
    if let Some(u) = opt_field::<i64>(expect, "usage_milli")? {
        check("usage_milli", p.usage_milli, u)?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct GroupMetric {
    pod: String,
    #[serde(default)]
    value: i64,
    #[serde(default)]
    timestamp_age_s: f64,
    #[serde(default)]
    window_s: f64,
}

fn pod_grouping(input: &Value, expect: &Value) -> Result<(), String> {
    let resource: Option<String> = opt_field(input, "resource")?;
    let init: f64 = field(input, "cpu_initialization_period_s")?;
    let delay: f64 = field(input, "initial_readiness_delay_s")?;
    let pods: Vec<Pod> = field(input, "pods")?;
    let metrics: Vec<GroupMetric> = opt_field(input, "metrics")?.unwrap_or_default();
    let map: calc::PodMetrics = metrics
        .into_iter()
        .map(|m| (m.pod, PodMetric { value: m.value, timestamp_age_s: m.timestamp_age_s, window_s: m.window_s }))
        .collect();
    let g = calc::group_pods(&pods, &map, resource.as_deref(), init, delay);
    check("ready_pod_count", g.ready_pod_count, field::<i64>(expect, "ready_pod_count")?)?;
    check("unready_pods", g.unready_pods, field::<BTreeSet<String>>(expect, "unready_pods")?)?;
    check("missing_pods", g.missing_pods, field::<BTreeSet<String>>(expect, "missing_pods")?)?;
    check("ignored_pods", g.ignored_pods, field::<BTreeSet<String>>(expect, "ignored_pods")?)
}

fn pod_requests(input: &Value, expect: &Value) -> Result<(), String> {
    let resource: String = field(input, "resource")?;
    let container: Option<String> = opt_field(input, "container")?;
    let pods: Vec<Pod> = field(input, "pods")?;
    let result = calc::calculate_requests(&pods, container.as_deref(), &resource);
    if let Some(r) = expect_error(result.clone(), expect) {
        return r;
    }
    check("requests_milli", result?, field::<BTreeMap<String, i64>>(expect, "requests_milli")?)
}

fn stabilize_legacy(input: &Value, expect: &Value) -> Result<(), String> {
    let window: f64 = field(input, "downscale_stabilization_window_s")?;
    let mut recs: Vec<Recommendation> = field(input, "recommendations")?;
    let desired: i32 = field(input, "prenormalized_desired_replicas")?;
    let s = normalize::stabilize_legacy(&mut recs, window, desired);
    check("stabilized_replicas", s.replicas, field(expect, "stabilized_replicas")?)?;
    if let Some(n) = opt_field::<usize>(expect, "history_length_after")? {
        check("history_length_after", recs.len(), n)?;
    }
    Ok(())
}

fn stabilize_behavior(input: &Value, expect: &Value) -> Result<(), String> {
    let mut recs: Vec<Recommendation> = field(input, "recommendations")?;
    let current: i32 = field(input, "current_replicas")?;
    let desired: i32 = field(input, "prenormalized_desired_replicas")?;
    let up: f64 = opt_field(input, "scale_up_stabilization_window_s")?.unwrap_or(0.0);
    let down: f64 = opt_field(input, "scale_down_stabilization_window_s")?.unwrap_or(300.0);
    let (s, _) = normalize::stabilize_behavior(&mut recs, current, desired, up, down);
    check("stabilized_replicas", s.replicas, field(expect, "stabilized_replicas")?)?;
    if let Some(stored) = opt_field::<Vec<i32>>(expect, "stored_recommendations_after")? {
        check("stored_recommendations_after", recs.iter().map(|r| r.replicas).collect::<Vec<_>>(), stored)?;
    }
    Ok(())
}

fn rules_or(input: &Value, key: &str, written_key: &str, default: ScalingRules) -> Result<ScalingRules, String> {
    if let Some(r) = opt_field::<ScalingRules>(input, key)? {
        return Ok(r);
    }
    let written: Option<ScalingRulesWritten> = opt_field(input, written_key)?;
    Ok(default.with_written(written.as_ref()))
}

fn rate_limit_behavior(input: &Value, expect: &Value) -> Result<(), String> {
    let up_events: Vec<ScaleEvent> = opt_field(input, "scale_up_events")?.unwrap_or_default();
    let down_events: Vec<ScaleEvent> = opt_field(input, "scale_down_events")?.unwrap_or_default();
    let up = rules_or(input, "scale_up_rules", "scale_up_rules_as_written", ScalingRules::default_scale_up())?;
    let down = rules_or(input, "scale_down_rules", "scale_down_rules_as_written", ScalingRules::default_scale_down())?;
    let l = normalize::convert_with_behavior(
        field(input, "current_replicas")?,
        field(input, "desired_replicas")?,
        field(input, "min_replicas")?,
        field(input, "max_replicas")?,
        &up_events,
        &down_events,
        &up,
        &down,
    );
    check("replicas", l.replicas, field(expect, "replicas")?)?;
    if let Some(reason) = opt_field::<String>(expect, "reason")? {
        check("reason", l.reason.to_string(), reason)?;
    }
    Ok(())
}

fn scale_limit_function(input: &Value, expect: &Value) -> Result<(), String> {
    let direction: String = field(input, "direction")?;
    let current: i32 = field(input, "current_replicas")?;
    let up_events: Vec<ScaleEvent> = opt_field(input, "scale_up_events")?.unwrap_or_default();
    let down_events: Vec<ScaleEvent> = opt_field(input, "scale_down_events")?.unwrap_or_default();
    let rules: ScalingRules = field(input, "rules")?;
    let limit = match direction.as_str() {
        "up" => normalize::scale_up_limit(current, &up_events, &down_events, &rules),
        "down" => normalize::scale_down_limit(current, &up_events, &down_events, &rules),
        other => return Err(format!("unknown direction {other:?}")),
    };
    check("limit", limit, field(expect, "limit")?)
}

#[derive(Deserialize, Debug, PartialEq)]
struct EventAfter {
    replica_change: i32,
    #[serde(default)]
    outdated: bool,
}

fn store_scale_event(input: &Value, expect: &Value) -> Result<(), String> {
    let rules: Option<ScalingRules> = opt_field(input, "behavior_rules")?;
    let previous: Vec<ScaleEvent> = field(input, "previous_events")?;
    let change: i32 = field(input, "replica_change")?;
    let prev_replicas: i32 = opt_field(input, "prev_replicas")?.unwrap_or(10);
    if let Some(n) = opt_field::<i32>(expect, "replicas_change_in_last_60s_before_store")? {
        check("replicas_change_in_last_60s_before_store", normalize::replicas_change_per_period(60, &previous), n)?;
    }
    let want: Vec<EventAfter> = field(expect, "events_after")?;
    // The Go test runs the same data as a scale-up and as a scale-down.
    for up in [true, false] {
        let mut events = previous.clone();
        if let Some(r) = &rules {
            let (b_up, b_down) = if up {
                (r.clone(), ScalingRules::default_scale_down())
            } else {
                (ScalingRules::default_scale_up(), r.clone())
            };
            let behavior = Behavior { scale_up: b_up, scale_down: b_down };
            let new = if up { prev_replicas + change } else { prev_replicas - change };
            let rules = if new > prev_replicas { &behavior.scale_up } else { &behavior.scale_down };
            normalize::store_scale_event(&mut events, rules, (new - prev_replicas).abs());
        }
        let got: Vec<EventAfter> =
            events.iter().map(|e| EventAfter { replica_change: e.replica_change, outdated: e.outdated }).collect();
        check(if up { "events_after (up)" } else { "events_after (down)" }, &got, &want)?;
    }
    Ok(())
}

fn legacy_convert(input: &Value, expect: &Value) -> Result<(), String> {
    let l = normalize::convert_legacy(
        field(input, "current_replicas")?,
        field(input, "desired_replicas")?,
        field(input, "min_replicas")?,
        field(input, "max_replicas")?,
        opt_field(input, "scale_up_limit_factor")?.unwrap_or(2.0),
        opt_field(input, "scale_up_limit_minimum")?.unwrap_or(4.0),
    );
    check("replicas", l.replicas, field(expect, "replicas")?)?;
    if let Some(reason) = opt_field::<String>(expect, "reason")? {
        check("reason", l.reason.to_string(), reason)?;
    }
    Ok(())
}

fn reconcile_case(input: &Value, expect: &Value) -> Result<(), String> {
    let input: ReconcileInput = parse(input, "reconcile input")?;
    let out = reconcile(&input);
    check("desired_replicas", out.desired_replicas, field(expect, "desired_replicas")?)?;
    if let Some(e) = opt_field::<bool>(expect, "metrics_error")? {
        check("metrics_error", out.metrics_error, e)?;
    }
    Ok(())
}
