//! The dashboard: one task owns the state and the terminal and `select!`s over the terminal's
//! events, the engine's events, a one-second clock, signals and finished exports. Each message
//! goes through [`update::update`], which returns commands (to the engine, an export, exit); a
//! frame is drawn only when something changed, at most `ui.max_fps` times a second.
//!
//! - [`state`]: what is shown; [`update`]: how it changes; [`keymap`]: keys as data;
//! - [`series`]: the charts' bounded, downsampling store; [`rows`]: rows kept for `e`;
//! - [`forms`], [`prompt_editor`]: the popups' inputs; [`theme`]: palettes; [`terminal`]: safety.

pub mod forms;
pub mod keymap;
pub mod prompt_editor;
pub mod rows;
pub mod series;
pub mod state;
pub mod terminal;
pub mod theme;
pub mod update;

use std::io::{self, IsTerminal};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{FutureExt, Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{Event, EventStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Backend as ClusterBackend, Config};
use crate::engine::experiment::{Experiment, RunSummary};
use crate::engine::messages::{EngineCommand, EngineEvent};
use crate::engine::record::export_encoded;
use crate::engine::types::wall_now;
use crate::fault::{Fault, Faults};
use state::AppState;
use update::{Command, Msg, update};

/// The configuration the dashboard runs with: on the simulator, `ui.sim_interval` (unless 0)
/// replaces the tick interval so the charts move at once.
pub fn dashboard_config(mut cfg: Config) -> Config {
    if cfg.cluster.backend == ClusterBackend::Sim && cfg.ui.sim_interval > 0.0 {
        cfg.experiment.interval = cfg.ui.sim_interval;
    }
    cfg
}

/// The engine side of the loop.
pub struct EngineLink {
    pub events: mpsc::Receiver<EngineEvent>,
    pub commands: mpsc::Sender<EngineCommand>,
    /// The experiment's task (its end is noticed, its panic reported).
    pub task: Option<JoinHandle<RunSummary>>,
}

/// Counters a benchmark reads while the loop runs.
#[derive(Debug, Default)]
pub struct LoopStats {
    pub frames: AtomicU64,
    pub keys: AtomicU64,
    /// Nanoseconds spent drawing, in total and the longest frame.
    pub draw_ns: AtomicU64,
    pub max_draw_ns: AtomicU64,
    /// From a key reaching the loop to the end of the frame that shows it: count, total, max.
    pub key_frames: AtomicU64,
    pub key_to_frame_ns: AtomicU64,
    pub max_key_to_frame_ns: AtomicU64,
}

/// Open the dashboard on the run `cfg` describes; returns when the run is over.
pub async fn run(cfg: Config) -> Result<ExitCode, String> {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err("the dashboard needs a terminal; use --headless to run without one".into());
    }
    let cfg = dashboard_config(cfg);
    let keymap = keymap::Keymap::with_overrides(&cfg.ui.keys).map_err(|(k, m)| format!("key `{k}`: {m}"))?;
    let themes = theme::load(&cfg.ui.theme, theme::no_color())?;
    let parts = crate::run::build(&cfg, true).await.map_err(|e| e.to_string())?;
    // Kept to undo the run's changes should the engine end without doing it (a panic).
    let cluster = parts.setup.cluster.clone();
    let keep_changes = cfg.cluster.keep_changes;
    let experiment = Experiment::new(parts.setup)
        .map_err(|e| format!("cannot create the record in {}: {e}", cfg.experiment.output_dir.display()))?;
    let cancel = CancellationToken::new();
    let faults = Faults::from_env();
    let engine = {
        let cancel = cancel.clone();
        let faults = faults.clone();
        tokio::spawn(async move {
            tokio::select! {
                s = experiment.run(cancel) => s,
                () = faults.fire(Fault::Engine) => panic!("fault injected in the engine by SCALETUI_FAULT_PANIC_IN"),
            }
        })
    };
    faults.spawn_task_fault();

    terminal::install_panic_hook();
    let (mut term, guard) = terminal::enter().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let mut state = AppState::new(cfg, keymap, themes, wall_now());
    // The link outlives the loop: should the loop panic, the engine's handle is still here.
    let mut link = EngineLink { events: parts.events, commands: parts.commands, task: Some(engine) };
    let signals = spawn_signal_watcher();
    let input = EventStream::new();
    let ui = AssertUnwindSafe(async {
        tokio::select! {
            r = run_loop(&mut term, &mut state, input, &mut link, signals, None) => r,
            () = faults.fire(Fault::Ui) => panic!("fault injected in the dashboard by SCALETUI_FAULT_PANIC_IN"),
        }
    })
    .catch_unwind()
    .await;
    drop(term);
    drop(guard);
    terminal::restore();
    match ui {
        Ok(Err(e)) => eprintln!("scaletui: terminal error: {e}; stopping the run"),
        Ok(Ok(())) => {}
        // Reported by the hook; the engine, detached with the loop's handle, still ends cleanly.
        Err(_) => state.engine_error = Some("the dashboard panicked".into()),
    }

    // The engine has finished (or the user forced the exit): give it a moment to end cleanly.
    let mut restored_here = Vec::new();
    if let Some(mut task) = link.task.take() {
        if state.finished.is_none() {
            cancel.cancel();
        }
        match tokio::time::timeout(Duration::from_secs(30), &mut task).await {
            Ok(Ok(summary)) if state.finished.is_none() => {
                state.finished = Some(state::Finished {
                    reason: summary.reason,
                    rows: summary.rows,
                    csv_path: summary.csv_path,
                    events_path: summary.events_path,
                    restored: summary.restored,
                });
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => state.engine_error = Some(format!("the engine failed: {e}")),
            Err(_) => {
                task.abort();
                state.engine_error = Some("the engine did not stop within 30 s".into());
            }
        }
    }
    // An engine that ended without finishing the run (it panicked or hung) did not undo its
    // changes: undo them here.
    if state.finished.is_none() && !keep_changes {
        let wait = Duration::from_secs(30 + u64::from(state.cfg.cluster.restore_retry_s));
        restored_here = match tokio::time::timeout(wait, cluster.restore()).await {
            Ok(Ok(lines)) => lines,
            Ok(Err(e)) => vec![format!("restore failed: {e}")],
            Err(_) => vec!["restore failed: no answer within 30 s".into()],
        };
    }
    Ok(report(&state, &restored_here))
}

/// The lines printed after the terminal is restored (like `--headless`): the summary on stderr,
/// the files on stdout.
fn report(state: &AppState, restored_here: &[String]) -> ExitCode {
    if let Some(f) = &state.finished {
        eprintln!("scaletui: {} ({} rows)", f.reason, f.rows);
        for r in &f.restored {
            eprintln!("  restored: {r}");
        }
        let paths = format!("{}\n{}\n", f.csv_path.display(), f.events_path.display());
        if let Err(e) = crate::cli::print_out(&paths) {
            eprintln!("scaletui: {e}");
        }
    }
    for r in restored_here {
        eprintln!("  restored: {r}");
    }
    let all = state.finished.iter().flat_map(|f| f.restored.iter()).chain(restored_here);
    let unrestored = crate::headless::report_unrestored(all);
    match &state.engine_error {
        Some(e) => {
            eprintln!("scaletui: {e}");
            if terminal::has_panicked() { ExitCode::from(101) } else { ExitCode::FAILURE }
        }
        None if terminal::has_panicked() => ExitCode::from(101),
        None if unrestored => ExitCode::FAILURE,
        None => ExitCode::SUCCESS,
    }
}

/// SIGTERM, SIGINT (when not typed: raw mode turns Ctrl-c into a key) and SIGHUP, as messages.
fn spawn_signal_watcher() -> mpsc::Receiver<&'static str> {
    let (tx, rx) = mpsc::channel(4);
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
        else {
            return;
        };
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = hup.recv() => "SIGHUP",
            };
            if tx.send(name).await.is_err() {
                return;
            }
        }
    });
    #[cfg(not(unix))]
    drop(tx);
    rx
}

async fn join(task: &mut Option<JoinHandle<RunSummary>>) -> Result<RunSummary, tokio::task::JoinError> {
    match task.as_mut() {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
}

/// Draw one frame and count it.
fn draw<B: Backend>(term: &mut Terminal<B>, state: &mut AppState, stats: Option<&LoopStats>) -> io::Result<()> {
    // After a panic the terminal is the user's shell again: draw nothing more on it.
    if terminal::has_panicked() {
        return Ok(());
    }
    let t0 = Instant::now();
    let frame = term.draw(|f| crate::widgets::draw(f, state)).map_err(|e| io::Error::other(e.to_string()))?;
    state.screen = frame.area;
    if let Some(s) = stats {
        let ns = t0.elapsed().as_nanos() as u64;
        s.frames.fetch_add(1, Ordering::Relaxed);
        s.draw_ns.fetch_add(ns, Ordering::Relaxed);
        s.max_draw_ns.fetch_max(ns, Ordering::Relaxed);
    }
    Ok(())
}

/// The loop. Returns when the run is over (or the user forced the exit); the engine's task is
/// left in `link` if it is still to be awaited.
pub async fn run_loop<B, S>(
    term: &mut Terminal<B>,
    state: &mut AppState,
    mut input: S,
    link: &mut EngineLink,
    mut signals: mpsc::Receiver<&'static str>,
    stats: Option<Arc<LoopStats>>,
) -> io::Result<()>
where
    B: Backend,
    S: Stream<Item = io::Result<Event>> + Unpin,
{
    let fps = f64::from(state.cfg.ui.max_fps.max(1));
    let gap = Duration::from_secs_f64(1.0 / fps);
    let mut last_frame = Instant::now().checked_sub(gap).unwrap_or_else(Instant::now);
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (export_tx, mut export_rx) = mpsc::channel::<Result<(std::path::PathBuf, usize), String>>(4);
    let (mut input_open, mut events_open, mut signals_open) = (true, true, true);
    let mut panic_seen = false;
    let stats = stats.as_deref();
    // When the oldest key not yet on screen arrived.
    let mut key_waiting: Option<Instant> = None;
    loop {
        if state.dirty && last_frame.elapsed() >= gap {
            draw(term, state, stats)?;
            state.dirty = false;
            last_frame = Instant::now();
            if let (Some(s), Some(k)) = (stats, key_waiting.take()) {
                let ns = k.elapsed().as_nanos() as u64;
                s.key_frames.fetch_add(1, Ordering::Relaxed);
                s.key_to_frame_ns.fetch_add(ns, Ordering::Relaxed);
                s.max_key_to_frame_ns.fetch_max(ns, Ordering::Relaxed);
            }
        }
        let next_frame = tokio::time::Instant::from_std(last_frame + gap);
        let mut msgs: Vec<Msg> = Vec::with_capacity(4);
        tokio::select! {
            ev = input.next(), if input_open => match ev {
                Some(Ok(Event::Key(k))) => {
                    if let Some(s) = stats {
                        s.keys.fetch_add(1, Ordering::Relaxed);
                        key_waiting.get_or_insert_with(Instant::now);
                    }
                    msgs.push(Msg::Key(k));
                }
                Some(Ok(Event::Resize(..))) => msgs.push(Msg::Resize),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    // No more keyboard: stop the run cleanly.
                    input_open = false;
                    msgs.push(Msg::Signal("input closed"));
                }
            },
            e = link.events.recv(), if events_open => match e {
                Some(e) => msgs.push(Msg::Engine(Box::new(e))),
                None => events_open = false,
            },
            r = join(&mut link.task) => {
                link.task = None;
                // What the engine sent before ending comes first (its `Finished`).
                while let Ok(e) = link.events.try_recv() {
                    msgs.push(Msg::Engine(Box::new(e)));
                }
                msgs.push(Msg::EngineStopped(match r {
                    Ok(_) => None,
                    Err(e) if e.is_panic() => Some("the engine panicked".into()),
                    Err(e) => Some(format!("the engine stopped: {e}")),
                }));
            },
            () = terminal::panicked(), if !panic_seen => {
                // The hook has restored the terminal and reported it: stop the run like `q`.
                panic_seen = true;
                msgs.push(Msg::EngineStopped(Some("stopped after an internal error (panic)".into())));
            },
            _ = clock.tick() => msgs.push(Msg::Tick(wall_now())),
            s = signals.recv(), if signals_open => match s {
                Some(name) => msgs.push(Msg::Signal(name)),
                None => signals_open = false,
            },
            Some(r) = export_rx.recv() => msgs.push(Msg::Exported(r)),
            _ = tokio::time::sleep_until(next_frame), if state.dirty => {}
        }
        // A burst of engine events costs one frame.
        if events_open {
            for _ in 0..1024 {
                match link.events.try_recv() {
                    Ok(e) => msgs.push(Msg::Engine(Box::new(e))),
                    Err(_) => break,
                }
            }
        }
        for msg in msgs {
            for cmd in update(state, msg) {
                match cmd {
                    Command::Exit => {
                        if state.dirty {
                            let _ = draw(term, state, stats);
                        }
                        return Ok(());
                    }
                    Command::Engine(c) => send(state, &link.commands, c),
                    Command::Export { path, extra, rows } => {
                        let tx = export_tx.clone();
                        tokio::task::spawn_blocking(move || {
                            let n = rows.rows();
                            let parts = rows.chunks.iter().map(|c| c.bytes.as_slice());
                            let r = export_encoded(&path, &extra, parts)
                                .map(|()| (path.clone(), n))
                                .map_err(|e| format!("{}: {e}", path.display()));
                            let _ = tx.blocking_send(r);
                        });
                    }
                }
            }
        }
    }
}

fn send(state: &mut AppState, commands: &mpsc::Sender<EngineCommand>, c: EngineCommand) {
    let shutdown = c == EngineCommand::Shutdown;
    match commands.try_send(c) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(c)) if shutdown => {
            // Shutdown must get through: hand it to a task that waits for room.
            let tx = commands.clone();
            tokio::spawn(async move {
                let _ = tx.send(c).await;
            });
        }
        Err(mpsc::error::TrySendError::Full(_)) => state.toast("the engine is busy; try again", true),
        Err(mpsc::error::TrySendError::Closed(_)) if !shutdown => {
            state.toast("the engine has stopped", true);
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

/// A key stream fed from a channel (tests and benchmarks drive the loop with it).
pub fn channel_input(rx: mpsc::Receiver<io::Result<Event>>) -> Pin<Box<dyn Stream<Item = io::Result<Event>> + Send>> {
    Box::pin(tokio_stream_from(rx))
}

fn tokio_stream_from(mut rx: mpsc::Receiver<io::Result<Event>>) -> impl Stream<Item = io::Result<Event>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
