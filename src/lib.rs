//! scaletui: a terminal dashboard for live Kubernetes autoscaling experiments.
pub mod config;
pub mod engine;
