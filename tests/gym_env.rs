//! The Rust core of the Python environment: episodes are headless runs driven by the actions.

use scaletui::gym::{ActionSpace, Env, EnvSpec, StepOut};

fn spec(minutes: f64) -> EnvSpec {
    let over = vec![("experiment.duration".to_string(), toml::Value::Float(minutes))];
    EnvSpec::new("step", &over).expect("spec")
}

/// Run an episode with `policy` choosing each action from the last step; all steps.
fn episode(env: &mut Env, seed: u64, mut policy: impl FnMut(&StepOut) -> i64) -> Vec<StepOut> {
    let mut out = vec![env.reset(seed).expect("reset")];
    loop {
        let a = policy(out.last().expect("a step"));
        let s = env.step(a).expect("step");
        let end = s.truncated;
        out.push(s);
        if end {
            return out;
        }
    }
}

#[test]
fn an_episode_has_one_step_per_tick_and_obeys_the_actions() {
    let sp = spec(5.0);
    let interval = sp.cfg.experiment.interval;
    let (min, max) = (sp.cfg.scaling.min_replicas, sp.cfg.scaling.max_replicas);
    let mut env = Env::new(sp).expect("env");
    // Always "+1": the replicas climb to the maximum (through the run's guardrails).
    let up = episode(&mut env, 1, |_| 2);
    assert_eq!(up.len() as f64, 5.0 * 60.0 / interval, "one observation per tick");
    assert!(up.iter().all(|s| s.reward.total.is_finite()));
    let asked: Vec<i32> = up.iter().filter_map(|s| s.requested).collect();
    assert!(asked.windows(2).all(|w| w[1] >= w[0]), "{asked:?}");
    assert_eq!(up.last().and_then(|s| s.observation.current_replicas), Some(max), "{asked:?}");
    // Always "−1": it stays at the minimum.
    let down = episode(&mut env, 1, |_| 0);
    let reps: Vec<Option<i32>> = down.iter().map(|s| s.observation.current_replicas).collect();
    assert!(reps.windows(2).all(|w| w[1] <= w[0]), "{reps:?}");
    assert_eq!(reps.last().copied().flatten(), Some(min), "{reps:?}");
    // Past the end: an error, not a hang.
    assert!(env.step(1).is_err());
    // Out of range: an error.
    env.reset(1).expect("reset");
    assert!(env.step(3).is_err());
    assert!(env.step(-1).is_err());
}

#[test]
fn the_same_seed_gives_the_same_episode_and_another_seed_another() {
    let mut env = Env::new(spec(6.0)).expect("env");
    let mut k = 0;
    let mut wobble = move |_: &StepOut| {
        k += 1;
        [2, 2, 1, 0, 2][k % 5]
    };
    let a = episode(&mut env, 7, &mut wobble);
    let mut k = 0;
    let mut wobble2 = move |_: &StepOut| {
        k += 1;
        [2, 2, 1, 0, 2][k % 5]
    };
    let b = episode(&mut env, 7, &mut wobble2);
    // The clock starts at the wall-clock time; everything else is the seed's.
    let timeless = |e: &[StepOut]| {
        e.iter()
            .map(|s| {
                let mut s = s.clone();
                s.observation.t = 0.0;
                s
            })
            .collect::<Vec<_>>()
    };
    assert!(timeless(&a) == timeless(&b), "same seed and actions: same observations, rewards and figures");
    let c = episode(&mut env, 8, |_| 1);
    let rates = |e: &[StepOut]| e.iter().map(|s| s.observation.arrived).collect::<Vec<_>>();
    assert_ne!(rates(&a), rates(&c), "another seed draws other arrivals");
}

#[test]
fn a_count_space_sets_the_replicas_and_a_recorded_episode_is_the_run_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sp = spec(4.0);
    sp.actions = ActionSpace::Count;
    sp.record_dir = Some(dir.path().to_path_buf());
    sp.observe = vec!["current_replicas".into(), "rps".into(), "latency_p95_ms".into()];
    let max = sp.cfg.scaling.max_replicas;
    let mut env = Env::new(sp).expect("env");
    assert_eq!(env.action_count(), max as usize + 1);
    let steps = episode(&mut env, 3, |_| 4);
    // The observation is the listed figures, in order.
    let last = steps.last().expect("steps");
    assert_eq!(last.obs[0], 4.0, "{:?}", last.obs);
    assert_eq!(f64::from(last.obs[1]) as f32, last.observation.rps.unwrap_or(0.0) as f32);
    let csv = env.last_csv.clone().expect("the recorded CSV");
    let mut rd = csv::Reader::from_path(&csv).expect("csv");
    let head = rd.headers().expect("header").clone();
    let col = |n: &str| head.iter().position(|h| h == n).unwrap_or_else(|| panic!("column {n}"));
    let (by, replicas, rps) = (col("applied_by"), col("current_replicas"), col("rps"));
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), steps.len(), "one CSV row per observation");
    for (row, s) in rows.iter().zip(&steps) {
        assert_eq!(row[replicas].parse::<i32>().ok(), s.observation.current_replicas);
        let r: Option<f64> = row[rps].parse().ok();
        match (r, s.observation.rps) {
            (Some(r), Some(o)) => assert!((r - o).abs() < 1e-3, "{r} vs {o}"),
            (r, o) => assert_eq!(r, o),
        }
    }
    assert!(rows[1..rows.len() - 1].iter().all(|r| r[by].starts_with("env")), "the environment drives");
}
