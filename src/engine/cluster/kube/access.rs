//! Every kind of request the kube backend makes, as RBAC sees it, and the classification of an
//! HTTP request into RBAC terms. `deploy/rbac.yaml` must grant exactly [`ALL_OPS`]; the tests
//! record the requests the backend really sends (mocked API, fake API server) and compare.

use std::fmt;

/// One operation of the backend: an RBAC verb on a resource (with subresource) of an API group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Op {
    pub verb: &'static str,
    /// API group (`""` for core).
    pub group: &'static str,
    /// `deployments`, `deployments/scale`, `pods/exec`, …
    pub resource: &'static str,
    /// What it is for, in the user's words (error messages).
    pub purpose: &'static str,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            write!(f, "{} {}", self.verb, self.resource)
        } else {
            let (res, sub) = self.resource.split_once('/').map_or((self.resource, None), |(r, s)| (r, Some(s)));
            write!(f, "{} {res}.{}", self.verb, self.group)?;
            if let Some(s) = sub {
                write!(f, "/{s}")?;
            }
            Ok(())
        }
    }
}

const fn op(verb: &'static str, group: &'static str, resource: &'static str, purpose: &'static str) -> Op {
    Op { verb, group, resource, purpose }
}

const HPAS: &str = "horizontalpodautoscalers";

pub const GET_DEPLOYMENT: Op = op("get", "apps", "deployments", "read the deployment");
pub const PATCH_SCALE: Op = op("patch", "apps", "deployments/scale", "scale the deployment (ai_scaler)");
pub const LIST_PODS: Op = op("list", "", "pods", "list the deployment's pods");
pub const GET_HPA: Op = op("get", "autoscaling", HPAS, "read the HPA");
pub const CREATE_HPA: Op = op("create", "autoscaling", HPAS, "create the HPA (hpa_only, restore on exit)");
pub const UPDATE_HPA: Op = op("update", "autoscaling", HPAS, "update the HPA (hpa_only, restore on exit)");
pub const DELETE_HPA: Op = op("delete", "autoscaling", HPAS, "delete the HPA (ai_scaler)");
pub const LIST_POD_METRICS: Op = op("list", "metrics.k8s.io", "pods", "read pod metrics (--metrics metrics-server)");
pub const GET_SAVED: Op = op("get", "", "configmaps", "read the saved copy of a removed HPA");
pub const CREATE_SAVED: Op = op("create", "", "configmaps", "save the HPA before ai_scaler removes it");
pub const UPDATE_SAVED: Op = op("update", "", "configmaps", "save the HPA before ai_scaler removes it");
pub const DELETE_SAVED: Op = op("delete", "", "configmaps", "remove the saved copy once the HPA is back");
const LEASES: &str = "leases";
const COORDINATION: &str = "coordination.k8s.io";
pub const GET_LEASE: Op = op("get", COORDINATION, LEASES, "see who holds ai_scaler's lease");
pub const CREATE_LEASE: Op = op("create", COORDINATION, LEASES, "hold ai_scaler's lease");
pub const UPDATE_LEASE: Op = op("update", COORDINATION, LEASES, "renew ai_scaler's lease");
pub const DELETE_LEASE: Op = op("delete", COORDINATION, LEASES, "give ai_scaler's lease up");
/// WebSocket exec: API servers from 1.30 check `create`, older ones `get`; both are granted.
pub const EXEC: [Op; 2] = [
    op("create", "", "pods/exec", "run the stressors in the pods"),
    op("get", "", "pods/exec", "run the stressors in the pods"),
];
pub const PORTFORWARD: [Op; 2] = [
    op("create", "", "pods/portforward", "forward the load generator to a pod"),
    op("get", "", "pods/portforward", "forward the load generator to a pod"),
];

/// Everything the backend can ask of the API server.
pub const ALL_OPS: [Op; 20] = [
    GET_DEPLOYMENT,
    PATCH_SCALE,
    LIST_PODS,
    GET_HPA,
    CREATE_HPA,
    UPDATE_HPA,
    DELETE_HPA,
    LIST_POD_METRICS,
    EXEC[0],
    EXEC[1],
    PORTFORWARD[0],
    PORTFORWARD[1],
    GET_SAVED,
    CREATE_SAVED,
    UPDATE_SAVED,
    DELETE_SAVED,
    GET_LEASE,
    CREATE_LEASE,
    UPDATE_LEASE,
    DELETE_LEASE,
];

/// What a run may ask of the API server, to check up front: the reads always, the writes unless
/// read-only, pod metrics with the metrics-server source. Exec and port-forward as API servers
/// from 1.30 check them (`create`).
pub fn needed(read_only: bool, metrics_server: bool) -> Vec<Op> {
    let mut ops = vec![GET_DEPLOYMENT, LIST_PODS, GET_HPA, GET_SAVED, GET_LEASE];
    if !read_only {
        ops.extend([PATCH_SCALE, CREATE_HPA, UPDATE_HPA, DELETE_HPA, EXEC[0], PORTFORWARD[0]]);
        ops.extend([CREATE_SAVED, UPDATE_SAVED, DELETE_SAVED, CREATE_LEASE, UPDATE_LEASE, DELETE_LEASE]);
    }
    if metrics_server {
        ops.push(LIST_POD_METRICS);
    }
    ops
}

/// An HTTP request in RBAC terms: `(verb, group, resource[/subresource])`.
pub type Access = (String, String, String);

/// Classify a request to a namespaced resource path. WebSocket upgrades (exec, port-forward) count
/// as both `get` and `create`, as API servers before and after 1.30 check them. `None` for paths
/// that are not namespaced resources.
pub fn classify(method: &str, path: &str, query: &str, websocket: bool) -> Option<Vec<Access>> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", _v, rest @ ..] => ("", rest),
        ["apis", g, _v, rest @ ..] => (*g, rest),
        _ => return None,
    };
    let (resource, name, sub) = match rest {
        ["namespaces", _ns, r] => (*r, None, None),
        ["namespaces", _ns, r, n] => (*r, Some(*n), None),
        ["namespaces", _ns, r, n, s] => (*r, Some(*n), Some(*s)),
        _ => return None,
    };
    let resource = match sub {
        Some(s) => format!("{resource}/{s}"),
        None => resource.to_string(),
    };
    let watch = query.split('&').any(|kv| kv == "watch=true" || kv == "watch=1");
    let verbs: Vec<&str> = match (method, name.is_some()) {
        ("GET", _) if websocket => vec!["get", "create"],
        ("GET", _) if watch => vec!["watch"],
        ("GET", true) => vec!["get"],
        ("GET", false) => vec!["list"],
        ("POST", _) => vec!["create"],
        ("PUT", _) => vec!["update"],
        ("PATCH", _) => vec!["patch"],
        ("DELETE", true) => vec!["delete"],
        ("DELETE", false) => vec!["deletecollection"],
        _ => return None,
    };
    Some(verbs.into_iter().map(|v| (v.to_string(), group.to_string(), resource.clone())).collect())
}

/// [`ALL_OPS`] as accesses.
pub fn declared() -> std::collections::BTreeSet<Access> {
    ALL_OPS.iter().map(|o| (o.verb.to_string(), o.group.to_string(), o.resource.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &str, g: &str, r: &str) -> Access {
        (v.into(), g.into(), r.into())
    }

    #[test]
    fn classifies_paths() {
        assert_eq!(
            classify("GET", "/apis/apps/v1/namespaces/default/deployments/webapp", "", false),
            Some(vec![a("get", "apps", "deployments")])
        );
        assert_eq!(
            classify(
                "PATCH",
                "/apis/apps/v1/namespaces/default/deployments/webapp/scale",
                "fieldManager=scaletui",
                false
            ),
            Some(vec![a("patch", "apps", "deployments/scale")])
        );
        assert_eq!(
            classify("GET", "/api/v1/namespaces/default/pods", "labelSelector=app%3Dwebapp", false),
            Some(vec![a("list", "", "pods")])
        );
        assert_eq!(
            classify("GET", "/api/v1/namespaces/default/pods/p1/exec", "command=sh", true),
            Some(vec![a("get", "", "pods/exec"), a("create", "", "pods/exec")])
        );
        assert_eq!(
            classify("DELETE", "/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers/h", "", false),
            Some(vec![a("delete", "autoscaling", "horizontalpodautoscalers")])
        );
        assert_eq!(classify("GET", "/version", "", false), None);
        assert_eq!(
            classify("GET", "/api/v1/namespaces/default/pods", "watch=true", false),
            Some(vec![a("watch", "", "pods")])
        );
    }

    #[test]
    fn ops_print_like_kubectl_auth_can_i() {
        assert_eq!(PATCH_SCALE.to_string(), "patch deployments.apps/scale");
        assert_eq!(LIST_PODS.to_string(), "list pods");
        assert_eq!(EXEC[0].to_string(), "create pods/exec");
        assert_eq!(declared().len(), ALL_OPS.len(), "no duplicates");
    }
}
