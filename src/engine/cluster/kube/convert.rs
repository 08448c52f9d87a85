//! Pure conversions between Kubernetes objects (k8s-openapi) and the engine's types: quantities,
//! timestamps, label selectors, Deployment/Pod/HPA/PodMetrics → engine views, and the HPA that
//! scaletui writes from an [`HpaSpec`]. No I/O here; everything is unit-tested.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricSource, CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules,
    HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricIdentifier,
    MetricSpec as K8sMetricSpec, MetricTarget as K8sMetricTarget, PodsMetricSource, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};

use super::metrics_api::PodMetrics;
use crate::engine::hpa::{
    Behavior, BehaviorWritten, HpaSpec, MetricSpec, MetricTarget, PolicyType, ScalingPolicy, ScalingRulesWritten,
    SelectPolicy,
};
use crate::engine::types::{ContainerInfo, DeploymentState, HpaInfo, PodInfo, PodPhase, PodUsage};

const MIB: f64 = 1024.0 * 1024.0;

/// The label scaletui puts on the HPA it creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "scaletui");

/// A Kubernetes quantity (`100m`, `0.5`, `64Mi`, `128974848`, `1e3`, `250000n`) in base units.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => MIB,
        "Gi" => MIB * 1024.0,
        "Ti" => MIB * MIB,
        "Pi" => MIB * MIB * 1024.0,
        "Ei" => MIB * MIB * MIB,
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    let v = value * factor;
    v.is_finite().then_some(v)
}

/// A CPU quantity in millicores.
pub fn cpu_millis(q: &Quantity) -> Option<f64> {
    parse_quantity(&q.0).map(|cores| cores * 1000.0)
}

/// A memory quantity in MiB.
pub fn mem_mib(q: &Quantity) -> Option<f64> {
    parse_quantity(&q.0).map(|bytes| bytes / MIB)
}

/// A Go duration as metrics-server writes it (`30s`, `1m0.5s`, `15.002s`, `500ms`) in seconds.
pub fn parse_go_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    if s == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * unit;
        rest = &rest[u..];
    }
    Some(total)
}

/// A Kubernetes timestamp as Unix seconds.
pub fn unix(t: &Time) -> f64 {
    t.0.as_nanosecond() as f64 / 1e9
}

/// A label selector as the `labelSelector` query parameter (`app=webapp,tier in (web,api)`).
pub fn selector_string(sel: &LabelSelector) -> Result<String, String> {
    let mut parts: Vec<String> =
        sel.match_labels.iter().flat_map(|m| m.iter()).map(|(k, v)| format!("{k}={v}")).collect();
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => return Err(format!("unknown selector operator {other:?}")),
        });
    }
    if parts.is_empty() {
        // An empty selector matches every pod in the namespace: never act on that.
        return Err("the deployment has an empty selector".into());
    }
    Ok(parts.join(","))
}

/// The Deployment's replicas.
pub fn deployment_state(d: &Deployment) -> DeploymentState {
    let st = d.status.as_ref();
    DeploymentState {
        spec_replicas: d.spec.replicas.unwrap_or(1),
        status_replicas: st.and_then(|s| s.replicas).unwrap_or(0),
        ready_replicas: st.and_then(|s| s.ready_replicas).unwrap_or(0),
        available_replicas: st.and_then(|s| s.available_replicas).unwrap_or(0),
    }
}

fn phase(p: Option<&str>) -> PodPhase {
    match p {
        Some("Pending") | None => PodPhase::Pending,
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        Some(_) => PodPhase::Unknown,
    }
}

/// What the engine needs of a pod: phase, the Ready condition and when it changed, start time,
/// deletion, restarts, and every container's requests and limits.
pub fn pod_info(p: &Pod) -> PodInfo {
    let status = p.status.as_ref();
    let ready_cond = status.and_then(|s| s.conditions.as_ref()).and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    let containers = p
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| {
            let res = c.resources.as_ref();
            let req = res.and_then(|r| r.requests.as_ref());
            let lim = res.and_then(|r| r.limits.as_ref());
            ContainerInfo {
                name: c.name.clone(),
                cpu_request_m: req.and_then(|m| m.get("cpu")).and_then(cpu_millis),
                memory_request_mib: req.and_then(|m| m.get("memory")).and_then(mem_mib),
                cpu_limit_m: lim.and_then(|m| m.get("cpu")).and_then(cpu_millis),
                memory_limit_mib: lim.and_then(|m| m.get("memory")).and_then(mem_mib),
            }
        })
        .collect();
    PodInfo {
        name: p.metadata.name.clone().unwrap_or_default(),
        phase: phase(status.and_then(|s| s.phase.as_deref())),
        ready: ready_cond.map(|c| c.status == "True"),
        ready_transition_at: ready_cond.and_then(|c| c.last_transition_time.as_ref()).map(unix),
        started_at: status.and_then(|s| s.start_time.as_ref()).map(unix),
        deleting: p.metadata.deletion_timestamp.is_some(),
        restarts: status
            .and_then(|s| s.container_statuses.as_ref())
            .map_or(0, |cs| cs.iter().map(|c| c.restart_count.max(0) as u32).sum()),
        last_oom_at: last_oom_at(p),
        containers,
    }
}

/// When a container was last OOM-killed: its last termination (or its current state) with
/// reason `OOMKilled`, the newest of the pod's containers.
fn last_oom_at(p: &Pod) -> Option<f64> {
    let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
    statuses
        .iter()
        .flat_map(|c| {
            [c.last_state.as_ref(), c.state.as_ref()].into_iter().flatten().filter_map(|s| s.terminated.as_ref())
        })
        .filter(|t| t.reason.as_deref() == Some("OOMKilled"))
        .filter_map(|t| t.finished_at.as_ref().map(unix))
        .reduce(f64::max)
}

/// The port to forward to: the container's port named `http`, else its first port, else 80.
pub fn target_port(p: &Pod, container: &str) -> u16 {
    let ports = p
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .find(|c| c.name == container)
        .and_then(|c| c.ports.clone())
        .unwrap_or_default();
    let port = ports.iter().find(|cp| cp.name.as_deref() == Some("http")).or(ports.first()).map(|cp| cp.container_port);
    port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0).unwrap_or(80)
}

/// The live HPA's view for the record.
pub fn hpa_info(h: &HorizontalPodAutoscaler) -> HpaInfo {
    let st = h.status.as_ref();
    HpaInfo {
        name: h.metadata.name.clone().unwrap_or_default(),
        min_replicas: h.spec.min_replicas.unwrap_or(1),
        max_replicas: h.spec.max_replicas,
        current_replicas: st.and_then(|s| s.current_replicas),
        desired_replicas: st.map(|s| s.desired_replicas),
        conditions: st
            .and_then(|s| s.conditions.as_ref())
            .map(|cs| {
                cs.iter().map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone().unwrap_or_default())).collect()
            })
            .unwrap_or_default(),
    }
}

fn target_to_k8s(t: Option<&MetricTarget>) -> Result<K8sMetricTarget, String> {
    let t = t.ok_or("a metric without a target")?;
    let milli = |m: i64| Quantity(format!("{m}m"));
    if let Some(u) = t.average_utilization_percent {
        Ok(K8sMetricTarget { type_: "Utilization".into(), average_utilization: Some(u), ..Default::default() })
    } else if let Some(v) = t.average_value_milli {
        Ok(K8sMetricTarget { type_: "AverageValue".into(), average_value: Some(milli(v)), ..Default::default() })
    } else if let Some(v) = t.value_milli {
        Ok(K8sMetricTarget { type_: "Value".into(), value: Some(milli(v)), ..Default::default() })
    } else {
        Err("a metric target without a value".into())
    }
}

fn target_from_k8s(t: &K8sMetricTarget) -> MetricTarget {
    let milli =
        |q: &Option<Quantity>| q.as_ref().and_then(|q| parse_quantity(&q.0)).map(|v| (v * 1000.0).round() as i64);
    match t.type_.as_str() {
        "Utilization" => MetricTarget { average_utilization_percent: t.average_utilization, ..MetricTarget::default() },
        "AverageValue" => MetricTarget { average_value_milli: milli(&t.average_value), ..MetricTarget::default() },
        _ => MetricTarget { value_milli: milli(&t.value), ..MetricTarget::default() },
    }
}

fn rules_to_k8s(r: &ScalingRulesWritten) -> HPAScalingRules {
    HPAScalingRules {
        select_policy: r.select_policy.map(|p| format!("{p:?}")),
        stabilization_window_seconds: r.stabilization_window_s,
        policies: r.policies.as_ref().map(|ps| {
            ps.iter()
                .map(|p| HPAScalingPolicy {
                    type_: format!("{:?}", p.kind),
                    value: p.value,
                    period_seconds: p.period_s,
                })
                .collect()
        }),
        tolerance: r.tolerance.map(|t| Quantity(format!("{t}"))),
    }
}

fn rules_from_k8s(r: &HPAScalingRules) -> ScalingRulesWritten {
    ScalingRulesWritten {
        select_policy: r.select_policy.as_deref().map(|p| match p {
            "Min" => SelectPolicy::Min,
            "Disabled" => SelectPolicy::Disabled,
            _ => SelectPolicy::Max,
        }),
        stabilization_window_s: r.stabilization_window_seconds,
        policies: r.policies.as_ref().map(|ps| {
            ps.iter()
                .map(|p| ScalingPolicy {
                    kind: if p.type_ == "Percent" { PolicyType::Percent } else { PolicyType::Pods },
                    value: p.value,
                    period_s: p.period_seconds,
                })
                .collect()
        }),
        tolerance: r.tolerance.as_ref().and_then(|q| parse_quantity(&q.0)),
    }
}

/// The `autoscaling/v2` HPA scaletui creates for `deployment` from `spec`.
pub fn build_hpa(
    name: &str,
    namespace: &str,
    deployment: &str,
    spec: &HpaSpec,
) -> Result<HorizontalPodAutoscaler, String> {
    let metrics = spec
        .metrics
        .iter()
        .map(|m| match (m.kind.as_str(), &m.resource, &m.container) {
            ("Resource", Some(r), _) => Ok(K8sMetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource { name: r.clone(), target: target_to_k8s(m.target.as_ref())? }),
                ..Default::default()
            }),
            ("ContainerResource", Some(r), Some(c)) => Ok(K8sMetricSpec {
                type_: "ContainerResource".into(),
                container_resource: Some(ContainerResourceMetricSource {
                    name: r.clone(),
                    container: c.clone(),
                    target: target_to_k8s(m.target.as_ref())?,
                }),
                ..Default::default()
            }),
            // The per-pod figures scaletui knows, served by a custom metrics adapter.
            ("Pods", _, _)
                if m.metric.as_deref().is_some_and(|n| crate::config::PodFigure::from_metric_name(n).is_some()) =>
            {
                Ok(K8sMetricSpec {
                    type_: "Pods".into(),
                    pods: Some(PodsMetricSource {
                        metric: MetricIdentifier { name: m.metric.clone().unwrap_or_default(), selector: None },
                        target: target_to_k8s(m.target.as_ref())?,
                    }),
                    ..Default::default()
                })
            }
            _ => Err(format!(
                "scaletui only writes Resource, ContainerResource and its own Pods metrics, not {}",
                m.label()
            )),
        })
        .collect::<Result<Vec<_>, String>>()?;
    let behavior = spec.behavior.as_ref().map(|b| HorizontalPodAutoscalerBehavior {
        scale_up: b.scale_up.as_ref().map(rules_to_k8s),
        scale_down: b.scale_down.as_ref().map(rules_to_k8s),
    });
    Ok(HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())])),
            ..ObjectMeta::default()
        },
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: deployment.to_string(),
            },
            min_replicas: Some(spec.min_replicas),
            max_replicas: spec.max_replicas,
            metrics: Some(metrics),
            behavior,
        },
        status: None,
    })
}

/// The engine's view of a live HPA's spec (what [`build_hpa`] would have been given).
pub fn spec_of(h: &HorizontalPodAutoscaler) -> HpaSpec {
    let metrics = h
        .spec
        .metrics
        .iter()
        .flatten()
        .map(|m| {
            let mut out = MetricSpec { kind: m.type_.clone(), ..MetricSpec::default() };
            if let Some(r) = &m.resource {
                out.resource = Some(r.name.clone());
                out.target = Some(target_from_k8s(&r.target));
            } else if let Some(r) = &m.container_resource {
                out.resource = Some(r.name.clone());
                out.container = Some(r.container.clone());
                out.target = Some(target_from_k8s(&r.target));
            } else if let Some(p) = &m.pods {
                out.metric = Some(p.metric.name.clone());
                out.target = Some(target_from_k8s(&p.target));
            } else if let Some(o) = &m.object {
                out.metric = Some(o.metric.name.clone());
                out.described_object = Some(format!("{}/{}", o.described_object.kind, o.described_object.name));
                out.target = Some(target_from_k8s(&o.target));
            } else if let Some(e) = &m.external {
                out.metric = Some(e.metric.name.clone());
                out.target = Some(target_from_k8s(&e.target));
            }
            out
        })
        .collect();
    HpaSpec {
        min_replicas: h.spec.min_replicas.unwrap_or(1),
        max_replicas: h.spec.max_replicas,
        metrics,
        behavior: h.spec.behavior.as_ref().map(|b| BehaviorWritten {
            scale_up: b.scale_up.as_ref().map(rules_from_k8s),
            scale_down: b.scale_down.as_ref().map(rules_from_k8s),
        }),
    }
}

/// Whether a live HPA already is what scaletui would write: same target, bounds, metrics and
/// behavior after the API server's defaulting.
pub fn hpa_matches(h: &HorizontalPodAutoscaler, deployment: &str, want: &HpaSpec) -> bool {
    let r = &h.spec.scale_target_ref;
    let have = spec_of(h);
    r.kind == "Deployment"
        && r.name == deployment
        && have.min_replicas == want.min_replicas
        && have.max_replicas == want.max_replicas
        && have.metrics == want.metrics
        && have.behavior.as_ref().map(Behavior::from_written) == want.behavior.as_ref().map(Behavior::from_written)
}

/// One PodMetrics item as the engine's usage sample: CPU and memory summed over containers.
pub fn pod_usage(m: &PodMetrics) -> PodUsage {
    let sum = |f: fn(&Quantity) -> Option<f64>, key: &str| -> Option<f64> {
        let vals: Option<Vec<f64>> =
            m.containers.iter().map(|c| c.usage.get(key).and_then(f)).collect::<Option<Vec<f64>>>();
        vals.filter(|v| !v.is_empty()).map(|v| v.iter().sum())
    };
    PodUsage {
        pod: m.metadata.name.clone().unwrap_or_default(),
        cpu_m: sum(cpu_millis, "cpu"),
        memory_mib: sum(mem_mib, "memory"),
        at: m.timestamp.as_ref().map(unix).unwrap_or_else(crate::engine::types::wall_now),
        window_s: m.window.as_deref().and_then(parse_go_duration).unwrap_or(30.0),
        ..PodUsage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::experiment::hpa_spec;

    #[test]
    fn quantities() {
        let q = |s: &str| parse_quantity(s);
        assert_eq!(q("100m"), Some(0.1));
        assert_eq!(q("2"), Some(2.0));
        assert_eq!(q("0.5"), Some(0.5));
        assert_eq!(q("64Mi"), Some(64.0 * MIB));
        assert_eq!(q("128974848"), Some(128974848.0));
        assert_eq!(q("1e3"), Some(1000.0));
        assert_eq!(q("1E3"), Some(1000.0));
        assert_eq!(q("1G"), Some(1e9));
        assert_eq!(q("12Ki"), Some(12288.0));
        assert!((q("250000n").expect("n") - 0.00025).abs() < 1e-15);
        assert!((q("1500u").expect("u") - 0.0015).abs() < 1e-15);
        assert_eq!(q("abc"), None);
        assert_eq!(q("10Qi"), None);
        assert_eq!(q(""), None);
        assert_eq!(cpu_millis(&Quantity("123456789n".into())).map(|m| (m * 1000.0).round() / 1000.0), Some(123.457));
        assert_eq!(mem_mib(&Quantity("65536Ki".into())), Some(64.0));
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Some(30.0));
        assert_eq!(parse_go_duration("1m0.5s"), Some(60.5));
        assert_eq!(parse_go_duration("15.002s"), Some(15.002));
        assert_eq!(parse_go_duration("500ms"), Some(0.5));
        assert_eq!(parse_go_duration("1h2m"), Some(3720.0));
        assert_eq!(parse_go_duration("0"), Some(0.0));
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration("10x"), None);
    }

    #[test]
    fn selectors() {
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "webapp", "tier": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["a", "b"]},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .expect("selector");
        assert_eq!(selector_string(&sel).expect("ok"), "app=webapp,tier=web,env in (a,b),!legacy");
        assert!(selector_string(&LabelSelector::default()).is_err(), "never list every pod");
    }

    fn pod_json() -> serde_json::Value {
        serde_json::json!({
            "metadata": {"name": "webapp-1", "deletionTimestamp": "2026-01-01T00:01:00Z"},
            "spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.27-alpine",
                 "ports": [{"containerPort": 8080, "name": "web"}, {"containerPort": 80, "name": "http"}],
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}},
                {"name": "exporter", "image": "nginx/nginx-prometheus-exporter:1.3.0",
                 "resources": {"requests": {"cpu": "10m"}}}
            ]},
            "status": {
                "phase": "Running",
                "startTime": "2026-01-01T00:00:00Z",
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2025-12-31T23:59:59Z"},
                    {"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:30Z"}
                ],
                "containerStatuses": [
                    {"name": "nginx", "ready": false, "restartCount": 2, "image": "x", "imageID": "y",
                     "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                  "finishedAt": "2026-01-01T00:00:20Z"}}},
                    {"name": "exporter", "ready": true, "restartCount": 1, "image": "x", "imageID": "y",
                     "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                  "finishedAt": "2026-01-01T00:00:25Z"}}}
                ]
            }
        })
    }

    #[test]
    fn pods_carry_what_the_hpa_needs() {
        let p: Pod = serde_json::from_value(pod_json()).expect("pod");
        let info = pod_info(&p);
        let t0 = 1_767_225_600.0; // 2026-01-01T00:00:00Z
        assert_eq!(info.name, "webapp-1");
        assert_eq!(info.phase, PodPhase::Running);
        assert_eq!(info.ready, Some(false));
        assert_eq!(info.ready_transition_at, Some(t0 + 30.0));
        assert_eq!(info.started_at, Some(t0));
        assert!(info.deleting);
        assert_eq!(info.restarts, 3);
        assert_eq!(info.last_oom_at, Some(t0 + 20.0), "the OOM kill, not the exporter's error");
        assert_eq!(info.containers.len(), 2);
        assert_eq!(info.containers[0].cpu_request_m, Some(100.0));
        assert_eq!(info.containers[0].memory_limit_mib, Some(128.0));
        assert_eq!(info.containers[1].memory_request_mib, None);
        assert_eq!(info.cpu_request_m(), Some(110.0));
        assert_eq!(info.memory_request_mib(), None, "one container has no memory request");
        assert_eq!(target_port(&p, "nginx"), 80, "the port named http wins");
        assert_eq!(target_port(&p, "exporter"), 80, "no ports: 80");
        let mut bare = p.clone();
        bare.status = None;
        let info = pod_info(&bare);
        assert_eq!((info.phase, info.ready, info.started_at, info.last_oom_at), (PodPhase::Pending, None, None, None));
    }

    #[test]
    fn deployment_and_hpa_views() {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "webapp"},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "webapp"}}, "template": {}},
            "status": {"replicas": 5, "readyReplicas": 3, "availableReplicas": 3}
        }))
        .expect("deployment");
        let s = deployment_state(&d);
        assert_eq!((s.spec_replicas, s.status_replicas, s.ready_replicas, s.available_replicas), (4, 5, 3, 3));
        let h: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "webapp-hpa"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "webapp"}, "maxReplicas": 10},
            "status": {"currentReplicas": 3, "desiredReplicas": 5, "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale"},
                {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric"}
            ]}
        }))
        .expect("hpa");
        let i = hpa_info(&h);
        assert_eq!((i.min_replicas, i.max_replicas, i.current_replicas, i.desired_replicas), (1, 10, Some(3), Some(5)));
        assert_eq!(i.conditions[1], ("ScalingActive".into(), "False".into(), "FailedGetResourceMetric".into()));
    }

    #[test]
    fn built_hpa_is_the_configured_one_and_round_trips() {
        let spec = hpa_spec(&Config::default());
        let h = build_hpa("webapp-hpa", "default", "webapp", &spec).expect("builds");
        let json = serde_json::to_value(&h).expect("json");
        assert_eq!(
            json["spec"]["scaleTargetRef"],
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "webapp"})
        );
        assert_eq!(
            json["spec"]["metrics"][0]["resource"]["target"],
            serde_json::json!({"type": "Utilization", "averageUtilization": 60})
        );
        assert_eq!(json["spec"]["metrics"][1]["resource"]["name"], "memory");
        assert_eq!(
            json["spec"]["behavior"]["scaleUp"],
            serde_json::json!({"selectPolicy": "Max", "stabilizationWindowSeconds": 0,
                               "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]})
        );
        assert_eq!(
            json["spec"]["behavior"]["scaleDown"]["policies"],
            serde_json::json!([{"type": "Pods", "value": 1, "periodSeconds": 30}])
        );
        assert_eq!(json["metadata"]["labels"]["app.kubernetes.io/managed-by"], "scaletui");
        assert_eq!(spec_of(&h), spec);
        assert!(hpa_matches(&h, "webapp", &spec));
        assert!(!hpa_matches(&h, "other", &spec));
        let mut changed = spec.clone();
        changed.max_replicas = 7;
        assert!(!hpa_matches(&h, "webapp", &changed));
    }

    #[test]
    fn server_defaulting_does_not_count_as_a_difference() {
        // What an API server returns for a behavior with only the windows written.
        let spec = HpaSpec {
            behavior: Some(BehaviorWritten {
                scale_up: Some(ScalingRulesWritten { stabilization_window_s: Some(0), ..Default::default() }),
                scale_down: None,
            }),
            ..hpa_spec(&Config::default())
        };
        let mut h = build_hpa("h", "ns", "webapp", &spec).expect("builds");
        let b = h.spec.behavior.as_mut().expect("behavior");
        b.scale_up.as_mut().expect("up").select_policy = Some("Max".into());
        b.scale_up.as_mut().expect("up").policies = Some(vec![
            HPAScalingPolicy { type_: "Pods".into(), value: 4, period_seconds: 15 },
            HPAScalingPolicy { type_: "Percent".into(), value: 100, period_seconds: 15 },
        ]);
        b.scale_down = Some(HPAScalingRules {
            select_policy: Some("Max".into()),
            policies: Some(vec![HPAScalingPolicy { type_: "Percent".into(), value: 100, period_seconds: 15 }]),
            ..Default::default()
        });
        assert!(hpa_matches(&h, "webapp", &spec));
    }

    #[test]
    fn unsupported_metrics_are_refused() {
        let spec = HpaSpec {
            min_replicas: 1,
            max_replicas: 3,
            metrics: vec![MetricSpec { kind: "Pods".into(), metric: Some("qps".into()), ..MetricSpec::default() }],
            behavior: None,
        };
        let e = build_hpa("h", "ns", "d", &spec).expect_err("refused");
        assert!(e.contains("qps"), "{e}");
    }

    #[test]
    fn pods_metrics_of_the_config_are_written_and_read_back() {
        let s = crate::config::ScalingConfig {
            metrics: vec![
                crate::config::HpaMetric::Cpu,
                crate::config::HpaMetric::Pods { figure: crate::config::PodFigure::Waiting, target: 5.0 },
            ],
            ..crate::config::ScalingConfig::default()
        };
        let spec = HpaSpec { min_replicas: 1, max_replicas: 6, metrics: s.hpa_metrics(), behavior: None };
        let h = build_hpa("h", "ns", "d", &spec).expect("written");
        let json = serde_json::to_value(&h).expect("json");
        assert_eq!(json["spec"]["metrics"][1]["pods"]["metric"]["name"], "http_requests_waiting");
        assert_eq!(json["spec"]["metrics"][1]["pods"]["target"]["averageValue"], "5000m");
        assert_eq!(spec_of(&h).metrics, spec.metrics);
    }

    #[test]
    fn pod_metrics_sum_containers() {
        let m: PodMetrics = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "webapp-1", "namespace": "default"},
            "timestamp": "2026-01-01T00:00:15Z",
            "window": "15.002s",
            "containers": [
                {"name": "nginx", "usage": {"cpu": "150000000n", "memory": "40Mi"}},
                {"name": "exporter", "usage": {"cpu": "2m", "memory": "8192Ki"}}
            ]
        }))
        .expect("metrics");
        let u = pod_usage(&m);
        assert_eq!(u.pod, "webapp-1");
        assert!((u.cpu_m.expect("cpu") - 152.0).abs() < 1e-9);
        assert_eq!(u.memory_mib, Some(48.0));
        assert_eq!(u.at, 1_767_225_615.0);
        assert_eq!(u.window_s, 15.002);
    }
}
