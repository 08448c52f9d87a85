//! Seed 003's Double DQN trained on the simulator: it learns, it resumes, and the trained model
//! drives runs (`--driver dqn:DIR`, `compare dqn:DIR`).

use std::path::Path;

use scaletui::rl::{DqnTrainSpec, train_dqn};
use tokio_util::sync::CancellationToken;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn spec(out: &Path, steps: u64, eval: Vec<u64>) -> DqnTrainSpec {
    std::env::set_current_dir(ROOT).expect("cd");
    let (base, _) = scaletui::config::load_checked(None, scaletui::engine::check_config).expect("config");
    DqnTrainSpec {
        base,
        scenario: "step".into(),
        // Twenty-minute episodes (40 ticks) of the step scenario.
        overrides: vec![("experiment.duration".into(), toml::Value::Float(20.0))],
        steps,
        seed: 100,
        out: out.to_path_buf(),
        checkpoint_every: 500,
        eval_seeds: eval,
        resume: true,
        show: false,
    }
}

/// A headless virtual-time run with `args` writing into `out`: its CSV's header and rows.
fn headless(args: &[&str], out: &Path) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_scaletui"))
        .env_remove("SCALETUI_CONFIG")
        .current_dir(ROOT)
        .args(["--headless", "--speed", "max"])
        .args(args)
        .arg("--output-dir")
        .arg(out)
        .output()
        .expect("runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let csv = std::fs::read_dir(out)
        .expect("out")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "csv") && !p.to_string_lossy().contains("_events"))
        .expect("csv");
    let mut rd = csv::Reader::from_path(&csv).expect("csv");
    let head = rd.headers().expect("header").clone();
    (head, rd.records().map(|r| r.expect("row")).collect())
}

#[test]
fn the_dqn_learns_to_beat_random_and_reach_the_hpa_on_held_out_seeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out =
        train_dqn(&spec(dir.path(), 2_500, (900_001..=900_005).collect()), &CancellationToken::new()).expect("trains");
    assert_eq!(out.steps, 2_500);
    assert!(!out.interrupted);
    let by = |p: &str| out.evaluation.iter().find(|e| e.policy == p).expect(p).clone();
    let (dqn, hpa, random) = (by("dqn"), by("hpa"), by("random"));
    eprintln!("{}", scaletui::rl::eval_table(&out.evaluation));
    assert_eq!(dqn.episodes, 5);
    assert!(dqn.reward > random.reward, "dqn {} vs random {}", dqn.reward, random.reward);
    assert!(dqn.reward >= hpa.reward, "dqn {} vs hpa {}", dqn.reward, hpa.reward);
    // The learning curve went up: the last ten episodes beat the first ten (ε 1 → 0.05).
    let mean = |s: &[scaletui::rl::EpisodeFigures]| s.iter().map(|e| e.reward).sum::<f64>() / s.len() as f64;
    let n = out.curve.len();
    assert!(n >= 40, "{n} episodes");
    assert!(mean(&out.curve[n - 10..]) > mean(&out.curve[..10]));
    for f in ["model.json", "model.safetensors", "curve.csv", "curve.png", "curve.svg", "eval.csv"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
}

#[test]
fn training_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = train_dqn(&spec(dir.path(), 600, Vec::new()), &CancellationToken::new()).expect("first part");
    assert_eq!(first.steps, 600);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("checkpoint/state.json")).expect("state.json"))
            .expect("json");
    assert_eq!(state["steps"], 600);
    let second = train_dqn(&spec(dir.path(), 1_000, Vec::new()), &CancellationToken::new()).expect("resumed");
    assert_eq!(second.steps, 1_000);
    assert!(second.episodes > first.episodes);
    // The first part's episodes are kept (through JSON: the last digit of a float may move).
    for (a, b) in second.curve.iter().zip(&first.curve) {
        assert_eq!((a.episode, a.steps, a.seed), (b.episode, b.steps, b.seed));
        assert!((a.reward - b.reward).abs() < 1e-9 && (a.mean_replicas - b.mean_replicas).abs() < 1e-9);
    }
    // A cancelled run stops at once and keeps what it has.
    let cancel = CancellationToken::new();
    cancel.cancel();
    let stopped = train_dqn(&spec(dir.path(), 5_000, Vec::new()), &cancel).expect("stops");
    assert!(stopped.interrupted);
    assert_eq!(stopped.steps, 1_000);
    // Another seed does not silently continue this one.
    let mut other = spec(dir.path(), 2_000, Vec::new());
    other.seed = 7;
    let e = train_dqn(&other, &CancellationToken::new()).expect_err("refused");
    assert!(e.contains("--seed 100"), "{e}");
}

#[test]
fn a_trained_model_drives_headless_runs_and_compare() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("model");
    train_dqn(&spec(&model, 300, Vec::new()), &CancellationToken::new()).expect("trains");
    let out = dir.path().join("run");
    let driver = format!("dqn:{}", model.display());
    let args = ["--scenario", "step", "--duration", "5", "--mode", "ai_scaler", "--driver", driver.as_str()];
    let (head, rows) = headless(&args, &out);
    let col = |n: &str| head.iter().position(|h| h == n).unwrap_or_else(|| panic!("column {n}"));
    let (by, reasoning, q_up, replicas, cur) =
        (col("applied_by"), col("dqn_reasoning"), col("dqn_q+1"), col("dqn_replicas"), col("current_replicas"));
    assert_eq!(rows.len(), 10);
    for r in &rows {
        assert!(r[by].starts_with("dqn"), "{r:?}");
        assert!(r[reasoning].starts_with("Q(-1) "), "{r:?}");
        assert!(r[q_up].parse::<f64>().is_ok());
        let d = r[replicas].parse::<i32>().expect("dqn_replicas") - r[cur].parse::<i32>().expect("current");
        assert!((-1..=1).contains(&d), "one replica at a time: {r:?}");
    }
    // compare: dqn:DIR beside the HPA; a dqn without a model says how to train one.
    let cmp = dir.path().join("cmp");
    let policies = format!("hpa,dqn:{}", model.display());
    let c = std::process::Command::new(env!("CARGO_BIN_EXE_scaletui"))
        .env_remove("SCALETUI_CONFIG")
        .current_dir(ROOT)
        .args(["compare", "--scenario", "step", "--duration", "5", "--policies", &policies, "--output-dir"])
        .arg(&cmp)
        .output()
        .expect("compare");
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let summary = std::fs::read_to_string(cmp.join("summary.csv")).expect("summary");
    assert!(summary.contains(&format!("dqn:{}", model.display())), "{summary}");
    let c = std::process::Command::new(env!("CARGO_BIN_EXE_scaletui"))
        .env_remove("SCALETUI_CONFIG")
        .current_dir(ROOT)
        .args(["compare", "--scenario", "step", "--duration", "5", "--policies", "hpa,dqn", "--output-dir"])
        .arg(dir.path().join("cmp2"))
        .output()
        .expect("compare");
    let text = format!("{}{}", String::from_utf8_lossy(&c.stdout), String::from_utf8_lossy(&c.stderr));
    assert!(text.contains("scaletui train dqn"), "{text}");
}

#[test]
fn the_lstm_predictor_forecasts_the_wave() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("lstm.toml");
    std::fs::write(
        &scenario,
        "[[load]]\npattern = \"wave\"\nduration_s = 900\nseed = 4\n\
         [recommenders.forecast]\nsignal = \"load\"\nmodels = [\"lstm\"]\n[experiment]\ninterval = 15\n",
    )
    .expect("write");
    let out = dir.path().join("run");
    let scenario = scenario.display().to_string();
    let (head, rows) = headless(&["--duration", "15", "--mode", "hpa_only", "--scenario", scenario.as_str()], &out);
    let col = |n: &str| head.iter().position(|h| h == n).unwrap_or_else(|| panic!("column {n}"));
    let (lstm, status) = (col("forecast_lstm"), col("forecast_status"));
    assert_eq!(rows.len(), 60);
    // No rate at the first tick; warming up for its first sequence; then a count every tick.
    assert!(rows[1..15].iter().all(|r| r[lstm].is_empty() && r[status].contains("lstm")), "{:?}", &rows[..15]);
    assert!(rows[20..].iter().all(|r| r[lstm].parse::<i32>().is_ok_and(|n| n >= 1)), "{:?}", &rows[20..]);
}
