//! Everything that is not drawing. Nothing here imports ratatui.
pub mod advisor;
pub mod calibrate;
pub mod clock;
pub mod cluster;
pub mod experiment;
pub mod hpa;
pub mod load;
pub mod messages;
pub mod metrics;
pub mod record;
pub mod rng;
pub mod scenario;
pub mod stress;
pub mod types;
