//! `scaletui stress cpu|memory`: the stressors on their own, through the configured cluster
//! (the simulator, or exec into the pods on a real cluster). A progress line every few seconds
//! with what the pods show; the stressor stops and cleans up at its duration, on Ctrl-C and on
//! SIGTERM (a second signal exits at once). Memory: after stop, the free space in every stressed
//! pod's /dev/shm is checked and printed.

use std::io::Write;

use super::flag_error;
use crate::cli::StressCommand;
use crate::config::{self, Config};
use crate::engine::cluster::Cluster;
use crate::engine::stress::{CpuStressParams, MemoryStressParams, StressParams, StressTask, TaskState};

/// Seconds (of the run's clock) between progress lines.
const PROGRESS_EVERY_S: f64 = 5.0;

const FLAGS: &[(&str, &str)] = &[
    ("stress.cpu.workers", "--workers"),
    ("stress.cpu.duration", "--duration"),
    ("stress.cpu.refresh", "--refresh"),
    ("stress.memory.mb", "--mb"),
    ("stress.memory.duration", "--duration"),
];

/// The stressor's parameters: the flags over `[stress.cpu]` / `[stress.memory]`, checked.
pub fn params(what: &StressCommand, cfg: &mut Config) -> Result<StressParams, String> {
    match what {
        StressCommand::Cpu { workers, duration, max_pods, refresh } => {
            let c = &mut cfg.stress.cpu;
            c.workers = workers.unwrap_or(c.workers);
            c.duration = duration.unwrap_or(c.duration);
            c.max_pods = max_pods.unwrap_or(c.max_pods);
            c.refresh = refresh.unwrap_or(c.refresh);
        }
        StressCommand::Memory { mb, duration, max_pods } => {
            let m = &mut cfg.stress.memory;
            m.mb = mb.unwrap_or(m.mb);
            m.duration = duration.unwrap_or(m.duration);
            m.max_pods = max_pods.unwrap_or(m.max_pods);
        }
    }
    config::validate(cfg).map_err(|(key, msg)| flag_error(&key, &msg, FLAGS))?;
    Ok(match what {
        StressCommand::Cpu { .. } => {
            let c = &cfg.stress.cpu;
            StressParams::Cpu(CpuStressParams {
                workers: c.workers,
                duration_s: c.duration,
                max_pods: c.max_pods,
                refresh_s: c.refresh,
            })
        }
        StressCommand::Memory { .. } => {
            let m = &cfg.stress.memory;
            StressParams::Memory(MemoryStressParams { mib: m.mb, duration_s: m.duration, max_pods: m.max_pods })
        }
    })
}

/// Run a stressor until its duration, Ctrl-C or SIGTERM.
pub async fn run(what: StressCommand, mut cfg: Config, speed_flag: bool) -> Result<(), String> {
    let params = params(&what, &mut cfg)?;
    let mut signals = super::Signals::new();
    let (cluster, _sim, clock) = super::cluster(&cfg, speed_flag).await?;
    let info = cluster.info();
    let kind = params.kind().as_str();
    let start = clock.now();
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "scaletui stress {kind}: {} on {}/{} ({} backend)",
        params.describe(),
        info.namespace,
        info.deployment,
        info.backend
    );
    let mut task = StressTask::new(params, start);
    for line in task.start(cluster.as_ref(), start).await {
        let _ = writeln!(out, "  {line}");
    }
    if let TaskState::Failed(why) = &task.state {
        let _ = cluster.restore().await;
        return Err(format!("{kind} stress: {why}"));
    }
    let mut stressed: std::collections::BTreeSet<String> = task.pods().into_iter().collect();
    let _ = writeln!(out, "{}", progress(cluster.as_ref(), &task, clock.now() - start).await);
    let mut next_line = start + PROGRESS_EVERY_S;
    let mut interrupted = false;
    while !task.state.finished() {
        let wake = task.next_wake().map_or(next_line, |w| w.min(next_line));
        tokio::select! {
            biased;
            _ = signals.recv() => {
                interrupted = true;
                break;
            }
            _ = clock.sleep_until(wake) => {}
        }
        let now = clock.now();
        stressed.extend(task.pods());
        for line in task.poll(cluster.as_ref(), now).await {
            let _ = writeln!(out, "  {line}");
        }
        stressed.extend(task.pods());
        if now + 1e-9 >= next_line || task.state.finished() {
            let _ = writeln!(out, "{}", progress(cluster.as_ref(), &task, now - start).await);
            next_line = now + PROGRESS_EVERY_S;
        }
    }
    if interrupted {
        let _ = writeln!(out, "scaletui stress: stopping (again to force)…");
        tokio::spawn(async move {
            signals.recv().await;
            std::process::exit(130);
        });
    }
    stressed.extend(task.pods());
    for line in task.stop(cluster.as_ref()).await {
        let _ = writeln!(out, "  {line}");
    }
    if kind == "memory" {
        for pod in &stressed {
            match cluster.shm_free_mib(pod).await {
                Ok(free) => {
                    let _ = writeln!(out, "  cleanup check: {pod} /dev/shm has {free:.0} MiB free");
                }
                Err(e) => {
                    let _ = writeln!(out, "  cleanup check: {pod}: {e}");
                }
            }
        }
    }
    match cluster.restore().await {
        Ok(done) => {
            for d in done {
                let _ = writeln!(out, "  restore: {d}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  restore failed: {e}");
        }
    }
    let _ = writeln!(
        out,
        "scaletui stress {kind}: {} after {:.0}s ({})",
        if interrupted { "stopped" } else { "ended" },
        clock.now() - start,
        task.state.label()
    );
    match &task.state {
        TaskState::Failed(why) => Err(format!("{kind} stress: {why}")),
        _ => Ok(()),
    }
}

/// `t=  10s cpu stress: running on 3 pods, 6 workers | replicas 3/3 | pod cpu 200m 200m 200m | …`
async fn progress(cluster: &dyn Cluster, task: &StressTask, elapsed: f64) -> String {
    let (workers, mib) = task.load();
    let held = match task.params.kind() {
        crate::engine::types::StressKind::Cpu => format!("{workers} workers"),
        crate::engine::types::StressKind::Memory => format!("{mib} MiB held"),
    };
    let replicas = match cluster.deployment().await {
        Ok(d) => format!("replicas {}/{} ready", d.ready_replicas, d.spec_replicas),
        Err(e) => format!("replicas ? ({e})"),
    };
    let usage = match cluster.pod_metrics().await {
        Ok(mut m) if !m.is_empty() => {
            m.sort_by(|a, b| a.pod.cmp(&b.pod));
            let f = |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |x| format!("{x:.0}{unit}"));
            let cpu: Vec<String> = m.iter().map(|u| f(u.cpu_m, "m")).collect();
            let mem: Vec<String> = m.iter().map(|u| f(u.memory_mib, "Mi")).collect();
            format!("pod cpu {} | pod memory {}", cpu.join(" "), mem.join(" "))
        }
        Ok(_) => "no pod metrics yet".into(),
        Err(e) => format!("pod metrics unavailable: {e}"),
    };
    format!(
        "t={elapsed:>5.0}s {} stress: {}, {held} | {replicas} | {usage}",
        task.params.kind().as_str(),
        task.state.label()
    )
}
