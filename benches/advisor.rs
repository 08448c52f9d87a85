//! The AI advisor's cost to the control loop (a bench binary that prints figures; no assertions).
//!
//!   cargo bench --bench advisor
//!
//! The real engine runs in real time (speed 1, a tick every second, `ai_scaler`) against the
//! in-process OpenAI-compatible stub streaming 1,000 tokens/s, on a 2-thread runtime like the
//! binary's. A front-end task plays the dashboard: it wakes 30 times a second, drains the engine's
//! events (rows, streamed advisor text) and sends a command every 100 ms, timing the round trip
//! until the engine's answer. Printed per case: how late each tick ran, how late the front end's
//! frames woke, the command round trip, and what the advisor did.
//!
//! Cases: no advisor (the baseline); short replies (~150 tokens, answered within the tick); long
//! replies (~2,000 tokens = 2 s of streaming: the model is always busy, ticks find it in flight).

#[path = "../tests/support/openai_stub.rs"]
mod openai_stub;

use std::time::{Duration, Instant};

use openai_stub::{Reply, Stub, answer_json, tokens};
use scaletui::config::{self, Speed};
use scaletui::engine::experiment::Experiment;
use scaletui::engine::messages::{AdvisorEvent, EngineCommand, EngineEvent};
use scaletui::engine::types::Mode;
use scaletui::run;
use tokio_util::sync::CancellationToken;

/// CPU seconds used by this process so far (user + system).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().map(String::from).collect::<Vec<_>>();
            // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
            let ticks = rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(f64::NAN)
}

#[derive(Default)]
struct Figures {
    cpu_s: f64,
    tick_late_ms: Vec<f64>,
    frame_late_ms: Vec<f64>,
    command_rtt_ms: Vec<f64>,
    deltas: u64,
    delta_chars: u64,
    parsed: u32,
    pending: u32,
    other: u32,
}

fn pct(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn line(name: &str, xs: &[f64]) -> String {
    format!(
        "{name}: n={} p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        xs.len(),
        pct(xs, 0.5),
        pct(xs, 0.99),
        pct(xs, 1.0)
    )
}

async fn run_case(reply: Option<Reply>, seconds: f64) -> Figures {
    let stub = Stub::start().await;
    let mut cfg = config::Config::default();
    let out = tempfile::tempdir().expect("tempdir");
    cfg.experiment.output_dir = out.path().to_path_buf();
    cfg.experiment.interval = 1.0;
    cfg.experiment.duration = seconds / 60.0;
    cfg.experiment.mode = Mode::AiScaler;
    cfg.sim.speed = Speed::Factor(1.0);
    cfg.advisor.url = stub.base_url();
    cfg.advisor.max_tokens = 4000;
    cfg.advisor.enabled = reply.is_some();
    if let Some(r) = reply {
        stub.set_default(r);
    }
    let parts = run::build(&cfg, false).await.expect("setup");
    let mut events = parts.events;
    let commands = parts.commands;
    let exp = Experiment::new(parts.setup).expect("record");
    let engine = tokio::spawn(exp.run(CancellationToken::new()));
    let cpu0 = cpu_seconds();

    let mut f = Figures::default();
    let mut frame = tokio::time::interval(Duration::from_millis(33));
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let mut sent: Option<Instant> = None;
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            at = frame.tick() => f.frame_late_ms.push(at.elapsed().as_secs_f64() * 1000.0),
            _ = every.tick() => {
                if sent.is_none() && commands.try_send(EngineCommand::SetDriver("ai".into())).is_ok() {
                    sent = Some(Instant::now());
                }
            }
            ev = events.recv() => match ev {
                Some(EngineEvent::Sample(row)) => {
                    // Speed 1: clock seconds are wall seconds.
                    f.tick_late_ms.push((row.elapsed_s - ticks as f64 * 1.0) * 1000.0);
                    ticks += 1;
                    match row.ai.status.as_deref() {
                        Some("parsed") => f.parsed += 1,
                        Some("pending") => f.pending += 1,
                        Some(_) => f.other += 1,
                        None => {}
                    }
                }
                Some(EngineEvent::Event(e)) if e.kind == "driver" => {
                    if let Some(t) = sent.take() {
                        f.command_rtt_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                Some(EngineEvent::Notice(n)) if n.starts_with("no recommender") => {
                    // No advisor: the engine answers the command with a notice.
                    if let Some(t) = sent.take() {
                        f.command_rtt_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                Some(EngineEvent::Advisor(AdvisorEvent::Delta(t))) => {
                    f.deltas += 1;
                    f.delta_chars += t.len() as u64;
                }
                Some(EngineEvent::Finished { .. }) | None => break,
                Some(_) => {}
            },
        }
    }
    let _ = engine.await;
    f.cpu_s = cpu_seconds() - cpu0;
    f
}

fn report(name: &str, f: &Figures, seconds: f64) {
    println!(
        "{name}: CPU {:.1} % of one core (engine, simulator, front end and the stub together)",
        f.cpu_s / seconds * 100.0
    );
    println!("  {}", line("tick lateness (scheduled -> ran)", &f.tick_late_ms));
    println!("  {}", line("front-end frame wake-up lateness (30 fps)", &f.frame_late_ms));
    println!("  {}", line("command round trip (SetDriver -> recorded event)", &f.command_rtt_ms));
    if f.parsed + f.pending + f.other > 0 {
        println!(
            "  advisor: {} ticks parsed, {} pending, {} other; {} streamed-text events ({:.0}/s, {} characters)",
            f.parsed,
            f.pending,
            f.other,
            f.deltas,
            f.deltas as f64 / seconds,
            f.delta_chars
        );
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let seconds = 30.0;
    let per_token = Duration::from_millis(1); // 1,000 tokens/s
    let short = Reply::content(answer_json(4, 0.8, &"load is rising steadily so ".repeat(8))).token_delay(per_token);
    let long = Reply::content(answer_json(4, 0.8, &"load is rising steadily so ".repeat(140))).token_delay(per_token);
    println!(
        "advisor bench: real time, 1 s ticks, {seconds} s per case, stub at 1,000 tokens/s; short reply {} tokens, long reply {} tokens",
        tokens(&short.content).len(),
        tokens(&long.content).len()
    );
    rt.block_on(async {
        let f = run_case(None, seconds).await;
        report("no advisor (baseline)", &f, seconds);
        let f = run_case(Some(short), seconds).await;
        report("advisor, short replies", &f, seconds);
        let f = run_case(Some(long), seconds).await;
        report("advisor, long replies (always streaming)", &f, seconds);
    });
}
