//! A fake Kubernetes API server for tests (no real API server can be installed on CI machines).
//!
//! It serves plain HTTP on 127.0.0.1 (an ephemeral port) with bearer-token auth and keeps, in
//! memory, one Deployment with its pods, an optional HPA (`autoscaling/v2`) and metrics.k8s.io
//! PodMetrics. It applies what scaletui sends: scale-subresource merge patches (pods are created
//! and deleted to match, each with a tiny HTTP server of its own), HPA create/replace/delete with
//! resourceVersion conflicts, and it speaks the WebSocket wire format of exec (channels 0 stdin,
//! 1 stdout, 2 stderr, 3 status, 255 close; `v5.channel.k8s.io`) and port-forward (data channel 0,
//! error channel 1, each opened with the port as u16 little-endian).
//!
//! Exec runs the command for real with the host's `sh`, with `/dev/shm` rewritten to a per-pod
//! folder and `df`/`dd` shims that behave like a /dev/shm tmpfs of a fixed size. As on a real
//! cluster, a command goes on running when its stream is cut (its stdin sees EOF); the commands
//! of a pod are killed when the pod is deleted and when the fake stops.
//!
//! Every request is recorded (method, path, query, RBAC verb/resource) for assertions, e.g. that
//! `deploy/rbac.yaml` grants exactly what the backend uses.
//!
//! Use it from an integration test with `#[path = "support/fake_apiserver.rs"] mod fake_apiserver;`.
//! It lives in `tests/` (not in the library behind a feature) so that it is compiled only into
//! the test binaries that include it, needs no feature flag to be remembered, and can never be
//! shipped in the binary.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_util::sync::CancellationToken;

/// How the fake starts.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    pub namespace: String,
    pub deployment: String,
    pub replicas: i32,
    /// The HPA at start (a full object), if any.
    pub hpa: Option<Value>,
    pub token: String,
    /// `(verb, resource)` pairs answered with 403, e.g. `("patch", "deployments/scale")`.
    pub forbid: Vec<(String, String)>,
    /// Serve metrics.k8s.io (else 404, as on a cluster without metrics-server).
    pub metrics: bool,
    /// Usage reported per pod.
    pub cpu_m: f64,
    pub memory_mib: f64,
    /// Size of each pod's /dev/shm.
    pub shm_mib: u64,
    /// The container image has a shell.
    pub shell: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            namespace: "default".into(),
            deployment: "webapp".into(),
            replicas: 3,
            hpa: Some(their_hpa()),
            token: "fake-token".into(),
            forbid: Vec::new(),
            metrics: true,
            cpu_m: 150.0,
            memory_mib: 40.0,
            shm_mib: 64,
            shell: true,
        }
    }
}

/// An HPA as someone applied it with kubectl (what scaletui must put back exactly).
pub fn their_hpa() -> Value {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "webapp-hpa",
            "namespace": "default",
            "labels": {"team": "web", "app.kubernetes.io/name": "webapp"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\"}\n"}
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "webapp"},
            "minReplicas": 2,
            "maxReplicas": 8,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 120, "selectPolicy": "Max",
                                       "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}}
        }
    })
}

/// A request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub websocket: bool,
    pub status: u16,
    pub body: Value,
    /// RBAC `(verb, group, resource)` of the request.
    pub access: Vec<(String, String, String)>,
}

struct WebServer {
    addr: SocketAddr,
    cancel: CancellationToken,
}

struct FakePod {
    name: String,
    uid: String,
    started: jiff::Timestamp,
    shm: PathBuf,
    web: Option<WebServer>,
    /// Process groups of the commands exec'd into it.
    groups: Vec<u32>,
}

pub struct FakeState {
    opts: FakeOptions,
    replicas: i32,
    pods: Vec<FakePod>,
    hpa: Option<Value>,
    /// ConfigMaps and Leases by (resource, name).
    objects: BTreeMap<(String, String), Value>,
    /// While set, every request is answered 503 (the API server unreachable behind its LB).
    down: bool,
    next_rv: u64,
    next_pod: u64,
    requests: Vec<Recorded>,
    cpu_m: f64,
    memory_mib: f64,
    streams: Vec<CancellationToken>,
}

struct Shared {
    state: Mutex<FakeState>,
    dir: PathBuf,
    /// Folder of the `df`/`dd` shims.
    bin: PathBuf,
    cancel: CancellationToken,
}

pub struct FakeApiServer {
    pub url: String,
    shared: Arc<Shared>,
    _dir: tempfile::TempDir,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

const SELECTOR_KEY: &str = "app.kubernetes.io/name";

fn find_in_path(name: &str) -> String {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| format!("/bin/{name}"))
}

fn write_shims(bin: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(bin).expect("shim dir");
    let df = r#"#!/bin/sh
# df of a pod's /dev/shm: a tmpfs of $SHM_KB KiB (the fake API server's shim)
used=$(du -sk "$SHM_DIR" | cut -f1)
echo "Filesystem           1024-blocks    Used Available Capacity Mounted on"
echo "shm $SHM_KB $used $((SHM_KB - used)) 0% /dev/shm"
"#;
    let dd = format!(
        r#"#!/bin/sh
# dd into a pod's /dev/shm: refuses what does not fit, like a full tmpfs (the fake's shim)
count=0; bs=512
for a in "$@"; do case "$a" in count=*) count=${{a#count=}};; bs=*) bs=${{a#bs=}};; esac; done
used=$(du -sk "$SHM_DIR" | cut -f1)
if [ $((used + count * bs / 1024)) -gt "$SHM_KB" ]; then echo "dd: error writing '/dev/shm/x': No space left on device" >&2; exit 1; fi
exec {} "$@"
"#,
        find_in_path("dd")
    );
    for (name, text) in [("df", df.to_string()), ("dd", dd)] {
        let p = bin.join(name);
        std::fs::write(&p, text).expect("shim");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

impl FakeApiServer {
    pub async fn start(opts: FakeOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        write_shims(&bin);
        let mut hpa = opts.hpa.clone();
        if let Some(h) = hpa.as_mut() {
            h["metadata"]["uid"] = json!("hpa-uid-1");
            h["metadata"]["resourceVersion"] = json!("100");
            h["metadata"]["creationTimestamp"] = json!("2026-03-01T09:00:00Z");
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(FakeState {
                replicas: opts.replicas,
                cpu_m: opts.cpu_m,
                memory_mib: opts.memory_mib,
                opts,
                pods: Vec::new(),
                hpa,
                objects: BTreeMap::new(),
                down: false,
                next_rv: 101,
                next_pod: 1,
                requests: Vec::new(),
                streams: Vec::new(),
            }),
            dir: dir.path().to_path_buf(),
            bin,
            cancel: CancellationToken::new(),
        });
        // Pods that have been running for a while.
        let old = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600);
        let n = lock(&shared.state).replicas;
        for _ in 0..n {
            let pod = new_pod(&shared, old).await;
            lock(&shared.state).pods.push(pod);
        }
        if let Some(h) = lock(&shared.state).hpa.as_mut() {
            h["status"] = hpa_status(n);
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let cancel = shared.cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(async move { cancel.cancelled().await }).await;
        });
        Self { url: format!("http://{addr}"), shared, _dir: dir }
    }

    /// A kubeconfig (context `fake`, namespace default) for this server.
    pub fn write_kubeconfig(&self, path: &Path, token: &str) {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: fake\n  user:\n    token: {token}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\n",
            self.url
        );
        std::fs::write(path, text).expect("kubeconfig");
    }

    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        lock(&self.shared.state)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// Every RBAC access the requests needed (answered requests and refused ones alike).
    pub fn accesses(&self) -> BTreeSet<(String, String, String)> {
        self.state().requests.iter().flat_map(|r| r.access.iter().cloned()).collect()
    }

    pub fn hpa(&self) -> Option<Value> {
        self.state().hpa.clone()
    }

    pub fn replicas(&self) -> i32 {
        self.state().replicas
    }

    /// A ConfigMap or Lease (`resource` "configmaps" or "leases") by name.
    pub fn object(&self, resource: &str, name: &str) -> Option<Value> {
        self.state().objects.get(&(resource.to_string(), name.to_string())).cloned()
    }

    /// Take the API server down (every request answered 503) or bring it back.
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    pub fn pod_names(&self) -> Vec<String> {
        self.state().pods.iter().map(|p| p.name.clone()).collect()
    }

    pub fn set_usage(&self, cpu_m: f64, memory_mib: f64) {
        let mut s = self.state();
        s.cpu_m = cpu_m;
        s.memory_mib = memory_mib;
    }

    /// Files in a pod's /dev/shm with their sizes.
    pub fn shm_files(&self, pod: &str) -> Vec<(String, u64)> {
        let Some(dir) = self.state().pods.iter().find(|p| p.name == pod).map(|p| p.shm.clone()) else {
            return Vec::new();
        };
        let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().map(|m| m.len()).unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Processes still running from the commands exec'd into a pod.
    pub fn live_processes(&self, pod: &str) -> usize {
        let groups = self.state().pods.iter().find(|p| p.name == pod).map(|p| p.groups.clone()).unwrap_or_default();
        groups.iter().map(|g| count_group(*g)).sum()
    }

    /// Cut every exec and port-forward stream, as a network failure would.
    pub fn cut_streams(&self) {
        for c in self.state().streams.drain(..) {
            c.cancel();
        }
    }

    /// Delete a pod (its server stops, its /dev/shm and its processes go with it); the
    /// deployment creates a replacement, as a ReplicaSet would.
    pub async fn delete_pod(&self, name: &str) {
        let removed = {
            let mut s = self.state();
            let i = s.pods.iter().position(|p| p.name == name);
            i.map(|i| s.pods.remove(i))
        };
        if let Some(p) = removed {
            drop_pod(p);
        }
        reconcile(&self.shared).await;
    }

    pub fn stop(&self) {
        self.shared.cancel.cancel();
        let pods: Vec<FakePod> = self.state().pods.drain(..).collect();
        for p in pods {
            drop_pod(p);
        }
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Number of processes in a process group.
fn count_group(pgid: u32) -> usize {
    let Ok(rd) = std::fs::read_dir("/proc") else { return 0 };
    rd.filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid pgrp ...; comm may contain spaces.
            let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = after.split_whitespace().collect();
            f.first() != Some(&"Z") && f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid)
        })
        .count()
}

fn kill_group(pgid: u32) {
    let _ =
        std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).stderr(Stdio::null()).status();
}

fn drop_pod(p: FakePod) {
    if let Some(w) = p.web {
        w.cancel.cancel();
    }
    for g in p.groups {
        kill_group(g);
    }
    let _ = std::fs::remove_dir_all(&p.shm);
}

fn hpa_status(replicas: i32) -> Value {
    json!({"currentReplicas": replicas, "desiredReplicas": replicas, "conditions": [
        {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "lastTransitionTime": "2026-03-01T09:00:30Z"},
        {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound", "lastTransitionTime": "2026-03-01T09:00:30Z"}
    ]})
}

async fn new_pod(shared: &Arc<Shared>, started: jiff::Timestamp) -> FakePod {
    let (name, uid) = {
        let mut s = lock(&shared.state);
        let n = s.next_pod;
        s.next_pod += 1;
        (format!("{}-7d9f8-{n:05}", s.opts.deployment), format!("pod-uid-{n}"))
    };
    let shm = shared.dir.join("pods").join(&name).join("shm");
    std::fs::create_dir_all(&shm).expect("pod shm");
    // The pod's web server: answers with its name.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind pod");
    let addr = listener.local_addr().expect("addr");
    let cancel = shared.cancel.child_token();
    let body = format!("served by {name}\n");
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { body }
    });
    let c = cancel.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async move { c.cancelled().await }).await;
    });
    FakePod { name, uid, started, shm, web: Some(WebServer { addr, cancel }), groups: Vec::new() }
}

/// Make the pods match the replicas (new pods are ready at once; the newest go first).
async fn reconcile(shared: &Arc<Shared>) {
    loop {
        let (have, want) = {
            let s = lock(&shared.state);
            (s.pods.len() as i32, s.replicas)
        };
        if have < want {
            let p = new_pod(shared, jiff::Timestamp::now()).await;
            lock(&shared.state).pods.push(p);
        } else if have > want {
            let p = lock(&shared.state).pods.pop();
            if let Some(p) = p {
                drop_pod(p);
            }
        } else {
            break;
        }
    }
}

fn ts(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn pod_json(s: &FakeState, p: &FakePod) -> Value {
    let o = &s.opts;
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": p.name, "namespace": o.namespace, "uid": p.uid,
                     "labels": {SELECTOR_KEY: o.deployment}, "creationTimestamp": ts(p.started)},
        "spec": {"containers": [
            {"name": "nginx", "image": "nginx:1.27-alpine", "ports": [{"containerPort": 80, "name": "http"}],
             "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}}
        ]},
        "status": {"phase": "Running", "startTime": ts(p.started), "podIP": "10.244.0.10",
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ts(p.started)}],
                   "containerStatuses": [{"name": "nginx", "ready": true, "restartCount": 0, "image": "nginx:1.27-alpine", "imageID": "x"}]}
    })
}

fn deployment_json(s: &FakeState) -> Value {
    let o = &s.opts;
    let n = s.pods.len();
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": o.deployment, "namespace": o.namespace, "uid": "dep-uid", "resourceVersion": s.next_rv.to_string(), "generation": 1},
        "spec": {"replicas": s.replicas, "selector": {"matchLabels": {SELECTOR_KEY: o.deployment}},
                 "template": {"metadata": {"labels": {SELECTOR_KEY: o.deployment}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27-alpine"}]}}},
        "status": {"replicas": n, "readyReplicas": n, "availableReplicas": n, "updatedReplicas": n, "observedGeneration": 1}
    })
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code})
}

fn reply(code: u16, body: Value) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap_or_default()))
        .unwrap_or_default()
}

fn query_values(query: &str, key: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RBAC terms of a request (the same rules as the API server's request-info resolver).
fn classify(method: &str, path: &str, query: &str, websocket: bool) -> Vec<(String, String, String)> {
    scaletui::engine::cluster::kube::access::classify(method, path, query, websocket).unwrap_or_default()
}

async fn handle(State(shared): State<Arc<Shared>>, mut req: Request) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let websocket =
        req.headers().get("upgrade").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let ws_key = req.headers().get("sec-websocket-key").and_then(|v| v.to_str().ok()).map(String::from);
    let protocols = req.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let on_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let access = classify(&method, &path, &query, websocket);

    let record = |status: u16| {
        lock(&shared.state).requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            websocket,
            status,
            body: body.clone(),
            access: access.clone(),
        });
    };

    if lock(&shared.state).down {
        record(503);
        return reply(503, status(503, "ServiceUnavailable", "the server is currently unable to handle the request"));
    }
    let token = lock(&shared.state).opts.token.clone();
    if auth != format!("Bearer {token}") {
        record(401);
        return reply(401, status(401, "Unauthorized", "Unauthorized"));
    }
    let forbidden = {
        let s = lock(&shared.state);
        access.iter().find(|(v, _, r)| s.opts.forbid.iter().any(|(fv, fr)| fv == v && fr == r)).cloned()
    };
    if let Some((verb, group, resource)) = forbidden {
        record(403);
        let ns = lock(&shared.state).opts.namespace.clone();
        return reply(
            403,
            status(
                403,
                "Forbidden",
                &format!(
                    "{resource} is forbidden: User \"fake\" cannot {verb} resource \"{resource}\" in API group \"{group}\" in the namespace \"{ns}\""
                ),
            ),
        );
    }

    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (ns, dep, hpa_name) = {
        let s = lock(&shared.state);
        (s.opts.namespace.clone(), s.opts.deployment.clone(), "webapp-hpa".to_string())
    };
    let (code, resp) = match (method.as_str(), segs.as_slice()) {
        ("GET", ["apis", "apps", "v1", "namespaces", n, "deployments", d]) if *n == ns && *d == dep => {
            (200, deployment_json(&lock(&shared.state)))
        }
        // Access reviews answer from the same `forbid` list the requests are refused by.
        ("POST", ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"]) => {
            let a = &body["spec"]["resourceAttributes"];
            let verb = a["verb"].as_str().unwrap_or_default();
            let resource = match a["subresource"].as_str().filter(|s| !s.is_empty()) {
                Some(sub) => format!("{}/{sub}", a["resource"].as_str().unwrap_or_default()),
                None => a["resource"].as_str().unwrap_or_default().to_string(),
            };
            let allowed = !lock(&shared.state).opts.forbid.iter().any(|(v, r)| v == verb && *r == resource);
            (
                201,
                json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                       "metadata": {}, "spec": body["spec"], "status": {"allowed": allowed}}),
            )
        }
        ("PATCH", ["apis", "apps", "v1", "namespaces", n, "deployments", d, "scale"]) if *n == ns && *d == dep => {
            match body["spec"]["replicas"].as_i64() {
                Some(r) if content_type.starts_with("application/merge-patch+json") && r >= 0 => {
                    {
                        let mut s = lock(&shared.state);
                        s.replicas = r as i32;
                        s.next_rv += 1;
                        if let Some(h) = s.hpa.as_mut() {
                            h["status"]["currentReplicas"] = json!(r);
                        }
                    }
                    reconcile(&shared).await;
                    let s = lock(&shared.state);
                    (
                        200,
                        json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                                 "metadata": {"name": dep, "namespace": ns, "resourceVersion": s.next_rv.to_string()},
                                 "spec": {"replicas": s.replicas},
                                 "status": {"replicas": s.pods.len(), "selector": format!("{SELECTOR_KEY}={dep}")}}),
                    )
                }
                _ => (
                    422,
                    status(422, "Invalid", "Scale.autoscaling \"webapp\" is invalid: spec.replicas: Invalid value"),
                ),
            }
        }
        ("GET", ["apis", "apps", "v1", "namespaces", _, "deployments", d]) => {
            (404, status(404, "NotFound", &format!("deployments.apps \"{d}\" not found")))
        }
        ("GET", ["api", "v1", "namespaces", n, "pods"]) if *n == ns => {
            let sel = query_values(&query, "labelSelector");
            if sel != [format!("{SELECTOR_KEY}={dep}")] {
                (400, status(400, "BadRequest", &format!("unexpected labelSelector {sel:?}")))
            } else {
                let s = lock(&shared.state);
                let items: Vec<Value> = s.pods.iter().map(|p| pod_json(&s, p)).collect();
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": s.next_rv.to_string()}, "items": items}),
                )
            }
        }
        ("GET", ["apis", "metrics.k8s.io", "v1beta1", "namespaces", n, "pods"]) if *n == ns => {
            let s = lock(&shared.state);
            if !s.opts.metrics {
                (404, status(404, "NotFound", "the server could not find the requested resource"))
            } else {
                let now = ts(jiff::Timestamp::now());
                let items: Vec<Value> = s
                    .pods
                    .iter()
                    .map(|p| {
                        json!({"metadata": {"name": p.name, "namespace": ns, "labels": {SELECTOR_KEY: dep}},
                               "timestamp": now, "window": "15.002s",
                               "containers": [{"name": "nginx", "usage": {
                                   "cpu": format!("{}n", (s.cpu_m * 1e6).round() as i64),
                                   "memory": format!("{}Ki", (s.memory_mib * 1024.0).round() as i64)}}]})
                    })
                    .collect();
                (
                    200,
                    json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items}),
                )
            }
        }
        (m, ["apis", "autoscaling", "v2", "namespaces", n, "horizontalpodautoscalers", rest @ ..]) if *n == ns => {
            hpa_request(&shared, m, rest, &body, &hpa_name)
        }
        (m, ["api", "v1", "namespaces", n, "configmaps", rest @ ..]) if *n == ns => {
            object_request(&shared, "configmaps", m, rest, &body)
        }
        (m, ["apis", "coordination.k8s.io", "v1", "namespaces", n, "leases", rest @ ..]) if *n == ns => {
            object_request(&shared, "leases", m, rest, &body)
        }
        ("GET", ["api", "v1", "namespaces", n, "pods", pod, sub @ ("exec" | "portforward")]) if *n == ns => {
            let (Some(upgrade), Some(key)) = (on_upgrade, ws_key) else {
                record(400);
                return reply(400, status(400, "BadRequest", "Upgrade request required"));
            };
            let up = Upgrade { on: upgrade, key, offered: protocols.clone() };
            let resp = if *sub == "exec" {
                exec_request(&shared, pod, &query, up)
            } else {
                portforward_request(&shared, pod, &query, up)
            };
            record(resp.status().as_u16());
            return resp;
        }
        _ => (404, status(404, "NotFound", "the server could not find the requested resource")),
    };
    record(code);
    reply(code, resp)
}

/// GET, POST, PUT (with the resourceVersion check) and DELETE of a plain object.
fn object_request(shared: &Arc<Shared>, resource: &str, method: &str, rest: &[&str], body: &Value) -> (u16, Value) {
    let mut s = lock(&shared.state);
    let not_found = |n: &str| (404, status(404, "NotFound", &format!("{resource} \"{n}\" not found")));
    let key = |n: &str| (resource.to_string(), n.to_string());
    match (method, rest) {
        ("GET", [n]) => s.objects.get(&key(n)).cloned().map_or_else(|| not_found(n), |o| (200, o)),
        ("POST", []) => {
            let Some(n) = body["metadata"]["name"].as_str() else {
                return (422, status(422, "Invalid", "metadata.name: Required value"));
            };
            if s.objects.contains_key(&key(n)) {
                return (409, status(409, "AlreadyExists", &format!("{resource} \"{n}\" already exists")));
            }
            let mut o = body.clone();
            s.next_rv += 1;
            o["metadata"]["uid"] = json!(format!("{resource}-uid-{}", s.next_rv));
            o["metadata"]["resourceVersion"] = json!(s.next_rv.to_string());
            o["metadata"]["creationTimestamp"] = json!(ts(jiff::Timestamp::now()));
            s.objects.insert(key(n), o.clone());
            (201, o)
        }
        ("PUT", [n]) => {
            let Some(cur) = s.objects.get(&key(n)).cloned() else { return not_found(n) };
            if body["metadata"]["resourceVersion"] != cur["metadata"]["resourceVersion"] {
                return (
                    409,
                    status(
                        409,
                        "Conflict",
                        &format!("Operation cannot be fulfilled on {resource} \"{n}\": the object has been modified"),
                    ),
                );
            }
            let mut o = body.clone();
            s.next_rv += 1;
            o["metadata"]["uid"] = cur["metadata"]["uid"].clone();
            o["metadata"]["creationTimestamp"] = cur["metadata"]["creationTimestamp"].clone();
            o["metadata"]["resourceVersion"] = json!(s.next_rv.to_string());
            s.objects.insert(key(n), o.clone());
            (200, o)
        }
        ("DELETE", [n]) => match s.objects.remove(&key(n)) {
            Some(_) => (200, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})),
            None => not_found(n),
        },
        _ => (405, status(405, "MethodNotAllowed", "not supported by the fake")),
    }
}

fn hpa_request(shared: &Arc<Shared>, method: &str, rest: &[&str], body: &Value, name: &str) -> (u16, Value) {
    let mut s = lock(&shared.state);
    let not_found =
        || (404, status(404, "NotFound", &format!("horizontalpodautoscalers.autoscaling \"{name}\" not found")));
    match (method, rest) {
        ("GET", [n]) if *n == name => s.hpa.clone().map_or_else(not_found, |h| (200, h)),
        ("GET", [n]) => {
            (404, status(404, "NotFound", &format!("horizontalpodautoscalers.autoscaling \"{n}\" not found")))
        }
        ("POST", []) => {
            if body["metadata"]["name"] != json!(name) {
                return (422, status(422, "Invalid", "unexpected HPA name"));
            }
            if s.hpa.is_some() {
                return (
                    409,
                    status(
                        409,
                        "AlreadyExists",
                        &format!("horizontalpodautoscalers.autoscaling \"{name}\" already exists"),
                    ),
                );
            }
            if !body["metadata"]["resourceVersion"].is_null() {
                return (
                    500,
                    status(500, "InternalError", "resourceVersion should not be set on objects to be created"),
                );
            }
            let mut h = body.clone();
            s.next_rv += 1;
            h["metadata"]["uid"] = json!(format!("hpa-uid-{}", s.next_rv));
            h["metadata"]["resourceVersion"] = json!(s.next_rv.to_string());
            h["metadata"]["creationTimestamp"] = json!(ts(jiff::Timestamp::now()));
            h["status"] = hpa_status(s.replicas);
            s.hpa = Some(h.clone());
            (201, h)
        }
        ("PUT", [n]) if *n == name => {
            let Some(cur) = s.hpa.clone() else { return not_found() };
            if body["metadata"]["resourceVersion"] != cur["metadata"]["resourceVersion"] {
                return (
                    409,
                    status(
                        409,
                        "Conflict",
                        &format!(
                            "Operation cannot be fulfilled on horizontalpodautoscalers.autoscaling \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                        ),
                    ),
                );
            }
            let mut h = body.clone();
            s.next_rv += 1;
            h["metadata"]["uid"] = cur["metadata"]["uid"].clone();
            h["metadata"]["creationTimestamp"] = cur["metadata"]["creationTimestamp"].clone();
            h["metadata"]["resourceVersion"] = json!(s.next_rv.to_string());
            h["status"] = cur["status"].clone();
            s.hpa = Some(h.clone());
            (200, h)
        }
        ("DELETE", [n]) if *n == name => match s.hpa.take() {
            Some(h) => (
                200,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                       "details": {"name": name, "group": "autoscaling", "kind": "horizontalpodautoscalers", "uid": h["metadata"]["uid"]}}),
            ),
            None => not_found(),
        },
        _ => (405, status(405, "MethodNotAllowed", "not supported by the fake")),
    }
}

fn switching(key: &str, protocol: &str) -> Response {
    Response::builder()
        .status(101)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()))
        .header("sec-websocket-protocol", protocol)
        .body(Body::empty())
        .unwrap_or_default()
}

fn pick_protocol(offered: &str) -> Option<&'static str> {
    let offered: Vec<&str> = offered.split(',').map(str::trim).collect();
    ["v5.channel.k8s.io", "v4.channel.k8s.io"].into_iter().find(|p| offered.contains(p))
}

fn stream_token(shared: &Arc<Shared>) -> CancellationToken {
    let t = shared.cancel.child_token();
    lock(&shared.state).streams.push(t.clone());
    t
}

fn exec_status(exit: Option<i32>, message: Option<&str>) -> Value {
    match (exit, message) {
        (_, Some(m)) => json!({"metadata": {}, "status": "Failure", "reason": "InternalError", "message": m}),
        (Some(0), None) => json!({"metadata": {}, "status": "Success"}),
        (code, None) => {
            let c = code.unwrap_or(137);
            json!({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                   "message": format!("command terminated with non-zero exit code: exit code {c}"),
                   "details": {"causes": [{"reason": "ExitCode", "message": c.to_string()}]}})
        }
    }
}

fn channel_frame(ch: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(ch);
    v.extend_from_slice(data);
    Message::binary(v)
}

/// A WebSocket upgrade request for a pod's subresource.
struct Upgrade {
    on: hyper::upgrade::OnUpgrade,
    key: String,
    /// `Sec-WebSocket-Protocol` offered by the client.
    offered: String,
}

fn exec_request(shared: &Arc<Shared>, pod: &str, query: &str, up: Upgrade) -> Response {
    let command = query_values(query, "command");
    let container = query_values(query, "container").pop().unwrap_or_default();
    let want_stdin = query_values(query, "stdin").first().map(String::as_str) == Some("true");
    let (shm, shm_kb, shell, pod_known) = {
        let s = lock(&shared.state);
        let p = s.pods.iter().find(|p| p.name == pod);
        (p.map(|p| p.shm.clone()), s.opts.shm_mib * 1024, s.opts.shell, p.is_some())
    };
    if !pod_known {
        return reply(404, status(404, "NotFound", &format!("pods \"{pod}\" not found")));
    }
    if container != "nginx" {
        return reply(400, status(400, "BadRequest", &format!("container {container} is not valid for pod {pod}")));
    }
    let Some(protocol) = pick_protocol(&up.offered) else {
        return reply(400, status(400, "BadRequest", "no supported stream protocol"));
    };
    let shm = shm.unwrap_or_default();
    let shared = shared.clone();
    let pod = pod.to_string();
    let cut = stream_token(&shared);
    tokio::spawn(async move {
        let Ok(upgraded) = up.on.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let (mut tx, mut rx) = ws.split();
        if !shell || command.is_empty() {
            let msg = format!(
                "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{}\": executable file not found in $PATH: unknown",
                command.first().map_or("", String::as_str)
            );
            let st = serde_json::to_vec(&exec_status(None, Some(&msg))).unwrap_or_default();
            let _ = tx.send(channel_frame(3, &st)).await;
            let _ = tx.close().await;
            return;
        }
        let shm_s = shm.display().to_string();
        let args: Vec<String> = command.iter().map(|a| a.replace("/dev/shm", &shm_s)).collect();
        let path = format!("{}:{}", shared.bin.display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = tokio::process::Command::new(&args[0]);
        cmd.args(&args[1..])
            .env("PATH", path)
            .env("SHM_DIR", &shm)
            .env("SHM_KB", shm_kb.to_string())
            .stdin(if want_stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let st = serde_json::to_vec(&exec_status(None, Some(&format!("exec: {e}")))).unwrap_or_default();
                let _ = tx.send(channel_frame(3, &st)).await;
                let _ = tx.close().await;
                return;
            }
        };
        if let Some(pid) = child.id() {
            let mut s = lock(&shared.state);
            if let Some(p) = s.pods.iter_mut().find(|p| p.name == pod) {
                p.groups.push(pid);
            }
        }
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let mut ob = vec![0u8; 4096];
        let mut eb = vec![0u8; 4096];
        let mut connected = true;
        loop {
            tokio::select! {
                _ = cut.cancelled(), if connected => {
                    connected = false;
                    stdin = None;
                }
                m = rx.next(), if connected => match m {
                    Some(Ok(Message::Binary(b))) if b.first() == Some(&0) => {
                        if let Some(w) = stdin.as_mut() {
                            let _ = w.write_all(&b[1..]).await;
                        }
                    }
                    // v5: the client closed a channel (255, channel).
                    Some(Ok(Message::Binary(b))) if b.len() == 2 && b[0] == 255 && b[1] == 0 => stdin = None,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        connected = false;
                        stdin = None;
                    }
                    _ => {}
                },
                n = async { match stdout.as_mut() { Some(r) => r.read(&mut ob).await, None => Ok(0) } }, if stdout.is_some() => match n {
                    Ok(n) if n > 0 => if connected { let _ = tx.send(channel_frame(1, &ob[..n])).await; },
                    _ => stdout = None,
                },
                n = async { match stderr.as_mut() { Some(r) => r.read(&mut eb).await, None => Ok(0) } }, if stderr.is_some() => match n {
                    Ok(n) if n > 0 => if connected { let _ = tx.send(channel_frame(2, &eb[..n])).await; },
                    _ => stderr = None,
                },
                else => break,
            }
            if stdout.is_none() && stderr.is_none() {
                break;
            }
        }
        // The command ends on its own (as in a container, a cut stream does not kill it).
        let code = child.wait().await.ok().and_then(|s| s.code());
        if connected {
            let st = serde_json::to_vec(&exec_status(code.or(Some(137)), None)).unwrap_or_default();
            let _ = tx.send(channel_frame(3, &st)).await;
            let _ = tx.close().await;
        }
    });
    switching(&up.key, protocol)
}

fn portforward_request(shared: &Arc<Shared>, pod: &str, query: &str, up: Upgrade) -> Response {
    let ports: Vec<u16> = query_values(query, "ports").iter().filter_map(|p| p.parse().ok()).collect();
    let addr = lock(&shared.state).pods.iter().find(|p| p.name == pod).map(|p| p.web.as_ref().map(|w| w.addr));
    let Some(addr) = addr else {
        return reply(404, status(404, "NotFound", &format!("pods \"{pod}\" not found")));
    };
    let (Some(protocol), [port]) = (pick_protocol(&up.offered), ports.as_slice()) else {
        return reply(400, status(400, "BadRequest", "one port and a stream protocol are required"));
    };
    let port = *port;
    let pod = pod.to_string();
    let cut = stream_token(shared);
    tokio::spawn(async move {
        let Ok(upgraded) = up.on.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let (mut tx, mut rx) = ws.split();
        let p = port.to_le_bytes();
        let _ = tx.send(Message::binary(vec![0, p[0], p[1]])).await;
        let _ = tx.send(Message::binary(vec![1, p[0], p[1]])).await;
        let tcp = match addr {
            Some(a) if port == 80 => tokio::net::TcpStream::connect(a).await.ok(),
            _ => None,
        };
        let Some(tcp) = tcp else {
            let msg = format!(
                "error forwarding port {port} to pod {pod}, uid : failed to connect to localhost:{port}: connection refused"
            );
            let _ = tx.send(channel_frame(1, msg.as_bytes())).await;
            let _ = tx.close().await;
            return;
        };
        let (mut r, mut w) = tcp.into_split();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            tokio::select! {
                _ = cut.cancelled() => break,
                m = rx.next() => {
                    let open = match m {
                        Some(Ok(Message::Binary(b))) if b.first() == Some(&0) => w.write_all(&b[1..]).await.is_ok(),
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => false,
                        _ => true,
                    };
                    if !open {
                        break;
                    }
                }
                n = r.read(&mut buf) => {
                    let open = match n {
                        Ok(n) if n > 0 => tx.send(channel_frame(0, &buf[..n])).await.is_ok(),
                        _ => false,
                    };
                    if !open {
                        break;
                    }
                }
            }
        }
        let _ = tx.close().await;
    });
    switching(&up.key, protocol)
}

/// Wait until `f` is true (polling), at most `secs`.
pub async fn eventually(secs: f64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > end {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
