//! Everything that is not drawing. Nothing here imports ratatui.
pub mod advisor;
pub mod calibrate;
pub mod clock;
pub mod cluster;
pub mod experiment;
pub mod hpa;
pub mod learn;
pub mod load;
pub mod messages;
pub mod metrics;
pub mod record;
pub mod reward;
pub mod rng;
pub mod scenario;
pub mod stress;
pub mod types;

/// The checks of a configuration that need the engine's knowledge (the PromQL templates and the
/// queue's query); [`crate::config::validate`] does the rest, on plain values.
pub fn check_config(c: &crate::config::Config) -> Result<(), (String, String)> {
    metrics::prometheus::validate_config(&c.metrics).map_err(|(k, m)| (k.to_string(), m))?;
    advisor::queue::check_query(&c.recommenders.queue)
}
