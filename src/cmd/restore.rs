//! `scaletui restore`: put back the HPA that an `ai_scaler` run removed and could not restore
//! (killed, the API server gone at exit): from the cluster's saved copy (any machine) or this
//! machine's state folder. The saved copies are removed afterwards.

use std::io::Write;

use crate::config::{Backend, Config};

/// Returns the process exit code: 0 when the HPA is back or nothing was saved, 1 when a saved
/// HPA could not be put back.
pub async fn run(cfg: Config) -> Result<u8, String> {
    if cfg.cluster.backend != Backend::Kube {
        return Err(
            "restore acts on a real cluster: pass --backend kube (and --context, --namespace, --deployment)".into()
        );
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
