//! The backend against a mocked API server (tower-test, the "ApiServerVerifier" pattern): each
//! operation's method, path, query and body are asserted, and realistic answers and error
//! `Status` objects (401, 403, 404, 409, 500, 503, no answer) are fed back.

use std::collections::BTreeMap;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{self, Handle, SendResponse};

use super::*;
use crate::config::Config;
use crate::engine::experiment::hpa_spec;
use crate::engine::types::PodPhase;

type H = Handle<Request<Body>, Response<Body>>;

const DEP: &str = "/apis/apps/v1/namespaces/default/deployments/webapp";
const HPA: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/webapp-hpa";
const HPAS: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";
const PODS: &str = "/api/v1/namespaces/default/pods";
const METRICS: &str = "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods";
const CMS: &str = "/api/v1/namespaces/default/configmaps";
const SAVED: &str = "/api/v1/namespaces/default/configmaps/scaletui-saved-hpa-webapp";

/// The defaults (namespace default, deployment webapp, HPA webapp-hpa, container nginx) with
/// max 5 replicas.
fn settings() -> KubeSettings {
    KubeSettings { max_replicas: 5, ..KubeSettings::default() }
}

fn target() -> Target {
    Target { server: "https://127.0.0.1:6443".into(), context: "kind-kind".into(), namespace: "default".into() }
}

fn deployment(replicas: i32, ready: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "webapp", "namespace": "default", "resourceVersion": "1001", "uid": "d-1"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "webapp"}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": "webapp"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27-alpine"}]}}
        },
        "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": 4}
    })
}

fn pod(name: &str, ready: bool) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"app.kubernetes.io/name": "webapp"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27-alpine", "ports": [{"containerPort": 80}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}}]},
        "status": {"phase": "Running", "startTime": "2026-03-01T10:00:00Z",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "lastTransitionTime": "2026-03-01T10:00:12Z"}]}
    })
}

/// The HPA someone applied before scaletui ran (not what scaletui would write).
fn their_hpa() -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "webapp-hpa", "namespace": "default", "uid": "h-1", "resourceVersion": "2001",
            "creationTimestamp": "2026-03-01T09:00:00Z",
            "labels": {"team": "web"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"autoscaling/v2\"}"},
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update"}]
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "webapp"},
            "minReplicas": 2, "maxReplicas": 8,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
        },
        "status": {"currentReplicas": 3, "desiredReplicas": 4, "conditions": [
            {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "lastTransitionTime": "2026-03-01T09:00:30Z"},
            {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound", "lastTransitionTime": "2026-03-01T09:00:30Z"}
        ]}
    })
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// One request as the verifier sees it.
struct Seen {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    content_type: Option<String>,
    body: Value,
    send: SendResponse<Response<Body>>,
}

impl Seen {
    fn respond(self, code: u16, body: Value) {
        let resp = Response::builder()
            .status(StatusCode::from_u16(code).expect("status code"))
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).expect("json")))
            .expect("response");
        self.send.send_response(resp);
    }
}

/// The next request: asserts method and path, and that RBAC covers it.
async fn next(h: &mut H, method: &str, path: &str) -> Seen {
    let (req, send) = h.next_request().await.expect("a request");
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let query: BTreeMap<String, String> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), urldecode(v))))
        .collect();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query,
        content_type: parts.headers.get("content-type").and_then(|v| v.to_str().ok()).map(String::from),
        body: if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") },
        send,
    };
    assert_eq!((seen.method.as_str(), seen.path.as_str()), (method, path), "request");
    let q = parts.uri.query().unwrap_or("");
    for a in access::classify(method, path, q, false).expect("a resource path") {
        assert!(access::declared().contains(&a), "{a:?} is not a declared operation (deploy/rbac.yaml)");
    }
    seen
}

fn urldecode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A backend whose start (deployment read, HPA snapshot) has been answered.
async fn started(s: KubeSettings, hpa: Option<Value>) -> (KubeCluster, H) {
    let (svc, mut h) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let server = async move {
        next(&mut h, "GET", DEP).await.respond(200, deployment(3, 3));
        let s = next(&mut h, "GET", HPA).await;
        match hpa {
            Some(v) => s.respond(200, v),
            None => {
                s.respond(
                    404,
                    status(404, "NotFound", "horizontalpodautoscalers.autoscaling \"webapp-hpa\" not found"),
                );
                // No HPA: is there a copy an earlier run saved before removing it?
                next(&mut h, "GET", SAVED).await.respond(404, status(404, "NotFound", "configmaps not found"));
            }
        }
        h
    };
    let (c, h) = tokio::join!(KubeCluster::with_client(client, s, target()), server);
    (c.expect("starts"), h)
}

#[tokio::test]
async fn reads_deployment_pods_and_hpa() {
    let (c, mut h) = started(settings(), Some(their_hpa())).await;
    assert_eq!(c.original_hpa().and_then(|o| o.metadata.uid.clone()).as_deref(), Some("h-1"));
    let server = async {
        next(&mut h, "GET", DEP).await.respond(200, deployment(4, 3));
        let s = next(&mut h, "GET", PODS).await;
        assert_eq!(s.query.get("labelSelector").map(String::as_str), Some("app.kubernetes.io/name=webapp"));
        s.respond(
            200,
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "5"},
                              "items": [pod("webapp-b", false), pod("webapp-a", true)]}),
        );
        next(&mut h, "GET", HPA).await.respond(200, their_hpa());
    };
    let ((d, p, hpa), ()) = tokio::join!(async { (c.deployment().await, c.pods().await, c.hpa().await) }, server);
    let d = d.expect("deployment");
    assert_eq!((d.spec_replicas, d.ready_replicas, d.converged()), (4, 3, false));
    let p = p.expect("pods");
    assert_eq!(p.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["webapp-a", "webapp-b"], "sorted");
    assert!(p[0].is_ready() && !p[1].is_ready());
    assert_eq!(p[1].phase, PodPhase::Running);
    assert_eq!(p[0].cpu_request_m(), Some(100.0));
    assert_eq!(p[0].ready_transition_at, Some(1_772_359_212.0));
    let hpa = hpa.expect("hpa").expect("present");
    assert_eq!((hpa.min_replicas, hpa.max_replicas, hpa.desired_replicas), (2, 8, Some(4)));
    assert_eq!(hpa.conditions.len(), 2);
}

#[tokio::test]
async fn scale_patches_the_subresource_clamped_with_field_manager() {
    let (c, mut h) = started(settings(), None).await;
    let server = async {
        let s = next(&mut h, "PATCH", &format!("{DEP}/scale")).await;
        assert_eq!(s.query.get("fieldManager").map(String::as_str), Some("scaletui"));
        assert_eq!(s.content_type.as_deref(), Some("application/merge-patch+json"));
        assert_eq!(s.body, json!({"spec": {"replicas": 5}}), "7 clamped to max 5");
        s.respond(200, json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                              "metadata": {"name": "webapp", "namespace": "default"},
                              "spec": {"replicas": 5}, "status": {"replicas": 3, "selector": "app.kubernetes.io/name=webapp"}}));
        let s = next(&mut h, "PATCH", &format!("{DEP}/scale")).await;
        assert_eq!(s.body, json!({"spec": {"replicas": 1}}), "0 clamped to min 1");
        s.respond(200, json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "webapp"}, "spec": {"replicas": 1}}));
    };
    let (r, ()) = tokio::join!(async { (c.scale(7).await, c.scale(0).await) }, server);
    r.0.expect("scaled");
    r.1.expect("scaled");
}

fn read_only() -> KubeSettings {
    let mut s = settings();
    s.cluster.read_only = true;
    s
}

#[tokio::test]
async fn read_only_refuses_every_write_before_sending_anything() {
    let (c, mut h) = started(read_only(), Some(their_hpa())).await;
    let e = c.scale(4).await.expect_err("refused");
    assert!(matches!(&e, ClusterError::ReadOnly(w) if w.contains("scale deployment webapp to 4")), "{e}");
    assert!(matches!(c.stress_cpu("webapp-a", 2, 10.0).await, Err(ClusterError::ReadOnly(_))));
    assert!(matches!(c.stress_memory("webapp-a", 10).await, Err(ClusterError::ReadOnly(_))));
    assert!(matches!(c.shm_free_mib("webapp-a").await, Err(ClusterError::ReadOnly(_))));
    // HPA writes look first (an HPA that already is as wanted needs no write).
    let server = async {
        next(&mut h, "GET", HPA).await.respond(200, their_hpa());
        next(&mut h, "GET", HPA).await.respond(200, their_hpa());
    };
    let (r, ()) =
        tokio::join!(async { (c.ensure_hpa(&hpa_spec(&Config::default())).await, c.delete_hpa().await) }, server);
    assert!(matches!(r.0, Err(ClusterError::ReadOnly(_))), "{:?}", r.0);
    assert!(matches!(r.1, Err(ClusterError::ReadOnly(_))), "{:?}", r.1);
    assert_eq!(c.restore().await.expect("restore"), Vec::<String>::new(), "nothing to undo");
    // Nothing else was sent.
    assert!(tokio::time::timeout(Duration::from_millis(50), h.next_request()).await.is_err(), "no further request");
}

#[tokio::test]
async fn ensure_hpa_creates_replaces_or_leaves_alone() {
    let want = hpa_spec(&Config::default());
    let (c, mut h) = started(settings(), None).await;
    let ours = serde_json::to_value(convert::build_hpa("webapp-hpa", "default", "webapp", &want).expect("build"))
        .expect("json");
    let server = async {
        // Missing: created.
        next(&mut h, "GET", HPA).await.respond(404, status(404, "NotFound", "not found"));
        next(&mut h, "GET", HPA).await.respond(404, status(404, "NotFound", "not found"));
        let s = next(&mut h, "POST", HPAS).await;
        assert_eq!(s.query.get("fieldManager").map(String::as_str), Some("scaletui"));
        assert_eq!(s.body["spec"], ours["spec"]);
        assert_eq!(s.body["metadata"]["labels"]["app.kubernetes.io/managed-by"], "scaletui");
        let mut created = s.body.clone();
        created["metadata"]["resourceVersion"] = json!("3001");
        s.respond(201, created.clone());
        // As wanted (with the server's defaults): nothing written.
        next(&mut h, "GET", HPA).await.respond(200, created);
        // Someone else's: replaced, keeping its metadata, with its resourceVersion; a 409 is retried.
        next(&mut h, "GET", HPA).await.respond(200, their_hpa());
        next(&mut h, "GET", HPA).await.respond(200, their_hpa());
        let s = next(&mut h, "PUT", HPA).await;
        assert_eq!(s.body["metadata"]["resourceVersion"], "2001");
        s.respond(409, status(409, "Conflict", "Operation cannot be fulfilled on horizontalpodautoscalers.autoscaling \"webapp-hpa\": the object has been modified; please apply your changes to the latest version and try again"));
        let mut newer = their_hpa();
        newer["metadata"]["resourceVersion"] = json!("2002");
        next(&mut h, "GET", HPA).await.respond(200, newer);
        let s = next(&mut h, "PUT", HPA).await;
        assert_eq!(s.body["metadata"]["resourceVersion"], "2002");
        assert_eq!(s.body["metadata"]["labels"], json!({"team": "web"}), "their metadata kept");
        assert_eq!(s.body["spec"], ours["spec"]);
        let body = s.body.clone();
        s.respond(200, body);
    };
    let (r, ()) = tokio::join!(
        async { (c.ensure_hpa(&want).await, c.ensure_hpa(&want).await, c.ensure_hpa(&want).await) },
        server
    );
    assert_eq!(r.0.expect("created"), HpaChange::Created);
    assert_eq!(r.1.expect("unchanged"), HpaChange::Unchanged);
    assert_eq!(r.2.expect("replaced"), HpaChange::Replaced);
}

#[tokio::test]
async fn conflicts_that_do_not_stop_are_reported() {
    let (c, mut h) = started(settings(), Some(their_hpa())).await;
    let server = async {
        next(&mut h, "GET", HPA).await.respond(200, their_hpa());
        for _ in 0..3 {
            next(&mut h, "GET", HPA).await.respond(200, their_hpa());
            next(&mut h, "PUT", HPA).await.respond(409, status(409, "Conflict", "the object has been modified"));
        }
    };
    let want = hpa_spec(&Config::default());
    let (r, ()) = tokio::join!(c.ensure_hpa(&want), server);
    let e = r.expect_err("gives up");
    assert!(matches!(&e, ClusterError::Conflict(m) if m.contains("3 attempts")), "{e}");
}

#[tokio::test]
async fn delete_then_restore_puts_the_original_object_back() {
    let (c, mut h) = started(settings(), Some(their_hpa())).await;
    let server = async {
        // Saved first: the object as it is, in a ConfigMap owned by the deployment.
        next(&mut h, "GET", HPA).await.respond(200, their_hpa());
        next(&mut h, "GET", SAVED).await.respond(404, status(404, "NotFound", "not found"));
        let s = next(&mut h, "POST", CMS).await;
        assert_eq!(s.body["metadata"]["name"], "scaletui-saved-hpa-webapp");
        assert_eq!(s.body["metadata"]["ownerReferences"][0]["kind"], "Deployment");
        let saved: Value =
            serde_json::from_str(s.body["data"]["saved-hpa.json"].as_str().expect("saved copy")).expect("json");
        assert_eq!(saved["hpa"]["spec"], their_hpa()["spec"]);
        assert_eq!(saved["hpa"]["metadata"]["labels"], their_hpa()["metadata"]["labels"]);
        assert!(saved["hpa"]["metadata"].get("resourceVersion").is_none());
        let body = s.body.clone();
        s.respond(201, body);
        let s = next(&mut h, "DELETE", HPA).await;
        s.respond(200, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "details": {"name": "webapp-hpa", "group": "autoscaling", "kind": "horizontalpodautoscalers", "uid": "h-1"}}));
        next(&mut h, "GET", HPA).await.respond(404, status(404, "NotFound", "not found"));
        // restore: it is gone, so the original is created again.
        next(&mut h, "GET", HPA).await.respond(404, status(404, "NotFound", "not found"));
        let s = next(&mut h, "POST", HPAS).await;
        let orig = their_hpa();
        assert_eq!(s.body["spec"], orig["spec"], "the original spec, not a regenerated one");
        assert_eq!(s.body["metadata"]["labels"], orig["metadata"]["labels"]);
        assert_eq!(s.body["metadata"]["annotations"], orig["metadata"]["annotations"]);
        for gone in ["resourceVersion", "uid", "creationTimestamp", "managedFields"] {
            assert!(s.body["metadata"].get(gone).is_none(), "{gone} dropped: {}", s.body);
        }
        assert!(s.body.get("status").is_none());
        assert_eq!(
            (s.body["apiVersion"].as_str(), s.body["kind"].as_str()),
            (Some("autoscaling/v2"), Some("HorizontalPodAutoscaler"))
        );
        let body = s.body.clone();
        s.respond(201, body);
        // Back: the saved copy goes.
        next(&mut h, "DELETE", SAVED)
            .await
            .respond(200, json!({"kind": "Status", "status": "Success", "metadata": {}}));
    };
    let (r, ()) = tokio::join!(async { (c.delete_hpa().await, c.delete_hpa().await, c.restore().await) }, server);
    assert!(r.0.expect("deleted"));
    assert!(!r.1.expect("already gone"));
    assert_eq!(r.2.expect("restored"), vec!["re-created the HPA webapp-hpa as it was at start".to_string()]);
}

#[tokio::test]
async fn restore_replaces_a_changed_hpa_and_removes_one_it_created() {
    // The original was changed by ensure_hpa: restore replaces it with the original spec.
    let (c, mut h) = started(settings(), Some(their_hpa())).await;
    let want = hpa_spec(&Config::default());
    let server = async {
        next(&mut h, "GET", HPA).await.respond(200, their_hpa());
        next(&mut h, "GET", HPA).await.respond(200, their_hpa());
        let s = next(&mut h, "PUT", HPA).await;
        let mut ours = s.body.clone();
        ours["metadata"]["resourceVersion"] = json!("2002");
        s.respond(200, ours.clone());
        next(&mut h, "GET", HPA).await.respond(200, ours);
        let s = next(&mut h, "PUT", HPA).await;
        assert_eq!(s.body["spec"], their_hpa()["spec"]);
        assert_eq!(s.body["metadata"]["resourceVersion"], "2002");
        let body = s.body.clone();
        s.respond(200, body);
        next(&mut h, "DELETE", SAVED).await.respond(404, status(404, "NotFound", "not found"));
    };
    let (r, ()) = tokio::join!(async { (c.ensure_hpa(&want).await, c.restore().await) }, server);
    assert_eq!(r.0.expect("replaced"), HpaChange::Replaced);
    assert_eq!(r.1.expect("restored"), vec!["put the HPA webapp-hpa back as it was at start".to_string()]);

    // No HPA at start: the one scaletui created is deleted, and replicas go back.
    let (c, mut h) = started(settings(), None).await;
    let server = async {
        next(&mut h, "GET", HPA).await.respond(404, status(404, "NotFound", "not found"));
        next(&mut h, "GET", HPA).await.respond(404, status(404, "NotFound", "not found"));
        let s = next(&mut h, "POST", HPAS).await;
        let created = s.body.clone();
        s.respond(201, created.clone());
        next(&mut h, "PATCH", &format!("{DEP}/scale"))
            .await
            .respond(200, json!({"kind": "Scale", "spec": {"replicas": 5}}));
        next(&mut h, "GET", HPA).await.respond(200, created);
        next(&mut h, "DELETE", HPA).await.respond(200, json!({"kind": "Status", "status": "Success", "metadata": {}}));
        let s = next(&mut h, "PATCH", &format!("{DEP}/scale")).await;
        assert_eq!(s.body, json!({"spec": {"replicas": 3}}), "back to the 3 replicas of the start");
        s.respond(200, json!({"kind": "Scale", "spec": {"replicas": 3}}));
    };
    let (r, ()) = tokio::join!(async { (c.ensure_hpa(&want).await, c.scale(5).await, c.restore().await) }, server);
    assert_eq!(r.0.expect("created"), HpaChange::Created);
    r.1.expect("scaled");
    assert_eq!(
        r.2.expect("restored"),
        vec![
            "deleted the HPA webapp-hpa that scaletui created".to_string(),
            "scaled webapp back to 3 replicas as at start".to_string()
        ]
    );
}

#[tokio::test]
async fn pod_metrics_come_from_metrics_k8s_io() {
    let (c, mut h) = started(settings(), None).await;
    let server = async {
        let s = next(&mut h, "GET", METRICS).await;
        assert_eq!(s.query.get("labelSelector").map(String::as_str), Some("app.kubernetes.io/name=webapp"));
        s.respond(200, json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
            "items": [
                {"metadata": {"name": "webapp-a", "namespace": "default"}, "timestamp": "2026-03-01T10:05:00Z", "window": "15.002s",
                 "containers": [{"name": "nginx", "usage": {"cpu": "61234567n", "memory": "40960Ki"}}]},
                {"metadata": {"name": "webapp-b", "namespace": "default"}, "timestamp": "2026-03-01T10:05:00Z", "window": "15s",
                 "containers": [{"name": "nginx", "usage": {"cpu": "88m", "memory": "42Mi"}}]}
            ]}));
        next(&mut h, "GET", METRICS)
            .await
            .respond(404, status(404, "NotFound", "the server could not find the requested resource"));
        next(&mut h, "GET", METRICS)
            .await
            .respond(503, status(503, "ServiceUnavailable", "the server is currently unable to handle the request"));
    };
    let (r, ()) = tokio::join!(async { (c.pod_metrics().await, c.pod_metrics().await, c.pod_metrics().await) }, server);
    let m = r.0.expect("metrics");
    assert_eq!(m.len(), 2);
    assert!((m[0].cpu_m.expect("cpu") - 61.234567).abs() < 1e-9);
    assert_eq!(m[0].memory_mib, Some(40.0));
    assert_eq!((m[1].cpu_m, m[1].window_s), (Some(88.0), 15.0));
    let e = r.1.expect_err("no metrics-server").to_string();
    assert!(e.contains("install metrics-server"), "{e}");
    let e = r.2.expect_err("not ready").to_string();
    assert!(e.contains("metrics-server running"), "{e}");
}

#[tokio::test]
async fn errors_say_what_to_do() {
    let (c, mut h) = started(settings(), None).await;
    let server = async {
        next(&mut h, "PATCH", &format!("{DEP}/scale")).await.respond(
            403,
            status(403, "Forbidden", "deployments.apps \"webapp\" is forbidden: User \"system:serviceaccount:default:scaletui\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"default\""),
        );
        next(&mut h, "GET", DEP).await.respond(401, status(401, "Unauthorized", "Unauthorized"));
        next(&mut h, "GET", DEP).await.respond(404, status(404, "NotFound", "deployments.apps \"webapp\" not found"));
        next(&mut h, "GET", HPA)
            .await
            .respond(500, status(500, "InternalError", "Internal error occurred: etcdserver: request timed out"));
        // Not JSON at all (a proxy in between).
        let s = next(&mut h, "GET", HPA).await;
        s.send.send_response(
            Response::builder().status(502).body(Body::from(b"<html>Bad Gateway</html>".to_vec())).expect("resp"),
        );
    };
    let (r, ()) = tokio::join!(
        async { (c.scale(2).await, c.deployment().await, c.deployment().await, c.hpa().await, c.delete_hpa().await) },
        server
    );
    let e = r.0.expect_err("403");
    assert!(matches!(e, ClusterError::Forbidden(_)));
    let s = e.to_string();
    assert!(s.contains("patch deployments.apps/scale") && s.contains("deploy/rbac.yaml"), "{s}");
    let s = r.1.expect_err("401").to_string();
    assert!(s.contains("401") && s.contains("kind-kind") && s.contains("log in again"), "{s}");
    assert_eq!(r.2.expect_err("404").to_string(), "deployment \"webapp\" in namespace default not found");
    let s = r.3.expect_err("500").to_string();
    assert!(s.contains("500") && s.contains("etcdserver: request timed out"), "{s}");
    let s = r.4.expect_err("502").to_string();
    assert!(s.contains("502") && s.contains("Bad Gateway"), "{s}");
}

#[tokio::test(start_paused = true)]
async fn an_api_server_that_never_answers_times_out() {
    let (c, mut h) = started(settings(), None).await;
    let server = async {
        // Take the request and never answer it.
        let (_req, _send) = h.next_request().await.expect("request");
        tokio::time::sleep(Duration::from_secs(60)).await;
    };
    let r = tokio::select! {
        r = c.deployment() => r,
        () = server => panic!("the call should time out first"),
    };
    let s = r.expect_err("timeout").to_string();
    assert!(
        s.contains("no answer from the API server") && s.contains("within 10 s") && s.contains("get deployments.apps"),
        "{s}"
    );
}

#[tokio::test]
async fn start_fails_clearly_without_the_deployment_or_with_an_empty_selector() {
    let (svc, mut h) = mock::pair::<Request<Body>, Response<Body>>();
    let server = async move {
        next(&mut h, "GET", DEP).await.respond(404, status(404, "NotFound", "deployments.apps \"webapp\" not found"));
    };
    let (r, ()) = tokio::join!(KubeCluster::with_client(Client::new(svc, "default"), settings(), target()), server);
    let s = r.err().expect("fails").to_string();
    assert!(s.contains("deploy/webapp.yaml") && s.contains("--deployment"), "{s}");

    let (svc, mut h) = mock::pair::<Request<Body>, Response<Body>>();
    let server = async move {
        let mut d = deployment(3, 3);
        d["spec"]["selector"] = json!({});
        next(&mut h, "GET", DEP).await.respond(200, d);
    };
    let (r, ()) = tokio::join!(KubeCluster::with_client(Client::new(svc, "default"), settings(), target()), server);
    let s = r.err().expect("fails").to_string();
    assert!(s.contains("empty selector"), "{s}");
}

#[test]
fn urldecode_handles_selectors() {
    assert_eq!(urldecode("app.kubernetes.io%2Fname%3Dwebapp"), "app.kubernetes.io/name=webapp");
}

#[tokio::test]
async fn the_load_generator_is_told_when_no_pod_is_ready() {
    let (c, mut h) = started(settings(), None).await;
    let server = async {
        next(&mut h, "GET", PODS).await.respond(
            200,
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": {},
            "items": [pod("webapp-a", false), pod("webapp-b", false)]}),
        );
    };
    let (r, ()) = tokio::join!(c.load_target(), server);
    let s = r.expect_err("no ready pod").to_string();
    assert!(s.contains("no pod of deployment webapp is ready"), "{s}");
}
