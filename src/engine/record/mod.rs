//! The CSV record (PRODUCT.md §4): one file per run, header first, one row per control tick,
//! flushed per row; the 25 columns existing analysis scripts read come first, in order, then
//! scaletui's own. Events go to `<same name>_events.csv`.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub mod summary;

use crate::engine::types::{MetricsSample, Mode, Traffic, rfc3339};

/// The seed experiment runner's columns, in its order.
pub const SEED_COLUMNS: [&str; 25] = [
    "timestamp",
    "mode",
    "current_replicas",
    "ready_replicas",
    "cpu_millicores",
    "memory_mebibytes",
    "cpu_request_millicores",
    "memory_request_mebibytes",
    "pod_count",
    "hpa_sim_desired",
    "hpa_sim_raw_desired",
    "hpa_sim_cpu_desired",
    "hpa_sim_mem_desired",
    "hpa_sim_action",
    "hpa_sim_cpu_ratio",
    "hpa_sim_mem_ratio",
    "hpa_current_replicas",
    "hpa_desired_replicas",
    "ai_recommended_replicas",
    "ai_predicted_cpu_millicores",
    "ai_predicted_memory_mebibytes",
    "ai_confidence",
    "ai_reasoning",
    "applied_replicas",
    "applied_by",
];

/// scaletui's own columns, after the seed's.
pub const OWN_COLUMNS: [&str; 45] = [
    "elapsed_s",
    "backend",
    "metrics_source",
    "metrics_status",
    "cluster_status",
    "hpa_present",
    "hpa_sim_reason",
    "applied_note",
    "recommended_replicas",
    "applied_limit",
    "rps",
    "served_rps",
    "errors_per_s",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "in_flight",
    "waiting",
    "in_flight_per_pod",
    "waiting_per_pod",
    "latency_mean_ms",
    "arrived",
    "served",
    "rejected",
    "timed_out",
    "failed",
    "load_target_rps",
    "load_achieved_rps",
    "load_p50_ms",
    "load_p95_ms",
    "load_p99_ms",
    "load_errors",
    "load_late",
    "stress_cpu_workers",
    "stress_memory_mib",
    "stress_pods",
    "ai_status",
    "ai_error",
    "ai_latency_ms",
    "ai_ttft_ms",
    "ai_prompt_tokens",
    "ai_completion_tokens",
    "ai_attempts",
    "driver",
    "scenario",
];

/// The `hpa_sim_*` figures of one tick.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct HpaSim {
    /// After stabilization and limits.
    pub desired: Option<i32>,
    /// Max over metrics, before stabilization and limits.
    pub raw_desired: Option<i32>,
    pub cpu_desired: Option<i32>,
    pub mem_desired: Option<i32>,
    /// `scale_up`, `scale_down`, `no_change`.
    pub action: String,
    /// Utilization / target (the HPA's usage ratio).
    pub cpu_ratio: Option<f64>,
    pub mem_ratio: Option<f64>,
    /// What shaped the result (e.g. `ScaleDownStabilized`, `ScaleUpLimit`, a metric error).
    pub reason: String,
}

/// The AI advisor's figures of one tick.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct AiColumns {
    pub recommended_replicas: Option<i32>,
    pub predicted_cpu_millicores: Option<f64>,
    pub predicted_memory_mebibytes: Option<f64>,
    pub confidence: Option<f64>,
    pub reasoning: Option<String>,
    pub status: Option<String>,
    pub error: Option<String>,
    pub latency_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub attempts: Option<u32>,
}

/// The load generator's figures over the tick.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct LoadColumns {
    pub target_rps: Option<f64>,
    pub achieved_rps: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub errors: Option<u64>,
    pub late: Option<u64>,
}

/// One control tick: everything recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Row {
    pub t: f64,
    pub elapsed_s: f64,
    pub mode: Mode,
    pub current_replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    pub cpu_millicores: Option<f64>,
    pub memory_mebibytes: Option<f64>,
    pub cpu_request_millicores: Option<f64>,
    pub memory_request_mebibytes: Option<f64>,
    pub pod_count: Option<u32>,
    pub hpa_sim: HpaSim,
    pub hpa_current_replicas: Option<i32>,
    pub hpa_desired_replicas: Option<i32>,
    pub ai: AiColumns,
    pub applied_replicas: Option<i32>,
    pub applied_by: String,
    pub backend: String,
    pub metrics_source: String,
    pub metrics_status: String,
    pub cluster_status: String,
    pub hpa_present: Option<bool>,
    pub applied_note: String,
    /// The driver's recommendation this tick, as it answered (before clamps and limits).
    pub recommended_replicas: Option<i32>,
    /// What limited it in `ai_scaler` (`[scaling] apply_limits`): e.g. `scaleUp Percent 100/15s`.
    pub applied_limit: String,
    pub traffic: Option<Traffic>,
    pub load: LoadColumns,
    pub stress_cpu_workers: u32,
    pub stress_memory_mib: u64,
    pub stress_pods: u32,
    pub driver: String,
    pub scenario: String,
    /// Extra recommenders: name → (replicas, status, their own columns' values).
    pub recommenders: Vec<RecommenderCells>,
}

/// One extra recommender's cells.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct RecommenderCells {
    pub name: String,
    pub replicas: Option<i32>,
    pub status: String,
    /// Values of the recommender's own columns, in the order it declared them.
    pub values: Vec<String>,
}

fn f(v: Option<f64>, dp: usize) -> String {
    match v {
        Some(x) if x.is_finite() => {
            let s = format!("{x:.dp$}");
            // "-0.000" → "0.000"
            if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') { s[1..].to_string() } else { s }
        }
        _ => String::new(),
    }
}

fn i<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// One line of text: control characters and escape sequences removed, whitespace collapsed.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte, ESC ] ... BEL/ST, or ESC + one char.
            match chars.peek() {
                Some('[') => {
                    chars.next();
                    for n in chars.by_ref() {
                        if ('@'..='~').contains(&n) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    chars.next();
                    while let Some(n) = chars.next() {
                        if n == '\u{7}' {
                            break;
                        }
                        if n == '\u{1b}' {
                            chars.next();
                            break;
                        }
                    }
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            }
            continue;
        }
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            if !out.ends_with(' ') {
                out.push(' ');
            }
            continue;
        }
        if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
            continue;
        }
        out.push(c);
    }
    out.trim().to_string()
}

impl Row {
    /// A row holding only what a metrics sample saw (history from before the run).
    pub fn from_sample(s: &MetricsSample) -> Self {
        Row {
            t: s.at,
            cpu_millicores: s.cpu_millicores,
            memory_mebibytes: s.memory_mebibytes,
            cpu_request_millicores: s.cpu_request_millicores,
            memory_request_mebibytes: s.memory_request_mebibytes,
            pod_count: s.pod_count,
            traffic: s.traffic,
            metrics_status: s.status.kind().to_string(),
            ..Row::default()
        }
    }

    /// What the tick's metrics source saw, as the row records it (no per-pod detail).
    pub fn sample(&self) -> MetricsSample {
        MetricsSample {
            at: self.t,
            cpu_millicores: self.cpu_millicores,
            memory_mebibytes: self.memory_mebibytes,
            cpu_request_millicores: self.cpu_request_millicores,
            memory_request_mebibytes: self.memory_request_mebibytes,
            pod_count: self.pod_count,
            per_pod: Vec::new(),
            traffic: self.traffic,
            status: Default::default(),
        }
    }

    /// The cells in header order (`extra` recommenders' columns as declared at the start).
    pub fn cells(&self) -> Vec<String> {
        let h = &self.hpa_sim;
        let a = &self.ai;
        let tr = self.traffic;
        let counts = tr.and_then(|t| t.counts);
        let mut c = vec![
            rfc3339(self.t),
            self.mode.to_string(),
            i(self.current_replicas),
            i(self.ready_replicas),
            f(self.cpu_millicores, 3),
            f(self.memory_mebibytes, 3),
            f(self.cpu_request_millicores, 3),
            f(self.memory_request_mebibytes, 3),
            i(self.pod_count),
            i(h.desired),
            i(h.raw_desired),
            i(h.cpu_desired),
            i(h.mem_desired),
            h.action.clone(),
            f(h.cpu_ratio, 4),
            f(h.mem_ratio, 4),
            i(self.hpa_current_replicas),
            i(self.hpa_desired_replicas),
            i(a.recommended_replicas),
            f(a.predicted_cpu_millicores, 3),
            f(a.predicted_memory_mebibytes, 3),
            f(a.confidence, 3),
            a.reasoning.as_deref().map(one_line).unwrap_or_default(),
            i(self.applied_replicas),
            self.applied_by.clone(),
        ];
        c.extend([
            f(Some(self.elapsed_s), 3),
            self.backend.clone(),
            self.metrics_source.clone(),
            one_line(&self.metrics_status),
            one_line(&self.cluster_status),
            self.hpa_present.map(|b| if b { "true" } else { "false" }.to_string()).unwrap_or_default(),
            one_line(&h.reason),
            one_line(&self.applied_note),
            i(self.recommended_replicas),
            one_line(&self.applied_limit),
            f(tr.map(|t| t.rps), 3),
            f(tr.map(|t| t.served_rps), 3),
            f(tr.map(|t| t.errors_per_s), 3),
            f(tr.and_then(|t| t.p50_ms), 3),
            f(tr.and_then(|t| t.p95_ms), 3),
            f(tr.and_then(|t| t.p99_ms), 3),
            f(tr.map(|t| t.in_flight), 3),
            f(tr.map(|t| t.waiting), 3),
            f(tr.map(|t| t.in_flight_per_pod), 3),
            f(tr.map(|t| t.waiting_per_pod), 3),
            f(tr.and_then(|t| t.mean_ms), 3),
            i(counts.map(|c| c.arrived)),
            i(counts.map(|c| c.served)),
            i(counts.map(|c| c.rejected)),
            i(counts.map(|c| c.timed_out)),
            i(counts.map(|c| c.failed)),
            f(self.load.target_rps, 3),
            f(self.load.achieved_rps, 3),
            f(self.load.p50_ms, 3),
            f(self.load.p95_ms, 3),
            f(self.load.p99_ms, 3),
            i(self.load.errors),
            i(self.load.late),
            self.stress_cpu_workers.to_string(),
            self.stress_memory_mib.to_string(),
            self.stress_pods.to_string(),
            a.status.as_deref().map(one_line).unwrap_or_default(),
            a.error.as_deref().map(one_line).unwrap_or_default(),
            f(a.latency_ms, 1),
            f(a.ttft_ms, 1),
            i(a.prompt_tokens),
            i(a.completion_tokens),
            i(a.attempts),
            self.driver.clone(),
            self.scenario.clone(),
        ]);
        for r in &self.recommenders {
            c.push(i(r.replicas));
            c.push(one_line(&r.status));
            c.extend(r.values.iter().map(|v| one_line(v)));
        }
        c
    }
}

/// The header: seed columns, own columns, then `<name>_replicas`, `<name>_status` and each extra
/// recommender's own columns.
pub fn header(extra: &[(String, Vec<String>)]) -> Vec<String> {
    let mut h: Vec<String> = SEED_COLUMNS.iter().chain(OWN_COLUMNS.iter()).map(|s| s.to_string()).collect();
    for (name, cols) in extra {
        h.push(format!("{name}_replicas"));
        h.push(format!("{name}_status"));
        h.extend(cols.iter().map(|c| format!("{name}_{c}")));
    }
    h
}

/// A line of the events file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedEvent {
    pub t: f64,
    pub elapsed_s: f64,
    /// `run_start`, `mode_switch`, `scale`, `hpa`, `task_start`, `task_stop`, `task_failed`,
    /// `error`, `advisor`, `run_end`, …
    pub kind: String,
    pub mode: Mode,
    pub detail: String,
}

pub const EVENT_COLUMNS: [&str; 5] = ["timestamp", "elapsed_s", "kind", "mode", "detail"];

/// `<dir>/experiment_<mode>_<YYYYmmdd_HHMMSS>.csv` (UTC, wall clock at start).
pub fn run_file_name(mode: Mode, wall_start: f64) -> String {
    let stamp = jiff::Timestamp::from_nanosecond((wall_start * 1e9) as i128)
        .map(|t| t.strftime("%Y%m%d_%H%M%S").to_string())
        .unwrap_or_else(|_| "00000000_000000".into());
    format!("experiment_{mode}_{stamp}.csv")
}

/// Writes the run's CSV and events files, flushing after every line.
pub struct Recorder {
    rows: csv::Writer<File>,
    events: csv::Writer<File>,
    pub csv_path: PathBuf,
    pub events_path: PathBuf,
    pub columns: usize,
    pub rows_written: u64,
}

fn writer(path: &Path) -> std::io::Result<csv::Writer<File>> {
    let file = File::create(path)?;
    Ok(csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(file))
}

impl Recorder {
    /// Create `<dir>/experiment_<mode>_<stamp>.csv` and its events file, header first. If the
    /// name exists (two runs in the same second), a counter is appended.
    pub fn create(dir: &Path, mode: Mode, wall_start: f64, extra: &[(String, Vec<String>)]) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let base = run_file_name(mode, wall_start);
        let stem = base.trim_end_matches(".csv").to_string();
        let mut csv_path = dir.join(&base);
        let mut n = 1;
        while csv_path.exists() {
            csv_path = dir.join(format!("{stem}_{n}.csv"));
            n += 1;
        }
        let events_path = PathBuf::from(format!("{}_events.csv", csv_path.with_extension("").display()));
        let mut rows = writer(&csv_path)?;
        let h = header(extra);
        rows.write_record(&h)?;
        rows.flush()?;
        let mut events = writer(&events_path)?;
        events.write_record(EVENT_COLUMNS)?;
        events.flush()?;
        Ok(Self { rows, events, csv_path, events_path, columns: h.len(), rows_written: 0 })
    }

    pub fn write_row(&mut self, row: &Row) -> std::io::Result<()> {
        let cells = row.cells();
        debug_assert_eq!(cells.len(), self.columns);
        self.rows.write_record(&cells)?;
        self.rows.flush()?;
        self.rows_written += 1;
        Ok(())
    }

    pub fn write_event(&mut self, e: &RecordedEvent) -> std::io::Result<()> {
        self.events.write_record([
            rfc3339(e.t),
            format!("{:.3}", e.elapsed_s),
            e.kind.clone(),
            e.mode.to_string(),
            one_line(&e.detail),
        ])?;
        self.events.flush()
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.rows.flush()?;
        self.events.flush()?;
        self.rows.get_ref().sync_data()?;
        self.events.get_ref().sync_data()
    }
}

/// Write rows (e.g. what the dashboard holds) to `path` with the standard header.
pub fn export_rows(path: &Path, rows: &[Row], extra: &[(String, Vec<String>)]) -> std::io::Result<usize> {
    let encoded: Vec<Vec<u8>> = rows.iter().map(encode_row).collect();
    export_encoded(path, extra, encoded.iter().map(Vec::as_slice))?;
    Ok(rows.len())
}

/// One row as the record writes it (CSV cells, CRLF-terminated). The dashboard keeps its history
/// in this form: a few hundred bytes a row instead of a `Row`'s kilobyte.
pub fn encode_row(row: &Row) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::with_capacity(320));
    // Writing to memory cannot fail.
    let _ = w.write_record(row.cells());
    w.into_inner().unwrap_or_default()
}

/// Write the standard header then already-encoded rows ([`encode_row`]) to `path`.
pub fn export_encoded<'a>(
    path: &Path,
    extra: &[(String, Vec<String>)],
    rows: impl IntoIterator<Item = &'a [u8]>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut w = writer(path)?;
    w.write_record(header(extra))?;
    w.flush()?;
    let mut file = std::io::BufWriter::new(w.into_inner().map_err(|e| e.into_error())?);
    for r in rows {
        file.write_all(r)?;
    }
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_starts_with_the_seed_columns() {
        let h = header(&[("queue".into(), vec!["q".into()])]);
        assert_eq!(&h[..25], SEED_COLUMNS.map(String::from).as_slice());
        assert_eq!(h.len(), 25 + OWN_COLUMNS.len() + 3);
        assert_eq!(h.last().map(String::as_str), Some("queue_q"));
        assert_eq!(Row::default().cells().len(), 25 + OWN_COLUMNS.len());
    }

    #[test]
    fn unknown_values_are_empty_not_zero() {
        let c = Row::default().cells();
        assert_eq!(c[2], "");
        assert_eq!(c[4], "");
        assert_eq!(c[18], "");
    }

    #[test]
    fn reasoning_is_one_clean_line() {
        assert_eq!(one_line("up\n\tnow\u{1b}[31m red\u{1b}[0m\u{7} ok"), "up now red ok");
        assert_eq!(one_line("a\u{1b}]0;title\u{7}b"), "ab");
    }

    #[test]
    fn encoded_rows_read_back_as_the_recorder_writes_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let row = Row {
            current_replicas: Some(3),
            ai: AiColumns { reasoning: Some("a, \"quoted\"\nline".into()), ..AiColumns::default() },
            ..Row::default()
        };
        let path = dir.path().join("x").join("out.csv");
        assert_eq!(export_rows(&path, &[row.clone(), row.clone()], &[]).expect("export"), 2);
        let mut r = csv::Reader::from_path(&path).expect("readable");
        assert_eq!(r.headers().expect("header").len(), header(&[]).len());
        let recs: Vec<csv::StringRecord> = r.records().map(|x| x.expect("row")).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].iter().map(String::from).collect::<Vec<_>>(), row.cells());
        assert!(encode_row(&row).ends_with(b"\r\n"));
    }

    #[test]
    fn file_name_follows_the_seed() {
        assert_eq!(run_file_name(Mode::HpaOnly, 1_700_000_000.5), "experiment_hpa_only_20231114_221320.csv");
    }
}
