//! `scaletui restore`: put back the HPA that an `ai_scaler` run removed and could not restore
//! (killed, the API server gone at exit): from the cluster's saved copy (any machine) or this
//! machine's state folder. The saved copies are removed afterwards.

use std::io::Write;

use crate::cli::RestoreArgs;
use crate::config::{Backend, Config};

/// Returns the process exit code: 0 when the HPA is back or nothing was saved, 1 when a saved
/// HPA could not be put back.
pub async fn run(mut cfg: Config, args: &RestoreArgs) -> Result<u8, String> {
    // Only a real cluster has HPAs to put back.
    cfg.cluster.backend = Backend::Kube;
    if let Some(d) = &args.deployment {
        cfg.cluster.deployment = d.clone();
    }
    if let Some(n) = &args.namespace {
        cfg.cluster.namespace = n.clone();
    }
    if let Some(c) = &args.context {
        cfg.cluster.context = c.clone();
    }
    let (cluster, _sim, _clock) = super::cluster(&cfg, false).await?;
    let c = &cfg.cluster;
    let mut out = std::io::stdout();
    match cluster.saved_hpa_notice() {
        None => {
            let _ = writeln!(
                out,
                "nothing to restore: no saved copy of the HPA {} for {}/{}, or the HPA is in place",
                c.hpa_name, c.namespace, c.deployment
            );
            Ok(0)
        }
        Some(notice) => {
            let _ = writeln!(out, "{notice}");
            match cluster.restore_saved_hpa().await {
                Ok(line) => {
                    let _ = writeln!(out, "{line}");
                    Ok(0)
                }
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "scaletui restore: {e}");
                    Ok(1)
                }
            }
        }
    }
}
