//! Experiment reports: figures per run (or per phase of a run) from recorded CSVs — requests
//! served and dropped, latency, SLO violations, replica-seconds, CPU core-hours, scale events,
//! oscillations, time-to-scale after a load step — as a table, a CSV and plots. `scaletui
//! compare` runs one scenario per policy and reports the CSVs it recorded through the same
//! code, so `scaletui report` on those CSVs gives the same figures.

pub mod analysis;
pub mod commands;
pub mod compare;
pub mod html;
pub mod plot;
pub mod stats;
pub mod sweep;
pub mod sweep_plot;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use crate::config::ReportConfig;
use crate::engine::advisor::learned::Obs;

/// One recorded tick, as far as reports and training need it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunRow {
    pub obs: Obs,
    pub mode: String,
    pub driver: String,
    pub applied_by: String,
    pub applied_note: String,
    pub served_rps: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Requests by outcome over the tick, when the record counts them (the simulator does).
    pub arrived: Option<f64>,
    pub served: Option<f64>,
    /// Turned away, timed out or lost with a pod.
    pub dropped: Option<f64>,
}

/// A recorded run (or one phase of it) with its label.
#[derive(Debug, Clone, PartialEq)]
pub struct RunData {
    pub label: String,
    pub path: PathBuf,
    pub rows: Vec<RunRow>,
    /// The simulator's own totals of the whole run, from the summary file beside the record.
    pub exact: Option<Exact>,
}

/// Totals counted request by request (a simulated run's `<stem>_summary.json`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exact {
    pub arrived: f64,
    pub served: f64,
    pub dropped: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// The simulator's totals beside a record, if it left them.
fn read_exact(csv: &Path) -> Option<Exact> {
    let text = std::fs::read_to_string(crate::engine::record::summary::summary_path(csv)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    if v.get("source")?.as_str()? != "simulator" {
        return None;
    }
    let n = |k: &str| v.pointer(&format!("/requests/{k}")).and_then(serde_json::Value::as_f64);
    let ms = |k: &str| v.pointer(&format!("/latency_s/{k}")).and_then(serde_json::Value::as_f64).map(|s| s * 1000.0);
    Some(Exact {
        arrived: n("arrived")?,
        served: n("served")?,
        dropped: n("rejected")? + n("timed_out")? + n("failed")?,
        p50_ms: ms("p50"),
        p95_ms: ms("p95"),
        p99_ms: ms("p99"),
    })
}

/// Columns a record must have (and `elapsed_s`, or `timestamp` to derive it from).
const REQUIRED: [&str; 2] = ["current_replicas", "mode"];

/// Seconds since the Unix epoch of a record's `timestamp`: RFC 3339 (scaletui's), or an ISO
/// date-time without an offset, read as UTC (what the seed tools' `datetime.utcnow()` wrote).
fn timestamp_s(t: &str) -> Option<f64> {
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Some(ts.as_nanosecond() as f64 / 1e9);
    }
    let dt: jiff::civil::DateTime = t.replace(' ', "T").parse().ok()?;
    let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(ts.as_nanosecond() as f64 / 1e9)
}

/// Read a scaletui CSV record — or a seed tool's, which has the same first columns but no
/// `elapsed_s`: then the time comes from `timestamp`. Unknown values (empty cells) stay unknown.
pub fn load_run(path: &Path, label: &str) -> Result<RunData, String> {
    let name = path.display().to_string();
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_path(path).map_err(|e| format!("{name}: {e}"))?;
    let headers = rdr.headers().map_err(|e| format!("{name}: {e}"))?.clone();
    let col = |c: &str| headers.iter().position(|h| h == c);
    if let Some(missing) = REQUIRED.iter().find(|c| col(c).is_none()) {
        return Err(format!("{name}: not a scaletui record (no {missing} column)"));
    }
    let i_ts = col("timestamp");
    if col("elapsed_s").is_none() && i_ts.is_none() {
        return Err(format!("{name}: not a scaletui record (no elapsed_s or timestamp column)"));
    }
    let mut t0: Option<f64> = None;
    let idx = |c: &str| col(c);
    let (i_el, i_cur, i_ready, i_cpu, i_mem, i_cpureq, i_memreq, i_pods) = (
        idx("elapsed_s"),
        idx("current_replicas"),
        idx("ready_replicas"),
        idx("cpu_millicores"),
        idx("memory_mebibytes"),
        idx("cpu_request_millicores"),
        idx("memory_request_mebibytes"),
        idx("pod_count"),
    );
    let (i_rps, i_served, i_err, i_p50, i_p95, i_p99, i_inflight, i_raw) = (
        idx("rps"),
        idx("served_rps"),
        idx("errors_per_s"),
        idx("latency_p50_ms"),
        idx("latency_p95_ms"),
        idx("latency_p99_ms"),
        idx("in_flight"),
        idx("hpa_sim_raw_desired"),
    );
    let (i_mode, i_driver, i_by, i_note) = (idx("mode"), idx("driver"), idx("applied_by"), idx("applied_note"));
    let (i_arrived, i_served_n, i_rejected, i_timed_out, i_failed) =
        (idx("arrived"), idx("served"), idx("rejected"), idx("timed_out"), idx("failed"));
    let mut rows = Vec::new();
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| format!("{name}: {e}"))?;
        let text = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("").trim().to_string();
        let num = |i: Option<usize>, what: &str| -> Result<Option<f64>, String> {
            let t = text(i);
            if t.is_empty() {
                return Ok(None);
            }
            t.parse::<f64>().map(Some).map_err(|_| format!("{name}: row {}: {what} is not a number: {t:?}", n + 2))
        };
        let elapsed = match i_el {
            Some(_) => num(i_el, "elapsed_s")?.ok_or_else(|| format!("{name}: row {}: no elapsed_s", n + 2))?,
            None => {
                let t = text(i_ts);
                let at = timestamp_s(&t)
                    .ok_or_else(|| format!("{name}: row {}: timestamp is not a date and time: {t:?}", n + 2))?;
                at - *t0.get_or_insert(at)
            }
        };
        rows.push(RunRow {
            obs: Obs {
                elapsed_s: elapsed,
                current_replicas: num(i_cur, "current_replicas")?,
                ready_replicas: num(i_ready, "ready_replicas")?,
                cpu_m: num(i_cpu, "cpu_millicores")?,
                memory_mib: num(i_mem, "memory_mebibytes")?,
                cpu_request_m: num(i_cpureq, "cpu_request_millicores")?,
                memory_request_mib: num(i_memreq, "memory_request_mebibytes")?,
                pod_count: num(i_pods, "pod_count")?,
                rps: num(i_rps, "rps")?,
                errors_per_s: num(i_err, "errors_per_s")?,
                p95_ms: num(i_p95, "latency_p95_ms")?,
                in_flight: num(i_inflight, "in_flight")?,
                hpa_raw_desired: num(i_raw, "hpa_sim_raw_desired")?,
            },
            mode: text(i_mode),
            driver: text(i_driver),
            applied_by: text(i_by),
            applied_note: text(i_note),
            served_rps: num(i_served, "served_rps")?,
            p50_ms: num(i_p50, "latency_p50_ms")?,
            p99_ms: num(i_p99, "latency_p99_ms")?,
            arrived: num(i_arrived, "arrived")?,
            served: num(i_served_n, "served")?,
            dropped: match (num(i_rejected, "rejected")?, num(i_timed_out, "timed_out")?, num(i_failed, "failed")?) {
                (Some(a), Some(b), Some(c)) => Some(a + b + c),
                _ => None,
            },
        });
    }
    if rows.is_empty() {
        return Err(format!("{name}: the record has no rows"));
    }
    Ok(RunData { label: label.to_string(), path: path.to_path_buf(), rows, exact: read_exact(path) })
}

/// Split a run where the mode (or, in ai_scaler, the driver) changes: `<label>:<mode>` or
/// `<label>:ai_scaler/<driver>`, numbered when a phase repeats.
pub fn split_phases(run: &RunData) -> Vec<RunData> {
    let key = |r: &RunRow| {
        if r.mode == "ai_scaler" && !r.driver.is_empty() { format!("{}/{}", r.mode, r.driver) } else { r.mode.clone() }
    };
    let mut out: Vec<RunData> = Vec::new();
    let mut last = String::new();
    for r in &run.rows {
        let k = key(r);
        if out.is_empty() || k != last {
            let n = out.iter().filter(|p| p.label.split('#').next() == Some(&format!("{}:{k}", run.label))).count();
            let label = if n == 0 { format!("{}:{k}", run.label) } else { format!("{}:{k}#{}", run.label, n + 1) };
            out.push(RunData { label, path: run.path.clone(), rows: Vec::new(), exact: None });
            last = k;
        }
        if let Some(p) = out.last_mut() {
            p.rows.push(r.clone());
        }
    }
    out
}

/// The figures of one run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub label: String,
    pub duration_s: f64,
    pub requests: f64,
    pub served: f64,
    pub dropped: f64,
    /// Percentiles of all served requests when the run counted each one (the simulator's
    /// summary file), else the served-request-weighted mean of the ticks' percentiles.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The ticks' p99, mean (weighted by served requests) and peak.
    pub tick_p99_ms: Option<f64>,
    pub peak_p99_ms: Option<f64>,
    /// Ticks whose SLO percentile exceeded the SLO, and their share of ticks with latency.
    pub slo_violations: u32,
    pub slo_violation_pct: f64,
    /// Seconds covered by those ticks.
    pub slo_violation_s: f64,
    pub replica_seconds: f64,
    pub mean_replicas: f64,
    pub max_replicas: f64,
    pub cpu_core_hours: f64,
    pub mean_cores: f64,
    pub peak_cores: f64,
    pub scale_events: u32,
    pub oscillations: u32,
    pub load_steps: u32,
    /// Mean over load steps of the seconds to the first rise in ready replicas.
    pub time_to_scale_s: Option<f64>,
    /// ai_scaler ticks where the driver had no answer and the fallback applied.
    pub fallback_ticks: u32,
    /// Rows with a request rate, and with latency percentiles (none in a record from a tool
    /// that did not measure them: its traffic figures are unknown, not zero).
    pub traffic_ticks: u32,
    pub latency_ticks: u32,
}

/// Compute the figures. Traffic columns cover the interval that ends at their row; replica
/// counts hold from their row until the next.
pub fn summarize(run: &RunData, cfg: &ReportConfig) -> Summary {
    let rows = &run.rows;
    let mut s = Summary { label: run.label.clone(), ..Summary::default() };
    let t0 = rows.first().map_or(0.0, |r| r.obs.elapsed_s);
    s.duration_s = rows.last().map_or(0.0, |r| r.obs.elapsed_s) - t0;
    let (mut w50, mut w95, mut w99, mut wsum) = (0.0, 0.0, 0.0, 0.0);
    let mut with_latency = 0u32;
    let mut last_dir = 0i32;
    for (i, r) in rows.iter().enumerate() {
        let o = &r.obs;
        let prev = i.checked_sub(1).map(|j| &rows[j]);
        let dt = prev.map_or(0.0, |p| (o.elapsed_s - p.obs.elapsed_s).max(0.0));
        // Exact counts where the record has them, else rates × the tick's length.
        let served = r.served.unwrap_or(r.served_rps.unwrap_or(0.0) * dt);
        if o.rps.is_some() || r.served_rps.is_some() {
            s.traffic_ticks += 1;
        }
        s.requests += r.arrived.unwrap_or(o.rps.unwrap_or(0.0) * dt);
        s.served += served;
        s.dropped += r.dropped.unwrap_or(o.errors_per_s.unwrap_or(0.0) * dt);
        if let (Some(a), Some(b), Some(c)) = (r.p50_ms, o.p95_ms, r.p99_ms) {
            let w = served.max(0.0);
            w50 += a * w;
            w95 += b * w;
            w99 += c * w;
            wsum += w;
            s.peak_p99_ms = Some(s.peak_p99_ms.map_or(c, |p: f64| p.max(c)));
            with_latency += 1;
            let slo_value = match cfg.slo_percentile {
                50 => a,
                99 => c,
                _ => b,
            };
            if slo_value > cfg.slo_ms {
                s.slo_violations += 1;
                s.slo_violation_s += dt;
            }
        }
        if let Some(p) = prev {
            if let Some(n) = p.obs.current_replicas {
                s.replica_seconds += n * dt;
            }
            if let (Some(a), Some(b)) = (p.obs.current_replicas, o.current_replicas)
                && a != b
            {
                s.scale_events += 1;
                let dir = if b > a { 1 } else { -1 };
                if last_dir != 0 && dir != last_dir {
                    s.oscillations += 1;
                }
                last_dir = dir;
            }
        }
        if let Some(n) = o.current_replicas {
            s.max_replicas = s.max_replicas.max(n);
        }
        if let (Some(c), Some(n)) = (o.cpu_m, o.pod_count) {
            let cores = c * n / 1000.0;
            s.cpu_core_hours += cores * dt / 3600.0;
            s.peak_cores = s.peak_cores.max(cores);
        }
        if r.mode == "ai_scaler" && matches!(r.applied_by.as_str(), "hpa_sim" | "hold") {
            s.fallback_ticks += 1;
        }
    }
    if wsum > 0.0 {
        s.p50_ms = Some(w50 / wsum);
        s.p95_ms = Some(w95 / wsum);
        s.p99_ms = Some(w99 / wsum);
        s.tick_p99_ms = s.p99_ms;
    }
    if let Some(e) = run.exact {
        s.requests = e.arrived;
        s.served = e.served;
        s.dropped = e.dropped;
        s.p50_ms = e.p50_ms;
        s.p95_ms = e.p95_ms;
        s.p99_ms = e.p99_ms;
    }
    s.latency_ticks = with_latency;
    if with_latency > 0 {
        s.slo_violation_pct = 100.0 * f64::from(s.slo_violations) / f64::from(with_latency);
    }
    if s.duration_s > 0.0 {
        s.mean_replicas = s.replica_seconds / s.duration_s;
        s.mean_cores = s.cpu_core_hours * 3600.0 / s.duration_s;
    }
    let (steps, tts) = time_to_scale(rows, cfg);
    s.load_steps = steps;
    s.time_to_scale_s = tts;
    s
}

/// Load steps (the rate rises by `step_fraction` and `step_min_rps` between two ticks; a run of
/// such ticks is one step) and the mean seconds from the first tick that sees a step to the
/// first tick whose ready replicas exceed those before it.
pub fn time_to_scale(rows: &[RunRow], cfg: &ReportConfig) -> (u32, Option<f64>) {
    let mut steps = 0;
    let mut lags = Vec::new();
    let mut in_step = false;
    for i in 1..rows.len() {
        let (a, b) = (rows[i - 1].obs.rps, rows[i].obs.rps);
        let rising =
            matches!((a, b), (Some(a), Some(b)) if b - a >= cfg.step_min_rps.max(cfg.step_fraction * a) && b > a);
        if rising && !in_step {
            steps += 1;
            let before = rows[i - 1].obs.ready_replicas;
            let seen = rows[i].obs.elapsed_s;
            if let Some(before) = before
                && let Some(j) = rows[i..].iter().find(|r| r.obs.ready_replicas.is_some_and(|n| n > before))
            {
                lags.push(j.obs.elapsed_s - seen);
            }
        }
        in_step = rising;
    }
    let tts = (!lags.is_empty()).then(|| lags.iter().sum::<f64>() / lags.len() as f64);
    (steps, tts)
}

fn opt(v: Option<f64>, dp: usize) -> String {
    v.map_or("-".to_string(), |x| format!("{x:.dp$}"))
}

/// The summary CSV's header.
pub const SUMMARY_COLUMNS: [&str; 25] = [
    "policy",
    "duration_s",
    "requests",
    "served",
    "dropped",
    "dropped_pct",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "tick_p99_ms",
    "peak_p99_ms",
    "slo_violation_ticks",
    "slo_violation_pct",
    "slo_violation_s",
    "replica_seconds",
    "mean_replicas",
    "max_replicas",
    "cpu_core_hours",
    "mean_cores",
    "peak_cores",
    "scale_events",
    "oscillations",
    "load_steps",
    "time_to_scale_s",
    "fallback_ticks",
];

impl Summary {
    pub fn dropped_pct(&self) -> f64 {
        if self.requests > 0.0 { 100.0 * self.dropped / self.requests } else { 0.0 }
    }

    /// Cells of the summary CSV (fixed decimals; unknown = empty).
    pub fn cells(&self) -> Vec<String> {
        let o = |v: Option<f64>, dp: usize| v.map_or(String::new(), |x| format!("{x:.dp$}"));
        let traffic = |v: String| if self.traffic_ticks > 0 { v } else { String::new() };
        let latency = |v: String| if self.latency_ticks > 0 { v } else { String::new() };
        vec![
            self.label.clone(),
            format!("{:.0}", self.duration_s),
            traffic(format!("{:.0}", self.requests)),
            traffic(format!("{:.0}", self.served)),
            traffic(format!("{:.0}", self.dropped)),
            traffic(format!("{:.2}", self.dropped_pct())),
            o(self.p50_ms, 1),
            o(self.p95_ms, 1),
            o(self.p99_ms, 1),
            o(self.tick_p99_ms, 1),
            o(self.peak_p99_ms, 1),
            latency(self.slo_violations.to_string()),
            latency(format!("{:.1}", self.slo_violation_pct)),
            latency(format!("{:.0}", self.slo_violation_s)),
            format!("{:.0}", self.replica_seconds),
            format!("{:.2}", self.mean_replicas),
            format!("{:.0}", self.max_replicas),
            format!("{:.4}", self.cpu_core_hours),
            format!("{:.3}", self.mean_cores),
            format!("{:.3}", self.peak_cores),
            self.scale_events.to_string(),
            self.oscillations.to_string(),
            self.load_steps.to_string(),
            o(self.time_to_scale_s, 0),
            self.fallback_ticks.to_string(),
        ]
    }
}

/// The table printed on stdout (Markdown, so it pastes into a README).
pub fn table(summaries: &[Summary], cfg: &ReportConfig) -> String {
    let head = [
        "policy".to_string(),
        "served".into(),
        "dropped".into(),
        "p50 ms".into(),
        "p95 ms".into(),
        "p99 ms".into(),
        "tick p99 ms".into(),
        "peak p99 ms".into(),
        format!("SLO p{} > {} ms", cfg.slo_percentile, cfg.slo_ms),
        "replica·s".into(),
        "mean cores".into(),
        "peak cores".into(),
        "CPU core·h".into(),
        "scale events".into(),
        "oscillations".into(),
        "time to scale".into(),
    ];
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            vec![
                s.label.clone(),
                if s.traffic_ticks > 0 {
                    let pct = if s.requests > 0.0 { 100.0 * s.served / s.requests } else { 100.0 };
                    format!("{:.0} ({pct:.1} %)", s.served)
                } else {
                    "-".into()
                },
                if s.traffic_ticks > 0 { format!("{:.0} ({:.1} %)", s.dropped, s.dropped_pct()) } else { "-".into() },
                opt(s.p50_ms, 1),
                opt(s.p95_ms, 1),
                opt(s.p99_ms, 1),
                opt(s.tick_p99_ms, 1),
                opt(s.peak_p99_ms, 1),
                if s.latency_ticks > 0 {
                    format!("{} ({:.0} %)", s.slo_violations, s.slo_violation_pct)
                } else {
                    "-".into()
                },
                format!("{:.0}", s.replica_seconds),
                format!("{:.2}", s.mean_cores),
                format!("{:.2}", s.peak_cores),
                format!("{:.3}", s.cpu_core_hours),
                s.scale_events.to_string(),
                s.oscillations.to_string(),
                s.time_to_scale_s.map_or("-".into(), |t| format!("{t:.0} s")),
            ]
        })
        .collect();
    markdown(&head, &rows)
}

/// A Markdown table: the first column left-aligned, the others right-aligned.
pub fn markdown(head: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..head.len())
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|x| x.chars().count())
                .chain([head[c].chars().count(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut l = String::from("|");
        for (c, cell) in cells.iter().enumerate() {
            let pad = widths.get(c).copied().unwrap_or(0).saturating_sub(cell.chars().count());
            if c == 0 {
                let _ = write!(l, " {cell}{} |", " ".repeat(pad));
            } else {
                let _ = write!(l, " {}{cell} |", " ".repeat(pad));
            }
        }
        l
    };
    let mut out = line(head);
    out.push('\n');
    let sep: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(c, w)| if c == 0 { "-".repeat(*w) } else { format!("{}:", "-".repeat(w.saturating_sub(1))) })
        .collect();
    out.push_str(&line(&sep));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// Write the summary CSV.
pub fn write_summary(path: &Path, summaries: &[Summary]) -> Result<(), String> {
    let name = path.display().to_string();
    let mut w = csv::Writer::from_path(path).map_err(|e| format!("{name}: {e}"))?;
    w.write_record(SUMMARY_COLUMNS).map_err(|e| format!("{name}: {e}"))?;
    for s in summaries {
        w.write_record(s.cells()).map_err(|e| format!("{name}: {e}"))?;
    }
    w.flush().map_err(|e| format!("{name}: {e}"))
}

/// Everything a report writes: the summary CSV and the plots, into `dir`; returns the files.
pub fn write_outputs(
    dir: &Path,
    runs: &[RunData],
    summaries: &[Summary],
    cfg: &ReportConfig,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let summary = dir.join("summary.csv");
    write_summary(&summary, summaries)?;
    let mut files = vec![summary];
    files.extend(plot::plot_all(dir, runs, cfg)?);
    Ok(files)
}

/// `scaletui report CSV...`: a label per file (`LABEL=PATH`, else the file name without
/// `.csv`), optionally one run per phase.
pub fn report(inputs: &[String], by_phase: bool, out_dir: &Path, cfg: &ReportConfig) -> Result<String, String> {
    let mut runs = Vec::new();
    for arg in inputs {
        let (label, path) = match arg.split_once('=') {
            Some((l, p)) if !l.is_empty() && !Path::new(arg).exists() => (l.to_string(), PathBuf::from(p)),
            _ => {
                let p = PathBuf::from(arg);
                let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| arg.clone());
                (stem, p)
            }
        };
        let run = load_run(&path, &label)?;
        if by_phase {
            runs.extend(split_phases(&run));
        } else {
            runs.push(run);
        }
    }
    if runs.is_empty() {
        return Err("no records given".into());
    }
    let summaries: Vec<Summary> = runs.iter().map(|r| summarize(r, cfg)).collect();
    let files = write_outputs(out_dir, &runs, &summaries, cfg)?;
    let mut text = String::new();
    // The settings in force, from the summary file a run left beside its record.
    let mut seen = std::collections::BTreeSet::new();
    for r in &runs {
        if seen.insert(r.path.clone())
            && let Some(v) = crate::engine::record::summary::read_settings(&r.path)
        {
            let label = r.label.split(':').next().unwrap_or(&r.label);
            let _ = writeln!(text, "{label}: {}", crate::engine::record::summary::describe_settings(&v));
        }
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&table(&summaries, cfg));
    text.push('\n');
    for f in files {
        let _ = writeln!(text, "wrote {}", f.display());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: f64, replicas: f64, ready: f64, rps: f64, p95: f64) -> RunRow {
        RunRow {
            obs: Obs {
                elapsed_s: t,
                current_replicas: Some(replicas),
                ready_replicas: Some(ready),
                cpu_m: Some(50.0),
                pod_count: Some(ready),
                rps: Some(rps),
                errors_per_s: Some(1.0),
                p95_ms: Some(p95),
                ..Obs::default()
            },
            mode: "hpa_only".into(),
            served_rps: Some(rps - 1.0),
            p50_ms: Some(p95 / 2.0),
            p99_ms: Some(p95 * 2.0),
            ..RunRow::default()
        }
    }

    #[test]
    fn figures_of_a_small_run() {
        let rows = vec![
            row(0.0, 2.0, 2.0, 10.0, 10.0),
            row(30.0, 2.0, 2.0, 11.0, 20.0),
            row(60.0, 4.0, 2.0, 41.0, 200.0),
            row(90.0, 4.0, 4.0, 41.0, 30.0),
            row(120.0, 3.0, 3.0, 11.0, 10.0),
        ];
        let run = RunData { label: "x".into(), path: PathBuf::new(), rows, exact: None };
        let s = summarize(&run, &ReportConfig::default());
        assert_eq!(s.duration_s, 120.0);
        assert_eq!(s.requests, 30.0 * (11.0 + 41.0 + 41.0 + 11.0));
        assert_eq!(s.served, 30.0 * (10.0 + 40.0 + 40.0 + 10.0));
        assert_eq!(s.dropped, 120.0);
        // Replicas hold until the next row: 2, 2, 4, 4 over 30 s each.
        assert_eq!(s.replica_seconds, 30.0 * 12.0);
        assert_eq!((s.scale_events, s.oscillations), (2, 1));
        assert_eq!(s.slo_violations, 1, "one tick's p95 over 100 ms");
        assert_eq!(s.slo_violation_pct, 20.0);
        assert_eq!(s.slo_violation_s, 30.0, "the violating tick covers 30 s");
        // p95 weighted by served requests of each interval (the first row has none).
        let want = (20.0 * 300.0 + 200.0 * 1200.0 + 30.0 * 1200.0 + 10.0 * 300.0) / 3000.0;
        assert!((s.p95_ms.unwrap_or(0.0) - want).abs() < 1e-9);
        assert_eq!(s.peak_p99_ms, Some(400.0));
        // One load step seen at 60 s; ready replicas rise at 90 s.
        assert_eq!((s.load_steps, s.time_to_scale_s), (1, Some(30.0)));
        // CPU: 50 m × ready pods over each interval.
        let want_ch = (0.1 + 0.1 + 0.2 + 0.15) * 30.0 / 3600.0;
        assert!((s.cpu_core_hours - want_ch).abs() < 1e-12);
    }

    /// A record with the seed tool's 25 columns only, its timestamps in `stamps`.
    fn seed_record(dir: &Path, stamps: &[&str]) -> PathBuf {
        let path = dir.join("experiment_hpa_only_seed.csv");
        let mut text = crate::engine::record::SEED_COLUMNS.join(",") + "\n";
        for (i, t) in stamps.iter().enumerate() {
            let replicas = if i < 2 { 3 } else { 5 };
            text += &format!(
                "{t},hpa_only,{replicas},{replicas},80.5,40.2,100,64,{replicas},3,2.4,3,1,no_change,0.8,0.6,{replicas},{replicas},,,,,,,hpa\n"
            );
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn a_seed_tools_record_is_read_with_time_from_its_timestamps() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The seed runner wrote naive UTC ISO times; scaletui writes RFC 3339.
        for stamps in [
            [
                "2025-03-01T12:00:00.250000",
                "2025-03-01T12:00:30.250000",
                "2025-03-01T12:01:00.250000",
                "2025-03-01 12:01:30.250000",
            ],
            ["2025-03-01T12:00:00Z", "2025-03-01T12:00:30Z", "2025-03-01T13:01:00+01:00", "2025-03-01T12:01:30.000Z"],
        ] {
            let run = load_run(&seed_record(dir.path(), &stamps), "seed").expect("reads");
            let t: Vec<f64> = run.rows.iter().map(|r| r.obs.elapsed_s).collect();
            assert_eq!(t, [0.0, 30.0, 60.0, 90.0], "{stamps:?}");
            let s = summarize(&run, &ReportConfig::default());
            assert_eq!(s.replica_seconds, 30.0 * (3.0 + 3.0 + 5.0));
            assert_eq!(s.scale_events, 1);
            // No traffic or latency recorded: unknown, not zero.
            let t = table(&[s], &ReportConfig::default());
            let row = t.lines().nth(2).expect("a row");
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(&cells[2..8], ["-", "-", "-", "-", "-", "-"], "{row}");
        }
        let bad = seed_record(dir.path(), &["2025-03-01T12:00:00", "yesterday"]);
        let e = load_run(&bad, "seed").expect_err("a bad time");
        assert!(e.contains("row 3: timestamp is not a date and time: \"yesterday\""), "{e}");
    }

    #[test]
    fn phases_split_where_the_mode_changes() {
        let mut rows: Vec<RunRow> = (0..6).map(|i| row(f64::from(i) * 30.0, 2.0, 2.0, 10.0, 5.0)).collect();
        for r in &mut rows[2..4] {
            r.mode = "ai_scaler".into();
            r.driver = "queue".into();
        }
        let run = RunData { label: "run".into(), path: PathBuf::new(), rows, exact: None };
        let labels: Vec<String> = split_phases(&run).into_iter().map(|p| p.label).collect();
        assert_eq!(labels, ["run:hpa_only", "run:ai_scaler/queue", "run:hpa_only#2"]);
    }

    #[test]
    fn table_is_markdown() {
        let s = Summary { label: "hpa-70".into(), served: 100.0, ..Summary::default() };
        let t = table(&[s], &ReportConfig::default());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("| policy"));
        assert!(lines[1].starts_with("| ------ | ---"), "{}", lines[1]);
        assert!(lines[2].contains("hpa-70"));
    }
}
