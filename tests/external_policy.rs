//! External policies driving headless runs: `--driver exec:CMD` (a process, one JSON line each
//! way per tick) and `--driver http:URL`. A policy that hangs, crashes, prints garbage or answers
//! out of range gets the run's fallback, named in the row, and the run goes on.

use std::path::Path;

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A five-minute headless `ai_scaler` run of the step scenario (30 s ticks: 10 rows) with this
/// driver; its CSV rows as maps, and stderr.
fn run(driver: &str, dir: &Path, extra_config: &str) -> (Vec<std::collections::HashMap<String, String>>, String) {
    let cfg = dir.join("config.toml");
    let base = std::fs::read_to_string(Path::new(ROOT).join("config.toml")).expect("config.toml");
    let mut table: toml::Table = base.parse().expect("config.toml parses");
    let extra: toml::Table = extra_config.parse().expect("extra config parses");
    for (section, keys) in extra {
        let (Some(into), toml::Value::Table(keys)) = (table.get_mut(&section).and_then(|v| v.as_table_mut()), keys)
        else {
            panic!("[{section}] is a section of config.toml");
        };
        into.extend(keys);
    }
    std::fs::write(&cfg, toml::to_string(&table).expect("serialises")).expect("write config");
    let out_dir = dir.join("out");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scaletui"))
        .env_remove("SCALETUI_CONFIG")
        .current_dir(ROOT)
        .args(["--headless", "--speed", "max", "--scenario", "step", "--duration", "5", "--interval", "30"])
        .args(["--mode", "ai_scaler", "--seed", "5", "--driver", driver, "--config"])
        .arg(&cfg)
        .arg("--output-dir")
        .arg(&out_dir)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let csv = std::fs::read_dir(&out_dir)
        .expect("output dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "csv") && !p.to_string_lossy().contains("_events"))
        .expect("the run's CSV");
    let mut rd = csv::Reader::from_path(&csv).expect("csv");
    let head = rd.headers().expect("header").clone();
    let rows = rd
        .records()
        .map(|r| {
            let r = r.expect("row");
            head.iter().zip(r.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect()
        })
        .collect();
    (rows, stderr)
}

/// A policy script: the HPA algorithm's answer, except at tick 3 where it does `at_three`.
fn policy(dir: &Path, at_three: &str) -> String {
    let p = dir.join("policy.py");
    let body = format!(
        r#"import json, sys, time
for line in sys.stdin:
    obs = json.loads(line)
    if obs["tick"] == 3:
        {at_three}
    print(json.dumps({{"replicas": obs["baseline"], "reasoning": "hpa says %d" % obs["baseline"]}}), flush=True)
"#
    );
    std::fs::write(&p, body).expect("write policy");
    format!("exec:python3 {}", p.display())
}

#[test]
fn the_example_policy_drives_a_headless_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let driver = "exec:python3 python/examples/example_policy.py";
    let (rows, stderr) = run(driver, dir.path(), "");
    assert_eq!(rows.len(), 10, "{stderr}");
    let num = |r: &std::collections::HashMap<String, String>, k: &str| r[k].parse::<f64>().ok();
    for (i, r) in rows.iter().enumerate() {
        assert!(r["applied_by"].starts_with(driver), "{r:?}");
        assert_eq!(r["driver"], driver);
        assert_eq!(r["policy_status"], "parsed", "{r:?}");
        assert!(r["policy_reasoning"].starts_with("HPA says "), "{r:?}");
        assert!(num(r, "policy_latency_ms").is_some_and(|ms| ms >= 0.0), "{r:?}");
        // The example's rule, from the row and the ones before it (its `history`).
        let hist: Vec<f64> = rows[..i].iter().filter_map(|p| num(p, "rps")).collect();
        let rising = num(r, "rps").is_some_and(|now| hist.len() >= 2 && now > 1.1 * hist[hist.len() - 2]);
        let cur = num(r, "current_replicas").expect("current_replicas");
        let hpa = num(r, "hpa_sim_desired").expect("hpa_sim_desired");
        let want = (hpa + if rising { 1.0 } else { 0.0 }).max(cur - 2.0).clamp(1.0, 10.0);
        assert_eq!(num(r, "policy_replicas"), Some(want), "tick {i}: {r:?}");
        assert_eq!(r["policy_reasoning"].contains("rising"), rising, "{r:?}");
    }
    // The policy's answers are what was applied (within the guardrails' notes).
    let applied =
        rows.iter().filter(|r| r["applied_note"].is_empty()).all(|r| r["applied_replicas"] == r["policy_replicas"]);
    assert!(applied, "{rows:?}");
}

/// Each bad policy gets the fallback at tick 3 only, named, and the run has all its rows.
fn falls_back_at_three(at_three: &str, extra_config: &str, why: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let driver = policy(dir.path(), at_three);
    let (rows, stderr) = run(&driver, dir.path(), extra_config);
    assert_eq!(rows.len(), 10, "all rows are there: {stderr}");
    for (i, r) in rows.iter().enumerate() {
        if i == 3 {
            assert!(r["applied_by"].starts_with("hpa_sim"), "tick 3 falls back: {r:?}");
            assert!(r["applied_note"].starts_with("fallback: "), "{r:?}");
            assert!(r["applied_note"].contains(why), "{why:?} in {:?}", r["applied_note"]);
            assert!(r["policy_status"].contains(why), "{why:?} in {:?}", r["policy_status"]);
            assert_eq!(r["policy_replicas"], "");
        } else {
            assert!(r["applied_by"].starts_with(&driver), "tick {i} is the policy's: {r:?}");
            assert_eq!(r["policy_status"], "parsed", "tick {i}: {r:?}");
        }
    }
}

#[test]
fn a_policy_that_hangs_is_timed_out_and_restarted() {
    falls_back_at_three("time.sleep(3600)", "[policy]\ntimeout_s = 0.5\nstartup_s = 5\n", "timeout");
}

#[test]
fn a_policy_that_crashes_is_restarted_with_its_last_words() {
    falls_back_at_three("sys.stderr.write('policy died here\\n'); sys.exit(3)", "", "policy died here");
}

#[test]
fn a_policy_that_prints_garbage_is_named() {
    falls_back_at_three("print('I think 4 replicas, maybe', flush=True); continue", "", "I think 4 replicas");
}

#[test]
fn an_answer_out_of_range_is_refused() {
    falls_back_at_three("print(json.dumps({'replicas': 99}), flush=True); continue", "", "99");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_policy_drives_and_its_errors_fall_back() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"replicas": 4, "reasoning": "four is plenty"}"#))
        .up_to_n_times(3)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("model exploded"))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let driver = format!("http:{}/decide", server.uri());
    let d = driver.clone();
    let path = dir.path().to_path_buf();
    let (rows, stderr) = tokio::task::spawn_blocking(move || run(&d, &path, "")).await.expect("joins");
    assert_eq!(rows.len(), 10, "{stderr}");
    for (i, r) in rows.iter().enumerate() {
        if i < 3 {
            assert!(r["applied_by"].starts_with(&driver), "{r:?}");
            assert_eq!(r["policy_replicas"], "4");
            assert_eq!(r["policy_reasoning"], "four is plenty");
        } else {
            assert!(r["applied_by"].starts_with("hpa_sim"), "{r:?}");
            assert!(r["applied_note"].contains("500"), "{r:?}");
        }
    }
    // What was posted: the observation, with the CSV's names.
    let got = server.received_requests().await.expect("recorded");
    assert_eq!(got.len(), 10);
    let first: serde_json::Value = serde_json::from_slice(&got[0].body).expect("json");
    for key in ["tick", "current_replicas", "min_replicas", "max_replicas", "baseline", "cpu_utilization", "history"] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
    assert_eq!(got[0].url.path(), "/decide");
}

#[test]
fn compare_runs_an_external_policy_beside_the_hpa() {
    let dir = tempfile::tempdir().expect("tempdir");
    let driver = "exec:python3 python/examples/example_policy.py";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scaletui"))
        .env_remove("SCALETUI_CONFIG")
        .current_dir(ROOT)
        .args(["compare", "--scenario", "step", "--duration", "6", "--policies", &format!("hpa,{driver}")])
        .arg("--output-dir")
        .arg(dir.path())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let mut rd = csv::Reader::from_path(dir.path().join("summary.csv")).expect("summary.csv");
    let names: Vec<String> = rd.records().map(|r| r.expect("row")[0].to_string()).collect();
    assert_eq!(names, ["hpa", driver]);
    // The external policy's run is recorded like any other, driven by it.
    let run = dir.path().join("exec_python3_python_examples_example_policy.py.csv");
    let mut rd = csv::Reader::from_path(&run).expect("its CSV");
    let by = rd.headers().expect("header").iter().position(|h| h == "applied_by").expect("applied_by");
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|r| r[by].starts_with(driver)), "{rows:?}");
}
