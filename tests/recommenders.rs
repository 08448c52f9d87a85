//! The built-in recommenders, `compare`, `report` and `train` through the real binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

mod support;

fn scaletui() -> Command {
    let mut c = Command::cargo_bin("scaletui").expect("binary");
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("SCALETUI_CONFIG");
    c
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn compare(out: &Path, policies: &str, seed: u64, ai_url: &str) -> (bool, String) {
    let o = scaletui()
        .args(["--config", "config.toml", "--ai-url", ai_url])
        .args(["compare", "--scenario", "classic", "--policies", policies])
        .args(["--seed", &seed.to_string(), "-o"])
        .arg(out)
        .output()
        .expect("runs");
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Header and rows of a CSV.
fn csv_rows(p: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(p).expect("csv");
    let h = r.headers().expect("header").iter().map(String::from).collect();
    let rows = r.records().map(|x| x.expect("row").iter().map(String::from).collect()).collect();
    (h, rows)
}

fn column<'a>(h: &[String], rows: &'a [Vec<String>], name: &str) -> Vec<&'a str> {
    let i = h.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name}"));
    rows.iter().map(|r| r[i].as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_is_reproducible_and_report_gives_the_same_figures() {
    // The `ai` policy asks an OpenAI-compatible stub that always recommends 4 replicas.
    let stub = support::openai_stub::Stub::start().await;
    stub.set_default(support::openai_stub::Reply::answer(4));
    let url = stub.base_url();
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let (ok, text) = compare(&a, "hpa:70,hpa:90,queue,forecast,ai", 7, &url);
    assert!(ok, "{text}");
    for p in ["hpa-70", "hpa-90", "queue", "forecast", "ai"] {
        assert!(text.contains(&format!("| {p}")), "{p} in the table:\n{text}");
        assert!(a.join(format!("{p}.csv")).is_file());
    }
    // The ai arm applied the advisor's answer.
    let (h, rows) = csv_rows(&a.join("ai.csv"));
    assert!(column(&h, &rows, "applied_by").iter().any(|b| *b == "ai" || *b == "ai_no_change"));
    // A dead advisor fails that policy with a clear message; the others are still compared.
    let dead = tmp.path().join("dead");
    let (ok, dead_text) = compare(&dead, "hpa:70,ai", 7, "http://127.0.0.1:9/v1");
    assert!(!ok, "a failed policy makes the exit status non-zero");
    assert!(dead_text.contains("FAILED ai") && dead_text.contains("never gave an answer"), "{dead_text}");
    assert!(dead_text.contains("| hpa-70"), "{dead_text}");
    for f in ["summary.csv", "replicas.png", "replicas.svg", "latency.png", "latency.svg", "cpu.png", "cpu.svg"] {
        let bytes = std::fs::read(a.join(f)).expect(f);
        assert!(bytes.len() > 400, "{f} has content");
    }
    // The same seed gives the same figures.
    let (_, _) = compare(&b, "hpa:70,hpa:90,queue,forecast,ai", 7, &url);
    assert_eq!(read(&a.join("summary.csv")), read(&b.join("summary.csv")));
    // Another seed gives other figures.
    let c = tmp.path().join("c");
    let (ok, _) = compare(&c, "hpa:70,queue", 8, &url);
    assert!(ok);
    let (_, rows_a) = csv_rows(&a.join("summary.csv"));
    let (_, rows_c) = csv_rows(&c.join("summary.csv"));
    assert_ne!(rows_a[0], rows_c[0], "seed 8 differs from seed 7");

    // `report` on two of the recorded CSVs: the same rows as compare's summary.
    let r = tmp.path().join("r");
    let out = scaletui()
        .args(["--config", "config.toml", "report"])
        .arg(a.join("hpa-70.csv"))
        .arg(a.join("queue.csv"))
        .arg("-o")
        .arg(&r)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (h1, compared) = csv_rows(&a.join("summary.csv"));
    let (h2, reported) = csv_rows(&r.join("summary.csv"));
    assert_eq!(h1, h2);
    assert_eq!(reported.len(), 2);
    assert_eq!(reported[0], compared[0], "hpa-70");
    assert_eq!(reported[1], compared[2], "queue");
    // And the table lines are the same (cell by cell; column widths follow the labels).
    let report_text = String::from_utf8_lossy(&out.stdout);
    for label in ["| hpa-70 ", "| queue "] {
        let line = |t: &str| {
            t.lines()
                .find(|l| l.starts_with(label))
                .map(|l| l.split('|').map(|c| c.trim().to_string()).collect::<Vec<String>>())
        };
        assert_eq!(line(report_text.as_ref()), line(&text), "{label}");
    }
    // The figures are plausible: requests were served, replicas and CPU were used.
    let served = column(&h1, &compared, "served");
    assert!(served.iter().all(|s| s.parse::<f64>().unwrap_or(0.0) > 10_000.0), "{served:?}");
}

#[test]
fn report_splits_phases_and_rejects_other_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = tmp.path().join("switch.toml");
    std::fs::write(
        &scenario,
        "name = \"switch\"\n[[load]]\npattern = \"constant\"\nrps = 80\nduration_s = 1200\n\
         [[mode]]\nat_s = 600\nmode = \"ai_scaler\"\n",
    )
    .expect("write");
    let out = scaletui()
        .args(["--config", "config.toml", "--headless", "--speed", "max", "--duration", "20", "--mode", "hpa_only"])
        .args(["--driver", "queue", "--scenario"])
        .arg(&scenario)
        .arg("--output-dir")
        .arg(tmp.path())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().next().expect("csv path").trim());
    let out = scaletui()
        .args(["--config", "config.toml", "report", "--by-phase", "-o"])
        .arg(tmp.path().join("rep"))
        .arg(format!("run={}", csv.display()))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("| run:hpa_only "), "{text}");
    assert!(text.contains("| run:ai_scaler/queue "), "{text}");
    // An events file is not a record.
    let events = PathBuf::from(format!("{}_events.csv", csv.with_extension("").display()));
    let out = scaletui().args(["report", "-o"]).arg(tmp.path().join("x")).arg(&events).output().expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a scaletui record"));
}

#[test]
fn each_recommender_records_and_drives() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A model for `learned`, trained on compare's records.
    let runs = tmp.path().join("runs");
    let (ok, _) = compare(&runs, "hpa:70,hpa:90,queue,forecast", 3, "http://127.0.0.1:9/v1");
    assert!(ok);
    let model = tmp.path().join("model.json");
    let out = scaletui()
        .args(["train", "--trees", "15", "--max-depth", "8", "-o"])
        .arg(&model)
        .args(["hpa-70", "hpa-90", "queue", "forecast"].map(|p| runs.join(format!("{p}.csv"))))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("model ") && text.contains("RMSE") && text.contains("within ±1"), "{text}");
    let config = tmp.path().join("learned.toml");
    std::fs::write(&config, format!("[recommenders.learned]\nmodel = {:?}\n", model.display().to_string()))
        .expect("write");

    for driver in ["queue", "forecast", "learned"] {
        let dir = tmp.path().join(driver);
        let out = scaletui()
            .arg("--config")
            .arg(&config)
            .args(["--headless", "--speed", "max", "--duration", "15", "--scenario", "classic"])
            .args(["--mode", "ai_scaler", "--driver", driver, "--output-dir"])
            .arg(&dir)
            .output()
            .expect("runs");
        assert!(out.status.success(), "{driver}: {}", String::from_utf8_lossy(&out.stderr));
        let csv = PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().next().expect("path").trim());
        let (h, rows) = csv_rows(&csv);
        // Every recommender has its columns, and the replica-recommending ones answered.
        for name in ["queue", "forecast", "vpa", "learned"] {
            assert!(h.contains(&format!("{name}_replicas")) && h.contains(&format!("{name}_status")), "{name}");
        }
        for c in ["vpa_cpu_target_m", "vpa_memory_upper_mib", "forecast_holt_winters", "queue_q", "learned_raw"] {
            assert!(h.iter().any(|x| x == c), "{c}");
        }
        for name in ["queue", "forecast", "learned"] {
            let answered = column(&h, &rows, &format!("{name}_replicas")).iter().filter(|v| !v.is_empty()).count();
            assert!(answered * 2 > rows.len(), "{name} answered {answered}/{}", rows.len());
        }
        assert!(column(&h, &rows, "vpa_replicas").iter().all(|v| v.is_empty()), "vpa never proposes replicas");
        assert!(column(&h, &rows, "vpa_status").contains(&"ok"));
        // The driver is in control: applied_by names it and it scaled the deployment.
        let by = column(&h, &rows, "applied_by");
        assert!(column(&h, &rows, "driver").iter().all(|d| *d == driver));
        assert!(by.contains(&driver), "{driver} applied: {by:?}");
        assert!(by.iter().all(|b| b.starts_with(driver) || *b == "hpa_sim"), "{by:?}");
    }

    // A driver that cannot drive is refused before anything runs.
    let out = scaletui()
        .args(["--config", "config.toml", "--headless", "--speed", "max", "--duration", "1", "--driver", "learned"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("scaletui train"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_driver_switches_live_and_vpa_cannot_drive() {
    use scaletui::engine::experiment::Experiment;
    use scaletui::engine::messages::{EngineCommand, EngineEvent};
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cfg = scaletui::config::Config::default();
    cfg.sim.speed = scaletui::config::Speed::Max;
    cfg.experiment.duration = 10.0;
    cfg.experiment.mode = scaletui::engine::types::Mode::AiScaler;
    cfg.experiment.driver = "forecast".into();
    cfg.advisor.enabled = false;
    cfg.experiment.scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/classic.toml").into();
    cfg.experiment.output_dir = tmp.path().to_path_buf();
    let mut parts = scaletui::run::build(&cfg, false).await.expect("setup");
    let info_names: Vec<String> = parts.setup.recommenders.iter().map(|r| r.name().to_string()).collect();
    assert_eq!(info_names, ["queue", "forecast", "vpa"]);
    parts.commands.send(EngineCommand::SetDriver("vpa".into())).await.expect("send");
    parts.commands.send(EngineCommand::SetDriver("queue".into())).await.expect("send");
    let exp = Experiment::new(parts.setup).expect("record");
    let events = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(e) = parts.events.recv().await {
            match e {
                EngineEvent::Started(info) => {
                    seen.push(format!("recommenders {:?}", info.recommenders.iter().map(|r| &r.0).collect::<Vec<_>>()))
                }
                EngineEvent::Notice(n) => seen.push(n),
                EngineEvent::Event(ev) if ev.kind == "driver" => seen.push(ev.detail),
                EngineEvent::Finished { .. } => break,
                _ => {}
            }
        }
        seen
    });
    let summary = exp.run(tokio_util::sync::CancellationToken::new()).await;
    let seen = events.await.expect("events");
    assert!(seen.iter().any(|s| s == "recommenders [\"queue\", \"forecast\", \"vpa\"]"), "{seen:?}");
    assert!(seen.iter().any(|s| s.contains("vpa cannot drive")), "{seen:?}");
    assert!(seen.iter().any(|s| s == "forecast -> queue"), "{seen:?}");
    let (h, rows) = csv_rows(&summary.csv_path);
    let drivers = column(&h, &rows, "driver");
    assert_eq!(drivers.last().copied(), Some("queue"));
    assert!(column(&h, &rows, "applied_by").iter().any(|b| b.starts_with("queue")));
}

#[test]
fn the_inference_serving_experiment_compares_its_three_schemes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = scaletui()
        .args([
            "compare",
            "--scenario",
            "inference-serving",
            "--policies",
            "queue,hpa:70,hpa:90",
            "--duration",
            "11",
            "-o",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}{}", String::from_utf8_lossy(&o.stderr));
    // The settings in force are named: the dispatcher, the law, the HPA on CPU only.
    assert!(text.contains("central_queue routing") && text.contains("lognormal mean 100 ms cv 0.7"), "{text}");
    assert!(text.contains("HPA 1..6 on cpu 70 %") && !text.contains("memory 80 %"), "{text}");
    let (h, rows) = csv_rows(&dir.path().join("summary.csv"));
    let get = |policy: &str, col: &str| -> f64 {
        let i = h.iter().position(|c| c == col).unwrap_or_else(|| panic!("no column {col}"));
        rows.iter().find(|r| r[0] == policy).map(|r| r[i].parse().unwrap_or(f64::NAN)).expect("policy row")
    };
    for p in ["queue", "hpa-70", "hpa-90"] {
        // Every request of the real trace (9,917) arrives within the 630 s.
        assert_eq!(get(p, "requests"), 9917.0, "{p}");
        for col in ["latency_p99_ms", "tick_p99_ms", "peak_p99_ms", "mean_cores", "peak_cores"] {
            assert!(get(p, col) > 0.0, "{p} {col}");
        }
        assert!(get(p, "peak_cores") <= 6.0 + 1e-9, "{p}: six one-core pods at most");
        assert!(get(p, "max_replicas") <= 6.0, "{p}");
    }
    // As in the original: HPA 90 % loses far more of the stress phase than HPA 70 % or the queue
    // rule (a saturated 1-core pod reads 100 %, barely over the 10 % tolerance at 90 %).
    let lost = |p: &str| get(p, "dropped_pct");
    assert!(lost("hpa-90") > 20.0 && lost("hpa-70") < 5.0 && lost("queue") < 5.0, "{text}");
    // Each policy's summary file has the exact totals.
    let v: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("queue_summary.json"))).expect("summary json");
    assert_eq!(v["requests"]["arrived"], 9917);
    assert_eq!(v["settings"]["recommenders"]["queue"]["target"], 50.0);
}
