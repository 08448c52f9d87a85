//! `scaletui --headless`: the experiment without a dashboard. One progress line per tick on
//! stderr; the CSV paths on stdout at the end. Ctrl-C or SIGTERM end the run cleanly (the CSV
//! keeps complete rows); a second one exits at once. Should the engine panic, the run's changes
//! to the cluster are undone here and the exit status is 101.

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;

use futures::FutureExt;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::experiment::Experiment;
use crate::engine::messages::EngineEvent;
use crate::engine::record::Row;
use crate::fault::{Fault, Faults};
use crate::run::{self, SetupError};

/// Run headless; returns the exit status (0, or 101 after a panic of the engine).
pub async fn run(cfg: Config) -> Result<ExitCode, SetupError> {
    let parts = run::build(&cfg, false).await?;
    let cluster = parts.setup.cluster.clone();
    let experiment = Experiment::new(parts.setup)
        .map_err(|e| SetupError(format!("cannot create the record in {}: {e}", cfg.experiment.output_dir.display())))?;
    let shutdown = CancellationToken::new();
    spawn_signal_watcher(shutdown.clone());
    let total = (cfg.experiment.duration > 0.0).then_some(cfg.experiment.duration * 60.0);
    let mut events = parts.events;
    let printer = tokio::spawn(async move {
        let stderr = std::io::stderr();
        while let Some(e) = events.recv().await {
            let mut err = stderr.lock();
            let _ = match &e {
                EngineEvent::Started(info) => writeln!(
                    err,
                    "scaletui: {} backend ({}/{}), mode {}, interval {}s, speed {}, metrics {}{}{} -> {}",
                    info.cluster.backend,
                    info.cluster.namespace,
                    info.cluster.deployment,
                    info.mode,
                    info.interval_s,
                    info.speed,
                    info.metrics_source,
                    info.scenario.as_deref().map(|s| format!(", scenario {s}")).unwrap_or_default(),
                    if info.limits_off { ", apply_limits none" } else { "" },
                    info.csv_path.display()
                ),
                EngineEvent::Sample(row) => writeln!(err, "{}", progress_line(row, total)),
                EngineEvent::Event(ev) if ev.kind != "run_start" => {
                    writeln!(err, "  [{:>7.0}s] {}: {}", ev.elapsed_s, ev.kind, ev.detail)
                }
                EngineEvent::Notice(n) => writeln!(err, "  note: {n}"),
                EngineEvent::Finished { .. } => break,
                _ => Ok(()),
            };
        }
    });
    let faults = Faults::from_env();
    let engine = async {
        tokio::select! {
            s = experiment.run(shutdown) => s,
            () = faults.fire(Fault::Engine) => panic!("fault injected in the engine by SCALETUI_FAULT_PANIC_IN"),
        }
    };
    let summary = match AssertUnwindSafe(engine).catch_unwind().await {
        Ok(s) => s,
        Err(_) => {
            // The panic is reported by the hook; the engine did not undo its changes.
            printer.abort();
            eprintln!("scaletui: the engine panicked; the CSV holds every row recorded so far");
            if !cfg.cluster.keep_changes {
                let wait = std::time::Duration::from_secs(30 + u64::from(cfg.cluster.restore_retry_s));
                let lines = match tokio::time::timeout(wait, cluster.restore()).await {
                    Ok(Ok(lines)) => lines,
                    Ok(Err(e)) => vec![format!("restore failed: {e}")],
                    Err(_) => vec!["restore failed: no answer within 30 s".into()],
                };
                for l in lines {
                    eprintln!("  restored: {l}");
                }
            }
            return Ok(ExitCode::from(101));
        }
    };
    let _ = printer.await;
    eprintln!("scaletui: {} ({} rows)", summary.reason, summary.rows);
    let unrestored = report_unrestored(summary.restored.iter());
    let extra = summary.summary_path.as_ref().map(|p| format!("{}\n", p.display())).unwrap_or_default();
    if let Err(e) =
        crate::cli::print_out(&format!("{}\n{}\n{extra}", summary.csv_path.display(), summary.events_path.display()))
    {
        eprintln!("scaletui: {e}");
    }
    Ok(if unrestored { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Whether a restore at the end failed; says so loudly (the lines name what is left and how to
/// put it back).
pub fn report_unrestored<'a>(lines: impl IntoIterator<Item = &'a String>) -> bool {
    let failed: Vec<&String> = lines.into_iter().filter(|l| l.starts_with("restore failed")).collect();
    for l in &failed {
        eprintln!("scaletui: THE CLUSTER IS NOT AS IT WAS: {l}");
    }
    !failed.is_empty()
}

fn progress_line(r: &Row, total: Option<f64>) -> String {
    let opt = |v: Option<i32>| v.map_or("-".to_string(), |x| x.to_string());
    let f0 = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.0}"));
    let when = match total {
        Some(t) => format!("{:>6.0}s/{t:.0}s", r.elapsed_s),
        None => format!("{:>6.0}s", r.elapsed_s),
    };
    let traffic = r
        .traffic
        .map_or(String::new(), |t| format!(" rps {:.0} p95 {}ms err/s {:.1}", t.rps, f0(t.p95_ms), t.errors_per_s));
    format!(
        "[{when}] {} replicas {}/{} cpu {}m mem {}Mi hpa_sim {} ({}) hpa {} ai {}{} -> {} by {}{traffic}",
        r.mode,
        opt(r.ready_replicas),
        opt(r.current_replicas),
        f0(r.cpu_millicores),
        f0(r.memory_mebibytes),
        opt(r.hpa_sim.desired),
        if r.hpa_sim.action.is_empty() { "-" } else { &r.hpa_sim.action },
        opt(r.hpa_desired_replicas),
        opt(r.ai.recommended_replicas),
        // Why the advisor has no answer (pending, timeout, http_error, …).
        r.ai.status.as_deref().filter(|s| *s != "parsed").map(|s| format!(" ({s})")).unwrap_or_default(),
        opt(r.applied_replicas),
        r.applied_by,
    )
}

/// First Ctrl-C / SIGTERM: cancel the run (it finishes the files). Second: exit now.
fn spawn_signal_watcher(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut first = true;
        loop {
            wait_signal().await;
            if first {
                eprintln!("scaletui: stopping (again to force)…");
                shutdown.cancel();
                first = false;
            } else {
                std::process::exit(130);
            }
        }
    });
}

/// Ctrl-C or SIGTERM.
pub async fn wait_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
