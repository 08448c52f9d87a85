//! The simulated cluster as Prometheus sees a real one: Prometheus text exposition (format 0.0.4)
//! at `http://<[sim] exporter_listen>/metrics` with the names and labels of cAdvisor (through the
//! kubelet), kube-state-metrics v2 and a conventionally instrumented web app, so the PromQL
//! templates of `[metrics.queries]` work unchanged on the simulator and on a real cluster.
//!
//! - cAdvisor: per running pod three series, like the kubelet's: the app container
//!   (`container="nginx"`), the pause container (`container="POD"`) and the pod-level cgroup
//!   (`container=""`, the sum). `container_cpu_usage_seconds_total` is the model's own counter;
//!   `container_memory_working_set_bytes` its memory; `container_memory_usage_bytes` adds
//!   [`PAGE_CACHE_MIB`] of reclaimable page cache per container, as the kernel counts it.
//! - kube-state-metrics: pod phase, readiness, info, container requests/limits and restarts;
//!   deployment spec/status replicas; the HPA's min/max/current/desired when one exists.
//! - The Service: `http_requests_total{code}` (200 served, 503 turned away, 504 the client gave
//!   up, 500 lost with a killed pod), the `http_request_duration_seconds` histogram of the served
//!   requests, and per pod `http_requests_in_flight` and `http_requests_waiting` (queued, not in
//!   service), labelled with `namespace` and `service` (= the deployment); with a central queue
//!   its length is `dispatcher_queue_size` (the inference experiment's dispatcher gauge).
//!
//! The counters grow with the simulated clock. Prometheus stamps samples with its own (wall)
//! clock, so a run that is scraped goes at speed 1 (`run.rs` sees to it).

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::model::SimModel;
use crate::engine::clock::SharedClock;
use crate::engine::types::PodPhase;

const MIB: f64 = 1_048_576.0;
/// Memory of the pause container.
pub const PAUSE_MEMORY_MIB: f64 = 0.5;
/// Page cache counted in `container_memory_usage_bytes` but not in the working set.
pub const PAGE_CACHE_MIB: f64 = 8.0;
/// The node every simulated pod runs on.
pub const NODE: &str = "sim-node-1";
/// Upper bounds of the latency histogram (seconds), Prometheus' client default buckets.
pub const LATENCY_BUCKETS_S: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Writes metric families in exposition format.
struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(value));
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

/// The exposition of the model's current state.
pub fn render(m: &SimModel, namespace: &str, deployment: &str) -> String {
    let cfg = m.config();
    let infos = m.pod_infos();
    let figures = m.pod_figures();
    let pods: Vec<_> = figures.iter().zip(&infos).collect();
    let running: Vec<_> = pods.iter().filter(|(_, i)| i.phase == PodPhase::Running).collect();
    let mut o = Out { text: String::with_capacity(16 * 1024) };
    let ns = namespace;

    o.family("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds.");
    for (p, _) in &running {
        let pod = p.name.as_str();
        o.sample(
            "container_cpu_usage_seconds_total",
            &[("namespace", ns), ("pod", pod), ("container", "nginx")],
            p.cpu_seconds_total,
        );
        o.sample("container_cpu_usage_seconds_total", &[("namespace", ns), ("pod", pod), ("container", "POD")], 0.0);
        o.sample(
            "container_cpu_usage_seconds_total",
            &[("namespace", ns), ("pod", pod), ("container", "")],
            p.cpu_seconds_total,
        );
    }
    let memory = |o: &mut Out, name: &str, help: &str, extra_mib: f64| {
        o.family(name, "gauge", help);
        for (p, _) in &running {
            let pod = p.name.as_str();
            let app = (p.memory_mib + extra_mib) * MIB;
            let pause = (PAUSE_MEMORY_MIB + extra_mib) * MIB;
            o.sample(name, &[("namespace", ns), ("pod", pod), ("container", "nginx")], app);
            o.sample(name, &[("namespace", ns), ("pod", pod), ("container", "POD")], pause);
            o.sample(name, &[("namespace", ns), ("pod", pod), ("container", "")], app + pause);
        }
    };
    memory(&mut o, "container_memory_working_set_bytes", "Current working set in bytes.", 0.0);
    memory(
        &mut o,
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed.",
        PAGE_CACHE_MIB,
    );
    o.family("container_spec_memory_limit_bytes", "gauge", "Memory limit for the container.");
    for (p, _) in &running {
        let l = [("namespace", ns), ("pod", p.name.as_str()), ("container", "nginx")];
        o.sample("container_spec_memory_limit_bytes", &l, cfg.memory_limit_mib * MIB);
    }

    o.family("kube_pod_info", "gauge", "Information about pod.");
    for (p, _) in &pods {
        o.sample(
            "kube_pod_info",
            &[("namespace", ns), ("pod", p.name.as_str()), ("node", NODE), ("created_by_kind", "ReplicaSet")],
            1.0,
        );
    }
    o.family("kube_pod_status_phase", "gauge", "The pods current phase.");
    for (p, info) in &pods {
        for phase in [PodPhase::Pending, PodPhase::Running, PodPhase::Succeeded, PodPhase::Failed, PodPhase::Unknown] {
            let v = if info.phase == phase { 1.0 } else { 0.0 };
            o.sample(
                "kube_pod_status_phase",
                &[("namespace", ns), ("pod", p.name.as_str()), ("phase", phase.as_str())],
                v,
            );
        }
    }
    o.family("kube_pod_status_ready", "gauge", "Describes whether the pod is ready to serve requests.");
    for (p, info) in &pods {
        for (cond, on) in [
            ("true", info.ready == Some(true)),
            ("false", info.ready == Some(false)),
            ("unknown", info.ready.is_none()),
        ] {
            o.sample(
                "kube_pod_status_ready",
                &[("namespace", ns), ("pod", p.name.as_str()), ("condition", cond)],
                f64::from(u8::from(on)),
            );
        }
    }
    for (name, help, cpu_m, mem_mib) in [
        (
            "kube_pod_container_resource_requests",
            "The number of requested request resource by a container.",
            cfg.cpu_request_m,
            cfg.memory_request_mib,
        ),
        (
            "kube_pod_container_resource_limits",
            "The number of requested limit resource by a container.",
            cfg.cpu_limit_m,
            cfg.memory_limit_mib,
        ),
    ] {
        o.family(name, "gauge", help);
        for (p, _) in &pods {
            let pod = p.name.as_str();
            let base = [("namespace", ns), ("pod", pod), ("container", "nginx"), ("node", NODE)];
            o.sample(name, &[&base[..], &[("resource", "cpu"), ("unit", "core")]].concat(), cpu_m / 1000.0);
            o.sample(name, &[&base[..], &[("resource", "memory"), ("unit", "byte")]].concat(), mem_mib * MIB);
        }
    }
    o.family("kube_pod_container_status_restarts_total", "counter", "The number of container restarts per container.");
    for (p, info) in &pods {
        let l = [("namespace", ns), ("pod", p.name.as_str()), ("container", "nginx")];
        o.sample("kube_pod_container_status_restarts_total", &l, f64::from(info.restarts));
    }

    let d = m.deployment();
    let dl = [("namespace", ns), ("deployment", deployment)];
    for (name, help, v) in [
        ("kube_deployment_spec_replicas", "Number of desired pods for a deployment.", d.spec_replicas),
        ("kube_deployment_status_replicas", "The number of replicas per deployment.", d.status_replicas),
        ("kube_deployment_status_replicas_ready", "The number of ready replicas per deployment.", d.ready_replicas),
        (
            "kube_deployment_status_replicas_available",
            "The number of available replicas per deployment.",
            d.available_replicas,
        ),
    ] {
        o.family(name, "gauge", help);
        o.sample(name, &dl, f64::from(v));
    }
    if let Some(h) = m.hpa_info() {
        let hl = [("namespace", ns), ("horizontalpodautoscaler", h.name.as_str())];
        for (name, help, v) in [
            (
                "kube_horizontalpodautoscaler_spec_min_replicas",
                "Lower limit for the number of pods that can be set by the autoscaler.",
                Some(h.min_replicas),
            ),
            (
                "kube_horizontalpodautoscaler_spec_max_replicas",
                "Upper limit for the number of pods that can be set by the autoscaler.",
                Some(h.max_replicas),
            ),
            (
                "kube_horizontalpodautoscaler_status_current_replicas",
                "Current number of replicas of pods managed by this autoscaler.",
                h.current_replicas,
            ),
            (
                "kube_horizontalpodautoscaler_status_desired_replicas",
                "Desired number of replicas of pods managed by this autoscaler.",
                h.desired_replicas,
            ),
        ] {
            if let Some(v) = v {
                o.family(name, "gauge", help);
                o.sample(name, &hl, f64::from(v));
            }
        }
    }

    let totals = m.totals();
    let c = totals.requests;
    let sl = [("namespace", ns), ("service", deployment)];
    o.family("http_requests_total", "counter", "Requests to the service by status code.");
    for (code, n) in [("200", c.served), ("503", c.rejected), ("504", c.timed_out), ("500", c.failed)] {
        o.sample("http_requests_total", &[&sl[..], &[("code", code)]].concat(), n as f64);
    }
    o.family("http_request_duration_seconds", "histogram", "Time to answer a request, seconds.");
    for le in LATENCY_BUCKETS_S {
        let l = number(le);
        o.sample(
            "http_request_duration_seconds_bucket",
            &[&sl[..], &[("le", l.as_str())]].concat(),
            m.served_le(le) as f64,
        );
    }
    o.sample("http_request_duration_seconds_bucket", &[&sl[..], &[("le", "+Inf")]].concat(), c.served as f64);
    o.sample("http_request_duration_seconds_sum", &sl, m.served_latency_sum_s());
    o.sample("http_request_duration_seconds_count", &sl, c.served as f64);
    for (name, help, waiting) in [
        ("http_requests_in_flight", "Requests waiting or in service.", false),
        ("http_requests_waiting", "Requests queued, not in service.", true),
    ] {
        o.family(name, "gauge", help);
        for (p, _) in &running {
            let v = if waiting { p.waiting } else { p.in_flight };
            o.sample(name, &[&sl[..], &[("pod", p.name.as_str())]].concat(), f64::from(v));
        }
    }
    if cfg.routing == crate::config::Routing::CentralQueue {
        o.family("dispatcher_queue_size", "gauge", "Requests in the dispatcher's queue.");
        o.sample("dispatcher_queue_size", &sl, f64::from(m.central_waiting()));
    }
    o.text
}

/// The exporter's HTTP server.
pub struct ExporterServer {
    pub addr: SocketAddr,
    /// `http://addr/metrics`
    pub url: String,
}

#[derive(Clone)]
struct AppState {
    model: Arc<Mutex<SimModel>>,
    clock: SharedClock,
    namespace: Arc<str>,
    deployment: Arc<str>,
}

impl ExporterServer {
    /// Listen on `listen` (port 0 picks a free one) until `cancel`.
    pub async fn start(
        listen: &str,
        model: Arc<Mutex<SimModel>>,
        clock: SharedClock,
        namespace: &str,
        deployment: &str,
        cancel: CancellationToken,
    ) -> std::io::Result<ExporterServer> {
        let addr: SocketAddr = listen.parse().map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("not an address and port: {listen:?}"))
        })?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = AppState { model, clock, namespace: namespace.into(), deployment: deployment.into() };
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/", get(|| async { "scaletui simulated cluster: Prometheus metrics at /metrics\n" }))
            .with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await;
        });
        Ok(ExporterServer { addr, url: format!("http://{addr}/metrics") })
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let body = render(&super::lock_advanced(&s.model, &s.clock), &s.namespace, &s.deployment);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ServiceConfig, ServiceDistribution, SimConfig};
    use crate::engine::hpa::{HpaSpec, MetricSpec};
    use crate::engine::scenario::LoadPlan;

    fn model() -> SimModel {
        let spec = HpaSpec {
            min_replicas: 1,
            max_replicas: 10,
            metrics: vec![MetricSpec::resource_utilization("cpu", 60)],
            behavior: None,
        };
        let cfg = SimConfig {
            noise: 0.0,
            hpa_present: true,
            base_latency_ms: 0.0,
            service: ServiceConfig {
                distribution: ServiceDistribution::Deterministic,
                mean_ms: 2.0,
                ..ServiceConfig::default()
            },
            ..SimConfig::default()
        };
        let mut m = SimModel::new(&cfg, 1000.0, "webapp", "webapp-hpa", spec);
        m.set_plan(Some(LoadPlan::constant(30.0)));
        m
    }

    fn value(text: &str, series: &str) -> f64 {
        let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("{series} in\n{text}"));
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("a number")
    }

    #[test]
    fn counters_grow_with_the_model_and_gauges_follow_it() {
        let mut m = model();
        let pod = m.pod_figures()[0].name.clone();
        let cpu = format!(r#"container_cpu_usage_seconds_total{{namespace="default",pod="{pod}",container="nginx"}}"#);
        let before = render(&m, "default", "webapp");
        m.advance_to(1060.0);
        let after = render(&m, "default", "webapp");
        let served = value(&after, r#"http_requests_total{namespace="default",service="webapp",code="200"}"#);
        // The pods' CPU counters grew by 5 m idle each plus 2 ms of work per served request.
        let grown: f64 = m
            .pod_figures()
            .iter()
            .map(|p| {
                let series = format!(
                    r#"container_cpu_usage_seconds_total{{namespace="default",pod="{}",container="nginx"}}"#,
                    p.name
                );
                value(&after, &series) - value(&before, &series)
            })
            .sum();
        // Work takes the whole limit while a pod is busy (10 % of the time here), idle use the
        // rest: work + 5 m × 60 s × 90 % per pod, give or take the work in progress.
        let want = served * 0.002 + 3.0 * 0.005 * 60.0 * 0.9;
        assert!((grown - want).abs() < 0.03, "{grown} for {served} served, want {want}");
        let pod_level = format!(r#"container_cpu_usage_seconds_total{{namespace="default",pod="{pod}",container=""}}"#);
        assert_eq!(value(&after, &pod_level), value(&after, &cpu));
        let ws = format!(r#"container_memory_working_set_bytes{{namespace="default",pod="{pod}",container="nginx"}}"#);
        assert!((value(&after, &ws) / MIB - m.pod_figures()[0].memory_mib).abs() < 1e-9);
        // Poisson arrivals at 30/s for 60 s: 1,800 expected, sd 42.
        assert!((served - 1800.0).abs() < 170.0, "{served}");
        let count = value(&after, r#"http_request_duration_seconds_count{namespace="default",service="webapp"}"#);
        let inf =
            value(&after, r#"http_request_duration_seconds_bucket{namespace="default",service="webapp",le="+Inf"}"#);
        let le_5ms =
            value(&after, r#"http_request_duration_seconds_bucket{namespace="default",service="webapp",le="0.005"}"#);
        assert_eq!(count, served);
        assert_eq!(count, inf);
        // 2 ms of work at 0.2 cores is 10 ms alone: none within 5 ms.
        assert_eq!(le_5ms, 0.0);
        assert_eq!(value(&after, r#"kube_deployment_spec_replicas{namespace="default",deployment="webapp"}"#), 3.0);
        let running = format!(r#"kube_pod_status_phase{{namespace="default",pod="{pod}",phase="Running"}}"#);
        assert_eq!(value(&after, &running), 1.0);
        let req = format!(
            r#"kube_pod_container_resource_requests{{namespace="default",pod="{pod}",container="nginx",node="sim-node-1",resource="cpu",unit="core"}}"#
        );
        assert_eq!(value(&after, &req), 0.1);
        assert!(after.contains("# TYPE http_request_duration_seconds histogram"));
        assert!(
            after.contains(&format!(r#"http_requests_waiting{{namespace="default",service="webapp",pod="{pod}"}}"#))
        );
        assert!(after.contains(r#"kube_horizontalpodautoscaler_spec_max_replicas{namespace="default",horizontalpodautoscaler="webapp-hpa"} 10"#));
    }
}
