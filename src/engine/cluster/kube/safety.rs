//! `ai_scaler` on a real cluster without leaving it worse off:
//!
//! - **The HPA survives a crash.** Before the HPA is removed, the object as it is (spec, labels,
//!   annotations, owners) is saved in a ConfigMap `scaletui-saved-hpa-<deployment>` owned by the
//!   Deployment (so another machine can put it back, and deleting the Deployment removes it) and
//!   in the local state folder. A ConfigMap rather than an annotation on the Deployment: writing
//!   annotations needs `patch deployments`, which would also allow changing the pod template;
//!   ConfigMaps need only get/create/update/delete on configmaps. At every start an HPA that is
//!   missing while a saved copy exists is reported and can be put back ([`Cluster::restore_saved_hpa`],
//!   `--restore-hpa`, `scaletui restore`); a normal restore removes the copies.
//! - **One controller at a time.** `ai_scaler` holds a Lease `scaletui-<deployment>`
//!   (coordination.k8s.io/v1, as controllers' leader election does), renewed every third of its
//!   duration. Another holder's lease counts as held until its `renewTime` plus its duration has
//!   passed (by this machine's clock).
//!
//! [`Cluster::restore_saved_hpa`]: super::super::Cluster::restore_saved_hpa

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference};
use kube::api::{DeleteParams, DynamicObject, ObjectMeta, PostParams};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{FIELD_MANAGER, Inner, access, convert, errors, lock};
use crate::engine::cluster::{ClusterError, ClusterResult};

/// The key of the saved copy in the ConfigMap.
const SAVED_KEY: &str = "saved-hpa.json";

/// What is kept of a removed HPA, in the ConfigMap and the local file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedHpa {
    pub server: String,
    pub context: String,
    pub namespace: String,
    pub deployment: String,
    pub hpa_name: String,
    /// RFC 3339.
    pub saved_at: String,
    /// `user@host pid N` of the run that removed it.
    pub saved_by: String,
    /// The object to create again (no status, uid or resourceVersion).
    pub hpa: DynamicObject,
}

impl SavedHpa {
    pub fn describe(&self) -> String {
        format!("removed by {} at {}", self.saved_by, self.saved_at)
    }
}

/// Where a saved copy was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Cluster,
    Local,
}

pub fn configmap_name(deployment: &str) -> String {
    let mut n = format!("scaletui-saved-hpa-{deployment}");
    n.truncate(253);
    n
}

pub fn lease_name(deployment: &str) -> String {
    let mut n = format!("scaletui-{deployment}");
    n.truncate(253);
    n
}

/// Who this process is, for the lease and the saved copy.
pub fn identity() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "someone".into());
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host} pid {}", std::process::id())
}

/// The local state folder: `$SCALETUI_STATE_DIR`, else the platform's state (or local data) folder.
pub fn default_state_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("SCALETUI_STATE_DIR")
        && !d.is_empty()
    {
        return Some(PathBuf::from(d));
    }
    let dirs = directories::ProjectDirs::from("dev", "scaletui", "scaletui")?;
    Some(dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir()).to_path_buf())
}

/// The local copy's file for a deployment of a cluster.
pub fn local_file(state_dir: &std::path::Path, server: &str, namespace: &str, deployment: &str) -> PathBuf {
    let clean =
        |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect::<String>();
    state_dir.join("saved-hpa").join(format!("{}_{}_{}.json", clean(server), clean(namespace), clean(deployment)))
}

/// The object as it should be created again.
pub fn clean_hpa(orig: &DynamicObject, resource_version: Option<String>) -> DynamicObject {
    DynamicObject {
        types: orig.types.clone(),
        metadata: ObjectMeta {
            name: orig.metadata.name.clone(),
            namespace: orig.metadata.namespace.clone(),
            labels: orig.metadata.labels.clone(),
            annotations: orig.metadata.annotations.clone(),
            owner_references: orig.metadata.owner_references.clone(),
            finalizers: orig.metadata.finalizers.clone(),
            resource_version,
            ..ObjectMeta::default()
        },
        data: serde_json::json!({"spec": orig.data.get("spec").cloned().unwrap_or_default()}),
    }
}

/// RFC 3339 to the second, UTC.
fn seconds(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The lease while held: its renewal stops when dropped.
pub struct HeldLease {
    stop: CancellationToken,
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Inner {
    pub(super) fn local_copy(&self) -> Option<PathBuf> {
        let c = &self.s.cluster;
        self.s.state_dir.as_deref().map(|d| local_file(d, &self.target.server, &c.namespace, &c.deployment))
    }

    /// Save `current` (the HPA about to be removed) in the cluster and locally. Either failing
    /// stops the removal.
    pub(super) async fn save_hpa(&self, current: &DynamicObject) -> ClusterResult<()> {
        let c = &self.s.cluster;
        let saved = SavedHpa {
            server: self.target.server.clone(),
            context: self.target.context.clone(),
            namespace: c.namespace.clone(),
            deployment: c.deployment.clone(),
            hpa_name: c.hpa_name.clone(),
            saved_at: seconds(jiff::Timestamp::now()),
            saved_by: identity(),
            hpa: clean_hpa(current, None),
        };
        let text = serde_json::to_string_pretty(&saved).map_err(|e| ClusterError::Other(e.to_string()))?;
        if let Some(path) = self.local_copy() {
            let write = || -> std::io::Result<()> {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = path.with_extension("json.tmp");
                std::fs::write(&tmp, &text)?;
                std::fs::rename(&tmp, &path)
            };
            write().map_err(|e| {
                ClusterError::Other(format!("cannot save a copy of the HPA in {}: {e}", path.display()))
            })?;
        }
        let name = configmap_name(&c.deployment);
        let owner = lock(&self.deployment_uid).clone().map(|uid| OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: c.deployment.clone(),
            uid,
            ..OwnerReference::default()
        });
        let cm = |rv: Option<String>| ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(c.namespace.clone()),
                labels: Some([(convert::MANAGED_BY.0.to_string(), convert::MANAGED_BY.1.to_string())].into()),
                owner_references: owner.clone().map(|o| vec![o]),
                resource_version: rv,
                ..ObjectMeta::default()
            },
            data: Some([(SAVED_KEY.to_string(), text.clone())].into()),
            ..ConfigMap::default()
        };
        let pp = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() };
        let existing = self.raw(&access::GET_SAVED, &name, self.configmaps.get_opt(&name)).await?;
        match existing {
            None => self.raw(&access::CREATE_SAVED, &name, self.configmaps.create(&pp, &cm(None))).await.map(|_| ()),
            Some(cur) => self
                .raw(
                    &access::UPDATE_SAVED,
                    &name,
                    self.configmaps.replace(&name, &pp, &cm(cur.metadata.resource_version)),
                )
                .await
                .map(|_| ()),
        }
    }

    /// A saved copy: the cluster's first, else the local one.
    pub(super) async fn find_saved(&self) -> ClusterResult<Option<(SavedHpa, Found)>> {
        let name = configmap_name(&self.s.cluster.deployment);
        let cm = self.raw(&access::GET_SAVED, &name, self.configmaps.get_opt(&name)).await?;
        if let Some(text) = cm.as_ref().and_then(|cm| cm.data.as_ref()).and_then(|d| d.get(SAVED_KEY)) {
            let saved: SavedHpa = serde_json::from_str(text)
                .map_err(|e| ClusterError::Other(format!("the saved copy in ConfigMap {name} is not readable: {e}")))?;
            return Ok(Some((saved, Found::Cluster)));
        }
        let Some(path) = self.local_copy() else { return Ok(None) };
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(|s| Some((s, Found::Local)))
                .map_err(|e| ClusterError::Other(format!("the saved copy in {} is not readable: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClusterError::Other(format!("cannot read {}: {e}", path.display()))),
        }
    }

    /// Remove both copies (after the HPA is back).
    pub(super) async fn forget_saved(&self) -> ClusterResult<()> {
        if let Some(path) = self.local_copy() {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ClusterError::Other(format!("cannot remove {}: {e}", path.display()))),
            }
        }
        let name = configmap_name(&self.s.cluster.deployment);
        match self.raw_result(&access::DELETE_SAVED, self.configmaps.delete(&name, &DeleteParams::default())).await? {
            Ok(_) => Ok(()),
            Err(e) if errors::is_not_found(&e) => Ok(()),
            Err(e) => Err(errors::map(e, &access::DELETE_SAVED, &name, &self.target)),
        }
    }

    /// The lease's holder and since when, when someone else holds it now.
    pub(super) async fn lease_holder(&self) -> ClusterResult<Option<(String, String)>> {
        let name = lease_name(&self.s.cluster.deployment);
        let Some(lease) = self.raw(&access::GET_LEASE, &name, self.leases.get_opt(&name)).await? else {
            return Ok(None);
        };
        Ok(held_by_other(&lease, &identity()))
    }

    /// Take the lease (create it, renew ours, or take over an expired one), or say who holds it.
    pub(super) async fn acquire_lease(&self) -> ClusterResult<()> {
        let name = lease_name(&self.s.cluster.deployment);
        let me = identity();
        let duration = self.s.cluster.lease_duration_s as i32;
        let pp = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() };
        for _ in 0..super::CONFLICT_ATTEMPTS {
            let now = MicroTime(jiff::Timestamp::now());
            let current = self.raw(&access::GET_LEASE, &name, self.leases.get_opt(&name)).await?;
            let result = match current {
                None => {
                    let lease = Lease {
                        metadata: ObjectMeta {
                            name: Some(name.clone()),
                            namespace: Some(self.s.cluster.namespace.clone()),
                            labels: Some(
                                [(convert::MANAGED_BY.0.to_string(), convert::MANAGED_BY.1.to_string())].into(),
                            ),
                            ..ObjectMeta::default()
                        },
                        spec: Some(LeaseSpec {
                            holder_identity: Some(me.clone()),
                            lease_duration_seconds: Some(duration),
                            acquire_time: Some(now.clone()),
                            renew_time: Some(now),
                            lease_transitions: Some(0),
                            ..LeaseSpec::default()
                        }),
                    };
                    self.raw_result(&access::CREATE_LEASE, self.leases.create(&pp, &lease)).await?.map(|_| ())
                }
                Some(mut lease) => {
                    if let Some((holder, since)) = held_by_other(&lease, &me) {
                        return Err(ClusterError::Conflict(format!(
                            "ai_scaler refused: {holder} holds the lease {name} on {} since {since}; observation \
                             modes are allowed (the lease frees {}s after its holder stops renewing it)",
                            self.s.cluster.deployment, duration
                        )));
                    }
                    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                    if spec.holder_identity.as_deref() != Some(me.as_str()) {
                        spec.acquire_time = Some(now.clone());
                        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                        spec.holder_identity = Some(me.clone());
                    }
                    spec.renew_time = Some(now);
                    spec.lease_duration_seconds = Some(duration);
                    lease.metadata.managed_fields = None;
                    self.raw_result(&access::UPDATE_LEASE, self.leases.replace(&name, &pp, &lease)).await?.map(|_| ())
                }
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if errors::is_conflict(&e) => continue,
                Err(e) => return Err(errors::map(e, &access::UPDATE_LEASE, &name, &self.target)),
            }
        }
        Err(ClusterError::Conflict(format!("the lease {name} kept changing while scaletui took it")))
    }

    /// Give the lease up (delete it when it is ours).
    pub(super) async fn release_lease(&self) -> ClusterResult<()> {
        let name = lease_name(&self.s.cluster.deployment);
        let Some(lease) = self.raw(&access::GET_LEASE, &name, self.leases.get_opt(&name)).await? else {
            return Ok(());
        };
        if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) != Some(identity().as_str()) {
            return Ok(());
        }
        match self.raw_result(&access::DELETE_LEASE, self.leases.delete(&name, &DeleteParams::default())).await? {
            Ok(_) => Ok(()),
            Err(e) if errors::is_not_found(&e) => Ok(()),
            Err(e) => Err(errors::map(e, &access::DELETE_LEASE, &name, &self.target)),
        }
    }
}

/// `(holder, since)` when `lease` is held by someone other than `me` and has not expired.
fn held_by_other(lease: &Lease, me: &str) -> Option<(String, String)> {
    let spec = lease.spec.as_ref()?;
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty() && *h != me)?;
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
    let expires = renewed.checked_add(jiff::SignedDuration::from_secs(duration)).ok()?;
    if expires <= jiff::Timestamp::now() {
        return None;
    }
    let since = spec.acquire_time.as_ref().map_or_else(|| seconds(renewed), |t| seconds(t.0));
    Some((holder.to_string(), since))
}

/// Renew the lease every third of its duration until `stop`; a failed renewal is retried at
/// the next beat (the lease holds for its whole duration).
pub(super) fn keep_renewing(inner: std::sync::Arc<Inner>) -> HeldLease {
    let stop = CancellationToken::new();
    let s = stop.clone();
    let every = Duration::from_secs_f64((f64::from(inner.s.cluster.lease_duration_s) / 3.0).max(1.0));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = s.cancelled() => break,
                _ = tokio::time::sleep(every) => {
                    if let Err(e) = inner.acquire_lease().await {
                        tracing::warn!("lease renewal: {e}");
                    }
                }
            }
        }
    });
    HeldLease { stop }
}
