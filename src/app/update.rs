//! `update(state, msg) -> commands`: every change to the dashboard's state happens here, from
//! one message at a time (a key, an engine event, the clock, a signal). No I/O: what must be done
//! outside (engine commands, writing an export, leaving) is returned as [`Command`]s.

use std::path::PathBuf;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::app::forms::{ExportForm, Form};
use crate::app::keymap::Action;
use crate::app::prompt_editor::{PromptEditor, preview_context};
use crate::app::rows::RowSnapshot;
use crate::app::state::{AdvisorStatus, AppState, Finished, Focus, MIN_WINDOW_S, Popup};
use crate::engine::messages::{AdvisorEvent, EngineCommand, EngineEvent};
use crate::engine::record::Row;
use crate::engine::types::Mode;

/// Everything that can change the dashboard.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Resize,
    Engine(Box<EngineEvent>),
    /// The clock (wall, Unix seconds): the header's elapsed time, toasts.
    Tick(f64),
    /// SIGTERM, SIGINT or SIGHUP: stop cleanly without asking.
    Signal(&'static str),
    /// The engine task ended; `Some` with a reason when it failed (e.g. panicked).
    EngineStopped(Option<String>),
    /// An export finished: (path, rows) or the error.
    Exported(Result<(PathBuf, usize), String>),
}

/// What the loop does for `update`.
#[derive(Debug)]
pub enum Command {
    Engine(EngineCommand),
    /// Write the snapshot to `path` (off the UI task) and report with [`Msg::Exported`].
    Export {
        path: PathBuf,
        extra: Vec<(String, Vec<String>)>,
        rows: RowSnapshot,
    },
    /// Leave the loop (the engine has finished, or the user forces it).
    Exit,
}

pub use super::state::SLOW_STOP_S;

pub fn update(state: &mut AppState, msg: Msg) -> Vec<Command> {
    match msg {
        Msg::Key(k) if k.kind == KeyEventKind::Press || k.kind == KeyEventKind::Repeat => {
            state.dirty = true;
            on_key(state, k)
        }
        Msg::Key(_) => Vec::new(),
        Msg::Resize => {
            state.dirty = true;
            Vec::new()
        }
        Msg::Engine(e) => {
            state.dirty = true;
            on_engine(state, *e)
        }
        Msg::Tick(wall) => {
            state.wall_now = wall;
            if state.toast.as_ref().is_some_and(|t| t.until <= wall) {
                state.toast = None;
            }
            // The header's clock moves.
            state.dirty = true;
            Vec::new()
        }
        Msg::Signal(name) => {
            state.dirty = true;
            if state.quitting.is_some() {
                // A second signal: leave now.
                return vec![Command::Exit];
            }
            state.push_event(state.elapsed_s(), "signal", &format!("{name}: stopping"));
            begin_quit(state)
        }
        Msg::EngineStopped(err) => {
            state.dirty = true;
            match (err, &state.finished) {
                (Some(e), _) => state.engine_error = Some(e),
                (None, None) => state.engine_error = Some("the engine stopped without finishing the run".into()),
                // The run ended by itself (its duration): stay open to look and export.
                (None, Some(_)) if state.quitting.is_none() => return Vec::new(),
                (None, Some(_)) => {}
            }
            vec![Command::Exit]
        }
        Msg::Exported(r) => {
            state.dirty = true;
            match r {
                Ok((path, n)) => {
                    let text = format!("exported {n} rows to {}", path.display());
                    state.push_event(state.elapsed_s(), "export", &text);
                    state.toast(text, false);
                }
                Err(e) => {
                    let text = format!("export failed: {e}");
                    state.push_event(state.elapsed_s(), "error", &text);
                    state.toast(text, true);
                }
            }
            Vec::new()
        }
    }
}

fn begin_quit(state: &mut AppState) -> Vec<Command> {
    state.popup = None;
    if state.finished.is_some() || state.engine_error.is_some() {
        return vec![Command::Exit];
    }
    state.quitting = Some(state.wall_now);
    vec![Command::Engine(EngineCommand::Shutdown)]
}

fn request_quit(state: &mut AppState) -> Vec<Command> {
    if state.finished.is_some() {
        return vec![Command::Exit];
    }
    if let Some(since) = state.quitting {
        if state.wall_now - since >= SLOW_STOP_S {
            return vec![Command::Exit];
        }
        state.toast("stopping: cleaning up tasks, restoring the cluster, flushing the CSV…", false);
        return Vec::new();
    }
    let running = state.running_tasks();
    if running > 0 {
        state.popup = Some(Popup::ConfirmQuit { running });
        Vec::new()
    } else {
        begin_quit(state)
    }
}

fn is_ctrl_c(k: &KeyEvent) -> bool {
    k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL)
}

fn on_key(state: &mut AppState, k: KeyEvent) -> Vec<Command> {
    if state.quitting.is_some() {
        if state.keymap.is(Action::Quit, &k) || is_ctrl_c(&k) {
            return request_quit(state);
        }
        return Vec::new();
    }
    if state.popup.is_some() {
        // Ctrl-c always reaches quit, even from a form.
        if is_ctrl_c(&k) {
            state.popup = None;
            return request_quit(state);
        }
        return on_popup_key(state, k);
    }
    let Some(action) = state.keymap.action(&k) else { return Vec::new() };
    on_action(state, action)
}

/// What a key does with no popup open.
pub fn on_action(state: &mut AppState, action: Action) -> Vec<Command> {
    let engine = |c| vec![Command::Engine(c)];
    match action {
        Action::ModeHpaOnly => switch_mode(state, Mode::HpaOnly),
        Action::ModeComparison => switch_mode(state, Mode::Comparison),
        Action::ModeAiScaler => {
            if state.mode == Mode::AiScaler {
                state.toast("already in ai_scaler", false);
                return Vec::new();
            }
            state.popup = Some(Popup::ConfirmMode(Mode::AiScaler));
            Vec::new()
        }
        Action::CpuStress => {
            state.popup = Some(Popup::Form(Box::new(Form::cpu(&state.cfg))));
            Vec::new()
        }
        Action::MemoryStress => {
            state.popup = Some(Popup::Form(Box::new(Form::memory(&state.cfg))));
            Vec::new()
        }
        Action::Load => {
            state.popup = Some(Popup::Form(Box::new(Form::load(&state.cfg))));
            Vec::new()
        }
        Action::StopTask => match state.selected().filter(|t| !t.finished).map(|t| (t.id, t.kind.clone())) {
            Some((id, kind)) => {
                state.toast(format!("stopping task #{id} ({kind})"), false);
                engine(EngineCommand::StopTask(id))
            }
            None => {
                state.toast("no running task selected (Tab to the tasks panel, Up/Down to select)", false);
                Vec::new()
            }
        },
        Action::AskAdvisor => {
            state.toast("asked the advisor", false);
            engine(EngineCommand::AskAdvisor)
        }
        Action::CycleDriver => {
            let drivers = state.info.as_ref().map(|i| i.drivers.clone()).unwrap_or_default();
            if drivers.is_empty() {
                state.toast("no recommender can drive ai_scaler", true);
                return Vec::new();
            }
            let next = drivers.iter().position(|d| *d == state.driver).map_or(0, |i| (i + 1) % drivers.len());
            let name = drivers[next].clone();
            state.toast(format!("driver: {name} (ai_scaler applies its answers)"), false);
            engine(EngineCommand::SetDriver(name))
        }
        Action::EditPrompt => {
            let ctx = state.info.as_ref().and_then(|info| {
                let rows: Vec<Row> = state.recent.iter().cloned().collect();
                preview_context(&rows, info, state.cfg.advisor.history_rows)
            });
            state.popup = Some(Popup::Prompt(Box::new(PromptEditor::new(&state.prompt_template, ctx))));
            Vec::new()
        }
        Action::Export => {
            let rows = state.archive.rows();
            state.popup = Some(Popup::Export(Box::new(ExportForm::new(&state.cfg, state.mode, state.wall_now, rows))));
            Vec::new()
        }
        Action::ZoomIn => {
            let min = MIN_WINDOW_S.max(4.0 * state.cfg.experiment.interval).min(state.view.max_window_s);
            state.view.window_s = (state.view.window_s / 2.0).max(min);
            Vec::new()
        }
        Action::ZoomOut => {
            state.view.window_s = (state.view.window_s * 2.0).min(state.view.max_window_s);
            Vec::new()
        }
        Action::ZoomReset => {
            state.view.window_s = state.view.default_window_s;
            Vec::new()
        }
        Action::Freeze => {
            state.view.frozen_at = match state.view.frozen_at {
                Some(_) => None,
                None => Some(state.window().1),
            };
            Vec::new()
        }
        Action::NextTheme => {
            let name = state.themes.cycle().name.clone();
            let text = if state.themes.list.len() == 1 && state.palette().mono {
                "NO_COLOR is set: monochrome".to_string()
            } else {
                format!("theme: {name}")
            };
            state.toast(text, false);
            Vec::new()
        }
        Action::FocusNext => {
            state.focus = state.focus.step(1);
            Vec::new()
        }
        Action::FocusPrev => {
            state.focus = state.focus.step(-1);
            Vec::new()
        }
        Action::Up => {
            scroll(state, -1);
            Vec::new()
        }
        Action::Down => {
            scroll(state, 1);
            Vec::new()
        }
        Action::Help => {
            state.popup = Some(Popup::Help(0));
            Vec::new()
        }
        Action::Close => {
            state.toast = None;
            Vec::new()
        }
        Action::Quit => request_quit(state),
    }
}

fn scroll(state: &mut AppState, by: isize) {
    match state.focus {
        Focus::Tasks => state.move_task_selection(by),
        Focus::Events => {
            let max = state.events.len().saturating_sub(1);
            state.events_scroll = (state.events_scroll as isize - by).clamp(0, max as isize) as usize;
        }
        Focus::Advisor => {
            state.advisor.scroll = (i32::from(state.advisor.scroll) - by as i32).clamp(0, 10_000) as u16;
        }
        Focus::Charts => {}
    }
}

fn switch_mode(state: &mut AppState, mode: Mode) -> Vec<Command> {
    if state.mode == mode {
        state.toast(format!("already in {mode}"), false);
        return Vec::new();
    }
    state.toast(format!("switching to {mode}…"), false);
    vec![Command::Engine(EngineCommand::SetMode(mode))]
}

fn is_yes(k: &KeyEvent) -> bool {
    matches!(k.code, KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter)
}

fn is_no(state: &AppState, k: &KeyEvent) -> bool {
    matches!(k.code, KeyCode::Char('n') | KeyCode::Char('N')) || state.keymap.is(Action::Close, k)
}

fn on_popup_key(state: &mut AppState, k: KeyEvent) -> Vec<Command> {
    let Some(popup) = state.popup.take() else { return Vec::new() };
    let close = state.keymap.is(Action::Close, &k);
    match popup {
        Popup::Help(scroll) => {
            if !(close || state.keymap.is(Action::Help, &k) || state.keymap.is(Action::Quit, &k)) {
                let (page, max) = crate::widgets::popups::help_scroll_limits(state.screen, state);
                let page = page.max(1);
                let to = if state.keymap.is(Action::Up, &k) {
                    scroll.saturating_sub(1)
                } else if state.keymap.is(Action::Down, &k) {
                    scroll + 1
                } else {
                    match k.code {
                        KeyCode::PageUp => scroll.saturating_sub(page),
                        KeyCode::PageDown | KeyCode::Char(' ') => scroll + page,
                        KeyCode::Home => 0,
                        KeyCode::End => max,
                        _ => scroll,
                    }
                };
                state.popup = Some(Popup::Help(to.min(max)));
            }
            Vec::new()
        }
        Popup::ConfirmMode(mode) => {
            if is_yes(&k) {
                switch_mode(state, mode)
            } else {
                if !is_no(state, &k) {
                    state.popup = Some(Popup::ConfirmMode(mode));
                }
                Vec::new()
            }
        }
        Popup::ConfirmRestore(notice) => {
            if is_yes(&k) {
                state.toast("putting the saved HPA back…", false);
                vec![Command::Engine(EngineCommand::RestoreSavedHpa)]
            } else {
                if !is_no(state, &k) {
                    state.popup = Some(Popup::ConfirmRestore(notice));
                }
                Vec::new()
            }
        }
        Popup::ConfirmQuit { running } => {
            if is_yes(&k) {
                begin_quit(state)
            } else {
                if !is_no(state, &k) {
                    state.popup = Some(Popup::ConfirmQuit { running });
                }
                Vec::new()
            }
        }
        Popup::Form(mut form) => {
            if close {
                return Vec::new();
            }
            match k.code {
                KeyCode::Enter => match form.submit(&state.cfg) {
                    Ok(cmd) => {
                        state.toast(format!("starting: {}", form.title.to_lowercase()), false);
                        return vec![Command::Engine(cmd)];
                    }
                    Err(e) => form.error = Some(e),
                },
                KeyCode::Tab | KeyCode::Down => form.move_focus(1),
                KeyCode::BackTab | KeyCode::Up => form.move_focus(-1),
                _ => form.input(k),
            }
            state.popup = Some(Popup::Form(form));
            Vec::new()
        }
        Popup::Export(mut form) => {
            if close {
                return Vec::new();
            }
            if k.code == KeyCode::Enter {
                match form.submit() {
                    Ok(path) => {
                        let extra = state.info.as_ref().map(|i| i.recommenders.clone()).unwrap_or_default();
                        state.toast(format!("exporting to {}…", path.display()), false);
                        return vec![Command::Export { path, extra, rows: state.archive.snapshot() }];
                    }
                    Err(e) => form.error = Some(e),
                }
            } else {
                form.input(k);
            }
            state.popup = Some(Popup::Export(form));
            Vec::new()
        }
        Popup::Prompt(mut ed) => {
            if close {
                return Vec::new();
            }
            let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
            match k.code {
                KeyCode::Char('s') if ctrl => match &ed.preview {
                    Ok(_) => {
                        let t = ed.template();
                        state.prompt_template = t.clone();
                        state.toast("prompt template sent to the advisor", false);
                        return vec![Command::Engine(EngineCommand::SetPromptTemplate(t))];
                    }
                    Err(e) => state.toast(format!("not applied: {e}"), true),
                },
                KeyCode::Char('r') if ctrl => ed.reset(),
                KeyCode::Tab | KeyCode::BackTab => ed.switch(),
                KeyCode::PageDown => ed.scroll_preview(10),
                KeyCode::PageUp => ed.scroll_preview(-10),
                _ => ed.input(k),
            }
            state.popup = Some(Popup::Prompt(ed));
            Vec::new()
        }
    }
}

fn on_engine(state: &mut AppState, e: EngineEvent) -> Vec<Command> {
    match e {
        EngineEvent::Started(info) => {
            state.mode = info.mode;
            state.prompt_template = info.prompt_template.clone();
            for (name, _) in &info.recommenders {
                state.recommender_series(name);
            }
            if info.advisor.is_some() && state.advisor.status == AdvisorStatus::NotConfigured {
                state.advisor.status = AdvisorStatus::Idle;
            }
            state.driver = info.driver.clone();
            state.info = Some(*info);
        }
        EngineEvent::History(rows) => {
            for row in rows {
                state.push_history(row);
            }
        }
        EngineEvent::Sample(row) => {
            // The tick's advisor status, unless a call is streaming right now.
            if let Some(status) = row.ai.status.as_deref()
                && !matches!(state.advisor.status, AdvisorStatus::Asking { .. } | AdvisorStatus::Streaming)
            {
                state.advisor.status = match status.strip_prefix("failed: ") {
                    Some(why) => AdvisorStatus::Failed(why.to_string()),
                    // Waiting out a server that does not answer: say when the next try is.
                    None if status == "unreachable" => AdvisorStatus::Failed(
                        row.ai
                            .error
                            .clone()
                            .filter(|e| e.starts_with("unreachable"))
                            .unwrap_or_else(|| status.to_string()),
                    ),
                    None => AdvisorStatus::Done(status.to_string()),
                };
            }
            state.push_row(*row);
        }
        EngineEvent::Event(ev) => {
            if ev.kind == "mode_switch" {
                state.mode = ev.mode;
            }
            if ev.kind == "driver"
                && let Some((_, to)) = ev.detail.rsplit_once("-> ")
            {
                state.driver = to.trim().to_string();
            }
            if ev.kind == "hpa_saved" {
                state.saved_hpa = Some(ev.detail.clone());
                // Offered when it can be put back (not while another run holds it aside).
                if state.popup.is_none() && !ev.detail.contains(" is set aside by ") {
                    state.popup = Some(Popup::ConfirmRestore(ev.detail.clone()));
                }
            }
            if ev.kind == "restore" && ev.detail.contains("saved copies are removed") {
                state.saved_hpa = None;
            }
            state.push_event(ev.elapsed_s, &ev.kind, &ev.detail);
            if matches!(ev.kind.as_str(), "error" | "task_failed") {
                state.toast(format!("{}: {}", ev.kind, ev.detail), true);
            }
        }
        EngineEvent::Task(t) => state.upsert_task(t),
        EngineEvent::Advisor(a) => on_advisor(state, a),
        EngineEvent::Notice(n) => {
            state.push_event(state.elapsed_s(), "notice", &n);
            state.toast(n, false);
        }
        EngineEvent::Finished { reason, rows, csv_path, events_path, restored } => {
            let asked = state.quitting.is_some();
            let text = format!("the run has ended ({reason}, {rows} rows); the charts stay for a look and `e`");
            state.finished = Some(Finished { reason, rows, csv_path, events_path, restored });
            if asked {
                return vec![Command::Exit];
            }
            state.toast(text, false);
        }
    }
    Vec::new()
}

fn on_advisor(state: &mut AppState, a: AdvisorEvent) {
    let p = &mut state.advisor;
    match a {
        AdvisorEvent::Asking { attempt } => {
            p.status = AdvisorStatus::Asking { attempt };
            if attempt <= 1 {
                p.text.clear();
            } else {
                p.text.push_str(&format!("\n— attempt {attempt} —\n"));
            }
            p.scroll = 0;
        }
        AdvisorEvent::Delta(d) => {
            p.status = AdvisorStatus::Streaming;
            p.text.push_str(&d);
            if p.text.len() > crate::app::state::ADVISOR_TEXT_MAX {
                let mut cut = p.text.len() - crate::app::state::ADVISOR_TEXT_MAX;
                while !p.text.is_char_boundary(cut) {
                    cut += 1;
                }
                p.text.drain(..cut);
            }
        }
        AdvisorEvent::Done { ok, status, replicas, latency_ms } => {
            p.status = if ok {
                AdvisorStatus::Done(status)
            } else {
                // The engine says `failed: why`; the label adds `failed: ` itself.
                AdvisorStatus::Failed(status.strip_prefix("failed: ").map(str::to_string).unwrap_or(status))
            };
            p.last_replicas = replicas;
            p.last_latency_ms = latency_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::keymap::Keymap;
    use crate::app::theme::Themes;
    use crate::config::Config;
    use crate::engine::messages::TaskStatus;
    use crate::engine::stress::{CpuStressParams, StressParams};

    fn state() -> AppState {
        AppState::new(Config::default(), Keymap::default(), Themes::monochrome(), 1_000.0)
    }

    fn key(s: &mut AppState, code: KeyCode) -> Vec<Command> {
        update(s, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    fn ch(s: &mut AppState, c: char) -> Vec<Command> {
        key(s, KeyCode::Char(c))
    }

    fn engine(cmds: &[Command]) -> Vec<&EngineCommand> {
        cmds.iter()
            .filter_map(|c| match c {
                Command::Engine(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn task(id: u64, finished: bool) -> EngineEvent {
        EngineEvent::Task(TaskStatus {
            id,
            kind: "cpu stress".into(),
            params: "2 workers/pod".into(),
            state: if finished { "done".into() } else { "running on 3 pods".into() },
            finished,
            progress: Some(0.5),
            figures: String::new(),
        })
    }

    #[test]
    fn d_cycles_the_driver_through_the_recommenders_that_can_drive() {
        let mut s = state();
        assert!(engine(&ch(&mut s, 'd')).is_empty(), "nothing to cycle before the run starts");
        let mut info = crate::engine::messages::RunInfo {
            cluster: crate::engine::types::ClusterInfo {
                backend: "sim".into(),
                context: "simulated".into(),
                namespace: "default".into(),
                deployment: "webapp".into(),
            },
            mode: Mode::AiScaler,
            interval_s: 10.0,
            duration_s: None,
            csv_path: "x.csv".into(),
            events_path: "x_events.csv".into(),
            start: 0.0,
            speed: "10".into(),
            metrics_source: "sim".into(),
            scenario: None,
            min_replicas: 1,
            max_replicas: 10,
            cpu_target: 60,
            memory_target: 80,
            cpu_request_m: None,
            memory_request_mib: None,
            recommenders: vec![("queue".into(), vec![]), ("vpa".into(), vec![])],
            driver: "ai".into(),
            drivers: vec!["ai".into(), "queue".into(), "forecast".into()],
            advisor: None,
            read_only: false,
            limits_off: false,
            prompt_template: crate::engine::advisor::prompt::PromptTemplate::default(),
        };
        info.mode = Mode::AiScaler;
        update(&mut s, Msg::Engine(Box::new(EngineEvent::Started(Box::new(info)))));
        let cmds = ch(&mut s, 'd');
        assert_eq!(engine(&cmds), [&EngineCommand::SetDriver("queue".into())]);
        // The engine confirms with a `driver` event; the next press goes on from there.
        let ev = crate::engine::record::RecordedEvent {
            t: 1.0,
            elapsed_s: 1.0,
            kind: "driver".into(),
            mode: Mode::AiScaler,
            detail: "ai -> queue".into(),
        };
        update(&mut s, Msg::Engine(Box::new(EngineEvent::Event(ev))));
        assert_eq!(s.driver, "queue");
        assert_eq!(engine(&ch(&mut s, 'd')), [&EngineCommand::SetDriver("forecast".into())]);
    }

    #[test]
    fn a_saved_hpa_found_at_start_is_offered_for_restore() {
        let event = |kind: &str, detail: &str| {
            let ev = crate::engine::record::RecordedEvent {
                t: 0.0,
                elapsed_s: 0.0,
                kind: kind.into(),
                mode: Mode::Comparison,
                detail: detail.into(),
            };
            Msg::Engine(Box::new(EngineEvent::Event(ev)))
        };
        // Set aside by a live run: a badge, no offer.
        let mut s = state();
        update(&mut s, event("hpa_saved", "the HPA webapp-hpa is set aside by a@b pid 7, running ai_scaler"));
        assert!(s.saved_hpa.is_some() && s.popup.is_none());
        // Abandoned: the prompt; n leaves it, y asks the engine.
        let mut s = state();
        update(&mut s, event("hpa_saved", "the HPA webapp-hpa was removed by a@b pid 7 and never put back"));
        assert!(matches!(s.popup, Some(Popup::ConfirmRestore(_))));
        assert!(ch(&mut s, 'n').is_empty());
        assert!(s.popup.is_none() && s.saved_hpa.is_some(), "the badge stays");
        let mut s = state();
        update(&mut s, event("hpa_saved", "the HPA webapp-hpa was removed by a@b pid 7 and never put back"));
        assert_eq!(engine(&ch(&mut s, 'y')), [&EngineCommand::RestoreSavedHpa]);
        update(&mut s, event("restore", "re-created the HPA webapp-hpa (it was …); the saved copies are removed"));
        assert!(s.saved_hpa.is_none(), "the badge goes once it is back");
    }

    #[test]
    fn ai_scaler_asks_first() {
        let mut s = state();
        assert!(ch(&mut s, '2').is_empty());
        assert!(matches!(s.popup, Some(Popup::ConfirmMode(Mode::AiScaler))));
        assert!(ch(&mut s, 'n').is_empty(), "n cancels");
        assert!(s.popup.is_none());
        ch(&mut s, '2');
        let c = ch(&mut s, 'y');
        assert_eq!(engine(&c), vec![&EngineCommand::SetMode(Mode::AiScaler)]);
        // The other modes switch at once.
        let c = ch(&mut s, '1');
        assert_eq!(engine(&c), vec![&EngineCommand::SetMode(Mode::HpaOnly)]);
    }

    #[test]
    fn quit_asks_when_tasks_run_then_waits_for_the_engine() {
        let mut s = state();
        update(&mut s, Msg::Engine(Box::new(task(1, false))));
        assert!(ch(&mut s, 'q').is_empty());
        assert!(matches!(s.popup, Some(Popup::ConfirmQuit { running: 1 })));
        let c = ch(&mut s, 'y');
        assert_eq!(engine(&c), vec![&EngineCommand::Shutdown]);
        assert!(s.quitting.is_some());
        // Keys other than quit do nothing while stopping; the engine's Finished ends the loop.
        assert!(ch(&mut s, 'c').is_empty());
        let c = update(
            &mut s,
            Msg::Engine(Box::new(EngineEvent::Finished {
                reason: "quit".into(),
                rows: 3,
                csv_path: "a.csv".into(),
                events_path: "a_events.csv".into(),
                restored: vec![],
            })),
        );
        assert!(matches!(c.as_slice(), [Command::Exit]));
    }

    #[test]
    fn history_from_before_the_start_fills_the_charts_not_the_record() {
        let mut s = state();
        let rows: Vec<Row> = (1..=20)
            .rev()
            .map(|k| Row {
                t: 1_000.0 - 15.0 * f64::from(k),
                elapsed_s: -15.0 * f64::from(k),
                cpu_millicores: Some(525.0),
                ..Row::default()
            })
            .collect();
        update(&mut s, Msg::Engine(Box::new(EngineEvent::History(rows))));
        update(&mut s, Msg::Engine(Box::new(EngineEvent::Sample(Box::new(Row { t: 1_000.0, ..Row::default() })))));
        assert_eq!(s.store.len(), 21);
        assert_eq!(s.store.span(), Some((-300.0, 0.0)));
        assert_eq!((s.rows_seen, s.archive.rows()), (1, 1), "only the run's own row is recorded");
        // It draws, small and large.
        for (w, h) in [(80, 24), (160, 48), (20, 5)] {
            let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).expect("terminal");
            term.draw(|f| crate::widgets::draw(f, &s)).expect("draw");
        }
    }

    #[test]
    fn a_slow_stop_can_be_forced() {
        let mut s = state();
        let c = ch(&mut s, 'q');
        assert_eq!(engine(&c), vec![&EngineCommand::Shutdown], "no tasks: no question");
        assert!(ch(&mut s, 'q').is_empty(), "a second q right away only says it is stopping");
        update(&mut s, Msg::Tick(1_000.0 + SLOW_STOP_S + 1.0));
        assert!(matches!(ch(&mut s, 'q').as_slice(), [Command::Exit]));
    }

    #[test]
    fn a_run_that_ends_by_itself_stays_on_screen() {
        let mut s = state();
        let finished = EngineEvent::Finished {
            reason: "duration reached".into(),
            rows: 9,
            csv_path: "a.csv".into(),
            events_path: "a_events.csv".into(),
            restored: vec![],
        };
        assert!(update(&mut s, Msg::Engine(Box::new(finished))).is_empty());
        assert!(update(&mut s, Msg::EngineStopped(None)).is_empty());
        assert!(s.toast.as_ref().is_some_and(|t| t.text.contains("duration reached")));
        // Export still works; q leaves at once.
        ch(&mut s, 'e');
        assert!(matches!(key(&mut s, KeyCode::Enter).as_slice(), [Command::Export { .. }]));
        assert!(matches!(ch(&mut s, 'q').as_slice(), [Command::Exit]));
        // An engine that dies without finishing ends the dashboard with the reason.
        let mut s = state();
        assert!(matches!(
            update(&mut s, Msg::EngineStopped(Some("the engine panicked".into()))).as_slice(),
            [Command::Exit]
        ));
        assert_eq!(s.engine_error.as_deref(), Some("the engine panicked"));
    }

    #[test]
    fn signals_stop_without_asking() {
        let mut s = state();
        update(&mut s, Msg::Engine(Box::new(task(1, false))));
        let c = update(&mut s, Msg::Signal("SIGTERM"));
        assert_eq!(engine(&c), vec![&EngineCommand::Shutdown]);
        assert!(matches!(update(&mut s, Msg::Signal("SIGTERM")).as_slice(), [Command::Exit]));
    }

    #[test]
    fn ctrl_c_reaches_quit_from_a_form_and_typing_q_does_not() {
        let mut s = state();
        ch(&mut s, 'c');
        assert!(matches!(s.popup, Some(Popup::Form(_))));
        assert!(ch(&mut s, 'q').is_empty(), "q is typed into the field");
        assert!(s.quitting.is_none());
        let c = update(&mut s, Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert_eq!(engine(&c), vec![&EngineCommand::Shutdown]);
    }

    #[test]
    fn forms_launch_with_enter_and_keep_errors() {
        let mut s = state();
        ch(&mut s, 'c');
        // The focused field is workers ("2"): make it "2x".
        ch(&mut s, 'x');
        assert!(key(&mut s, KeyCode::Enter).is_empty());
        match &s.popup {
            Some(Popup::Form(f)) => {
                assert!(f.error.as_deref().is_some_and(|e| e.starts_with("workers")), "{:?}", f.error)
            }
            other => panic!("form closed: {other:?}"),
        }
        key(&mut s, KeyCode::Backspace);
        let c = key(&mut s, KeyCode::Enter);
        assert_eq!(
            engine(&c),
            vec![&EngineCommand::StartStress(StressParams::Cpu(CpuStressParams {
                workers: 2,
                duration_s: 300.0,
                max_pods: 0,
                refresh_s: 15.0
            }))]
        );
        assert!(s.popup.is_none());
        // Esc closes without launching.
        ch(&mut s, 'l');
        assert!(key(&mut s, KeyCode::Esc).is_empty());
        assert!(s.popup.is_none());
    }

    #[test]
    fn x_stops_the_selected_running_task() {
        let mut s = state();
        assert!(engine(&ch(&mut s, 'x')).is_empty(), "nothing to stop");
        update(&mut s, Msg::Engine(Box::new(task(1, false))));
        update(&mut s, Msg::Engine(Box::new(task(2, false))));
        // A task that fails at once does not take the selection.
        update(&mut s, Msg::Engine(Box::new(task(3, true))));
        assert_eq!(engine(&ch(&mut s, 'x')), vec![&EngineCommand::StopTask(2)]);
        // Up/Down in the tasks panel move the selection.
        s.focus = Focus::Tasks;
        key(&mut s, KeyCode::Up);
        assert_eq!(engine(&ch(&mut s, 'x')), vec![&EngineCommand::StopTask(1)]);
        // When the selected task ends, another running one is selected.
        update(&mut s, Msg::Engine(Box::new(task(1, true))));
        assert_eq!(s.selected_task, Some(2));
    }

    #[test]
    fn export_snapshots_the_rows_held() {
        let mut s = state();
        for i in 0..5 {
            update(
                &mut s,
                Msg::Engine(Box::new(EngineEvent::Sample(Box::new(Row {
                    t: f64::from(i),
                    elapsed_s: f64::from(i),
                    ..Row::default()
                })))),
            );
        }
        ch(&mut s, 'e');
        let c = key(&mut s, KeyCode::Enter);
        match c.as_slice() {
            [Command::Export { path, rows, .. }] => {
                assert_eq!(rows.rows(), 5);
                assert!(path.to_string_lossy().contains("dashboard_comparison_"), "{}", path.display());
            }
            other => panic!("{other:?}"),
        }
        update(&mut s, Msg::Exported(Ok(("x.csv".into(), 5))));
        assert!(s.toast.as_ref().is_some_and(|t| t.text == "exported 5 rows to x.csv"));
    }

    #[test]
    fn zoom_and_freeze() {
        let mut s = state();
        for i in 0..400 {
            s.push_row(Row { t: f64::from(i) * 10.0, elapsed_s: f64::from(i) * 10.0, ..Row::default() });
        }
        assert_eq!(s.window(), (3990.0 - 900.0, 3990.0));
        // A young run fills the width (at least ten ticks of 30 s).
        let mut young = state();
        assert_eq!(young.window(), (0.0, 300.0));
        young.push_row(Row { t: 500.0, elapsed_s: 500.0, ..Row::default() });
        assert_eq!(young.window(), (0.0, 500.0));
        ch(&mut s, '+');
        assert_eq!(s.view.window_s, 450.0);
        for _ in 0..10 {
            ch(&mut s, '+');
        }
        assert_eq!(s.view.window_s, 120.0, "clamped to four ticks (30 s each) at least");
        ch(&mut s, '=');
        ch(&mut s, '-');
        assert_eq!(s.view.window_s, 1800.0);
        ch(&mut s, 'f');
        s.push_row(Row { t: 4000.0, elapsed_s: 4000.0, ..Row::default() });
        assert_eq!(s.window().1, 3990.0, "frozen");
        ch(&mut s, 'f');
        assert_eq!(s.window().1, 4000.0, "following again");
    }

    #[test]
    fn advisor_stream_accumulates_and_resets() {
        let mut s = state();
        let ev = |e| Msg::Engine(Box::new(EngineEvent::Advisor(e)));
        update(&mut s, ev(AdvisorEvent::Asking { attempt: 1 }));
        update(&mut s, ev(AdvisorEvent::Delta("load is ".into())));
        update(&mut s, ev(AdvisorEvent::Delta("rising".into())));
        assert_eq!((s.advisor.text.as_str(), &s.advisor.status), ("load is rising", &AdvisorStatus::Streaming));
        update(
            &mut s,
            ev(AdvisorEvent::Done { ok: false, status: "timeout".into(), replicas: None, latency_ms: Some(60_000.0) }),
        );
        assert_eq!(s.advisor.status.label(), "failed: timeout");
        update(&mut s, ev(AdvisorEvent::Asking { attempt: 1 }));
        assert!(s.advisor.text.is_empty());
        // The kept text is bounded.
        let chunk = "é".repeat(1000);
        for _ in 0..20 {
            update(&mut s, ev(AdvisorEvent::Delta(chunk.clone())));
        }
        assert!(s.advisor.text.len() <= crate::app::state::ADVISOR_TEXT_MAX);
    }

    #[test]
    fn help_opens_and_closes() {
        let mut s = state();
        ch(&mut s, '?');
        assert!(matches!(s.popup, Some(Popup::Help(0))));
        ch(&mut s, 'z');
        assert!(matches!(s.popup, Some(Popup::Help(0))), "other keys keep it");
        key(&mut s, KeyCode::Esc);
        assert!(s.popup.is_none());
    }
}
