//! Subcommands that run one part of scaletui on its own: `scaletui load`, `scaletui stress`,
//! `scaletui calibrate`.
pub mod calibrate;
pub mod load;
pub mod restore;
pub mod stress;

use std::sync::Arc;

use crate::config::{Backend, Config, MetricsSourceKind, Speed};
use crate::engine::clock::SharedClock;
use crate::engine::cluster::Cluster;
use crate::engine::cluster::sim::SimCluster;

/// The configured cluster (simulated or real) for a subcommand. The simulator runs in real time
/// unless `--speed` was given on the command line (`speed_flag`).
pub async fn cluster(
    cfg: &Config,
    speed_flag: bool,
) -> Result<(Arc<dyn Cluster>, Option<Arc<SimCluster>>, SharedClock), String> {
    let mut cfg = cfg.clone();
    if !speed_flag {
        cfg.sim.speed = Speed::Factor(1.0);
    }
    // Only the cluster is used: no scenario, and a metric source that needs nothing else.
    cfg.experiment.scenario = String::new();
    cfg.metrics.source = match cfg.cluster.backend {
        Backend::Sim => MetricsSourceKind::Sim,
        Backend::Kube => MetricsSourceKind::MetricsServer,
    };
    let parts = crate::run::build(&cfg, false).await.map_err(|e| e.to_string())?;
    Ok((parts.cluster, parts.sim, parts.clock))
}

/// Map a configuration key named by `validate` to the flag of a subcommand that sets it.
fn flag_error(key: &str, message: &str, flags: &[(&str, &str)]) -> String {
    match flags.iter().find(|(k, _)| *k == key) {
        Some((_, flag)) => format!("{flag}: {message}"),
        None => format!("{key}: {message}"),
    }
}

/// Ctrl-C and SIGTERM, listened for from the moment this is created (so a signal that comes
/// before the first wait is not lost to the default action).
pub struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self { int: signal(SignalKind::interrupt()).ok(), term: signal(SignalKind::terminate()).ok() }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// The next Ctrl-C or SIGTERM.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            match (&mut self.int, &mut self.term) {
                (Some(i), Some(t)) => {
                    tokio::select! {
                        _ = i.recv() => {}
                        _ = t.recv() => {}
                    }
                }
                (Some(i), None) => {
                    i.recv().await;
                }
                (None, Some(t)) => {
                    t.recv().await;
                }
                (None, None) => crate::headless::wait_signal().await,
            }
        }
        #[cfg(not(unix))]
        {
            crate::headless::wait_signal().await
        }
    }
}

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}
