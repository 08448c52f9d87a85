//! Seed 003's DQN (a bench binary that prints figures; no assertions):
//!
//!   cargo bench --bench dqn
//!
//! - training: steps per second of `scaletui train dqn` on scenarios/rl-wave.toml (each step is
//!   a simulated 15 s tick of the discrete-event model, an ε-greedy action, a stored transition
//!   and one learning step on a batch of 64 from the prioritized buffer), and the split between
//!   the simulator and the network;
//! - inference: the time of one decision (the Q-values of one state, 4 → 128 → 64 → 3).

use std::time::Instant;

use scaletui::engine::learn::dqn::{Dqn, DqnSettings, QNet};
use scaletui::engine::learn::replay::Transition;
use scaletui::engine::rng::Rng;
use scaletui::rl::{DqnTrainSpec, train_dqn};
use tokio_util::sync::CancellationToken;

fn main() {
    // SAFETY: the first statement of main; no other thread exists yet. (What scaletui does.)
    unsafe { scaletui::engine::learn::dqn::prefer_serial_tensors() };
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).expect("cd");
    let (base, _) = scaletui::config::load_checked(None, scaletui::engine::check_config).expect("config");
    let dir = tempfile::tempdir().expect("tempdir");
    let steps = 10_000;
    let spec = DqnTrainSpec {
        base,
        scenario: "rl-wave".into(),
        overrides: Vec::new(),
        steps,
        seed: 100,
        out: dir.path().to_path_buf(),
        checkpoint_every: 0,
        eval_seeds: Vec::new(),
        resume: false,
        show: false,
    };
    let t = Instant::now();
    let out = train_dqn(&spec, &CancellationToken::new()).expect("trains");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "train dqn on rl-wave: {} steps ({} episodes) in {secs:.2} s = {:.0} steps/s (seed 003's 83,000 steps: {:.0} s)",
        out.steps,
        out.episodes,
        out.steps as f64 / secs,
        83_000.0 * secs / out.steps as f64
    );

    // The network alone: learning steps on a full buffer, and single decisions.
    let mut agent = Dqn::new(4, 3, DqnSettings::default(), 1).expect("agent");
    let mut rng = Rng::new(3);
    for i in 0..10_000 {
        let s: Vec<f32> = (0..4).map(|_| rng.uniform() as f32).collect();
        let n: Vec<f32> = (0..4).map(|_| rng.uniform() as f32).collect();
        agent.replay.push(Transition { state: s, action: (i % 3) as u32, reward: -1.0, next: n, done: false });
    }
    let n = 2_000;
    let t = Instant::now();
    for _ in 0..n {
        agent.learn(&mut rng).expect("learn");
    }
    let learn_us = t.elapsed().as_secs_f64() / n as f64 * 1e6;
    println!("one learning step (batch 64, prioritized draw, Double DQN target, Adam, soft update): {learn_us:.0} µs");
    let net = QNet::new(&[4, 128, 64, 3], &mut Rng::new(1)).expect("net");
    let x = [0.4f32, 0.5, 0.3, 0.01];
    let n = 20_000;
    let t = Instant::now();
    let mut sink = 0.0f32;
    for _ in 0..n {
        sink += net.q(&x).expect("q")[0];
    }
    let per = t.elapsed().as_secs_f64() / n as f64 * 1e6;
    println!("one decision (Q-values of one state): {per:.1} µs (checksum {sink:.1})");
}
