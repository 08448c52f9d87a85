//! Dashboard performance (a bench binary that prints figures; no assertions).
//!
//!   cargo bench --bench dashboard            (add `-- quick` for a shorter idle measurement)
//!
//! 1. Frame time: the full dashboard at 200×60 (dark theme, encoded for a real terminal into a
//!    sink) with 1 h and 24 h of 1 s samples in every series; the default 15-minute window and
//!    the whole history (zoomed out). Median / p95 / max over 400 frames, a new sample between
//!    frames so every frame differs.
//! 2. Resident memory with 24 h of 1 s samples held (charts + the rows kept for `e`).
//! 3. Idle: the real event loop with nothing arriving for 30 s — CPU time used (from
//!    /proc/self/stat) as a share of one core, and frames drawn.
//! 4. Streaming: the advisor sends 200 tokens/s for 10 s while a key is pressed every 250 ms —
//!    frames per second (capped at ui.max_fps) and the time from a key to the frame showing it.

#[path = "../tests/support/fixture.rs"]
mod fixture;
mod support;

use support::rss_kib;

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use tokio::sync::mpsc;

use scaletui::app::state::AppState;
use scaletui::app::update::{Msg, update};
use scaletui::app::{EngineLink, LoopStats, channel_input, run_loop, theme};
use scaletui::engine::messages::{AdvisorEvent, EngineEvent};

const W: u16 = 200;
const H: u16 = 60;

fn sink_terminal() -> Terminal<CrosstermBackend<io::Sink>> {
    Terminal::with_options(
        CrosstermBackend::new(io::sink()),
        TerminalOptions { viewport: Viewport::Fixed(Rect::new(0, 0, W, H)) },
    )
    .expect("terminal")
}

/// CPU time of this process (user + system), from /proc/self/stat, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 14th, stime the 15th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // `rest` starts at field 3 (state): utime = field 14 → index 11, stime → 12.
    (ticks(11) + ticks(12)) / 100.0
}

fn dark(mut s: AppState) -> AppState {
    s.themes = theme::load("dark", false).expect("dark theme");
    s
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn frames(label: &str, state: &mut AppState, next_tick: &mut usize) {
    let mut term = sink_terminal();
    let mut times = Vec::with_capacity(400);
    let mut cpu = 0.0;
    for i in 0..440 {
        if i == 40 {
            cpu = cpu_seconds();
        }
        // A new sample between frames (not timed): the window slides, every frame differs.
        update(state, Msg::Engine(Box::new(EngineEvent::Sample(Box::new(fixture::row(*next_tick, 1.0))))));
        *next_tick += 1;
        let t0 = Instant::now();
        term.draw(|f| scaletui::widgets::draw(f, state)).expect("draw");
        if i >= 40 {
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    // CPU time per frame (sample pushes included) is immune to being descheduled on a busy machine.
    let cpu_per_frame = (cpu_seconds() - cpu) / times.len() as f64 * 1000.0;
    times.sort_by(f64::total_cmp);
    println!(
        "  {label:<44} median {:.3} ms  p95 {:.3} ms  max {:.3} ms  (CPU {:.3} ms/frame incl. the sample push)",
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        times.last().copied().unwrap_or(0.0),
        cpu_per_frame,
    );
}

/// The real event loop on a sink terminal, fed from channels.
struct Running {
    events: mpsc::Sender<EngineEvent>,
    keys: mpsc::Sender<io::Result<Event>>,
    stats: Arc<LoopStats>,
    looped: tokio::task::JoinHandle<()>,
    _commands: mpsc::Receiver<scaletui::engine::messages::EngineCommand>,
    signals: mpsc::Sender<&'static str>,
}

impl Running {
    fn start(mut state: AppState) -> Self {
        let stats = Arc::new(LoopStats::default());
        let (events, ev_rx) = mpsc::channel(4096);
        let (cmd_tx, commands) = mpsc::channel(64);
        let (keys, key_rx) = mpsc::channel(16);
        let (signals, sig_rx) = mpsc::channel(1);
        let st = stats.clone();
        let looped = tokio::spawn(async move {
            let mut term = sink_terminal();
            let mut link = EngineLink { events: ev_rx, commands: cmd_tx, task: None };
            let _ = run_loop(&mut term, &mut state, channel_input(key_rx), &mut link, sig_rx, Some(st)).await;
        });
        Self { events, keys, stats, looped, _commands: commands, signals }
    }

    /// A signal (stop without asking) and the engine's `Finished` end the loop.
    async fn stop(self) {
        let done = EngineEvent::Finished {
            reason: "bench".into(),
            rows: 0,
            csv_path: "x".into(),
            events_path: "y".into(),
            restored: vec![],
        };
        let _ = self.signals.send("SIGTERM").await;
        let _ = self.events.send(done).await;
        let _ = self.looped.await;
    }
}

fn zoom_out_fully(state: &mut AppState) {
    for _ in 0..20 {
        update(state, Msg::Key(KeyEvent::new(KeyCode::Char('-'), KeyModifiers::NONE)));
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    println!("dashboard benchmark ({W}×{H}, release build, dark theme)");

    // 2. Memory with 24 h held (first, before other allocations).
    let before = rss_kib();
    let s = fixture::state(86_400, 1.0);
    let after = rss_kib();
    println!(
        "resident memory: {:.1} MB with 24 h of 1 s samples held ({:.1} MB before building it; charts {:.1} MB, rows for export {:.1} MB, {} rows)",
        after as f64 / 1024.0,
        before as f64 / 1024.0,
        s.store.heap_bytes() as f64 / 1e6,
        s.archive.heap_bytes() as f64 / 1e6,
        s.archive.rows(),
    );
    drop(s);

    // 1. Frame time against history.
    println!("frame time (draw + terminal encoding), 1 s samples in every series:");
    for (name, ticks) in [("1 h", 3_600usize), ("24 h", 86_400)] {
        let mut s = dark(fixture::state(ticks, 1.0));
        let mut next = ticks;
        frames(&format!("{name} of history, 15 min window"), &mut s, &mut next);
        zoom_out_fully(&mut s);
        let w = s.view.window_s / 3600.0;
        frames(&format!("{name} of history, whole {w:.0} h window"), &mut s, &mut next);
    }

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");

    // 3. Idle: the real loop, nothing arriving.
    let idle_s = if quick { 10.0 } else { 30.0 };
    let (cpu, frames_idle) = rt.block_on(async move {
        let run = Running::start(dark(fixture::state(86_400, 1.0)));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (c0, f0) = (cpu_seconds(), run.stats.frames.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_secs_f64(idle_s)).await;
        let (c1, f1) = (cpu_seconds(), run.stats.frames.load(Ordering::Relaxed));
        run.stop().await;
        (c1 - c0, f1 - f0)
    });
    println!(
        "idle for {idle_s:.0} s (24 h held, the header clock redraws once a second): {:.2}% of one core, {frames_idle} frames",
        cpu / idle_s * 100.0
    );

    // 4. 200 tokens/s from the advisor, a key every 250 ms.
    let state = dark(fixture::state(86_400, 1.0));
    let max_fps = state.cfg.ui.max_fps;
    let stream_s = 10.0;
    let (fps, latencies, tokens) = rt.block_on(async move {
        let run = Running::start(state);
        let tx = run.events.clone();
        let feeder = tokio::spawn(async move {
            let _ = tx.send(EngineEvent::Advisor(AdvisorEvent::Asking { attempt: 1 })).await;
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            let end = Instant::now() + Duration::from_secs_f64(stream_s);
            let mut n = 0u64;
            while Instant::now() < end {
                tick.tick().await;
                let _ = tx.send(EngineEvent::Advisor(AdvisorEvent::Delta(format!(" tok{}", n % 97)))).await;
                n += 1;
            }
            n
        });
        let stats = run.stats.clone();
        let f0 = stats.frames.load(Ordering::Relaxed);
        let t0 = Instant::now();
        while t0.elapsed().as_secs_f64() < stream_s - 0.3 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let _ = run.keys.send(Ok(Event::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)))).await;
        }
        // The last key's frame.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = stats.key_frames.load(Ordering::Relaxed).max(1);
        let lat = (
            stats.key_to_frame_ns.load(Ordering::Relaxed) as f64 / n as f64 / 1e6,
            stats.max_key_to_frame_ns.load(Ordering::Relaxed) as f64 / 1e6,
            n,
        );
        let elapsed = t0.elapsed().as_secs_f64();
        let frames = stats.frames.load(Ordering::Relaxed) - f0;
        let tokens = feeder.await.unwrap_or(0);
        run.stop().await;
        (frames as f64 / elapsed, lat, tokens)
    });
    let (mean, max, keys) = latencies;
    println!(
        "advisor streaming {:.0} tokens/s for {stream_s:.0} s (24 h held): {fps:.1} frames/s (cap {max_fps}); key → its frame drawn: mean {mean:.1} ms, max {max:.1} ms over {keys} keys",
        tokens as f64 / stream_s,
    );
}
