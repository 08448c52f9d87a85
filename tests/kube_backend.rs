//! The kube backend against the in-repo fake API server (tests/support/fake_apiserver.rs): real
//! HTTP, real WebSocket exec and port-forward, real shell stressors; the real binary end to end;
//! `deploy/*.yaml` checked against what the backend does. The last test is the real-cluster tier
//! (`SCALETUI_TEST_KUBECONFIG`, ignored unless asked for).

#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use fake_apiserver::{FakeApiServer, FakeOptions, eventually, their_hpa};
use kube::config::{KubeConfigOptions, Kubeconfig};
use scaletui::config::Config;
use scaletui::engine::cluster::kube::{KubeCluster, KubeSettings, access, convert, errors::Target};
use scaletui::engine::cluster::{Cluster, ClusterError, HpaChange};
use scaletui::engine::experiment::hpa_spec;
use serde_json::{Value, json};

/// The defaults: namespace default, deployment webapp, HPA webapp-hpa, container nginx, 1..10.
fn settings() -> KubeSettings {
    KubeSettings::default()
}

async fn backend_with(fake: &FakeApiServer, dir: &Path, s: KubeSettings) -> Result<KubeCluster, ClusterError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let path = dir.join("kubeconfig");
    fake.write_kubeconfig(&path, "fake-token");
    let kc = Kubeconfig::read_from(&path).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
    let client = kube::Client::try_from(cfg).expect("client");
    let target = Target { server: fake.url.clone(), context: "fake".into(), namespace: "default".into() };
    KubeCluster::with_client(client, s, target).await
}

async fn backend(fake: &FakeApiServer, dir: &Path) -> KubeCluster {
    backend_with(fake, dir, settings()).await.expect("backend starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_stressor_runs_real_loops_that_end_at_their_deadline_even_when_the_stream_is_cut() {
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let c = backend(&fake, dir.path()).await;
    let pod = fake.pod_names()[0].clone();
    let h = c.stress_cpu(&pod, 2, 3.0).await.expect("cpu stress starts");
    assert_eq!(h.pod, pod);
    // sh + 2 busy loops, and the stop file in the pod's /dev/shm.
    assert!(fake.live_processes(&pod) >= 3, "{} processes", fake.live_processes(&pod));
    assert!(fake.shm_files(&pod).iter().any(|(f, _)| f.starts_with("scaletui-cpu-")), "{:?}", fake.shm_files(&pod));
    // The network dies: the loops go on (as in a container) and end by themselves at the deadline.
    fake.cut_streams();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(fake.live_processes(&pod) >= 2, "still running after the cut");
    assert!(eventually(6.0, || fake.live_processes(&pod) == 0).await, "ended by the deadline");
    assert!(fake.shm_files(&pod).is_empty(), "the stop file is removed at the end: {:?}", fake.shm_files(&pod));
    // Stopping a stressor that ended by itself is fine.
    c.stop_stress(&h).await.expect("stop after the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_stressor_stops_at_once_when_asked() {
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let c = backend(&fake, dir.path()).await;
    let pod = fake.pod_names()[1].clone();
    let h = c.stress_cpu(&pod, 1, 300.0).await.expect("starts");
    assert!(fake.live_processes(&pod) >= 2);
    c.stop_stress(&h).await.expect("stops");
    assert!(eventually(3.0, || fake.live_processes(&pod) == 0).await, "the loops end within a moment");
    assert!(fake.shm_files(&pod).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stressor_checks_shm_holds_and_always_removes_its_file() {
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let c = backend(&fake, dir.path()).await;
    let pods = fake.pod_names();
    let free = c.shm_free_mib(&pods[0]).await.expect("df");
    assert!((63.0..=64.0).contains(&free), "{free}");
    // Stop: the file goes.
    let h = c.stress_memory(&pods[0], 5).await.expect("allocates");
    assert_eq!(fake.shm_files(&pods[0]).iter().map(|(_, n)| *n).sum::<u64>(), 5 * 1024 * 1024);
    let left = c.shm_free_mib(&pods[0]).await.expect("df");
    assert!((58.0..=59.0).contains(&left), "df sees the allocation: {left}");
    c.stop_stress(&h).await.expect("stops");
    assert!(eventually(3.0, || fake.shm_files(&pods[0]).is_empty()).await, "{:?}", fake.shm_files(&pods[0]));
    assert!(eventually(3.0, || fake.live_processes(&pods[0]) == 0).await, "the holder ended");
    // The stream is cut (scaletui killed, network gone): the holder sees EOF and removes the file.
    let _h2 = c.stress_memory(&pods[1], 3).await.expect("allocates");
    assert_eq!(fake.shm_files(&pods[1]).len(), 1);
    fake.cut_streams();
    assert!(eventually(3.0, || fake.shm_files(&pods[1]).is_empty()).await, "removed after the cut");
    // restore() stops whatever is left.
    let _h3 = c.stress_memory(&pods[2], 2).await.expect("allocates");
    let done = c.restore().await.expect("restore");
    assert!(done.iter().any(|l| l.contains("stopped 2 stressor(s)")), "{done:?}");
    assert!(eventually(3.0, || fake.shm_files(&pods[2]).is_empty()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_stressors_say_why() {
    let fake = FakeApiServer::start(FakeOptions { shm_mib: 16, ..FakeOptions::default() }).await;
    let dir = tempfile::tempdir().expect("tmp");
    let c = backend(&fake, dir.path()).await;
    let pod = fake.pod_names()[0].clone();
    let e = c.stress_memory(&pod, 40).await.expect_err("too big");
    assert!(matches!(&e, ClusterError::Unsupported(m) if m.contains("/dev/shm") && m.contains("too small")), "{e}");
    assert!(fake.shm_files(&pod).is_empty(), "nothing left behind: {:?}", fake.shm_files(&pod));

    let e = c.stress_cpu("webapp-nope", 1, 5.0).await.expect_err("no such pod");
    assert!(matches!(&e, ClusterError::NotFound(m) if m.contains("webapp-nope")), "{e}");

    let mut s = settings();
    s.cluster.container = "app".into();
    let wrong = backend_with(&fake, dir.path(), s).await.expect("starts");
    let e = wrong.stress_cpu(&pod, 1, 5.0).await.expect_err("no such container");
    assert!(e.to_string().contains("cluster.container"), "{e}");

    let bare = FakeApiServer::start(FakeOptions { shell: false, ..FakeOptions::default() }).await;
    let c = backend(&bare, dir.path()).await;
    let pod = bare.pod_names()[0].clone();
    for e in
        [c.stress_cpu(&pod, 1, 5.0).await.expect_err("no shell"), c.shm_free_mib(&pod).await.expect_err("no shell")]
    {
        assert!(
            matches!(&e, ClusterError::Unsupported(m) if m.contains("has no") && m.contains("sh, df and dd")),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_gives_the_load_generator_a_local_url_that_survives_pods_going_away() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let c = backend(&fake, dir.path()).await;
    let url = c.load_target().await.expect("url");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(c.load_target().await.expect("same"), url, "one forwarder per run");
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let get = |http: reqwest::Client, url: String| async move {
        let r = http.get(&url).send().await.expect("request");
        assert!(r.status().is_success());
        r.text().await.expect("body")
    };
    let mut served = BTreeSet::new();
    for _ in 0..6 {
        served.insert(get(http.clone(), url.clone()).await);
    }
    assert_eq!(served.len(), 3, "connections spread over the 3 pods: {served:?}");
    // A pod goes away (its replacement comes): requests keep being answered.
    let first = fake.pod_names()[0].clone();
    fake.delete_pod(&first).await;
    for _ in 0..6 {
        let body = get(http.clone(), url.clone()).await;
        assert!(!body.contains(&first), "{body}");
    }
    let stats = c.forward_stats().expect("stats");
    assert_eq!(stats.failed, 0, "{stats:?}");
    assert!(stats.connections >= 12, "{stats:?}");
    c.restore().await.expect("restore");
}

/// The rules of deploy/rbac.yaml as (verb, group, resource).
fn rbac_rules() -> BTreeSet<(String, String, String)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rbac.yaml")).expect("rbac.yaml");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("YAML");
    let role = docs.iter().find(|d| d["kind"] == "Role").expect("a Role");
    let role: k8s_openapi::api::rbac::v1::Role = serde_json::from_value(role.clone()).expect("a valid Role");
    let mut out = BTreeSet::new();
    for r in role.rules.unwrap_or_default() {
        assert!(r.resource_names.is_none() && r.non_resource_urls.is_none());
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                for v in &r.verbs {
                    assert_ne!(v, "*", "no wildcards");
                    out.insert((v.clone(), g.clone(), res.clone()));
                }
            }
        }
    }
    let binding = docs.iter().find(|d| d["kind"] == "RoleBinding").expect("a RoleBinding");
    assert_eq!(binding["roleRef"]["name"], role.metadata.name.clone().unwrap_or_default());
    assert!(
        docs.iter().any(|d| d["kind"] == "ServiceAccount" && d["metadata"]["name"] == binding["subjects"][0]["name"])
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_yaml_grants_exactly_what_the_backend_uses() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = settings();
    s.cluster.lease_duration_s = 3;
    s.state_dir = Some(dir.path().join("state"));
    let c = backend_with(&fake, dir.path(), s).await.expect("backend starts");
    // Every operation of the Cluster trait, including every HPA path (delete, create, replace,
    // restore), the saved copy (created, replaced, removed), the lease (taken, renewed after a
    // third of its 3 s, given up) and both stressors.
    c.take_control().await.expect("lease");
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    c.deployment().await.expect("deployment");
    let pods = c.pods().await.expect("pods");
    c.hpa().await.expect("hpa");
    c.pod_metrics().await.expect("metrics");
    c.scale(4).await.expect("scale");
    assert!(c.delete_hpa().await.expect("delete"));
    let spec = hpa_spec(&Config::default());
    assert_eq!(c.ensure_hpa(&spec).await.expect("create"), HpaChange::Created);
    let other = scaletui::engine::hpa::HpaSpec { max_replicas: 6, ..spec.clone() };
    assert_eq!(c.ensure_hpa(&other).await.expect("replace"), HpaChange::Replaced);
    assert!(c.delete_hpa().await.expect("delete again: the saved copy is replaced"));
    assert_eq!(c.ensure_hpa(&other).await.expect("create"), HpaChange::Created);
    let pod = &pods[0].name;
    c.shm_free_mib(pod).await.expect("df");
    let m = c.stress_memory(pod, 1).await.expect("memory");
    c.stop_stress(&m).await.expect("stop");
    let h = c.stress_cpu(pod, 1, 2.0).await.expect("cpu");
    c.stop_stress(&h).await.expect("stop");
    let url = c.load_target().await.expect("url");
    reqwest::get(&url).await.expect("forwarded").error_for_status().expect("200");
    c.restore().await.expect("restore");

    let used = fake.accesses();
    let declared = access::declared();
    let granted = rbac_rules();
    assert_eq!(used, declared, "the backend's requests are exactly its declared operations");
    assert_eq!(granted, declared, "deploy/rbac.yaml grants exactly those, nothing more");
    let refused: Vec<_> = fake.requests().into_iter().filter(|r| r.status == 401 || r.status == 403).collect();
    assert!(refused.is_empty(), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_permissions_name_the_verb_and_the_rbac_file() {
    let fake = FakeApiServer::start(FakeOptions {
        forbid: vec![("patch".into(), "deployments/scale".into()), ("create".into(), "pods/exec".into())],
        ..FakeOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let c = backend(&fake, dir.path()).await;
    let e = c.scale(5).await.expect_err("forbidden");
    let s = e.to_string();
    assert!(
        matches!(e, ClusterError::Forbidden(_))
            && s.contains("patch deployments.apps/scale")
            && s.contains("deploy/rbac.yaml"),
        "{s}"
    );
    let pod = fake.pod_names()[0].clone();
    let s = c.stress_cpu(&pod, 1, 5.0).await.expect_err("forbidden").to_string();
    assert!(s.contains("pods/exec") && s.contains("deploy/rbac.yaml"), "{s}");
    assert_eq!(fake.replicas(), 3, "nothing changed");
}

/// Permissions are checked up front: the run says which steps will be refused before any is
/// tried, and still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_permissions_are_named_at_the_start() {
    let fake = FakeApiServer::start(FakeOptions {
        forbid: vec![("patch".into(), "deployments/scale".into()), ("create".into(), "pods/exec".into())],
        ..FakeOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let c = backend(&fake, dir.path()).await;
    let denied = c.denied(&scaletui::engine::cluster::kube::access::needed(false, false)).await.expect("reviews");
    let names: Vec<String> = denied.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["patch deployments.apps/scale", "create pods/exec"]);
    assert!(c.denied(&scaletui::engine::cluster::kube::access::needed(true, false)).await.expect("reviews").is_empty());

    // The binary says so at the start (headless: a note on stderr).
    let run = prepare(&fake, "fake-token");
    let out = scaletui(&run, &["--mode", "comparison", "--interval", "1", "--duration", "0.03"][..])
        .output()
        .await
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "note: this account may not patch deployments.apps/scale (to scale the deployment (ai_scaler)), \
                      create pods/exec (to run the stressors in the pods) in namespace default"
        ),
        "{err}"
    );
}

#[test]
fn deploy_manifests_are_valid_and_hpa_yaml_is_what_scaletui_creates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let read = |f: &str| -> Vec<Value> {
        serde_saphyr::from_multiple(&std::fs::read_to_string(dir.join(f)).expect("file")).expect("YAML")
    };
    let hpa = read("hpa.yaml");
    let hpa: k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler =
        serde_json::from_value(hpa[0].clone()).expect("an autoscaling/v2 HPA");
    let built = convert::build_hpa("webapp-hpa", "default", "webapp", &hpa_spec(&Config::default())).expect("build");
    assert_eq!(hpa.metadata.name.as_deref(), Some("webapp-hpa"));
    assert_eq!(serde_json::to_value(&hpa.spec).expect("json"), serde_json::to_value(&built.spec).expect("json"));

    let web = read("webapp.yaml");
    let dep = web.iter().find(|d| d["kind"] == "Deployment").expect("Deployment");
    let dep: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(dep.clone()).expect("valid");
    let pod_spec = dep.spec.template.spec.clone().expect("pod spec");
    let nginx = pod_spec.containers.iter().find(|c| c.name == Config::default().cluster.container).expect("nginx");
    let res = serde_json::to_value(nginx.resources.clone().expect("resources")).expect("json");
    assert_eq!(
        res,
        json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}})
    );
    assert_eq!(dep.metadata.name.as_deref(), Some(Config::default().cluster.deployment.as_str()));
    assert_eq!(convert::selector_string(&dep.spec.selector).expect("selector"), "app.kubernetes.io/name=webapp");
    let svc = web.iter().find(|d| d["kind"] == "Service").expect("Service");
    let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(svc.clone()).expect("valid");
    let sel = svc.spec.and_then(|s| s.selector).expect("selector");
    assert_eq!(Some(&sel), dep.spec.selector.match_labels.as_ref(), "the Service selects the deployment's pods");
    let ports = nginx.ports.clone().unwrap_or_default();
    assert!(ports.iter().any(|p| p.name.as_deref() == Some("http") && p.container_port == 80));
    let patch = read("webapp-exporter.yaml");
    assert_eq!(patch[0]["spec"]["template"]["spec"]["containers"][0]["name"], "exporter");
    assert_eq!(
        patch[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "10m", "memory": "32Mi"})
    );
}

// ---------------------------------------------------------------------------------------------
// The real binary, headless, against the fake.

struct Run {
    _dir: tempfile::TempDir,
    out: std::path::PathBuf,
    kubeconfig: std::path::PathBuf,
    home: std::path::PathBuf,
}

fn prepare(fake: &FakeApiServer, token: &str) -> Run {
    let dir = tempfile::tempdir().expect("tmp");
    let kubeconfig = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig, token);
    let out = dir.path().join("out");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    // ./config.toml of the runs: ai_scaler's lease lasts 3 s (15 s by default), so that a
    // killed holder frees it quickly.
    std::fs::write(home.join("config.toml"), "[cluster]\nlease_duration_s = 3\n").expect("config");
    Run { out, kubeconfig, home, _dir: dir }
}

fn scaletui(run: &Run, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_scaletui"));
    c.args(["--headless", "--backend", "kube", "--metrics", "metrics-server", "--output-dir"])
        .arg(&run.out)
        .args(args)
        .env("KUBECONFIG", &run.kubeconfig)
        .env("HOME", &run.home)
        .env("SCALETUI_STATE_DIR", run.home.join("state"))
        .env_remove("SCALETUI_CONFIG")
        .current_dir(&run.home)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    c
}

fn csv_rows(dir: &Path) -> (Vec<String>, Vec<Vec<String>>, String) {
    let csv = std::fs::read_dir(dir)
        .expect("out dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "csv") && !p.to_string_lossy().ends_with("_events.csv"))
        .expect("a CSV");
    let mut r = csv::Reader::from_path(&csv).expect("csv");
    let header = r.headers().expect("header").iter().map(String::from).collect();
    let rows = r.records().map(|x| x.expect("row").iter().map(String::from).collect()).collect();
    let events = std::fs::read_to_string(csv.to_string_lossy().replace(".csv", "_events.csv")).expect("events");
    (header, rows, events)
}

/// The restored HPA is the original object: same spec, labels and annotations.
fn assert_restored(fake: &FakeApiServer) {
    let h = fake.hpa().expect("the HPA is back");
    let orig = their_hpa();
    assert_eq!(h["spec"], orig["spec"]);
    assert_eq!(h["metadata"]["labels"], orig["metadata"]["labels"]);
    assert_eq!(h["metadata"]["annotations"], orig["metadata"]["annotations"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_ai_scaler_reads_scales_deletes_the_hpa_and_restores_it() {
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let run = prepare(&fake, "fake-token");
    let out =
        scaletui(&run, &["--mode", "ai_scaler", "--interval", "1", "--duration", "0.06"]).output().await.expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("kube backend (default/webapp)"), "{stderr}");

    let reqs = fake.requests();
    let deleted =
        reqs.iter().position(|r| r.method == "DELETE" && r.path.ends_with("/webapp-hpa")).expect("HPA deleted");
    let patch = reqs.iter().position(|r| r.method == "PATCH").expect("scaled");
    assert!(deleted < patch, "the HPA is removed before scaletui scales");
    let p = &reqs[patch];
    assert!(p.path.ends_with("/deployments/webapp/scale") && p.query.contains("fieldManager=scaletui"), "{p:?}");
    let to = p.body["spec"]["replicas"].as_i64().expect("replicas");
    // 150m of 100m requested against a 60 % target, limited to +100 % per 15 s by the behavior.
    assert_eq!(to, 6, "{p:?}");
    for r in reqs.iter().filter(|r| r.method == "PATCH") {
        let n = r.body["spec"]["replicas"].as_i64().expect("replicas");
        assert!((1..=10).contains(&n), "clamped to [1, 10]: {n}");
    }
    assert_restored(&fake);

    let (header, rows, events) = csv_rows(&run.out);
    let col = |n: &str| header.iter().position(|h| h == n).expect(n);
    assert!(rows.len() >= 3, "{} rows", rows.len());
    // Cheap polling: four reads a tick (deployment, pods, HPA, metrics) plus a handful of writes
    // and the start/restore reads.
    let n = rows.len();
    // One access review per operation the run may need, asked once at the start.
    let (reviews, reqs): (Vec<_>, Vec<_>) =
        reqs.into_iter().partition(|r| r.path.ends_with("/selfsubjectaccessreviews"));
    assert_eq!(reviews.len(), scaletui::engine::cluster::kube::access::needed(false, true).len());
    // Besides: the HPA saved in a ConfigMap before it goes (3), the saved copy removed after
    // the restore (1). The lease (3 s here: renewed every second) is counted on its own.
    let (lease, reqs): (Vec<_>, Vec<_>) = reqs.into_iter().partition(|r| r.path.contains("/leases"));
    assert!(reqs.len() <= 4 * n + 14, "{} requests for {n} ticks", reqs.len());
    // Taken (GET, POST), renewed (GET, PUT) about once a second for ~4 s, given up (GET, DELETE).
    assert!((4..=16).contains(&lease.len()), "{} lease requests", lease.len());
    assert!(rows.iter().all(|r| r[col("backend")] == "kube" && r[col("metrics_source")] == "metrics-server"));
    assert_eq!(rows[0][col("current_replicas")], "3");
    assert_eq!(rows[0][col("applied_by")], "hpa_sim");
    assert_eq!(rows[0][col("applied_replicas")], "6");
    let cpu: f64 = rows[0][col("cpu_millicores")].parse().expect("cpu");
    assert!((cpu - 150.0).abs() < 0.01, "{cpu}");
    assert_eq!(rows[0][col("cpu_request_millicores")].parse::<f64>().expect("req"), 100.0);
    assert!(rows.iter().all(|r| r[col("hpa_present")] == "false"), "deleted for the whole run");
    assert!(events.contains("HPA deleted") && events.contains("restore"), "{events}");
    assert!(events.contains("re-created the HPA webapp-hpa as it was at start"), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_run_and_restores_the_hpa() {
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let run = prepare(&fake, "fake-token");
    let child = scaletui(&run, &["--mode", "ai_scaler", "--interval", "1", "--duration", "0"]).spawn().expect("spawn");
    let pid = child.id().expect("pid");
    assert!(eventually(30.0, || fake.requests().iter().any(|r| r.method == "PATCH")).await, "it scaled");
    assert!(fake.hpa().is_none(), "the HPA is deleted while ai_scaler runs");
    let killed = std::process::Command::new("sh").args(["-c", &format!("kill -TERM {pid}")]).status().expect("kill");
    assert!(killed.success());
    let out =
        tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.expect("exits").expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_restored(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_stresses_the_pods_switches_to_hpa_only_and_cleans_up() {
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let run = prepare(&fake, "fake-token");
    let scenario = run.home.join("stress.toml");
    std::fs::write(
        &scenario,
        "name = \"stress\"\n\
         [[stress]]\nkind = \"cpu\"\nat_s = 0\nduration_s = 2\nworkers = 1\n\
         [[stress]]\nkind = \"memory\"\nat_s = 0\nduration_s = 2\nmib = 2\n\
         [[mode]]\nat_s = 2\nmode = \"hpa_only\"\n",
    )
    .expect("scenario");
    let out = scaletui(&run, &["--mode", "comparison", "--interval", "1", "--duration", "0.07", "--scenario"])
        .arg(&scenario)
        .output()
        .await
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reqs = fake.requests();
    let execs: Vec<&str> = reqs.iter().filter(|r| r.path.ends_with("/exec")).map(|r| r.query.as_str()).collect();
    assert!(execs.len() >= 3 * 4, "df, dd, cpu and cleanup on each of 3 pods: {}", execs.len());
    assert!(execs.iter().all(|q| q.contains("container=nginx")));
    // hpa_only replaced their HPA with the configured one; the exit put theirs back.
    let puts: Vec<_> = reqs.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 2, "ensure, then restore");
    assert_eq!(puts[0].body["spec"]["maxReplicas"], 10);
    assert_eq!(puts[0].body["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"], 60);
    assert_restored(&fake);
    assert!(reqs.iter().all(|r| r.method != "PATCH"), "hpa_only and comparison never scale");
    for pod in fake.pod_names() {
        assert!(fake.shm_files(&pod).is_empty(), "{pod}: {:?}", fake.shm_files(&pod));
        assert!(eventually(3.0, || fake.live_processes(&pod) == 0).await, "{pod}: stressors ended");
    }
    let (header, rows, events) = csv_rows(&run.out);
    let col = |n: &str| header.iter().position(|h| h == n).expect(n);
    assert!(rows.iter().any(|r| r[col("stress_cpu_workers")] == "3" && r[col("stress_memory_mib")] == "6"), "{rows:?}");
    assert!(rows.last().is_some_and(|r| r[col("mode")] == "hpa_only" && r[col("hpa_present")] == "true"));
    for kind in ["task_start", "task_stop", "mode_switch", "HPA updated to the configured spec"] {
        assert!(events.contains(kind), "{kind} in {events}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_and_comparison_runs_never_write() {
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let read_only = prepare(&fake, "fake-token");
    let comparison = prepare(&fake, "fake-token");
    for (run, args) in [
        (&read_only, &["--mode", "ai_scaler", "--read-only", "--interval", "1", "--duration", "0.03"][..]),
        (&comparison, &["--mode", "comparison", "--interval", "1", "--duration", "0.03"][..]),
    ] {
        let out = scaletui(run, args).output().await.expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // Access reviews (asked up front) change nothing; nothing else but reads is sent.
    let writes: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.path.ends_with("/selfsubjectaccessreviews"))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert_eq!(fake.hpa().expect("untouched")["metadata"]["resourceVersion"], "100");
    let (header, rows, events) = csv_rows(&read_only.out);
    assert!(events.contains("read-only"), "{events}");
    let col = |n: &str| header.iter().position(|h| h == n).expect(n);
    assert!(rows.iter().all(|r| r[col("mode")] == "comparison"), "ai_scaler was refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_problems_are_explained() {
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let bad = prepare(&fake, "expired-token");
    let stderr = |o: std::process::Output| (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned());

    let (code, s) = stderr(scaletui(&bad, &["--duration", "0.01"]).output().await.expect("runs"));
    assert_eq!(code, Some(2), "{s}");
    assert!(s.contains("401") && s.contains("log in again"), "{s}");

    let (code, s) = stderr(scaletui(&bad, &["--context", "nope"]).output().await.expect("runs"));
    assert_eq!(code, Some(2), "{s}");
    assert!(s.contains("\"nope\" is not in the kubeconfig") && s.contains("contexts: fake"), "{s}");

    let missing = prepare(&fake, "fake-token");
    let mut c = scaletui(&missing, &["--duration", "0.01"]);
    c.env("KUBECONFIG", missing.home.join("no-such-file"));
    let (code, s) = stderr(c.output().await.expect("runs"));
    assert_eq!(code, Some(2), "{s}");
    assert!(s.contains("no kubeconfig found") && s.contains("--backend sim"), "{s}");

    let good = prepare(&fake, "fake-token");
    let (code, s) = stderr(scaletui(&good, &["--deployment", "shop"]).output().await.expect("runs"));
    assert_eq!(code, Some(2), "{s}");
    assert!(
        s.contains("deployment \"shop\" not found in namespace default") && s.contains("deploy/webapp.yaml"),
        "{s}"
    );

    // Nothing listens there any more.
    let url = fake.url.clone();
    fake.stop();
    drop(fake);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (code, s) = stderr(scaletui(&good, &["--duration", "0.01"]).output().await.expect("runs"));
    assert_eq!(code, Some(2), "{s}");
    assert!(s.contains(&url) && s.contains("is the cluster running"), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_metrics_server_the_run_goes_on_and_says_why() {
    let fake = FakeApiServer::start(FakeOptions { metrics: false, ..FakeOptions::default() }).await;
    let run = prepare(&fake, "fake-token");
    let out = scaletui(&run, &["--mode", "comparison", "--interval", "1", "--duration", "0.03"])
        .output()
        .await
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (header, rows, _) = csv_rows(&run.out);
    let col = |n: &str| header.iter().position(|h| h == n).expect(n);
    assert!(rows.iter().all(|r| r[col("metrics_status")].contains("install metrics-server")), "{:?}", rows[0]);
    assert!(rows.iter().all(|r| r[col("cpu_millicores")].is_empty() && r[col("current_replicas")] == "3"));
}

// ---------------------------------------------------------------------------------------------
// The real-cluster tier: not run on CI (no API server can be installed there). Run it against a
// disposable cluster with deploy/webapp.yaml applied:
//
//   SCALETUI_TEST_KUBECONFIG=~/.kube/config [SCALETUI_TEST_CONTEXT=kind-kind] \
//   [SCALETUI_TEST_NAMESPACE=default] cargo test --test kube_backend -- --ignored real_cluster
//
// It fails (never skips) when the variable is missing or the cluster is unusable.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: set SCALETUI_TEST_KUBECONFIG and run with --ignored"]
async fn real_cluster() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let path = std::env::var("SCALETUI_TEST_KUBECONFIG").expect(
        "SCALETUI_TEST_KUBECONFIG must name the kubeconfig of a disposable cluster with deploy/webapp.yaml applied",
    );
    let context = std::env::var("SCALETUI_TEST_CONTEXT").ok();
    let namespace = std::env::var("SCALETUI_TEST_NAMESPACE").unwrap_or_else(|_| "default".into());
    let kc = Kubeconfig::read_from(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let opts = KubeConfigOptions { context: context.clone(), ..KubeConfigOptions::default() };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &opts).await.unwrap_or_else(|e| panic!("{path}: {e}"));
    let target = Target {
        server: cfg.cluster_url.to_string(),
        context: context.unwrap_or_default(),
        namespace: namespace.clone(),
    };
    let client = kube::Client::try_from(cfg).expect("client");
    let mut s = settings();
    s.cluster.namespace = namespace;
    let c =
        KubeCluster::with_client(client, s, target).await.unwrap_or_else(|e| panic!("the cluster is unusable: {e}"));
    let original = c.original_hpa();

    let dep = c.deployment().await.expect("deployment");
    let pods = c.pods().await.expect("pods");
    let ready: Vec<_> = pods.iter().filter(|p| p.is_ready()).collect();
    assert!(!ready.is_empty(), "no ready pod of webapp: {pods:?}");
    let usage = c.pod_metrics().await.expect("metrics.k8s.io (is metrics-server installed?)");
    assert!(!usage.is_empty(), "metrics-server returned no samples yet");
    let pod = ready[0].name.clone();
    assert!(c.shm_free_mib(&pod).await.expect("df in the pod") > 1.0);
    let m = c.stress_memory(&pod, 1).await.expect("memory stressor");
    c.stop_stress(&m).await.expect("memory stressor stops");
    let h = c.stress_cpu(&pod, 1, 5.0).await.expect("cpu stressor");
    c.stop_stress(&h).await.expect("cpu stressor stops");
    let url = c.load_target().await.expect("port-forward");
    reqwest::get(&url).await.expect("request through the port-forward").error_for_status().expect("2xx");
    c.delete_hpa().await.expect("delete the HPA");
    c.scale((dep.spec_replicas + 1).min(10)).await.expect("scale");
    assert_eq!(c.ensure_hpa(&hpa_spec(&Config::default())).await.expect("ensure"), HpaChange::Created);
    c.restore().await.expect("restore");
    let back = c.hpa().await.expect("hpa");
    assert_eq!(back.is_some(), original.is_some(), "the HPA is as at start");
    if let (Some(b), Some(o)) = (back, original) {
        assert_eq!(Some(i64::from(b.max_replicas)), o.data["spec"]["maxReplicas"].as_i64());
    }
}

/// A short headless run (1 s ticks for 1.8 s) that must succeed; its stderr.
async fn short_run(run: &Run, extra: &[&str]) -> String {
    let mut args = vec!["--interval", "1", "--duration", "0.03"];
    args.extend_from_slice(extra);
    let out = scaletui(run, &args).output().await.expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    stderr
}

fn kill9(pid: u32) {
    let killed = std::process::Command::new("sh").args(["-c", &format!("kill -KILL {pid}")]).status().expect("kill");
    assert!(killed.success());
}

fn saved_files(run: &Run) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(run.home.join("state").join("saved-hpa")) {
        Ok(d) => d.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    }
}

const SAVED_CM: &str = "scaletui-saved-hpa-webapp";

/// Start ai_scaler, wait until it scaled (the HPA is gone), then kill -9: no restore runs.
async fn crash_mid_ai_scaler(fake: &FakeApiServer, run: &Run) {
    let child = scaletui(run, &["--mode", "ai_scaler", "--interval", "1", "--duration", "0"]).spawn().expect("spawn");
    let pid = child.id().expect("pid");
    assert!(eventually(30.0, || fake.requests().iter().any(|r| r.method == "PATCH")).await, "it scaled");
    kill9(pid);
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await.expect("killed");
    assert!(fake.hpa().is_none(), "killed -9: the HPA stays deleted");
    assert!(fake.object("configmaps", SAVED_CM).is_some(), "the cluster's copy is there");
    // Until its lease expires the HPA counts as set aside by a live run; then as abandoned.
    let out = scaletui(run, &["restore"]).output().await.expect("runs");
    assert_eq!(out.status.code(), Some(1), "refused while the lease holds");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("set aside by ") && stdout.contains(&format!("pid {pid}, running ai_scaler")), "{stdout}");
    tokio::time::sleep(Duration::from_millis(3500)).await;
}

/// kill -9 in ai_scaler: the next start (comparison) says so and leaves the cluster alone;
/// `scaletui restore` puts the HPA back exactly as it was, from this machine's copy or, with an
/// empty state folder, from the cluster's; no copy is left after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_ai_scaler_run_is_found_at_the_next_start_and_restore_puts_the_hpa_back() {
    for from_cluster_only in [false, true] {
        let fake = FakeApiServer::start(FakeOptions::default()).await;
        let run = prepare(&fake, "fake-token");
        crash_mid_ai_scaler(&fake, &run).await;
        assert_eq!(saved_files(&run).len(), 1, "and this machine's copy");

        // The next start, in comparison: a loud line, nothing written.
        let writes_before = fake.requests().iter().filter(|r| r.method != "GET" && r.method != "POST").count();
        let stderr = short_run(&run, &["--mode", "comparison"]).await;
        assert!(
            stderr.contains("hpa_saved: the HPA webapp-hpa was removed by ") && stderr.contains("never put back"),
            "{stderr}"
        );
        assert!(stderr.contains("scaletui restore --namespace default --deployment webapp"), "{stderr}");
        assert!(fake.hpa().is_none(), "comparison does not restore on its own");
        let writes_after = fake.requests().iter().filter(|r| r.method != "GET" && r.method != "POST").count();
        assert_eq!(writes_before, writes_after, "comparison wrote nothing");

        // restore, from another machine (an empty state folder) or this one.
        let restorer = if from_cluster_only { prepare(&fake, "fake-token") } else { run };
        let out = scaletui(&restorer, &["restore", "--deployment", "webapp"]).output().await.expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
        assert!(
            stdout.contains("re-created the HPA webapp-hpa") && stdout.contains("saved copies are removed"),
            "{stdout}"
        );
        assert_restored(&fake);
        assert!(fake.object("configmaps", SAVED_CM).is_none(), "no saved copy in the cluster");
        assert!(saved_files(&restorer).is_empty(), "no saved copy on this machine");
        // Nothing left to do.
        let out = scaletui(&restorer, &["restore"]).output().await.expect("runs");
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to restore"));
    }
}

/// `--restore-hpa` puts it back at start, headless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_hpa_at_start_puts_it_back_before_the_run() {
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let run = prepare(&fake, "fake-token");
    crash_mid_ai_scaler(&fake, &run).await;
    let stderr = short_run(&run, &["--restore-hpa", "--mode", "comparison"]).await;
    assert!(stderr.contains("restore: re-created the HPA webapp-hpa"), "{stderr}");
    assert_restored(&fake);
    assert!(fake.object("configmaps", SAVED_CM).is_none());
    assert!(saved_files(&run).is_empty());
}

/// Two instances: the second is refused ai_scaler while the first holds the lease, and takes it
/// once the first is killed and its lease (3 s here) has expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ai_scaler_is_refused_until_the_first_ones_lease_expires() {
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let run = prepare(&fake, "fake-token");
    let first = scaletui(&run, &["--mode", "ai_scaler", "--interval", "1", "--duration", "0"]).spawn().expect("spawn");
    let pid = first.id().expect("pid");
    assert!(eventually(30.0, || fake.requests().iter().any(|r| r.method == "PATCH")).await, "it scaled");
    let lease = fake.object("leases", "scaletui-webapp").expect("the first holds the lease");
    let holder = lease["spec"]["holderIdentity"].as_str().expect("holder").to_string();
    assert!(holder.ends_with(&format!("pid {pid}")), "{holder}");
    // Renewed while it runs.
    let renewed = lease["spec"]["renewTime"].clone();
    assert!(
        eventually(5.0, || fake.object("leases", "scaletui-webapp").is_some_and(|l| l["spec"]["renewTime"] != renewed))
            .await,
        "renewed every second"
    );

    let other = prepare(&fake, "fake-token");
    let stderr = short_run(&other, &["--mode", "ai_scaler"]).await;
    assert!(
        stderr.contains(&format!("ai_scaler refused: {holder} holds the lease scaletui-webapp on webapp since "))
            && stderr.contains("staying in comparison"),
        "{stderr}"
    );
    let (header, rows, _) = csv_rows(&other.out);
    let col = |n: &str| header.iter().position(|h| h == n).expect(n);
    assert!(rows.iter().all(|r| r[col("mode")] == "comparison"), "the second only observed");
    assert!(fake.object("leases", "scaletui-webapp").is_some_and(|l| l["spec"]["holderIdentity"] == holder.as_str()));

    kill9(pid);
    let _ = tokio::time::timeout(Duration::from_secs(10), first.wait_with_output()).await.expect("killed");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let third = prepare(&fake, "fake-token");
    let stderr = short_run(&third, &["--mode", "ai_scaler"]).await;
    assert!(!stderr.contains("ai_scaler refused"), "{stderr}");
    assert!(stderr.contains("start in ai_scaler"), "{stderr}");
    let (header, rows, _) = csv_rows(&third.out);
    let col = |n: &str| header.iter().position(|h| h == n).expect(n);
    assert!(rows.iter().all(|r| r[col("mode")] == "ai_scaler"));
    // It gave the lease up at exit.
    assert!(fake.object("leases", "scaletui-webapp").is_none(), "released at exit");
}

/// The API server away for 30 s in the middle of ai_scaler: rows go on with the fault in
/// cluster_status, and the HPA is restored when it is back, before the run exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_away_for_30_s_mid_run_and_the_hpa_is_restored_before_exit() {
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let run = prepare(&fake, "fake-token");
    let child =
        scaletui(&run, &["--mode", "ai_scaler", "--interval", "1", "--duration", "0.75"]).spawn().expect("spawn");
    assert!(eventually(30.0, || fake.requests().iter().any(|r| r.method == "PATCH")).await, "it scaled");
    fake.set_down(true);
    tokio::time::sleep(Duration::from_secs(30)).await;
    fake.set_down(false);
    let out =
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.expect("exits").expect("out");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_restored(&fake);
    assert!(fake.object("configmaps", SAVED_CM).is_none());
    assert!(fake.object("leases", "scaletui-webapp").is_none());
    let (header, rows, _) = csv_rows(&run.out);
    let col = |n: &str| header.iter().position(|h| h == n).expect(n);
    // Requests to an API server answering 503 are retried by the client until scaletui's 10 s
    // request timeout: a tick then takes a timeout or two, and says so.
    let statuses: Vec<&String> = rows.iter().map(|r| &r[col("cluster_status")]).collect();
    let faulty = statuses.iter().filter(|s| s.contains("cannot reach the cluster")).count();
    assert!(faulty >= 1, "rows went on during the outage, with the fault shown: {statuses:?}");
    let last_fault = statuses.iter().rposition(|s| *s != "ok").unwrap_or(0);
    assert!(rows.len() - last_fault > 5, "and after it: {statuses:?}");
}

/// The API server gone at the end of an ai_scaler run: the restore is retried for
/// `restore_retry_s`, then the run says loudly what is left and how to put it back, and exits
/// non-zero; once the API server is back, that command restores the HPA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_cannot_reach_the_api_server_fails_loudly_and_says_how_to_finish_it() {
    let fake = FakeApiServer::start(FakeOptions::default()).await;
    let run = prepare(&fake, "fake-token");
    std::fs::write(run.home.join("config.toml"), "[cluster]\nlease_duration_s = 3\nrestore_retry_s = 3\n")
        .expect("config");
    let child =
        scaletui(&run, &["--mode", "ai_scaler", "--interval", "1", "--duration", "0.05"]).spawn().expect("spawn");
    assert!(eventually(30.0, || fake.requests().iter().any(|r| r.method == "PATCH")).await, "it scaled");
    fake.set_down(true);
    let out =
        tokio::time::timeout(Duration::from_secs(120), child.wait_with_output()).await.expect("exits").expect("out");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("THE CLUSTER IS NOT AS IT WAS") && stderr.contains("is NOT restored"), "{stderr}");
    assert!(stderr.contains("scaletui restore --namespace default --deployment webapp"), "{stderr}");
    assert!(stderr.contains("ConfigMap scaletui-saved-hpa-webapp"), "{stderr}");
    assert!(fake.hpa().is_none());
    fake.set_down(false);
    tokio::time::sleep(Duration::from_millis(3500)).await; // the dead run's lease expires
    let out =
        scaletui(&run, &["restore", "--namespace", "default", "--deployment", "webapp"]).output().await.expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_restored(&fake);
    assert!(fake.object("configmaps", SAVED_CM).is_none());
}

#[path = "support/openai_stub.rs"]
mod openai_stub;

/// On the kube backend, a model answering 10 and 1 on alternate ticks (interval 1 s): the scale
/// requests sent to the API server follow `[scaling.behavior]` — within any 15 s the count at
/// most doubles, it never goes down while a 10 was recommended in the last 60 s — and every
/// limited row says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternating_answers_reach_the_deployment_within_the_behavior() {
    use openai_stub::{Reply, Stub};
    let stub = Stub::start().await;
    for i in 0..40 {
        stub.push(Reply::answer(if i % 2 == 0 { 10 } else { 1 }));
    }
    let fake = FakeApiServer::start(FakeOptions { replicas: 2, ..FakeOptions::default() }).await;
    let run = prepare(&fake, "fake-token");
    let out =
        scaletui(&run, &["--mode", "ai_scaler", "--interval", "1", "--duration", "0.4", "--ai-url", &stub.base_url()])
            .output()
            .await
            .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (header, rows, _) = csv_rows(&run.out);
    let col = |n: &str| header.iter().position(|h| h == n).expect(n);
    let num = |r: &Vec<String>, n: &str| r[col(n)].parse::<f64>().ok();
    let parsed: Vec<&Vec<String>> = rows.iter().filter(|r| r[col("ai_status")] == "parsed").collect();
    assert!(parsed.len() >= 10, "{} parsed answers: {stderr}", parsed.len());
    // The scale requests as the API server saw them, in order, with when they came.
    let scales: Vec<i64> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .filter_map(|r| r.body["spec"]["replicas"].as_i64())
        .collect();
    assert!(!scales.is_empty());
    let mut prev = 2;
    for s in &scales {
        assert!(*s >= prev, "never down while 10s keep coming: {scales:?}");
        prev = *s;
    }
    for (i, r) in rows.iter().enumerate() {
        let (Some(t), Some(applied)) = (num(r, "elapsed_s"), num(r, "applied_replicas")) else { continue };
        // The count 15 s before (or at the start).
        let base = rows[..i]
            .iter()
            .rev()
            .find(|q| num(q, "elapsed_s").is_some_and(|u| u <= t - 15.0))
            .or(rows.first())
            .and_then(|q| num(q, "current_replicas"))
            .unwrap_or(2.0);
        assert!(applied <= 2.0 * base.max(1.0) + 1e-9, "row {i}: {applied} within 15 s of {base}");
        let rec = num(r, "recommended_replicas");
        let by_ai = r[col("applied_by")] == "ai" || r[col("applied_by")] == "ai_no_change";
        if by_ai && rec != Some(applied) {
            let why = &r[col("applied_limit")];
            let note = &r[col("applied_note")];
            assert!(!why.is_empty() || note.contains("converge"), "row {i}: {rec:?} -> {applied}: {note}");
        }
    }
    assert!(rows.iter().any(|r| r[col("applied_limit")].starts_with("scaleDown stabilized")), "the 1s were held");
    assert_restored(&fake);
}
