//! The engine foundation, black box: the real binary run headless on the simulated cluster.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scaletui"));
    // Never pick up a developer's config.
    c.env_remove("SCALETUI_CONFIG").current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn csv_in(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .expect("output dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "csv") && !p.to_string_lossy().ends_with("_events.csv"))
        .expect("a CSV was written")
}

fn rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).expect("readable CSV");
    let header = r.headers().expect("header").iter().map(String::from).collect();
    let rows = r.records().map(|x| x.expect("complete row").iter().map(String::from).collect()).collect();
    (header, rows)
}

fn classic(out: &Path, seed: &str) -> std::process::Output {
    bin()
        .args(["--headless", "--speed", "max", "--duration", "30", "--scenario", "scenarios/classic.toml"])
        .args(["--mode", "hpa_only", "--seed", seed, "--output-dir"])
        .arg(out)
        .output()
        .expect("runs")
}

const SEED_COLUMNS: &str = "timestamp,mode,current_replicas,ready_replicas,cpu_millicores,memory_mebibytes,\
cpu_request_millicores,memory_request_mebibytes,pod_count,hpa_sim_desired,hpa_sim_raw_desired,hpa_sim_cpu_desired,\
hpa_sim_mem_desired,hpa_sim_action,hpa_sim_cpu_ratio,hpa_sim_mem_ratio,hpa_current_replicas,hpa_desired_replicas,\
ai_recommended_replicas,ai_predicted_cpu_millicores,ai_predicted_memory_mebibytes,ai_confidence,ai_reasoning,\
applied_replicas,applied_by";

#[test]
fn classic_scenario_headless_records_the_ramp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = classic(dir.path(), "42");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = csv_in(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&csv.display().to_string()), "prints the CSV path: {stdout}");
    let name = csv.file_name().expect("name").to_string_lossy().to_string();
    assert!(
        name.starts_with("experiment_hpa_only_") && name.len() == "experiment_hpa_only_YYYYmmdd_HHMMSS.csv".len(),
        "{name}"
    );

    let (header, rows) = rows(&csv);
    assert_eq!(header[..25].join(","), SEED_COLUMNS);
    assert_eq!(rows.len(), 60, "one row per 30 s for 30 minutes");
    let col = |n: &str| header.iter().position(|h| h == n).expect("column");
    let replicas: Vec<i32> = rows.iter().map(|r| r[col("current_replicas")].parse().expect("int")).collect();
    let peak = *replicas.iter().max().expect("rows");
    let peak_at = replicas.iter().position(|r| *r == peak).expect("peak");
    assert!(replicas[0] == 3 && peak > 3, "rise under the ramp: {replicas:?}");
    assert!(peak_at <= 10, "peak while the load and stress last (first 300 s): {replicas:?}");
    assert!(*replicas.last().expect("last") < peak, "fall after it: {replicas:?}");
    assert!(rows.iter().all(|r| r[col("mode")] == "hpa_only" && r[col("applied_by")] == "hpa"));
    // The stress windows are visible per tick.
    assert!(rows.iter().any(|r| r[col("stress_cpu_workers")] != "0"));
    assert!(rows.iter().any(|r| r[col("stress_memory_mib")] != "0"));
    // Unknown AI values are empty, never 0.
    assert!(rows.iter().all(|r| r[col("ai_recommended_replicas")].is_empty()));

    let events = std::fs::read_to_string(csv.with_file_name(name.replace(".csv", "_events.csv"))).expect("events file");
    for kind in ["run_start", "mode_switch", "task_start", "task_stop", "run_end"] {
        assert!(events.contains(kind), "{kind} in {events}");
    }
}

#[test]
fn same_seed_same_record_apart_from_wall_clock() {
    let (a, b, c) = (tempfile::tempdir().expect("t"), tempfile::tempdir().expect("t"), tempfile::tempdir().expect("t"));
    assert!(classic(a.path(), "7").status.success());
    assert!(classic(b.path(), "7").status.success());
    assert!(classic(c.path(), "8").status.success());
    let strip = |p: &Path| -> Vec<Vec<String>> {
        let (header, rows) = rows(&csv_in(p));
        // Wall-clock measurements: the timestamp and the advisor call's timings.
        let wall = ["timestamp", "ai_latency_ms", "ai_ttft_ms"];
        let keep: Vec<bool> = header.iter().map(|h| !wall.contains(&h.as_str())).collect();
        rows.into_iter().map(|r| r.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c).collect()).collect()
    };
    let (ra, rb, rc) = (strip(a.path()), strip(b.path()), strip(c.path()));
    assert_eq!(ra, rb, "same seed, same rows");
    assert_ne!(ra, rc, "another seed, another run");
}

#[test]
fn interrupted_runs_leave_complete_rows() {
    for signal in ["-INT", "-TERM"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = bin()
            .args(["--headless", "--speed", "200", "--interval", "1", "--duration", "0", "--output-dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        // Wait for a few rows, then signal.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let n = std::fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0);
            if n > 0 && std::fs::read_to_string(csv_in(dir.path())).map(|s| s.lines().count()).unwrap_or(0) > 5 {
                break;
            }
            assert!(Instant::now() < deadline, "no rows after 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = Command::new("kill").arg(signal).arg(child.id().to_string()).status().expect("kill");
        assert!(status.success());
        let status = child.wait().expect("exits");
        assert!(status.success(), "{signal}: clean exit, got {status:?}");
        let csv = csv_in(dir.path());
        let text = std::fs::read_to_string(&csv).expect("csv");
        assert!(text.ends_with("\r\n"), "{signal}: last line complete");
        let (header, rows) = rows(&csv);
        assert!(rows.len() > 4);
        assert!(rows.iter().all(|r| r.len() == header.len()));
        let events = std::fs::read_to_string(csv.to_string_lossy().replace(".csv", "_events.csv")).expect("events");
        assert!(events.contains("run_end") && events.contains("interrupted"), "{events}");
    }
}

/// A panic of the engine in a headless run: the HPA that ai_scaler removed is put back by
/// scaletui itself, the rows so far are complete, the exit status is 101.
#[test]
fn an_engine_panic_headless_still_restores_the_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trigger = dir.path().join("panic-now");
    let out = dir.path().join("data");
    let child = bin()
        .args(["--headless", "--mode", "ai_scaler", "--speed", "200", "--interval", "1", "--duration", "0"])
        .arg("--output-dir")
        .arg(&out)
        .env("SCALETUI_FAULT_PANIC_IN", "engine")
        .env("SCALETUI_FAULT_PANIC_WHEN_FILE", &trigger)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0) == 0
        || std::fs::read_to_string(csv_in(&out)).map(|s| s.lines().count()).unwrap_or(0) <= 3
    {
        assert!(Instant::now() < deadline, "no rows after 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&trigger, b"").expect("trigger");
    let o = child.wait_with_output().expect("exits");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(101), "{err}");
    assert!(err.contains("fault injected in the engine"), "{err}");
    assert!(err.contains("restored: restored the HPA as it was at start"), "{err}");
    let (header, rows) = rows(&csv_in(&out));
    assert!(rows.len() >= 3 && rows.iter().all(|r| r.len() == header.len()));
}

#[test]
fn malformed_config_is_a_one_line_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("bad.toml", "[experiment\nmode = 1\n", "bad.toml:1"),
        ("unknown.toml", "[experiment]\nintervall = 5\n", "unknown.toml:2: key `experiment.intervall`"),
        ("negative.toml", "[experiment]\ninterval = -5\n", "negative.toml:2: key `experiment.interval`"),
    ];
    for (name, text, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let out = bin().arg("--config").arg(&path).args(["--headless", "--duration", "1"]).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
    // The same file through $SCALETUI_CONFIG.
    let out = bin()
        .env("SCALETUI_CONFIG", dir.path().join("negative.toml"))
        .args(["--headless", "--duration", "1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    // A bad flag names the flag.
    let out = bin().args(["--headless", "--interval", "-3"]).output().expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--interval"), "{}", String::from_utf8_lossy(&out.stderr));
    // An absurd duration is refused at once, not run until killed.
    let out = bin().args(["--headless", "--speed", "max", "--duration", "1e20"]).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--duration") && err.contains("525600"), "{err}");
    // A theme where nothing is drawn: a typo is an error, a real theme a one-line warning.
    let out = bin().args(["--theme", "no-such-theme", "hpa", "conformance"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown theme \"no-such-theme\""));
    let out = bin().args(["--theme", "light", "hpa", "conformance"]).output().expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no effect"));
}

#[test]
fn hpa_explain_prints_the_decision_and_its_steps() {
    use std::io::Write;
    let cases: serde_json::Value = serde_json::from_str(include_str!("data/hpa_cases.json")).expect("cases");
    let case = cases.as_array().expect("array").iter().find(|c| c["id"] == "e2e-001").expect("e2e-001");
    let mut child =
        bin().args(["hpa", "explain", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("starts");
    child.stdin.take().expect("stdin").write_all(case["input"].to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("runs");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON out");
    assert_eq!(v["desired_replicas"], case["expect"]["desired_replicas"]);
    let steps: Vec<&str> = v["steps"].as_array().expect("steps").iter().filter_map(|s| s["step"].as_str()).collect();
    for s in ["metrics", "max_over_metrics", "stabilization", "rate_limit_and_clamp", "decision"] {
        assert!(steps.contains(&s), "{s} in {steps:?}");
    }
    let metric = &v["metrics"][0]["proposal"];
    assert_eq!(metric["replicas"], 5);
    assert!(metric["trace"]["usage_ratio"].as_f64().expect("ratio") > 1.6);
    // Garbage in: a clear error, exit 2.
    let out = bin().args(["hpa", "explain", "/nonexistent.json"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `scaletui … | head` : the reader is gone before anything is written.
    for args in [&["config", "--default"][..], &["hpa", "conformance"][..]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = bin().args(args).stdout(writer).stderr(Stdio::piped()).output().expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_headless_run_writes_its_summary_with_the_settings_in_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = classic(dir.path(), "42");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = csv_in(dir.path());
    let summary_path = PathBuf::from(csv.display().to_string().replace(".csv", "_summary.json"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&summary_path.display().to_string()), "prints the summary path: {stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).expect("summary written")).expect("JSON");
    assert_eq!(v["source"], "simulator");
    let r = &v["requests"];
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("requests.{k}"));
    assert!(n("arrived") > 10_000, "{r}");
    // The model's totals agree with the ticks' counts of the record.
    let (header, rows) = rows(&csv);
    let col = |name: &str| header.iter().position(|h| h == name).expect("column");
    let sum = |name: &str| rows.iter().map(|row| row[col(name)].parse::<u64>().unwrap_or(0)).sum::<u64>();
    assert_eq!(sum("arrived"), n("arrived"));
    assert_eq!(sum("served"), n("served"));
    let settled = n("served") + n("rejected") + n("timed_out") + n("failed");
    assert!(settled <= n("arrived") && n("arrived") <= settled + in_flight_at_end(&header, &rows), "{r}");
    let l = &v["latency_s"];
    let (p50, p99, max) =
        (l["p50"].as_f64().expect("p50"), l["p99"].as_f64().expect("p99"), l["max"].as_f64().expect("max"));
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{l}");
    assert!(v["cpu_core_seconds"].as_f64().expect("cpu") > 0.0);
    assert!(v["scale_events"].as_u64().expect("events") >= 2);
    assert_eq!(v["settings"]["sim"]["routing"], "random");
    assert_eq!(v["settings"]["scaling"]["metrics"], serde_json::json!(["cpu", "memory"]));
}

/// Requests still in the system at the last tick (in the model: arrived but not yet counted).
fn in_flight_at_end(header: &[String], rows: &[Vec<String>]) -> u64 {
    let col = header.iter().position(|h| h == "in_flight").expect("in_flight");
    rows.last().and_then(|r| r[col].parse::<f64>().ok()).map_or(0, |v| v as u64)
}

#[test]
fn the_printed_config_loads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bin().args(["--speed", "max", "--seed", "9", "config"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = dir.path().join("printed.toml");
    std::fs::write(&file, &out.stdout).expect("write");
    let again = bin().arg("--config").arg(&file).arg("config").output().expect("runs");
    assert!(again.status.success(), "the printed config loads: {}", String::from_utf8_lossy(&again.stderr));
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("speed = \"max\"") && text.contains("seed = 9"), "{text}");
}

#[test]
fn scenario_settings_sit_between_the_config_file_and_the_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sc = dir.path().join("s.toml");
    std::fs::write(&sc, "[[load]]\npattern = \"constant\"\nrps = 5\nduration_s = 60\n[sim]\nconcurrency = 3\nseed = 5\n[scaling]\nmax_replicas = 4\n").expect("scenario");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[sim]\nconcurrency = 2\nqueue_capacity = 7\n[scaling]\nmax_replicas = 9\n").expect("config");
    let show = |extra: &[&str]| {
        let out = bin()
            .arg("--config")
            .arg(&cfg)
            .arg("--scenario")
            .arg(&sc)
            .args(extra)
            .arg("config")
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: toml::Table = String::from_utf8_lossy(&out.stdout).parse().expect("toml");
        v
    };
    let v = show(&[]);
    assert_eq!(v["sim"]["concurrency"].as_integer(), Some(3), "the scenario over the file");
    assert_eq!(v["sim"]["queue_capacity"].as_integer(), Some(7), "the file where the scenario is silent");
    assert_eq!(v["scaling"]["max_replicas"].as_integer(), Some(4));
    let v = show(&["--max-replicas", "6", "--seed", "11"]);
    assert_eq!(v["scaling"]["max_replicas"].as_integer(), Some(6), "a flag given wins");
    assert_eq!(v["sim"]["seed"].as_integer(), Some(11));
    std::fs::write(&sc, "[sim]\nconcurency = 3\n").expect("scenario");
    let out = bin().arg("--scenario").arg(&sc).arg("config").output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("concurency"), "{err}");
}
