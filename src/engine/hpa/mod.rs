//! The Kubernetes HPA decision algorithm as pure functions (`conformance/hpa-spec.md`).
//!
//! - [`calc`]: per-metric proposals (pod grouping, requests, utilization, plain values, object and
//!   external metrics, tolerance);
//! - [`normalize`]: legacy and `behavior` stabilization, rate-limit policies, min/max, scale events;
//! - [`reconcile`]: a whole sync with its explanation, and [`HpaRunner`], which keeps the
//!   histories between syncs (used by the simulator's controller and the experiment's shadow HPA).

pub mod calc;
pub mod conformance;
pub mod limit;
pub mod normalize;
pub mod reconcile;
pub mod types;

pub use reconcile::{
    HpaHistory, HpaRunner, HpaSpec, Observation, ReconcileInput, ReconcileOptions, ReconcileOutput, reconcile,
    reconcile_with,
};
pub use types::*;
