//! `metrics.k8s.io/v1beta1` PodMetrics. The metrics API is not part of k8s-openapi, so the type
//! is defined here with the traits kube's `Api` needs (as kdash does for its metrics view).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};

/// One container's usage in a PodMetrics item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ContainerMetrics {
    pub name: String,
    /// `cpu` and `memory` (and whatever else the server reports).
    #[serde(default)]
    pub usage: BTreeMap<String, Quantity>,
}

/// A pod's usage sample: when it was taken, the window CPU is averaged over, per container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PodMetrics {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub timestamp: Option<Time>,
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerMetrics>,
}

impl k8s_openapi::Resource for PodMetrics {
    const API_VERSION: &'static str = "metrics.k8s.io/v1beta1";
    const GROUP: &'static str = "metrics.k8s.io";
    const KIND: &'static str = "PodMetrics";
    const VERSION: &'static str = "v1beta1";
    const URL_PATH_SEGMENT: &'static str = "pods";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for PodMetrics {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
