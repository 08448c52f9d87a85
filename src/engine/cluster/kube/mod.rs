//! A real cluster through kube-rs: the [`Cluster`] trait on one Deployment of one namespace.
//!
//! - Reads are cheap polling: a tick costs four requests (the Deployment, its pods by the
//!   Deployment's own selector, the HPA, the pods' metrics.k8s.io samples).
//! - Writes: replicas through the `scale` subresource (merge patch, field manager `scaletui`,
//!   clamped to min/max); the HPA (`autoscaling/v2`) created, replaced (409s retried) or deleted.
//!   `read_only` refuses every write before a request is sent.
//! - At start the HPA as it is is remembered (the whole object); [`Cluster::restore`] puts that
//!   object back — labels, annotations and spec — when scaletui changed the HPA, deletes an HPA
//!   only when scaletui created it, and scales back when scaletui scaled a deployment that had no
//!   HPA.
//! - Stressors run through exec ([`stress`]), the load generator's URL is a local port-forward
//!   ([`forward`]). Both sit behind traits so tests can replace the WebSocket parts.
//!
//! Every request the backend can make is listed in [`access`]; `deploy/rbac.yaml` grants exactly
//! those.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config as KubeConfig};

use super::{Cluster, ClusterError, ClusterResult, HpaChange};
use crate::config::{ClusterConfig, Config};
use crate::engine::hpa::HpaSpec;
use crate::engine::types::{ClusterInfo, DeploymentState, HpaInfo, PodInfo, PodUsage, StressHandle, StressKind};

pub mod access;
pub mod convert;
pub mod errors;
pub mod exec;
pub mod forward;
pub mod metrics_api;
pub mod safety;
pub mod stress;

use access::Op;
use errors::Target;
use exec::{KubeExec, PodExec};
use forward::{KubeTunnel, LocalForward, PodTunnel, ReadyPods};
use metrics_api::PodMetrics;

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "scaletui";
/// Attempts of a write that meets 409 Conflict.
const CONFLICT_ATTEMPTS: usize = 3;

/// What the backend acts on: `[cluster]` of the configuration (context, namespace, deployment,
/// HPA name, container, read-only) and the replica bounds every scale is clamped to.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeSettings {
    pub cluster: ClusterConfig,
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// Each API request is abandoned after this long.
    pub request_timeout: Duration,
    /// Where the local copy of a removed HPA goes (`None`: the cluster's copy only).
    pub state_dir: Option<std::path::PathBuf>,
}

impl KubeSettings {
    pub fn from_config(cfg: &Config) -> Self {
        Self {
            cluster: cfg.cluster.clone(),
            min_replicas: cfg.scaling.min_replicas,
            max_replicas: cfg.scaling.max_replicas,
            request_timeout: Duration::from_secs(10),
            state_dir: safety::default_state_dir(),
        }
    }
}

impl Default for KubeSettings {
    /// The defaults without a local state folder.
    fn default() -> Self {
        Self { state_dir: None, ..Self::from_config(&Config::default()) }
    }
}

/// What restore must undo.
#[derive(Debug, Clone, Copy, Default)]
struct Touched {
    hpa: bool,
    scaled: bool,
}

/// The state at start.
struct Original {
    /// The whole HPA object as the API server returned it (or as an earlier run saved it, once
    /// put back).
    hpa: Mutex<Option<DynamicObject>>,
    replicas: i32,
}

struct Inner {
    s: KubeSettings,
    target: Target,
    deployments: Api<Deployment>,
    pods: Api<Pod>,
    hpas: Api<HorizontalPodAutoscaler>,
    hpas_raw: Api<DynamicObject>,
    metrics: Api<PodMetrics>,
    exec: Arc<dyn PodExec>,
    tunnel: Arc<dyn PodTunnel>,
    selector: Mutex<String>,
    original: Original,
    touched: Mutex<Touched>,
    configmaps: Api<ConfigMap>,
    leases: Api<Lease>,
    deployment_uid: Mutex<Option<String>>,
    /// An HPA an earlier run removed and never put back, found at start.
    saved: Mutex<Option<safety::SavedHpa>>,
    saved_notice: Mutex<Option<String>>,
    /// `ai_scaler`'s lease while held.
    lease: Mutex<Option<safety::HeldLease>>,
    stress: Mutex<BTreeMap<u64, stress::Running>>,
    next_id: AtomicU64,
}

/// A real cluster.
pub struct KubeCluster {
    inner: Arc<Inner>,
    forward: tokio::sync::OnceCell<LocalForward>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Load the kubeconfig (the named context, else the current one; in a pod, the service account)
/// and say what went wrong in words a user can act on.
pub async fn load_config(context: &str) -> ClusterResult<(KubeConfig, String)> {
    let opts = KubeConfigOptions { context: (!context.is_empty()).then(|| context.to_string()), ..Default::default() };
    let contexts = || -> String {
        match Kubeconfig::read() {
            Ok(k) if !k.contexts.is_empty() => k.contexts.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(", "),
            Ok(_) => "none".into(),
            Err(_) => "unknown".into(),
        }
    };
    match KubeConfig::from_kubeconfig(&opts).await {
        Ok(cfg) => {
            let name = if context.is_empty() {
                Kubeconfig::read().ok().and_then(|k| k.current_context).unwrap_or_else(|| "current".into())
            } else {
                context.to_string()
            };
            Ok((cfg, name))
        }
        Err(KubeconfigError::FindPath | KubeconfigError::ReadConfig(..)) if context.is_empty() => {
            if let Ok(cfg) = KubeConfig::incluster() {
                return Ok((cfg, "in-cluster".into()));
            }
            let where_ = std::env::var("KUBECONFIG")
                .map_or_else(|_| "~/.kube/config".to_string(), |k| format!("$KUBECONFIG ({k})"));
            Err(ClusterError::Unsupported(format!(
                "no kubeconfig found at {where_}: create one (kind, minikube and Docker Desktop write it when they \
                 start a cluster) or run on the simulated cluster (--backend sim)"
            )))
        }
        Err(KubeconfigError::LoadContext(name)) => Err(ClusterError::Unsupported(format!(
            "context {name:?} is not in the kubeconfig (contexts: {}); pass one of them with --context",
            contexts()
        ))),
        Err(KubeconfigError::CurrentContextNotSet) => Err(ClusterError::Unsupported(format!(
            "the kubeconfig has no current context; pass one with --context (contexts: {})",
            contexts()
        ))),
        Err(e) => Err(ClusterError::Unsupported(format!("cannot use the kubeconfig: {}", errors::chain(&e)))),
    }
}

impl KubeCluster {
    /// Connect with the kubeconfig and read the deployment and its HPA (remembered for restore).
    pub async fn connect(s: KubeSettings) -> ClusterResult<Self> {
        let (cfg, context) = load_config(&s.cluster.context).await?;
        let server = cfg.cluster_url.to_string();
        let target = Target {
            server: server.trim_end_matches('/').to_string(),
            context,
            namespace: s.cluster.namespace.clone(),
        };
        let client = Client::try_from(cfg).map_err(|e| {
            ClusterError::Unsupported(format!("cannot build a client for {server}: {}", errors::chain(&e)))
        })?;
        Self::with_client(client, s, target).await
    }

    /// With a ready client (tests use a mocked one).
    pub async fn with_client(client: Client, s: KubeSettings, target: Target) -> ClusterResult<Self> {
        let ns = s.cluster.namespace.clone();
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let exec = Arc::new(KubeExec { api: pods.clone(), target: target.clone() });
        let tunnel = Arc::new(KubeTunnel { api: pods, target: target.clone() });
        Self::with_parts(client, s, target, exec, tunnel).await
    }

    /// With the exec and port-forward parts given.
    pub async fn with_parts(
        client: Client,
        s: KubeSettings,
        target: Target,
        exec: Arc<dyn PodExec>,
        tunnel: Arc<dyn PodTunnel>,
    ) -> ClusterResult<Self> {
        let ns = s.cluster.namespace.clone();
        let hpa_resource = ApiResource::erase::<HorizontalPodAutoscaler>(&());
        let mut inner = Inner {
            deployments: Api::namespaced(client.clone(), &ns),
            pods: Api::namespaced(client.clone(), &ns),
            hpas: Api::namespaced(client.clone(), &ns),
            hpas_raw: Api::namespaced_with(client.clone(), &ns, &hpa_resource),
            configmaps: Api::namespaced(client.clone(), &ns),
            leases: Api::namespaced(client.clone(), &ns),
            deployment_uid: Mutex::new(None),
            saved: Mutex::new(None),
            saved_notice: Mutex::new(None),
            lease: Mutex::new(None),
            metrics: Api::namespaced(client, &ns),
            exec,
            tunnel,
            selector: Mutex::new(String::new()),
            original: Original { hpa: Mutex::new(None), replicas: 0 },
            touched: Mutex::new(Touched::default()),
            stress: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            target,
            s,
        };
        let d = inner.get_deployment().await.map_err(|e| match e {
            ClusterError::NotFound(_) => ClusterError::Other(format!(
                "deployment {:?} not found in namespace {}: create it (kubectl apply -f deploy/webapp.yaml) or pass \
                 --deployment/--namespace",
                inner.s.cluster.deployment, inner.s.cluster.namespace
            )),
            e => e,
        })?;
        inner.original.replicas = d.spec.replicas.unwrap_or(1);
        let name = inner.s.cluster.hpa_name.clone();
        let hpa = inner.raw(&access::GET_HPA, &name, inner.hpas_raw.get_opt(&name)).await?;
        let missing = hpa.is_none();
        *lock(&inner.original.hpa) = hpa;
        if missing {
            inner.check_saved().await;
        }
        Ok(Self { inner: Arc::new(inner), forward: tokio::sync::OnceCell::new() })
    }

    /// Which of `ops` this account may not do in the namespace, asked up front with
    /// SelfSubjectAccessReviews (the calls themselves still name a refusal when it happens).
    /// An error when the reviews cannot be made.
    pub async fn denied(&self, ops: &[Op]) -> Result<Vec<Op>, String> {
        let api: Api<SelfSubjectAccessReview> = Api::all(self.inner.deployments.clone().into_client());
        let ns = self.inner.s.cluster.namespace.clone();
        let reviews = ops.iter().map(|op| {
            let (resource, sub) = op.resource.split_once('/').map_or((op.resource, None), |(r, s)| (r, Some(s)));
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(ns.clone()),
                        verb: Some(op.verb.to_string()),
                        group: Some(op.group.to_string()),
                        resource: Some(resource.to_string()),
                        subresource: sub.map(str::to_string),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let api = api.clone();
            let timeout = self.inner.s.request_timeout;
            async move {
                match tokio::time::timeout(timeout, api.create(&PostParams::default(), &review)).await {
                    Ok(Ok(r)) => Ok((*op, r.status.is_some_and(|s| s.allowed))),
                    Ok(Err(e)) => Err(errors::chain(&e)),
                    Err(_) => Err(format!("no answer within {:.0} s", timeout.as_secs_f64())),
                }
            }
        });
        let answers = futures::future::join_all(reviews).await;
        let mut denied = Vec::new();
        for a in answers {
            let (op, allowed) = a?;
            if !allowed {
                denied.push(op);
            }
        }
        Ok(denied)
    }

    /// The HPA as it was at start (the whole object), if there was one.
    pub fn original_hpa(&self) -> Option<DynamicObject> {
        lock(&self.inner.original.hpa).clone()
    }

    /// The forwarder's figures, once [`Cluster::load_target`] started it.
    pub fn forward_stats(&self) -> Option<forward::ForwardStats> {
        self.forward.get().map(LocalForward::stats)
    }
}

impl Inner {
    /// Run an API call with the request timeout; the inner error is kube's (for 404/409 handling).
    async fn raw_result<T>(
        &self,
        op: &Op,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> ClusterResult<Result<T, kube::Error>> {
        tokio::time::timeout(self.s.request_timeout, fut)
            .await
            .map_err(|_| errors::timed_out(op, &self.target.server, self.s.request_timeout.as_secs_f64()))
    }

    /// Run an API call with the request timeout and map its error.
    async fn raw<T>(
        &self,
        op: &Op,
        object: &str,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> ClusterResult<T> {
        self.raw_result(op, fut).await?.map_err(|e| errors::map(e, op, object, &self.target))
    }

    fn refuse(&self, what: &str) -> ClusterResult<()> {
        if self.s.cluster.read_only { Err(ClusterError::ReadOnly(what.to_string())) } else { Ok(()) }
    }

    async fn get_deployment(&self) -> ClusterResult<Deployment> {
        let name = &self.s.cluster.deployment;
        let d = self.raw(&access::GET_DEPLOYMENT, name, self.deployments.get(name)).await?;
        if let Some(uid) = &d.metadata.uid {
            *lock(&self.deployment_uid) = Some(uid.clone());
        }
        let sel = convert::selector_string(&d.spec.selector).map_err(|e| {
            ClusterError::Unsupported(format!(
                "deployment {name}: {e}; scaletui only acts on the deployment's own pods"
            ))
        })?;
        *lock(&self.selector) = sel;
        Ok(d)
    }

    async fn selector(&self) -> ClusterResult<String> {
        let sel = lock(&self.selector).clone();
        if sel.is_empty() {
            self.get_deployment().await?;
            return Ok(lock(&self.selector).clone());
        }
        Ok(sel)
    }

    async fn list_pods(&self) -> ClusterResult<Vec<Pod>> {
        let sel = self.selector().await?;
        let list = self.raw(&access::LIST_PODS, &sel, self.pods.list(&ListParams::default().labels(&sel))).await?;
        Ok(list.items)
    }

    fn next_tag(&self) -> (u64, String) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        (id, format!("{}-{id}", std::process::id()))
    }

    async fn patch_replicas(&self, replicas: i32) -> ClusterResult<()> {
        let name = &self.s.cluster.deployment;
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
        self.raw(&access::PATCH_SCALE, name, self.deployments.patch_scale(name, &pp, &Patch::Merge(&patch))).await?;
        Ok(())
    }

    /// Create `obj`, or replace what is there (409 conflicts are retried with a fresh read).
    async fn put_hpa(&self, obj: &HorizontalPodAutoscaler) -> ClusterResult<HpaChange> {
        let name = &self.s.cluster.hpa_name;
        let pp = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() };
        let mut last = None;
        for _ in 0..CONFLICT_ATTEMPTS {
            let current = self.raw(&access::GET_HPA, name, self.hpas.get_opt(name)).await?;
            let result = match current {
                None => {
                    self.raw_result(&access::CREATE_HPA, self.hpas.create(&pp, obj)).await?.map(|_| HpaChange::Created)
                }
                Some(cur) => {
                    let mut next = obj.clone();
                    next.metadata =
                        ObjectMeta { resource_version: cur.metadata.resource_version.clone(), ..cur.metadata.clone() };
                    next.metadata.managed_fields = None;
                    self.raw_result(&access::UPDATE_HPA, self.hpas.replace(name, &pp, &next))
                        .await?
                        .map(|_| HpaChange::Replaced)
                }
            };
            match result {
                Ok(change) => return Ok(change),
                // Someone changed or created it in between: read again and retry.
                Err(e) if errors::is_conflict(&e) => last = Some(e),
                Err(e) => return Err(errors::map(e, &access::UPDATE_HPA, name, &self.target)),
            }
        }
        let e = last.map_or_else(String::new, |e| errors::chain(&e));
        Err(ClusterError::Conflict(format!(
            "the HPA {name} kept changing while scaletui wrote it ({CONFLICT_ATTEMPTS} attempts): {e}"
        )))
    }

    /// At start, with no HPA: is there a copy an earlier run saved before removing it?
    async fn check_saved(&self) {
        let c = &self.s.cluster;
        let notice = match self.find_saved().await {
            Ok(None) => None,
            Ok(Some((saved, found))) => {
                let held = self.lease_holder().await.ok().flatten();
                let notice = match held {
                    Some((holder, since)) => format!(
                        "the HPA {} is set aside by {holder}, running ai_scaler on {} since {since}; it is put back \
                         when that run stops",
                        c.hpa_name, c.deployment
                    ),
                    None => format!(
                        "the HPA {} was {} (ai_scaler) and never put back: {} has no autoscaling now. Restore it \
                         with --restore-hpa, `scaletui restore --namespace {} --deployment {}`, or the \
                         dashboard's prompt{}",
                        c.hpa_name,
                        saved.describe(),
                        c.deployment,
                        c.namespace,
                        c.deployment,
                        if found == safety::Found::Local { " (copy from this machine's state folder)" } else { "" }
                    ),
                };
                *lock(&self.saved) = Some(saved);
                Some(notice)
            }
            Err(e) => Some(format!("cannot check for a saved copy of the HPA {}: {e}", c.hpa_name)),
        };
        *lock(&self.saved_notice) = notice;
    }

    /// [`Self::restore_hpa`], retried every 2 s for `restore_retry_s` while the API server does not
    /// answer (or answers 5xx).
    async fn restore_hpa_retrying(&self, orig: &DynamicObject) -> ClusterResult<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(self.s.cluster.restore_retry_s));
        loop {
            match self.restore_hpa(orig).await {
                Err(e @ (ClusterError::Unreachable(_) | ClusterError::Other(_)))
                    if tokio::time::Instant::now() + Duration::from_secs(2) < deadline =>
                {
                    tracing::warn!("restoring the HPA: {e}; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                other => return other,
            }
        }
    }

    /// Put the original HPA object back (create, or replace what is there).
    async fn restore_hpa(&self, orig: &DynamicObject) -> ClusterResult<String> {
        let name = &self.s.cluster.hpa_name;
        let pp = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() };
        let clean = |rv: Option<String>| safety::clean_hpa(orig, rv);
        let mut last = None;
        for _ in 0..CONFLICT_ATTEMPTS {
            let current = self.raw(&access::GET_HPA, name, self.hpas_raw.get_opt(name)).await?;
            let result = match current {
                None => self
                    .raw_result(&access::CREATE_HPA, self.hpas_raw.create(&pp, &clean(None)))
                    .await?
                    .map(|_| format!("re-created the HPA {name} as it was at start")),
                Some(cur) if same_hpa(orig, &cur) => return Ok(String::new()),
                Some(cur) => self
                    .raw_result(
                        &access::UPDATE_HPA,
                        self.hpas_raw.replace(name, &pp, &clean(cur.metadata.resource_version)),
                    )
                    .await?
                    .map(|_| format!("put the HPA {name} back as it was at start")),
            };
            match result {
                Ok(line) => return Ok(line),
                Err(e) if errors::is_conflict(&e) => last = Some(e),
                Err(e) => return Err(errors::map(e, &access::UPDATE_HPA, name, &self.target)),
            }
        }
        Err(ClusterError::Conflict(format!(
            "the HPA {name} kept changing while scaletui restored it: {}",
            last.map_or_else(String::new, |e| errors::chain(&e))
        )))
    }
}

/// Same spec, labels and annotations.
fn same_hpa(a: &DynamicObject, b: &DynamicObject) -> bool {
    a.data.get("spec") == b.data.get("spec")
        && a.metadata.labels == b.metadata.labels
        && a.metadata.annotations == b.metadata.annotations
}

#[async_trait]
impl ReadyPods for Inner {
    async fn ready_pods(&self) -> ClusterResult<Vec<(String, u16)>> {
        let pods = self.list_pods().await?;
        let mut ready: Vec<(String, u16)> = pods
            .iter()
            .filter(|p| convert::pod_info(p).is_ready())
            .map(|p| (p.metadata.name.clone().unwrap_or_default(), convert::target_port(p, &self.s.cluster.container)))
            .collect();
        ready.sort();
        Ok(ready)
    }
}

#[async_trait]
impl Cluster for KubeCluster {
    fn info(&self) -> ClusterInfo {
        let i = &self.inner;
        ClusterInfo {
            backend: "kube".into(),
            context: i.target.context.clone(),
            namespace: i.s.cluster.namespace.clone(),
            deployment: i.s.cluster.deployment.clone(),
        }
    }

    async fn deployment(&self) -> ClusterResult<DeploymentState> {
        Ok(convert::deployment_state(&self.inner.get_deployment().await?))
    }

    async fn pods(&self) -> ClusterResult<Vec<PodInfo>> {
        let mut pods: Vec<PodInfo> = self.inner.list_pods().await?.iter().map(convert::pod_info).collect();
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(pods)
    }

    async fn scale(&self, replicas: i32) -> ClusterResult<()> {
        let i = &self.inner;
        i.refuse(&format!("scale deployment {} to {replicas}", i.s.cluster.deployment))?;
        let clamped = replicas.clamp(i.s.min_replicas, i.s.max_replicas.max(i.s.min_replicas));
        i.patch_replicas(clamped).await?;
        lock(&i.touched).scaled = true;
        Ok(())
    }

    async fn hpa(&self) -> ClusterResult<Option<HpaInfo>> {
        let i = &self.inner;
        let h = i.raw(&access::GET_HPA, &i.s.cluster.hpa_name, i.hpas.get_opt(&i.s.cluster.hpa_name)).await?;
        Ok(h.as_ref().map(convert::hpa_info))
    }

    async fn ensure_hpa(&self, spec: &HpaSpec) -> ClusterResult<HpaChange> {
        let i = &self.inner;
        let name = &i.s.cluster.hpa_name;
        if let Some(h) = i.raw(&access::GET_HPA, name, i.hpas.get_opt(name)).await?
            && convert::hpa_matches(&h, &i.s.cluster.deployment, spec)
        {
            return Ok(HpaChange::Unchanged);
        }
        i.refuse(&format!("create or update the HPA {name}"))?;
        let obj = convert::build_hpa(name, &i.s.cluster.namespace, &i.s.cluster.deployment, spec)
            .map_err(ClusterError::Unsupported)?;
        let change = i.put_hpa(&obj).await?;
        lock(&i.touched).hpa = true;
        Ok(change)
    }

    async fn delete_hpa(&self) -> ClusterResult<bool> {
        let i = &self.inner;
        let name = &i.s.cluster.hpa_name;
        if i.s.cluster.read_only {
            return match i.raw(&access::GET_HPA, name, i.hpas.get_opt(name)).await? {
                None => Ok(false),
                Some(_) => Err(ClusterError::ReadOnly(format!("delete the HPA {name}"))),
            };
        }
        // Saved first, in the cluster and locally, so that a crash cannot lose it.
        let Some(current) = i.raw(&access::GET_HPA, name, i.hpas_raw.get_opt(name)).await? else {
            return Ok(false);
        };
        i.save_hpa(&current).await.map_err(|e| {
            ClusterError::Other(format!("not removing the HPA {name}: its copy could not be saved first: {e}"))
        })?;
        match i.raw_result(&access::DELETE_HPA, i.hpas.delete(name, &DeleteParams::default())).await? {
            Ok(_) => {
                lock(&i.touched).hpa = true;
                Ok(true)
            }
            Err(e) if errors::is_not_found(&e) => Ok(false),
            Err(e) => Err(errors::map(e, &access::DELETE_HPA, name, &i.target)),
        }
    }

    async fn pod_metrics(&self) -> ClusterResult<Vec<PodUsage>> {
        let i = &self.inner;
        let sel = i.selector().await?;
        let list = i.raw(&access::LIST_POD_METRICS, &sel, i.metrics.list(&ListParams::default().labels(&sel))).await?;
        Ok(list.items.iter().map(convert::pod_usage).collect())
    }

    async fn stress_cpu(&self, pod: &str, workers: u32, duration_s: f64) -> ClusterResult<StressHandle> {
        let i = &self.inner;
        i.refuse("start a CPU stressor (exec into the pods)")?;
        let (id, tag) = i.next_tag();
        let running =
            stress::start_cpu(i.exec.as_ref(), pod, &i.s.cluster.container, &tag, workers, duration_s).await?;
        lock(&i.stress).insert(id, running);
        Ok(StressHandle { id, pod: pod.to_string(), kind: StressKind::Cpu })
    }

    async fn shm_free_mib(&self, pod: &str) -> ClusterResult<f64> {
        let i = &self.inner;
        i.refuse("exec into the pods (the memory stressor checks /dev/shm)")?;
        stress::shm_free_mib(i.exec.as_ref(), pod, &i.s.cluster.container).await
    }

    async fn stress_memory(&self, pod: &str, mib: u64) -> ClusterResult<StressHandle> {
        let i = &self.inner;
        i.refuse("start a memory stressor (exec into the pods)")?;
        let (id, tag) = i.next_tag();
        let running = stress::start_memory(i.exec.as_ref(), pod, &i.s.cluster.container, &tag, mib).await?;
        lock(&i.stress).insert(id, running);
        Ok(StressHandle { id, pod: pod.to_string(), kind: StressKind::Memory })
    }

    async fn stop_stress(&self, handle: &StressHandle) -> ClusterResult<()> {
        let i = &self.inner;
        let running = lock(&i.stress).remove(&handle.id);
        match running {
            Some(r) => stress::stop(i.exec.as_ref(), r, &i.s.cluster.container).await,
            None => Ok(()),
        }
    }

    async fn load_target(&self) -> ClusterResult<String> {
        if self.forward.get().is_none() && self.inner.ready_pods().await?.is_empty() {
            return Err(ClusterError::Unsupported(format!(
                "no pod of deployment {} is ready to take the load yet; wait until `kubectl get deploy {}` shows \
                 ready replicas",
                self.inner.s.cluster.deployment, self.inner.s.cluster.deployment
            )));
        }
        let f = self
            .forward
            .get_or_try_init(|| {
                let pods: Arc<dyn ReadyPods> = self.inner.clone();
                LocalForward::start(pods, self.inner.tunnel.clone())
            })
            .await
            .map_err(|e| ClusterError::Other(format!("cannot listen on 127.0.0.1 for the port-forward: {e}")))?;
        Ok(f.url.clone())
    }

    async fn restore(&self) -> ClusterResult<Vec<String>> {
        let i = &self.inner;
        let mut done = Vec::new();
        if let Some(f) = self.forward.get() {
            f.stop();
        }
        let running: Vec<stress::Running> = std::mem::take(&mut *lock(&i.stress)).into_values().collect();
        let mut failures = Vec::new();
        let n = running.len();
        for r in running {
            let pod = r.pod.clone();
            if let Err(e) = stress::stop(i.exec.as_ref(), r, &i.s.cluster.container).await {
                failures.push(format!("{pod}: {e}"));
            }
        }
        if n > 0 {
            done.push(format!("stopped {n} stressor(s)"));
        }
        let touched = *lock(&i.touched);
        if i.s.cluster.read_only || (!touched.hpa && !touched.scaled) {
            self.release_control().await;
            return finish(done, failures);
        }
        let name = &i.s.cluster.hpa_name;
        if touched.hpa {
            let original = lock(&i.original.hpa).clone();
            match &original {
                Some(orig) => match i.restore_hpa_retrying(orig).await {
                    Ok(line) => {
                        if !line.is_empty() {
                            done.push(line);
                        }
                        if let Err(e) = i.forget_saved().await {
                            failures.push(format!("the saved copy of the HPA {name}: {e}"));
                        }
                    }
                    Err(e) => failures.push(format!(
                        "the HPA {name} is NOT restored ({e}); its copy is kept in ConfigMap {}{}: put it back \
                         with `scaletui restore{} --namespace {} --deployment {}`",
                        safety::configmap_name(&i.s.cluster.deployment),
                        i.local_copy().map(|p| format!(" and {}", p.display())).unwrap_or_default(),
                        if i.s.cluster.context.is_empty() {
                            String::new()
                        } else {
                            format!(" --context {}", i.s.cluster.context)
                        },
                        i.s.cluster.namespace,
                        i.s.cluster.deployment
                    )),
                },
                None => match i.raw(&access::GET_HPA, name, i.hpas_raw.get_opt(name)).await {
                    Ok(Some(cur))
                        if cur
                            .metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(convert::MANAGED_BY.0))
                            .map(String::as_str)
                            == Some(convert::MANAGED_BY.1) =>
                    {
                        match i.raw(&access::DELETE_HPA, name, i.hpas.delete(name, &DeleteParams::default())).await {
                            Ok(_) => done.push(format!("deleted the HPA {name} that scaletui created")),
                            Err(e) => failures.push(format!("HPA {name}: {e}")),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => failures.push(format!("HPA {name}: {e}")),
                },
            }
        }
        if touched.scaled && lock(&i.original.hpa).is_none() {
            let to = i.original.replicas;
            match i.patch_replicas(to).await {
                Ok(()) => done.push(format!("scaled {} back to {to} replicas as at start", i.s.cluster.deployment)),
                Err(e) => failures.push(format!("scale back to {to}: {e}")),
            }
        }
        // After the HPA is back: another instance may take over from here.
        self.release_control().await;
        finish(done, failures)
    }

    fn saved_hpa_notice(&self) -> Option<String> {
        lock(&self.inner.saved_notice).clone()
    }

    async fn restore_saved_hpa(&self) -> ClusterResult<String> {
        let i = &self.inner;
        i.refuse("put back the saved HPA")?;
        let Some(saved) = lock(&i.saved).clone() else {
            return Err(ClusterError::Unsupported(format!(
                "no saved copy of the HPA {} was found for {}",
                i.s.cluster.hpa_name, i.s.cluster.deployment
            )));
        };
        if let Some((holder, since)) = i.lease_holder().await? {
            return Err(ClusterError::Conflict(format!(
                "{holder} runs ai_scaler on {} since {since} and put the HPA aside; it restores it when it stops",
                i.s.cluster.deployment
            )));
        }
        let line = i.restore_hpa_retrying(&saved.hpa).await?;
        *lock(&i.original.hpa) = Some(saved.hpa.clone());
        i.forget_saved().await?;
        *lock(&i.saved) = None;
        *lock(&i.saved_notice) = None;
        let what = if line.is_empty() { "found the HPA already as saved".to_string() } else { line };
        Ok(format!("{what} (it was {}); the saved copies are removed", saved.describe()))
    }

    async fn take_control(&self) -> ClusterResult<()> {
        let i = &self.inner;
        if lock(&i.lease).is_some() {
            return Ok(());
        }
        i.refuse("take the ai_scaler lease")?;
        i.acquire_lease().await?;
        *lock(&i.lease) = Some(safety::keep_renewing(self.inner.clone()));
        Ok(())
    }

    async fn release_control(&self) {
        let held = lock(&self.inner.lease).take();
        if let Some(h) = held {
            drop(h);
            if let Err(e) = self.inner.release_lease().await {
                tracing::warn!("releasing the lease: {e}");
            }
        }
    }
}

/// The restore lines, or an error naming what could not be undone.
fn finish(done: Vec<String>, failures: Vec<String>) -> ClusterResult<Vec<String>> {
    if failures.is_empty() {
        Ok(done)
    } else {
        let mut msg = failures.join("; ");
        if !done.is_empty() {
            msg = format!("{msg} (done: {})", done.join("; "));
        }
        Err(ClusterError::Other(format!("could not undo everything: {msg}")))
    }
}

#[cfg(test)]
mod tests;
