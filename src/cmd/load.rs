//! `scaletui load`: the open-loop load generator on its own. A live line per second, a latency
//! summary at the end (`--json`: the summary and every second as JSON on stdout). Ctrl-C or
//! SIGTERM stop it early (the summary still prints); a second one exits at once.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use super::flag_error;
use crate::cli::LoadArgs;
use crate::config::{self, Config};
use crate::engine::load::client::ClientKind;
use crate::engine::load::stats::{Percentiles, SecondReport, fmt_ms};
use crate::engine::load::{GeneratorConfig, LoadEvent, LoadParams, LoadRun, Summary, schedule_from_config};

const FLAGS: &[(&str, &str)] = &[
    ("load.pattern", "--pattern"),
    ("load.rps", "--rps"),
    ("load.ramp_start", "--ramp-start"),
    ("load.ramp_end", "--ramp-end"),
    ("load.ramp_duration", "--ramp-duration"),
    ("load.hold", "--hold"),
    ("load.duration", "--duration"),
    ("load.period", "--period"),
    ("load.wave_seed", "--wave-seed"),
    ("load.concurrency", "--concurrency"),
    ("load.timeout_s", "--timeout"),
];

/// The `[load]` section with the flags applied, checked.
pub fn apply(args: &LoadArgs, cfg: &mut Config) -> Result<(), String> {
    let l = &mut cfg.load;
    let ramp_flag = args.ramp_start.is_some() || args.ramp_end.is_some() || args.ramp_duration.is_some();
    if let Some(p) = &args.pattern {
        l.pattern = p.clone();
    } else if ramp_flag {
        l.pattern = "ramp".into();
    } else if args.rps.is_some() {
        l.pattern = "constant".into();
    } else if args.trace.is_some() {
        l.pattern = "trace".into();
    }
    let set = |slot: &mut f64, v: Option<f64>| {
        if let Some(v) = v {
            *slot = v;
        }
    };
    set(&mut l.rps, args.rps);
    set(&mut l.duration, args.duration);
    set(&mut l.ramp_start, args.ramp_start);
    set(&mut l.ramp_end, args.ramp_end);
    set(&mut l.ramp_duration, args.ramp_duration);
    set(&mut l.hold, args.hold);
    set(&mut l.period, args.period);
    set(&mut l.timeout_s, args.timeout);
    if let Some(s) = args.steps {
        l.steps = s;
    }
    if let Some(s) = args.wave_seed {
        l.wave_seed = s;
    }
    if let Some(t) = &args.trace {
        l.trace = t.display().to_string();
    }
    if let Some(c) = args.concurrency {
        l.concurrency = c;
    }
    if let Some(m) = &args.method {
        l.method = m.clone();
    }
    if let Some(u) = &args.url {
        l.url = u.clone();
    }
    if !args.headers.is_empty() {
        l.headers = args.headers.clone();
    }
    if let Some(b) = &args.body {
        l.body = b.clone();
    }
    config::validate(cfg).map_err(|(key, msg)| flag_error(&key, &msg, FLAGS))
}

/// The generator's configuration for `scaletui load` (the URL resolved by the caller).
pub fn generator_config(args: &LoadArgs, cfg: &Config, url: String) -> Result<GeneratorConfig, String> {
    let l = &cfg.load;
    let total = l.duration + l.hold;
    let trace_limit = (args.duration.is_some() || args.hold.is_some()).then_some(total);
    let mut params = LoadParams::from_config(l)?;
    if args.max_rate {
        if !(total > 0.0) {
            return Err("--max-rate needs --duration > 0".into());
        }
        params.schedule = crate::engine::load::Schedule::Constant { rps: 0.0, duration_s: total };
    } else {
        params.schedule = schedule_from_config(l, trace_limit)?;
    }
    let mut g = GeneratorConfig::from_params(&params, url);
    g.closed_loop = args.max_rate;
    if args.max_rate {
        g.limit_s = total;
    }
    g.client = args.client.unwrap_or(ClientKind::Raw);
    Ok(g)
}

/// The machine-readable result.
#[derive(Debug, Serialize)]
struct JsonOut<'a> {
    pattern: String,
    summary: &'a Summary,
    seconds: &'a [SecondReport],
}

/// Run `scaletui load`. Returns the process exit code: 0, or 1 when requests were sent and not
/// one was answered.
pub async fn run(args: LoadArgs, mut cfg: Config, speed_flag: bool) -> Result<u8, String> {
    apply(&args, &mut cfg)?;
    let mut signals = super::Signals::new();
    // Resolve the target: --url, load.url, else the cluster's (the simulator starts its endpoint).
    let mut _keep_cluster = None;
    let url = if !cfg.load.url.trim().is_empty() {
        cfg.load.url.trim().to_string()
    } else {
        let (cluster, _sim, clock) = super::cluster(&cfg, speed_flag).await?;
        if clock.is_max() {
            return Err("the load generator runs in real time; --speed max cannot serve it".into());
        }
        let url = cluster.load_target().await.map_err(|e| format!("no load target: {e}"))?;
        _keep_cluster = Some(cluster);
        url
    };
    let gen_cfg = generator_config(&args, &cfg, url)?;
    let describe = if gen_cfg.closed_loop {
        format!("closed loop at {} connections for {:.0}s", gen_cfg.concurrency, gen_cfg.limit_s)
    } else {
        LoadParams::from_config(&cfg.load)
            .map(|mut p| {
                p.schedule = gen_cfg.schedule.clone();
                p.url = None;
                p.describe()
            })
            .unwrap_or_default()
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let run = LoadRun::start(gen_cfg.clone(), move |e| {
        let _ = tx.send(e);
    })
    .await?;
    let mut live: Box<dyn Write> = if args.json { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    let _ = writeln!(
        live,
        "scaletui load: {describe} -> {} ({} client, up to {} connections, timeout {}s)",
        gen_cfg.url,
        match gen_cfg.client {
            _ if gen_cfg.url.starts_with("https://") => "reqwest",
            ClientKind::Raw => "raw",
            ClientKind::Hyper => "hyper",
            ClientKind::Reqwest => "reqwest",
        },
        gen_cfg.concurrency,
        gen_cfg.timeout.as_secs_f64()
    );
    let mut seconds = Vec::new();
    let mut interrupts = 0;
    let summary = loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(LoadEvent::Second(r)) => {
                    if r.span_s >= 0.999 {
                        let _ = writeln!(live, "{}", r.line());
                    }
                    if args.json {
                        seconds.push(r);
                    }
                }
                Some(LoadEvent::Finished(s)) => break *s,
                None => return Err("the load generator stopped without a summary".into()),
            },
            _ = signals.recv() => {
                interrupts += 1;
                if interrupts > 1 {
                    std::process::exit(130);
                }
                let _ = writeln!(live, "scaletui load: stopping (again to force)…");
                run.stop();
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), run.finish()).await;
    if args.json {
        let out = JsonOut { pattern: describe, summary: &summary, seconds: &seconds };
        let text = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
        crate::cli::print_out(&format!("{text}\n"))?;
    } else {
        crate::cli::print_out(&summary_text(&summary))?;
    }
    Ok(if summary.counts.sent > 0 && summary.counts.responses == 0 { 1 } else { 0 })
}

fn summary_text(s: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let c = &s.counts;
    let planned = s.planned.map(|p| format!("planned {p}  ")).unwrap_or_default();
    let _ = writeln!(
        out,
        "Done{}. {planned}sent {}  answered {} (1xx {} 2xx {} 3xx {} 4xx {} 5xx {})  errors {}  timeouts {}  late {}  dropped {}{}  in {:.1}s",
        if s.stopped_early { " (stopped early)" } else { "" },
        c.sent,
        c.responses,
        c.status[0],
        c.status[1],
        c.status[2],
        c.status[3],
        c.status[4],
        c.errors,
        c.timeouts,
        c.late,
        c.dropped,
        if c.cancelled > 0 { format!("  cancelled {}", c.cancelled) } else { String::new() },
        s.elapsed_s,
    );
    let _ = writeln!(
        out,
        "  rate: sent {:.1}/s  answered {:.1}/s  connections opened {}",
        s.sent_rps, s.achieved_rps, s.connections_opened
    );
    let from = if s.closed_loop { "from send" } else { "from scheduled send" };
    let _ = writeln!(out, "  latency ({from}): {}", percentiles(&s.latency));
    if !s.closed_loop {
        let _ = writeln!(out, "  service time (from actual send): {}", percentiles(&s.service));
    }
    for (what, n) in &s.errors_by_kind {
        let _ = writeln!(out, "  error: {what} x{n}");
    }
    out
}

fn percentiles(p: &Percentiles) -> String {
    if p.count == 0 {
        return "no answers".into();
    }
    let ms = |v: Option<f64>| v.map_or("-".to_string(), fmt_ms);
    format!(
        "p50 {}  p75 {}  p90 {}  p95 {}  p99 {}  p99.9 {}  max {}  mean {}",
        ms(p.p50_ms),
        ms(p.p75_ms),
        ms(p.p90_ms),
        ms(p.p95_ms),
        ms(p.p99_ms),
        ms(p.p999_ms),
        ms(p.max_ms),
        ms(p.mean_ms)
    )
}
