//! kube-rs errors turned into [`ClusterError`]s a user can act on: which verb on which resource,
//! what to do about it (`deploy/rbac.yaml`, log in again, start the cluster, install
//! metrics-server).

use super::access::{self, Op};
use crate::engine::cluster::ClusterError;

/// Where requests go, for messages.
#[derive(Debug, Clone)]
pub struct Target {
    pub server: String,
    pub context: String,
    pub namespace: String,
}

/// The whole chain of an error's causes on one line (`a: b: c`), without repeats.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// Map an error of `op` on `object` (a name, or a description such as `pods app=webapp`).
pub fn map(e: kube::Error, op: &Op, object: &str, t: &Target) -> ClusterError {
    let ns = &t.namespace;
    match e {
        kube::Error::Api(status) => {
            let msg = status.message.trim().to_string();
            match status.code {
                401 => ClusterError::Unauthorized(format!(
                    "the API server at {} rejected the credentials of context {} (401) when trying to {op}: {msg}; \
                     log in again or refresh the token in your kubeconfig",
                    t.server, t.context
                )),
                403 => ClusterError::Forbidden(format!(
                    "scaletui may not {op} in namespace {ns} (needed to {}); grant it with deploy/rbac.yaml \
                     (kubectl apply -n {ns} -f deploy/rbac.yaml) or ask your cluster admin. API server: {msg}",
                    op.purpose
                )),
                404 if op.group == "metrics.k8s.io" => ClusterError::Unsupported(format!(
                    "the metrics API (metrics.k8s.io) is not available on this cluster ({msg}): install \
                     metrics-server (minikube: minikube addons enable metrics-server; kind/docker-desktop: see the \
                     README) or use --metrics prometheus"
                )),
                404 => ClusterError::NotFound(format!("{} {object:?} in namespace {ns}", kind_of(op))),
                409 => ClusterError::Conflict(format!("{op} {object:?}: {msg}")),
                503 if op.group == "metrics.k8s.io" => ClusterError::Unreachable(format!(
                    "the metrics API (metrics.k8s.io) is not ready (503): is metrics-server running? {msg}"
                )),
                code => ClusterError::Other(format!(
                    "the API server refused to {op} {object:?} in namespace {ns}: {code} {}{msg}",
                    if status.reason.is_empty() { String::new() } else { format!("{}: ", status.reason) }
                )),
            }
        }
        kube::Error::Auth(a) => ClusterError::Unauthorized(format!(
            "cannot authenticate to {} with context {}: {}; check the user in your kubeconfig (an exec plugin or \
             token may have expired)",
            t.server,
            t.context,
            chain(&a)
        )),
        e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => unreachable(&t.server, &chain(&e)),
        e @ kube::Error::SerdeError(_) => {
            ClusterError::Other(format!("unexpected answer from the API server to {op} {object:?}: {}", chain(&e)))
        }
        e @ kube::Error::UpgradeConnection(_) => ClusterError::Other(format!(
            "the API server did not open a stream to {op} {object:?}: {} (a proxy in between may not support \
             WebSockets)",
            chain(&e)
        )),
        e => ClusterError::Other(format!("cannot {op} {object:?}: {}", chain(&e))),
    }
}

/// The cluster cannot be reached.
pub fn unreachable(server: &str, why: &str) -> ClusterError {
    ClusterError::Unreachable(format!(
        "the API server at {server} ({why}); is the cluster running (kind/minikube/docker-desktop) and is the \
         kubeconfig's server address right?"
    ))
}

/// No answer within the request timeout.
pub fn timed_out(op: &Op, server: &str, secs: f64) -> ClusterError {
    ClusterError::Unreachable(format!("no answer from the API server at {server} within {secs:.0} s to {op}"))
}

fn kind_of(op: &Op) -> &'static str {
    match op.resource.split('/').next() {
        Some("deployments") => "deployment",
        Some("horizontalpodautoscalers") => "HPA",
        Some("pods") => "pod",
        _ => "object",
    }
}

/// A 404 is "nothing there" for reads that allow absence.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// An operation that needs the exec permission failed: also used by the exec module.
pub fn exec_op() -> &'static Op {
    &access::EXEC[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cluster::kube::access::{GET_DEPLOYMENT, LIST_POD_METRICS, PATCH_SCALE};

    fn t() -> Target {
        Target { server: "https://127.0.0.1:6443".into(), context: "kind-kind".into(), namespace: "default".into() }
    }

    fn api(code: u16, reason: &str, msg: &str) -> kube::Error {
        kube::Error::Api(kube::core::Status::failure(msg, reason).with_code(code).boxed())
    }

    #[test]
    fn forbidden_names_verb_resource_and_the_fix() {
        let e = map(api(403, "Forbidden", "deployments.apps \"webapp\" is forbidden"), &PATCH_SCALE, "webapp", &t());
        let s = e.to_string();
        assert!(matches!(e, ClusterError::Forbidden(_)));
        for want in ["patch deployments.apps/scale", "namespace default", "deploy/rbac.yaml", "scale the deployment"] {
            assert!(s.contains(want), "{want} in {s}");
        }
    }

    #[test]
    fn other_codes() {
        let s = map(api(401, "Unauthorized", "Unauthorized"), &GET_DEPLOYMENT, "webapp", &t()).to_string();
        assert!(s.contains("kind-kind") && s.contains("log in again"), "{s}");
        let e = map(api(404, "NotFound", "deployments.apps \"webapp\" not found"), &GET_DEPLOYMENT, "webapp", &t());
        assert_eq!(e.to_string(), "deployment \"webapp\" in namespace default not found");
        let s =
            map(api(404, "NotFound", "the server could not find the requested resource"), &LIST_POD_METRICS, "x", &t())
                .to_string();
        assert!(s.contains("install metrics-server"), "{s}");
        let s = map(api(500, "InternalError", "etcd timeout"), &GET_DEPLOYMENT, "webapp", &t()).to_string();
        assert!(s.contains("500") && s.contains("etcd timeout"), "{s}");
        assert!(matches!(map(api(409, "Conflict", "x"), &GET_DEPLOYMENT, "w", &t()), ClusterError::Conflict(_)));
        assert!(is_not_found(&api(404, "", "")) && is_conflict(&api(409, "", "")) && !is_conflict(&api(500, "", "")));
    }
}
