//! Prometheus, for real: Debian's `prometheus` and `promtool` (scripts/test.sh installs them).
//! Every test starts its own Prometheus on 127.0.0.1 on a free port with a temporary TSDB and
//! stops it; a test fails — never skips — when Prometheus cannot be started.
//!
//! - every shipped PromQL template against synthetic series with `promtool test rules`;
//! - exact numbers from series backfilled with `promtool tsdb create-blocks-from openmetrics`;
//! - the client against broken servers (refused, silent, 5xx, garbage);
//! - end to end: Prometheus scrapes the simulator's exporter while `scaletui --headless
//!   --metrics prometheus` records; and the same with Prometheus stopped and restarted mid-run.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use scaletui::config::{Config, MetricsConfig};
use scaletui::engine::metrics::prometheus::{PromClient, PrometheusSource, render_queries};
use scaletui::engine::metrics::{MetricsQuery, MetricsSource};
use scaletui::engine::types::{MetricsSample, PodInfo, PodPhase, SourceStatus};

// ---------------------------------------------------------------------------------------------
// Harness

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// `GET path` on 127.0.0.1:port with std only: (status, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

fn tool(name: &str) -> Command {
    Command::new(name)
}

/// A Prometheus of our own: loopback, free port, temporary TSDB; stopped on drop.
struct Prometheus {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Start with this `prometheus.yml` and wait until it is ready. `tsdb` holds backfilled
    /// blocks to serve (else a fresh one).
    fn start(config_yaml: &str, tsdb: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("prometheus.yml"), config_yaml).expect("write config");
        if let Some(src) = tsdb {
            copy_dir(src, &dir.path().join("tsdb"));
        }
        let mut p = Self { child: None, port: free_port(), dir };
        p.spawn();
        p
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let log = std::fs::File::create(d.join("prometheus.log")).expect("log file");
        let child = tool("prometheus")
            .arg(format!("--config.file={}", d.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()))
            // Backfilled blocks have old timestamps; keep them.
            .arg("--storage.tsdb.retention.time=100y")
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start prometheus ({e}); ./scripts/test.sh installs Debian's prometheus package")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(self.port, "/-/ready").map(|r| r.0) != Some(200) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("prometheus exited with {status}:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "prometheus not ready after 30 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM and wait (a clean shutdown keeps the TSDB for a restart).
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).expect("copy");
        }
    }
}

fn run_tool(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}); ./scripts/test.sh installs it"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn runtime() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn metrics_config(url: &str) -> MetricsConfig {
    MetricsConfig { prometheus_url: url.to_string(), prometheus_timeout_s: 5.0, ..MetricsConfig::default() }
}

fn pod(name: &str) -> PodInfo {
    PodInfo { name: name.into(), phase: PodPhase::Running, ready: Some(true), ..PodInfo::default() }
}

fn query(now: f64, pods: &[&str]) -> MetricsQuery {
    MetricsQuery {
        now,
        namespace: "default".into(),
        deployment: "webapp".into(),
        container: "nginx".into(),
        pods: pods.iter().map(|p| pod(p)).collect(),
    }
}

#[track_caller]
fn close(got: Option<f64>, want: f64, what: &str) {
    let g = got.unwrap_or_else(|| panic!("{what}: no value, want {want}"));
    assert!((g - want).abs() <= 1e-9 * want.abs().max(1.0), "{what}: got {g}, want {want}");
}

// ---------------------------------------------------------------------------------------------
// Synthetic series (promtool notation: start+increment per 15 s step)

const A: &str = "webapp-7d9f8-abcde";
const B: &str = "webapp-7d9f8-fghij";

/// (series, values) for `promtool test rules`: two pods of webapp (A with a sidecar), the pod
/// cgroup and pause series cAdvisor adds, a pending pod, a duplicated kube-state-metrics, a
/// look-alike deployment (webapp-db) and the same pod name in another namespace.
fn synthetic_series(with_5xx: bool) -> Vec<(String, String)> {
    let mut s: Vec<(String, String)> = Vec::new();
    let mut add = |series: String, values: &str| s.push((series, values.to_string()));
    let cpu = |ns: &str, pod: &str, c: &str| {
        format!(r#"container_cpu_usage_seconds_total{{namespace="{ns}",pod="{pod}",container="{c}"}}"#)
    };
    // cores × 15 s per step: A nginx 0.25, A sidecar 0.05, B nginx 0.5.
    add(cpu("default", A, "nginx"), "0+3.75x40");
    add(cpu("default", A, "exporter"), "0+0.75x40");
    add(cpu("default", A, "POD"), "0+0x40");
    add(cpu("default", A, ""), "0+4.5x40");
    add(cpu("default", B, "nginx"), "0+7.5x40");
    add(cpu("default", B, "POD"), "0+0x40");
    add(cpu("default", B, ""), "0+7.5x40");
    add(cpu("default", "webapp-db-5c6d7-xyz12", "postgres"), "0+1.5x40");
    add(cpu("staging", A, "nginx"), "0+15x40");
    let mem = |ns: &str, pod: &str, c: &str, metric: &str| {
        format!(r#"{metric}{{namespace="{ns}",pod="{pod}",container="{c}"}}"#)
    };
    let mib = |m: f64| format!("{}x40", m * 1_048_576.0);
    for metric in ["container_memory_working_set_bytes", "container_memory_usage_bytes"] {
        let cache = if metric.ends_with("usage_bytes") { 8.0 } else { 0.0 };
        add(mem("default", A, "nginx", metric), &mib(120.0 + cache));
        add(mem("default", A, "exporter", metric), &mib(10.0 + cache));
        add(mem("default", A, "POD", metric), &mib(0.5 + cache));
        add(mem("default", A, "", metric), &mib(130.5 + 3.0 * cache));
        add(mem("default", B, "nginx", metric), &mib(150.0 + cache));
        add(mem("default", B, "", metric), &mib(150.0 + cache));
        add(mem("default", "webapp-db-5c6d7-xyz12", "postgres", metric), &mib(900.0));
        add(mem("staging", A, "nginx", metric), &mib(500.0));
    }
    let req = |pod: &str, c: &str, res: &str, unit: &str, inst: &str| {
        format!(
            r#"kube_pod_container_resource_requests{{namespace="default",pod="{pod}",container="{c}",resource="{res}",unit="{unit}",instance="{inst}"}}"#
        )
    };
    add(req(A, "nginx", "cpu", "core", "ksm-1"), "0.1x40");
    add(req(A, "exporter", "cpu", "core", "ksm-1"), "0.05x40");
    add(req(B, "nginx", "cpu", "core", "ksm-1"), "0.1x40");
    add(req(B, "nginx", "cpu", "core", "ksm-2"), "0.1x40");
    add(req(A, "nginx", "memory", "byte", "ksm-1"), &mib(64.0));
    add(req(A, "exporter", "memory", "byte", "ksm-1"), &mib(16.0));
    add(req(B, "nginx", "memory", "byte", "ksm-1"), &mib(64.0));
    add(req(B, "nginx", "memory", "byte", "ksm-2"), &mib(64.0));
    let phase = |pod: &str, phase: &str, inst: &str| {
        format!(r#"kube_pod_status_phase{{namespace="default",pod="{pod}",phase="{phase}",instance="{inst}"}}"#)
    };
    for (p, inst) in [(A, "ksm-1"), (A, "ksm-2"), (B, "ksm-1")] {
        add(phase(p, "Running", inst), "1x40");
        add(phase(p, "Pending", inst), "0x40");
    }
    add(phase("webapp-7d9f8-pend1", "Running", "ksm-1"), "0x40");
    add(phase("webapp-7d9f8-pend1", "Pending", "ksm-1"), "1x40");
    add(phase("webapp-db-5c6d7-xyz12", "Running", "ksm-1"), "1x40");
    let http = r#"namespace="default",service="webapp""#;
    // 10 requests/s answered, 1/s 503.
    add(format!(r#"http_requests_total{{{http},code="200"}}"#), "0+150x40");
    if with_5xx {
        add(format!(r#"http_requests_total{{{http},code="503"}}"#), "0+15x40");
    }
    // Latency: 20 % ≤ 25 ms, 40 % ≤ 50 ms, 60 % ≤ 100 ms, 90 % ≤ 250 ms, all ≤ 500 ms.
    for (le, share) in [
        ("0.005", 0.0),
        ("0.01", 0.0),
        ("0.025", 0.2),
        ("0.05", 0.4),
        ("0.1", 0.6),
        ("0.25", 0.9),
        ("0.5", 1.0),
        ("1", 1.0),
        ("2.5", 1.0),
        ("5", 1.0),
        ("10", 1.0),
        ("+Inf", 1.0),
    ] {
        add(format!(r#"http_request_duration_seconds_bucket{{{http},le="{le}"}}"#), &format!("0+{}x40", 150.0 * share));
    }
    add(format!(r#"http_requests_in_flight{{{http}}}"#), "4x40");
    // Queued per pod, and a dispatcher's queue.
    add(format!(r#"http_requests_waiting{{{http},pod="{A}"}}"#), "3x40");
    add(format!(r#"http_requests_waiting{{{http},pod="{B}"}}"#), "2x40");
    add(format!(r#"dispatcher_queue_size{{{http}}}"#), "5x40");
    s
}

/// What each shipped template must give on [`synthetic_series`] at 5m: (labels, value) samples.
fn expected(with_5xx: bool) -> BTreeMap<&'static str, Vec<(String, f64)>> {
    let per_pod = |a: f64, b: f64| vec![(format!(r#"{{pod="{A}"}}"#), a), (format!(r#"{{pod="{B}"}}"#), b)];
    let one = |v: f64| vec![("{}".to_string(), v)];
    BTreeMap::from([
        // Pod totals over the app containers (nginx + sidecar), without POD and the pod cgroup.
        ("cpu", per_pod(300.0, 500.0)),
        // Working set, not usage (which has 8 MiB of page cache per container here).
        ("memory", per_pod(130.0, 150.0)),
        // kube-state-metrics twice for B: counted once.
        ("cpu_request", per_pod(150.0, 100.0)),
        ("memory_request", per_pod(80.0, 64.0)),
        // A (reported by two kube-state-metrics) and B; not the pending pod nor webapp-db.
        ("running_pods", one(2.0)),
        ("sample_age", one(0.0)),
        ("rps", one(if with_5xx { 11.0 } else { 10.0 })),
        ("served_rps", one(10.0)),
        // With no 5xx series at all: 0, not nothing.
        ("errors_per_s", one(if with_5xx { 1.0 } else { 0.0 })),
        ("latency_p50_ms", one(75.0)),
        ("latency_p95_ms", one(375.0)),
        ("latency_p99_ms", one(475.0)),
        ("in_flight", one(4.0)),
        ("waiting", one(10.0)),
    ])
}

fn rules_test(with_5xx: bool, extra: &[(&str, Vec<(String, f64)>)]) -> serde_json::Value {
    let cfg = Config::default();
    let queries = render_queries(&cfg.metrics, "default", "webapp", "nginx");
    let want = expected(with_5xx);
    let mut shipped: Vec<&str> = queries.iter().map(|(k, _)| *k).collect();
    shipped.sort_unstable();
    assert_eq!(shipped.len(), cfg.metrics.queries.all().len(), "no shipped template is empty");
    assert_eq!(shipped, want.keys().copied().collect::<Vec<_>>(), "every shipped template has an expectation");
    let mut tests: Vec<serde_json::Value> = queries
        .iter()
        .map(|(k, expr)| {
            serde_json::json!({
                // promtool compares exactly: round away float noise (75.00000000000001).
                "expr": format!("round({expr}, 0.001)"),
                "eval_time": "5m",
                "exp_samples": want[k].iter().map(|(l, v)| serde_json::json!({"labels": l, "value": (v * 1000.0 + 0.5).floor() / 1000.0})).collect::<Vec<_>>(),
            })
        })
        .collect();
    for (expr, samples) in extra {
        tests.push(serde_json::json!({
            "expr": format!("round({expr}, 0.001)"),
            "eval_time": "5m",
            "exp_samples": samples.iter().map(|(l, v)| serde_json::json!({"labels": l, "value": (v * 1000.0 + 0.5).floor() / 1000.0})).collect::<Vec<_>>(),
        }));
    }
    let series: Vec<serde_json::Value> =
        synthetic_series(with_5xx).into_iter().map(|(s, v)| serde_json::json!({"series": s, "values": v})).collect();
    serde_json::json!({"interval": "15s", "input_series": series, "promql_expr_test": tests})
}

// ---------------------------------------------------------------------------------------------
// promtool: the shipped templates

#[test]
fn every_shipped_template_passes_promtool_test_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The seed experiment runner's CPU and memory queries on the same series, to show what the
    // shipped ones fix: an average over every series (pause, pod cgroup, sidecar, webapp-db) and
    // usage including page cache.
    let seed = [
        (
            r#"avg(rate(container_cpu_usage_seconds_total{namespace="default",pod=~"webapp-.*"}[1m])) * 1000"#,
            // (250 + 50 + 0 + 300 + 500 + 0 + 500 + 100) / 8 series
            vec![("{}".to_string(), 212.5)],
        ),
        (
            r#"avg(container_memory_usage_bytes{namespace="default",pod=~"webapp-.*"}) / (1024 * 1024)"#,
            // (128 + 18 + 8.5 + 154.5 + 158 + 158 + 900) / 7
            vec![("{}".to_string(), 1525.0 / 7.0)],
        ),
    ];
    let doc = serde_json::json!({
        "rule_files": [],
        "evaluation_interval": "15s",
        "tests": [rules_test(true, &seed), rules_test(false, &[])],
    });
    let path = dir.path().join("templates_test.yml");
    std::fs::write(&path, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    let out = run_tool(tool("promtool").arg("test").arg("rules").arg(&path));
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn shipped_prometheus_yml_and_exporter_output_pass_promtool_checks() {
    let yml = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus-sim.yml");
    let out = run_tool(tool("promtool").arg("check").arg("config").arg(&yml));
    assert!(out.contains("SUCCESS"), "{out}");
    // The exporter's exposition, linted.
    let rt = runtime();
    let text = rt.block_on(async {
        let cfg = Config::default();
        let clock = scaletui::engine::clock::Clock::new(1_700_000_000.0, scaletui::config::Speed::Max);
        let sim = scaletui::engine::cluster::sim::SimCluster::new(
            &cfg.sim,
            clock.clone(),
            "default",
            "webapp",
            "webapp-hpa",
            scaletui::engine::experiment::hpa_spec(&cfg),
            false,
        );
        clock.advance_to(1_700_000_060.0);
        let url = sim.serve_exporter("127.0.0.1:0").await.expect("exporter");
        let port: u16 = url.trim_end_matches("/metrics").rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        tokio::task::spawn_blocking(move || http_get(port, "/metrics")).await.expect("join")
    });
    let (status, body) = text.expect("exporter answers");
    assert_eq!(status, 200);
    let mut child = tool("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child.stdin.take().expect("stdin").write_all(body.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// Backfilled series: exact numbers

const T0: i64 = 1_700_000_000;
const MIB: f64 = 1_048_576.0;

/// OpenMetrics text with fixed timestamps, every 15 s for 20 minutes from [`T0`]. Pod B's CPU
/// goes from 0.5 to 0.8 cores at T0+420; B has a sidecar whose memory is NaN.
/// The synthetic series from `t0` on, every 15 s for 20 minutes.
fn backfill_text(t0: i64) -> String {
    let times: Vec<i64> = (0..=80).map(|k| k * 15).collect();
    let mut o = String::new();
    let series = |o: &mut String, name: &str, labels: &str, f: &dyn Fn(f64) -> f64| {
        for dt in &times {
            let v = f(*dt as f64);
            let v = if v.is_nan() { "NaN".to_string() } else { format!("{v}") };
            o.push_str(&format!("{name}{{{labels}}} {v} {}\n", t0 + dt));
        }
    };
    let b_cpu = |dt: f64| if dt <= 420.0 { 0.5 * dt } else { 0.5 * 420.0 + 0.8 * (dt - 420.0) };
    let a = format!(r#"namespace="default",pod="{A}""#);
    let b = format!(r#"namespace="default",pod="{B}""#);
    o.push_str("# TYPE container_cpu_usage_seconds counter\n");
    let cpu = "container_cpu_usage_seconds_total";
    series(&mut o, cpu, &format!(r#"{a},container="nginx""#), &|dt| 0.25 * dt);
    series(&mut o, cpu, &format!(r#"{a},container="POD""#), &|_| 0.0);
    series(&mut o, cpu, &format!(r#"{a},container="""#), &|dt| 0.25 * dt);
    series(&mut o, cpu, &format!(r#"{b},container="nginx""#), &b_cpu);
    series(&mut o, cpu, &format!(r#"{b},container="""#), &b_cpu);
    o.push_str("# TYPE container_memory_working_set_bytes gauge\n");
    let ws = "container_memory_working_set_bytes";
    series(&mut o, ws, &format!(r#"{a},container="nginx""#), &|_| 120.0 * MIB);
    series(&mut o, ws, &format!(r#"{a},container="POD""#), &|_| 0.5 * MIB);
    series(&mut o, ws, &format!(r#"{a},container="""#), &|_| 120.5 * MIB);
    series(&mut o, ws, &format!(r#"{b},container="nginx""#), &|_| 150.0 * MIB);
    series(&mut o, ws, &format!(r#"{b},container="sidecar""#), &|_| f64::NAN);
    o.push_str("# TYPE kube_pod_container_resource_requests gauge\n");
    for p in [&a, &b] {
        let r = "kube_pod_container_resource_requests";
        series(&mut o, r, &format!(r#"{p},container="nginx",resource="cpu",unit="core""#), &|_| 0.1);
        series(&mut o, r, &format!(r#"{p},container="nginx",resource="memory",unit="byte""#), &|_| 64.0 * MIB);
    }
    o.push_str("# TYPE kube_pod_status_phase gauge\n");
    for p in [&a, &b] {
        series(&mut o, "kube_pod_status_phase", &format!(r#"{p},phase="Running""#), &|_| 1.0);
        series(&mut o, "kube_pod_status_phase", &format!(r#"{p},phase="Pending""#), &|_| 0.0);
    }
    let http = r#"namespace="default",service="webapp""#;
    o.push_str("# TYPE http_requests counter\n");
    series(&mut o, "http_requests_total", &format!(r#"{http},code="200""#), &|dt| 10.0 * dt);
    series(&mut o, "http_requests_total", &format!(r#"{http},code="503""#), &|dt| 1.0 * dt);
    o.push_str("# TYPE http_request_duration_seconds histogram\n");
    for (le, share) in [("0.025", 0.2), ("0.05", 0.4), ("0.1", 0.6), ("0.25", 0.9), ("0.5", 1.0), ("+Inf", 1.0)] {
        let l = format!(r#"{http},le="{le}""#);
        series(&mut o, "http_request_duration_seconds_bucket", &l, &|dt| 10.0 * share * dt);
    }
    series(&mut o, "http_request_duration_seconds_sum", http, &|dt| 1.2 * dt);
    series(&mut o, "http_request_duration_seconds_count", http, &|dt| 10.0 * dt);
    o.push_str("# TYPE http_requests_in_flight gauge\n");
    series(&mut o, "http_requests_in_flight", http, &|_| 4.0);
    o.push_str("# EOF\n");
    o
}

/// A Prometheus serving [`backfill_text`].
fn backfilled_prometheus() -> Prometheus {
    backfilled_prometheus_from(T0)
}

fn backfilled_prometheus_from(t0: i64) -> Prometheus {
    let dir = tempfile::tempdir().expect("tempdir");
    let om = dir.path().join("series.om");
    std::fs::write(&om, backfill_text(t0)).expect("write");
    let tsdb = dir.path().join("tsdb");
    run_tool(tool("promtool").args(["tsdb", "create-blocks-from", "openmetrics"]).arg(&om).arg(&tsdb));
    Prometheus::start("global:\n  scrape_interval: 15s\n", Some(&tsdb))
}

fn at(dt: i64) -> f64 {
    (T0 + dt) as f64
}

#[test]
fn backfilled_series_give_exact_numbers_for_instant_and_range_queries() {
    let prom = backfilled_prometheus();
    let rt = runtime();
    rt.block_on(async {
        let source = PrometheusSource::new(&metrics_config(&prom.url())).expect("source");
        let s = source.sample(&query(at(600), &[A, B])).await;
        assert_eq!(s.status, SourceStatus::Ok, "{s:?}");
        close(s.cpu_millicores, (250.0 + 800.0) / 2.0, "cpu");
        close(s.memory_mebibytes, 120.0, "memory (B's NaN sidecar drops B)");
        close(s.cpu_request_millicores, 100.0, "cpu request");
        close(s.memory_request_mebibytes, 64.0, "memory request");
        assert_eq!(s.pod_count, Some(2));
        assert_eq!(s.at, at(600));
        let per_pod: Vec<(&str, Option<f64>, Option<f64>)> =
            s.per_pod.iter().map(|u| (u.pod.as_str(), u.cpu_m, u.memory_mib)).collect();
        assert_eq!(per_pod.len(), 2, "{per_pod:?}");
        close(per_pod[0].1, 250.0, "A cpu");
        close(per_pod[0].2, 120.0, "A memory");
        close(per_pod[1].1, 800.0, "B cpu");
        assert_eq!(per_pod[1].2, None, "B memory is NaN");
        assert_eq!(s.per_pod[0].window_s, 60.0);
        let t = s.traffic.expect("traffic");
        close(Some(t.rps), 11.0, "rps");
        close(Some(t.served_rps), 10.0, "served");
        close(Some(t.errors_per_s), 1.0, "errors");
        close(t.p50_ms, 75.0, "p50");
        close(t.p95_ms, 375.0, "p95");
        close(t.p99_ms, 475.0, "p99");
        close(Some(t.in_flight), 4.0, "in flight");

        // Only the pods the cluster lists count.
        let s = source.sample(&query(at(600), &[A])).await;
        close(s.cpu_millicores, 250.0, "cpu of A alone");
        assert_eq!(s.per_pod.len(), 1);

        // History: range queries, step = the interval; B's change at T0+420 shows.
        let h = source.history(&query(at(600), &[A, B]), 4.0, 120.0).await.expect("history");
        let points: Vec<f64> = h.iter().map(|s| s.at).collect();
        assert_eq!(points, [at(360), at(480), at(600)], "{h:?}");
        for (s, (t, cpu)) in h.iter().zip([(360, 375.0), (480, 525.0), (600, 525.0)]) {
            assert_eq!(s.at, at(t));
            close(s.cpu_millicores, cpu, &format!("cpu at T0+{t}"));
            close(s.memory_mebibytes, 120.0, "memory");
            assert_eq!(s.pod_count, Some(2));
            close(s.traffic.map(|t| t.rps), 11.0, "rps");
            assert_eq!(s.status, SourceStatus::Ok);
        }

        // 200 s after the last sample Prometheus still answers (5-minute lookback), but the
        // values are stale: not shown as current.
        let s = source.sample(&query(at(1400), &[A, B])).await;
        assert_eq!((s.cpu_millicores, s.memory_mebibytes, s.pod_count), (None, None, None), "{s:?}");
        match &s.status {
            SourceStatus::Degraded(m) => assert!(m.contains("stale: the newest sample is 200 s old"), "{m}"),
            other => panic!("{other:?}"),
        }

        // Broken templates: the server's error, naming the template; the rest still works.
        let mut cfg = metrics_config(&prom.url());
        cfg.queries.cpu = "sum(rate(container_cpu_usage_seconds_total[1m]".into();
        cfg.queries.memory = "container_memory_working_set_bytes[1m]".into();
        let broken = PrometheusSource::new(&cfg).expect("source");
        let s = broken.sample(&query(at(600), &[A, B])).await;
        let SourceStatus::Degraded(m) = &s.status else { panic!("{:?}", s.status) };
        assert!(m.contains("template cpu: HTTP 400 bad_data: invalid parameter \"query\": 1:"), "{m}");
        assert!(m.contains("parse error"), "{m}");
        assert!(m.contains("template memory: unexpected answer: the query returns a range vector"), "{m}");
        assert_eq!((s.cpu_millicores, s.memory_mebibytes), (None, None));
        close(s.cpu_request_millicores, 100.0, "requests still read");
    });
}

/// The queue recommender with `recommenders.queue.query`: q is the query's value at the tick's
/// time (summed over its series); no data, a refused query or a dead server hold the current
/// count and say why.
#[test]
fn the_queue_recommender_reads_q_from_a_promql_query() {
    use scaletui::engine::advisor::RecommendInput;
    use scaletui::engine::record::HpaSim;
    use scaletui::engine::types::DeploymentState;

    let prom = backfilled_prometheus();
    let ask = |url: &str, query: &str| -> (Option<i32>, String, Vec<String>) {
        let mut cfg = Config { metrics: metrics_config(url), ..Config::default() };
        cfg.recommenders.queue.query = query.into();
        cfg.recommenders.queue.target = 2.0;
        cfg.recommenders.forecast.enabled = false;
        cfg.recommenders.vpa.enabled = false;
        let mut recs = scaletui::engine::advisor::builtin::build(&cfg).expect("recommenders");
        assert_eq!(recs.len(), 1);
        let sample = MetricsSample::default();
        let sim = HpaSim::default();
        let dep = DeploymentState { spec_replicas: 3, status_replicas: 3, ready_replicas: 3, available_replicas: 3 };
        let input =
            RecommendInput { elapsed_s: 600.0, deployment: Some(dep), ..RecommendInput::at(at(600), &sample, &sim) };
        let out = runtime().block_on(recs[0].recommend(&input));
        (out.replicas, out.status, out.values)
    };
    // 4 requests in flight for 3 replicas with a target of 2 per replica: ceil(3 × 4 / 2) = 6.
    let (replicas, status, values) = ask(&prom.url(), r#"sum(http_requests_in_flight{namespace="{namespace}"})"#);
    assert_eq!((replicas, status.as_str(), values[0].as_str()), (Some(6), "ok", "4.000"));
    // No series: hold at 3.
    let (replicas, status, _) = ask(&prom.url(), r#"http_requests_in_flight{namespace="elsewhere"}"#);
    assert_eq!((replicas, status.as_str()), (Some(3), "queue query: no data: holding"));
    // Refused by Prometheus: its error, holding.
    let (replicas, status, _) = ask(&prom.url(), "sum(http_requests_in_flight");
    assert_eq!(replicas, Some(3));
    assert!(status.starts_with("queue query: HTTP 400 bad_data") && status.ends_with(": holding"), "{status}");
    // A dead server: unreachable, holding.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (replicas, status, _) = ask(&dead, "sum(http_requests_in_flight)");
    assert_eq!((replicas, status.as_str()), (Some(3), "queue query: connection refused: holding"));

    // An unknown placeholder is a configuration error naming the key.
    let mut cfg = Config::default();
    cfg.recommenders.queue.query = "sum(queue{job={job}})".into();
    let (key, msg) = scaletui::engine::check_config(&cfg).expect_err("unknown placeholder");
    assert_eq!(key, "recommenders.queue.query");
    assert!(msg.contains("unknown placeholder {job}"), "{msg}");
    // The same through the loader, as a user meets it: the file, the key and its line.
    let text = "[recommenders.queue]\nquery = \"sum(queue{job={job}})\"\n";
    let err = scaletui::config::parse_checked(text, "my.toml", scaletui::engine::check_config)
        .expect_err("unknown placeholder in a file");
    let shown = err.to_string();
    assert!(shown.contains("my.toml") && shown.contains("recommenders.queue.query"), "{shown}");
    assert!(shown.contains("unknown placeholder {job}"), "{shown}");
}

/// `experiment.history_minutes` of Prometheus history before the start: range queries at the
/// interval's step fill the advisor's and recommenders' history (a recommender sees it at the
/// first tick) and the dashboard's charts (a `History` event), and are not recorded as rows.
#[test]
fn the_last_minutes_before_the_start_come_from_range_queries() {
    use std::sync::{Arc, Mutex};

    use scaletui::engine::advisor::{RecOutput, RecommendInput, Recommender};
    use scaletui::engine::experiment::Experiment;
    use scaletui::engine::messages::EngineEvent;
    use tokio_util::sync::CancellationToken;

    /// Notes how many history rows each tick shows.
    struct Spy(Arc<Mutex<Vec<usize>>>);
    #[async_trait::async_trait]
    impl Recommender for Spy {
        fn name(&self) -> &str {
            "spy"
        }
        fn columns(&self) -> Vec<String> {
            Vec::new()
        }
        async fn recommend(&mut self, input: &RecommendInput<'_>) -> RecOutput {
            if let Ok(mut seen) = self.0.lock() {
                seen.push(input.history.len());
            }
            RecOutput::default()
        }
    }

    // Series that end now: the last 20 minutes, B's CPU steady at 0.8 cores after its first 7.
    let now = scaletui::engine::types::wall_now().floor() as i64;
    let prom = backfilled_prometheus_from(now - 1200);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config { metrics: metrics_config(&prom.url()), ..Config::default() };
    cfg.metrics.source = scaletui::config::MetricsSourceKind::Prometheus;
    cfg.metrics.max_sample_age_s = 0.0;
    cfg.sim.speed = scaletui::config::Speed::Factor(1.0);
    cfg.sim.exporter_listen = "127.0.0.1:0".into();
    cfg.experiment.interval = 15.0;
    cfg.experiment.duration = 0.25;
    cfg.experiment.history_minutes = 5.0;
    cfg.experiment.output_dir = dir.path().to_path_buf();
    cfg.advisor.enabled = false;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (events, csv) = runtime().block_on(async {
        let mut parts = scaletui::run::build(&cfg, false).await.expect("setup");
        parts.setup.recommenders.push(Box::new(Spy(seen.clone())));
        let exp = Experiment::new(parts.setup).expect("record");
        let csv = exp.csv_path().to_path_buf();
        let handle = tokio::spawn(exp.run(CancellationToken::new()));
        let mut events = Vec::new();
        while let Some(e) = parts.events.recv().await {
            let done = matches!(e, EngineEvent::Finished { .. });
            events.push(e);
            if done {
                break;
            }
        }
        handle.await.expect("run");
        (events, csv)
    });
    let history: Vec<_> = events
        .iter()
        .find_map(|e| match e {
            EngineEvent::History(rows) => Some(rows.clone()),
            _ => None,
        })
        .expect("a History event");
    // 5 minutes at a 15 s step, before the start.
    assert!((19..=21).contains(&history.len()), "{} rows", history.len());
    for r in &history {
        assert!(r.elapsed_s < 0.0 && r.elapsed_s >= -301.0, "{}", r.elapsed_s);
        close(r.cpu_millicores, (250.0 + 800.0) / 2.0, "cpu");
        close(r.memory_mebibytes, 120.0, "memory");
        assert_eq!(r.pod_count, Some(2));
        assert_eq!(r.metrics_source, "prometheus");
    }
    assert!(events.iter().any(|e| matches!(e, EngineEvent::Event(ev)
        if ev.kind == "history" && ev.detail == format!("{} samples of the last 5 min from prometheus", history.len()))));
    // The first tick's recommenders see it.
    let seen = seen.lock().expect("spy").clone();
    assert_eq!(seen.first(), Some(&history.len()), "{seen:?}");
    // Not recorded: the CSV holds the run's own tick only.
    let rows = std::fs::read_to_string(&csv).expect("csv").lines().count() - 1;
    assert_eq!(rows, 1);
}

// ---------------------------------------------------------------------------------------------
// The client against servers that misbehave

fn status_of(s: &MetricsSample) -> String {
    s.status.label()
}

#[tokio::test]
async fn refused_connections_are_unreachable_since_the_first_failure() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("http://127.0.0.1:{}", free_port());
    let source = PrometheusSource::new(&metrics_config(&url)).expect("source");
    let first = source.sample(&query(1_000.0, &[A])).await;
    let later = source.sample(&query(1_030.0, &[A])).await;
    for s in [&first, &later] {
        assert_eq!(s.status, SourceStatus::Unreachable { since: 1_000.0, error: "connection refused".into() });
        assert_eq!((s.cpu_millicores, s.memory_mebibytes, s.pod_count, s.traffic), (None, None, None, None));
    }
    assert_eq!(later.at, 1_030.0);
    assert_eq!(status_of(&later), "unreachable since 1970-01-01T00:16:40Z: connection refused");
    let line = later.status.headline("Prometheus");
    assert!(line.starts_with("Prometheus unreachable since ") && line.ends_with(": connection refused"), "{line}");
    let h = source.history(&query(1_030.0, &[A]), 15.0, 30.0).await;
    assert_eq!(h, Err("Prometheus unreachable: connection refused".to_string()));
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let cfg = MetricsConfig { prometheus_timeout_s: 0.3, ..metrics_config(&format!("http://127.0.0.1:{port}")) };
    let source = PrometheusSource::new(&cfg).expect("source");
    let s = source.sample(&query(50.0, &[A])).await;
    assert_eq!(s.status, SourceStatus::Unreachable { since: 50.0, error: "timed out after 0.3 s".into() });
    hold.abort();
}

#[tokio::test]
async fn server_errors_and_garbage_are_named() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ok = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"pod": A}, "value": [1.0, "42"]}]}});

    // Starting up (or a proxy in front of a dead one): 503 without the API's JSON.
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .mount(&server)
        .await;
    let source = PrometheusSource::new(&metrics_config(&server.uri())).expect("source");
    let s = source.sample(&query(7.0, &[A])).await;
    assert_eq!(
        s.status,
        SourceStatus::Unreachable { since: 7.0, error: "HTTP 503 Service Unavailable".into() },
        "{s:?}"
    );

    // Prometheus' own errors for one template, garbage for another, answers for the rest.
    let server = MockServer::start().await;
    let queries = render_queries(&MetricsConfig::default(), "default", "webapp", "nginx");
    let q = |k: &str| queries.iter().find(|(key, _)| *key == k).map(|(_, q)| q.clone()).expect("template");
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param("query", q("cpu")))
        .respond_with(ResponseTemplate::new(422).set_body_json(serde_json::json!(
            {"status": "error", "errorType": "execution", "error": "many-to-many matching not allowed"})))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/query"))
        .and(query_param("query", q("memory")))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>login</html>"))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/query"))
        .and(query_param("query", q("cpu_request")))
        .respond_with(ResponseTemplate::new(500).set_body_json(serde_json::json!(
            {"status": "error", "errorType": "internal", "error": "boom"})))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/query")).respond_with(ResponseTemplate::new(200).set_body_json(ok)).mount(&server).await;
    let source = PrometheusSource::new(&metrics_config(&server.uri())).expect("source");
    let s = source.sample(&query(7.0, &[A])).await;
    let SourceStatus::Degraded(m) = &s.status else { panic!("{:?}", s.status) };
    assert!(m.contains("template cpu: HTTP 422 execution: many-to-many matching not allowed"), "{m}");
    assert!(m.contains("template memory: unexpected answer: not the Prometheus API: <html>login</html>"), "{m}");
    assert!(m.contains("template cpu_request: HTTP 500 internal: boom"), "{m}");
    assert_eq!((s.cpu_millicores, s.memory_mebibytes, s.cpu_request_millicores), (None, None, None));
    close(s.memory_request_mebibytes, 42.0, "the other templates still count");
    assert_eq!(s.pod_count, Some(42));
}

/// Basic auth from the URL's user information (never shown again), a bearer token instead when
/// given; a refusal is named.
#[tokio::test]
async fn prometheus_behind_authentication() {
    use wiremock::matchers::{header, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ok = serde_json::json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "7"]}});
    let server = MockServer::start().await;
    // "user" and "p@ss", percent-encoded in the URL.
    Mock::given(path("/api/v1/query"))
        .and(header("authorization", "Basic dXNlcjpwQHNz"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok.clone()))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/query"))
        .and(header("authorization", "Bearer t0ken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(401).set_body_string("Unauthorized"))
        .mount(&server)
        .await;
    let with_user = server.uri().replace("http://", "http://us%65r:p%40ss@");
    let client = PromClient::new(&with_user, 5.0).expect("client");
    assert!(!client.base_url().contains("p%40ss") && !client.base_url().contains("us%65r"), "{}", client.base_url());
    let got = client.instant("vector(7)", 7.0).await.expect("basic auth accepted");
    assert_eq!(got.first().map(|s| s.value), Some(7.0));
    let client = PromClient::new(&server.uri(), 5.0).expect("client").with_bearer("t0ken");
    assert!(client.instant("vector(7)", 7.0).await.is_ok(), "bearer accepted");
    let refused = PromClient::new(&server.uri(), 5.0).expect("client").instant("vector(7)", 7.0).await;
    assert_eq!(refused.map_err(|e| e.to_string()), Err("HTTP 401: Unauthorized".to_string()));
}

// ---------------------------------------------------------------------------------------------
// End to end: a real Prometheus scrapes the simulator while the real binary records

fn scaletui() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scaletui"));
    c.env_remove("SCALETUI_CONFIG").current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// The CSV of a run in `dir` so far (complete lines only), as header + rows.
struct Record {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Record {
    fn read(dir: &Path) -> Option<Record> {
        let path = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "csv") && !p.to_string_lossy().ends_with("_events.csv"))?;
        let text = std::fs::read_to_string(path).ok()?;
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        let mut r = csv::Reader::from_reader(complete.as_bytes());
        let header = r.headers().ok()?.iter().map(String::from).collect();
        let rows = r.records().filter_map(Result::ok).map(|x| x.iter().map(String::from).collect()).collect();
        Some(Record { header, rows })
    }

    fn col(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).unwrap_or_else(|| panic!("column {name}"))
    }

    fn num(&self, row: &[String], name: &str) -> Option<f64> {
        row[self.col(name)].parse().ok()
    }

    fn text<'a>(&self, row: &'a [String], name: &str) -> &'a str {
        &row[self.col(name)]
    }

    fn events(dir: &Path) -> String {
        std::fs::read_dir(dir)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with("_events.csv"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }
}

/// Poll the record until `done` says so; panics after `secs` with the last rows.
fn wait_for(dir: &Path, secs: u64, what: &str, mut done: impl FnMut(&Record) -> bool) -> Record {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(r) = Record::read(dir)
            && done(&r)
        {
            return r;
        }
        if Instant::now() > deadline {
            let last: Vec<String> = Record::read(dir)
                .map(|r| {
                    r.rows
                        .iter()
                        .rev()
                        .take(5)
                        .map(|row| format!("{} {:?}", r.text(row, "elapsed_s"), r.text(row, "metrics_status")))
                        .collect()
                })
                .unwrap_or_default();
            panic!("{what}: not within {secs} s; last rows: {last:#?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A scaletui run scraped by its own Prometheus: config files, output folder, both processes.
struct ScrapedRun {
    prom: Prometheus,
    dir: tempfile::TempDir,
    out: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

impl ScrapedRun {
    /// Prometheus scraping every second; the simulator without noise or HPA at a constant load
    /// of evenly spaced requests taking turns over the pods, each the same work (so its own
    /// figures are steady and the comparison is exact, not statistical).
    fn start(interval_s: u32) -> Self {
        let exporter = free_port();
        let prom = Prometheus::start(
            &format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: scaletui-sim\n    static_configs:\n      - targets: [\"127.0.0.1:{exporter}\"]\n"
            ),
            None,
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("scaletui.toml");
        std::fs::write(
            &config,
            format!(
                "[experiment]\ninterval = {interval_s}\n\n[metrics]\nsource = \"prometheus\"\nprometheus_url = \"{}\"\n\
                 prometheus_timeout_s = 2\nrate_window = \"10s\"\n\n[sim]\nexporter_listen = \"127.0.0.1:{exporter}\"\n\
                 noise = 0\nhpa_present = false\nbaseline_rps = 60\narrivals = \"uniform\"\nrouting = \"round_robin\"\n\
                 memory_per_inflight_mib = 0\n\n[sim.service]\ndistribution = \"deterministic\"\n",
                prom.url()
            ),
        )
        .expect("config");
        let out = dir.path().join("out");
        let child = scaletui()
            .args(["--headless", "--duration", "0", "--config"])
            .arg(&config)
            .arg("--output-dir")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.txt")).expect("stderr file"))
            .spawn()
            .expect("scaletui starts");
        Self { prom, dir, out, config, child: Some(child) }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.txt")).unwrap_or_default()
    }

    /// SIGTERM scaletui; it must exit cleanly.
    fn finish(&mut self) {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let status = c.wait().expect("exits");
        assert!(status.success(), "scaletui exit {status:?}:\n{}", self.stderr());
    }
}

impl Drop for ScrapedRun {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn prometheus_scraping_the_simulator_records_its_truth() {
    let mut run = ScrapedRun::start(2);
    // Rows once the 10 s rate window is full of scraped samples (two scrapes of margin).
    let full_rows = |r: &Record| -> Vec<Vec<String>> {
        let first = r.rows.iter().find(|row| r.num(row, "cpu_millicores").is_some());
        let Some(t0) = first.and_then(|row| r.num(row, "elapsed_s")) else { return Vec::new() };
        r.rows.iter().filter(|row| r.num(row, "elapsed_s").is_some_and(|t| t >= t0 + 12.0)).cloned().collect()
    };
    let record = wait_for(&run.out, 120, "3 rows with a full rate window", |r| full_rows(r).len() >= 3);

    // The seed's CPU query averages over the pause and pod-cgroup series too: 2/3 of the truth.
    let rt = runtime();
    let seed_cpu = rt.block_on(async {
        let client = PromClient::new(&run.prom.url(), 5.0).expect("client");
        let q = r#"avg(rate(container_cpu_usage_seconds_total{namespace="default",pod=~"webapp-.*"}[10s])) * 1000"#;
        let now = scaletui::engine::types::wall_now() - 1.0;
        client.instant(q, now).await.expect("seed query").first().map(|s| s.value)
    });
    run.finish();
    let stderr = run.stderr();
    assert!(stderr.contains("speed 10 -> 1"), "{stderr}");
    assert!(stderr.contains("metrics are at http://127.0.0.1:"), "{stderr}");

    // The simulator's own figures for the same seed and configuration (virtual clock).
    let truth_dir = tempfile::tempdir().expect("tempdir");
    let out = scaletui()
        .args(["--headless", "--speed", "max", "--duration", "3", "--metrics", "sim", "--config"])
        .arg(&run.config)
        .arg("--output-dir")
        .arg(truth_dir.path())
        .output()
        .expect("truth run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let truth = Record::read(truth_dir.path()).expect("truth record");
    // The load is constant; the simulator's metrics-server-like figures lag by their 30 s window
    // plus the 15 s resolution, so its truth is the steady value after that (and it is steady).
    let steady = |col: &str| -> f64 {
        let v: Vec<f64> = truth
            .rows
            .iter()
            .filter(|r| truth.num(r, "elapsed_s").is_some_and(|t| t >= 60.0))
            .map(|r| truth.num(r, col).unwrap_or_else(|| panic!("truth {col}")))
            .collect();
        let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
        assert!(v.len() > 10 && hi - lo <= 1e-6 * hi.max(1.0), "truth {col} is steady: {v:?}");
        lo
    };
    let rows = full_rows(&record);
    assert!(rows.len() >= 3);
    for row in &rows {
        let elapsed = record.num(row, "elapsed_s").expect("elapsed");
        for col in ["cpu_millicores", "memory_mebibytes", "rps"] {
            let got = record.num(row, col).unwrap_or_else(|| panic!("{col} at {elapsed}"));
            let want = steady(col);
            assert!((got - want).abs() <= 0.05 * want, "{col} at {elapsed} s: Prometheus {got}, simulator {want}");
        }
        assert_eq!(record.text(row, "metrics_status"), "ok");
        assert_eq!(record.text(row, "metrics_source"), "prometheus");
        assert_eq!(record.num(row, "cpu_request_millicores"), Some(100.0));
        assert_eq!(record.num(row, "memory_request_mebibytes"), Some(64.0));
        assert_eq!(record.num(row, "pod_count"), Some(3.0));
        assert!(record.num(row, "latency_p95_ms").is_some_and(|p| p > 0.0));
    }
    let truth_cpu = steady("cpu_millicores");
    let seed_cpu = seed_cpu.expect("the seed's query has a value");
    assert!(
        (seed_cpu - truth_cpu).abs() > 0.2 * truth_cpu,
        "the seed's query ({seed_cpu}) would not be told apart from the truth ({truth_cpu})"
    );
}

#[test]
fn a_run_survives_prometheus_stopping_and_restarting() {
    let mut run = ScrapedRun::start(1);
    let ok_with_values =
        |r: &Record, row: &[String]| r.text(row, "metrics_status") == "ok" && r.num(row, "cpu_millicores").is_some();
    let before = wait_for(&run.out, 90, "values from Prometheus", |r| r.rows.iter().any(|row| ok_with_values(r, row)));

    run.prom.stop();
    let n0 = before.rows.len();
    let down = |r: &Record, row: &[String]| r.text(row, "metrics_status").starts_with("unreachable since ");
    let during = wait_for(&run.out, 60, "3 rows while Prometheus is down", |r| {
        r.rows.iter().skip(n0).filter(|row| down(r, row)).count() >= 3
    });
    let down_rows: Vec<&Vec<String>> = during.rows.iter().skip(n0).filter(|row| down(&during, row)).collect();
    let first_status = during.text(down_rows[0], "metrics_status");
    assert!(first_status.ends_with(": connection refused"), "{first_status}");
    for row in &down_rows {
        // The same "since" on every row of the outage, and empty metric cells.
        assert_eq!(during.text(row, "metrics_status"), first_status);
        for col in ["cpu_millicores", "memory_mebibytes", "cpu_request_millicores", "pod_count", "rps"] {
            assert_eq!(during.text(row, col), "", "{col} while Prometheus is down");
        }
        // The cluster side goes on.
        assert_eq!(during.num(row, "current_replicas"), Some(3.0));
    }

    run.prom.spawn();
    let n1 = during.rows.len();
    let restarted_at = during.rows.last().and_then(|row| during.num(row, "elapsed_s")).expect("elapsed");
    // Values again, and later values whose whole rate window was scraped after the restart.
    let after = wait_for(&run.out, 90, "values scraped after Prometheus restarted", |r| {
        let back: Vec<f64> = r
            .rows
            .iter()
            .skip(n1)
            .filter(|row| ok_with_values(r, row))
            .filter_map(|row| r.num(row, "elapsed_s"))
            .collect();
        back.iter().any(|t| *t >= restarted_at + 12.0)
    });
    run.finish();
    let last = Record::read(&run.out).expect("record");
    assert!(last.rows.len() >= after.rows.len());
    assert!(last.rows.iter().all(|r| r.len() == last.header.len()), "complete rows");
    let events = Record::events(&run.out);
    assert!(events.contains("Prometheus unreachable since") && events.contains("connection refused"), "{events}");
    assert!(events.matches(",metrics,").count() >= 2 && events.contains("Prometheus: ok"), "{events}");
}

#[test]
fn prometheus_on_the_simulator_refuses_the_virtual_clock() {
    let out = scaletui()
        .args(["--headless", "--speed", "max", "--duration", "1", "--metrics", "prometheus"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--speed max cannot be used"), "{err}");
}
