//! The dashboard drawn into ratatui's TestBackend: whole screens at 80×24 and 160×48 checked
//! against insta snapshots (`INSTA_UPDATE=no` in CI: a changed screen fails), popups, colours of
//! semantic slots, and every small size down to 0×0 without a panic.

#[path = "support/fixture.rs"]
mod fixture;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;

use scaletui::app::state::AppState;
use scaletui::app::theme;
use scaletui::app::update::{Msg, update};

fn screen(state: &AppState, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    t.draw(|f| scaletui::widgets::draw(f, state)).expect("draws");
    t
}

fn key(s: &mut AppState, c: KeyCode) {
    update(s, Msg::Key(KeyEvent::new(c, KeyModifiers::NONE)));
}

fn text(t: &Terminal<TestBackend>) -> String {
    t.backend().to_string()
}

#[test]
fn dashboard_80x24() {
    let s = fixture::state(180, 10.0);
    insta::assert_snapshot!(screen(&s, 80, 24).backend());
}

#[test]
fn dashboard_160x48() {
    let s = fixture::state(180, 10.0);
    insta::assert_snapshot!(screen(&s, 160, 48).backend());
}

#[test]
fn dashboard_before_the_first_tick_80x24() {
    let s = fixture::state(0, 10.0);
    insta::assert_snapshot!(screen(&s, 80, 24).backend());
}

#[test]
fn help_is_generated_from_the_keymap_160x48() {
    let mut s = fixture::state(180, 10.0);
    key(&mut s, KeyCode::Char('?'));
    let t = screen(&s, 160, 48);
    for b in &s.keymap.bindings {
        assert!(text(&t).contains(b.desc), "help lists {:?}", b.desc);
    }
    insta::assert_snapshot!(t.backend());
}

#[test]
fn help_scrolls_to_every_key_at_80x24() {
    let mut s = fixture::state(180, 10.0);
    s.screen = ratatui::layout::Rect::new(0, 0, 80, 24);
    key(&mut s, KeyCode::Char('?'));
    let first = screen(&s, 80, 24);
    assert!(text(&first).contains("Keys 1–"), "says it scrolls");
    assert!(text(&first).contains("Up/Down/PgUp/PgDn scroll"), "the hint line stays");
    let mut seen = text(&first);
    for _ in 0..40 {
        key(&mut s, KeyCode::Down);
        seen.push_str(&text(&screen(&s, 80, 24)));
    }
    // Descriptions are wrapped, so look for each one's first words.
    for b in &s.keymap.bindings {
        let start: String = b.desc.split(' ').take(3).collect::<Vec<_>>().join(" ");
        assert!(seen.contains(&start), "scrolling reaches {:?}", b.desc);
    }
    let bottom = text(&screen(&s, 80, 24));
    key(&mut s, KeyCode::End);
    assert_eq!(text(&screen(&s, 80, 24)), bottom, "Down stops at the end");
    key(&mut s, KeyCode::Home);
    assert_eq!(text(&screen(&s, 80, 24)), text(&first));
    insta::assert_snapshot!(screen(&s, 80, 24).backend());
}

#[test]
fn a_narrow_advisor_panel_still_says_what_failed_80x24() {
    let mut s = fixture::state(180, 10.0);
    let mut row = fixture::row(180, 10.0);
    row.ai.status = Some("unreachable".into());
    row.ai.error = Some("cannot connect to http://models.example:11434/v1: connection refused".into());
    update(&mut s, Msg::Engine(Box::new(scaletui::engine::messages::EngineEvent::Sample(Box::new(row)))));
    let t = text(&screen(&s, 80, 24));
    assert!(t.contains("error: cannot connect to"), "{t}");
    assert!(t.contains("http://models.example:11434"), "the second line holds the URL: {t}");
}

#[test]
fn cpu_form_80x24() {
    let mut s = fixture::state(180, 10.0);
    key(&mut s, KeyCode::Char('c'));
    insta::assert_snapshot!(screen(&s, 80, 24).backend());
}

#[test]
fn load_form_with_an_error_160x48() {
    let mut s = fixture::state(180, 10.0);
    key(&mut s, KeyCode::Char('l'));
    // Make "ramp" into "rampx".
    key(&mut s, KeyCode::Char('x'));
    key(&mut s, KeyCode::Enter);
    let t = screen(&s, 160, 48);
    assert!(text(&t).contains("pattern: constant, ramp, step, sine, trace or wave, not \"rampx\""));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn confirm_ai_scaler_80x24() {
    let mut s = fixture::state(180, 10.0);
    key(&mut s, KeyCode::Char('2'));
    insta::assert_snapshot!(screen(&s, 80, 24).backend());
}

#[test]
fn export_and_prompt_popups_160x48() {
    let mut s = fixture::state(180, 10.0);
    key(&mut s, KeyCode::Char('e'));
    let t = screen(&s, 160, 48);
    assert!(text(&t).contains("The 180 rows the dashboard holds"));
    key(&mut s, KeyCode::Esc);
    key(&mut s, KeyCode::Char('p'));
    let t = screen(&s, 160, 48);
    assert!(text(&t).contains("preview: the messages it sends now"));
    assert!(text(&t).contains("        max_replicas=10"), "the preview keeps the template's spacing");
    // PageDown scrolls to the user message, filled from the rows held.
    key(&mut s, KeyCode::PageDown);
    key(&mut s, KeyCode::PageDown);
    let t = screen(&s, 160, 48);
    assert!(text(&t).contains("Current running pods : 6"), "{}", text(&t));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn quitting_with_tasks_asks_80x24() {
    let mut s = fixture::state(180, 10.0);
    key(&mut s, KeyCode::Char('q'));
    insta::assert_snapshot!(screen(&s, 80, 24).backend());
}

#[test]
fn every_small_size_renders_without_panic() {
    let mut s = fixture::state(180, 10.0);
    for popup in [None, Some('?'), Some('l'), Some('2'), Some('p'), Some('e')] {
        key(&mut s, KeyCode::Esc);
        if let Some(c) = popup {
            key(&mut s, KeyCode::Char(c));
        }
        for w in 0..=32 {
            for h in 0..=14 {
                screen(&s, w, h);
            }
        }
    }
    let t = screen(&fixture::state(180, 10.0), 20, 5);
    assert!(text(&t).contains("SIMULATED"), "{}", text(&t));
}

#[test]
fn themes_colour_the_semantic_slots() {
    let mut s = fixture::state(180, 10.0);
    s.themes = theme::load("dark", false).expect("dark");
    let t = screen(&s, 160, 48);
    let buf = t.backend().buffer();
    // The SIMULATED badge uses the theme's badge slot.
    let badge = &buf[(2, 0)];
    assert_eq!(badge.symbol(), "I");
    let dark = &s.themes.palette().ui;
    assert_eq!((badge.fg, badge.bg), (dark.badge_fg.0, dark.badge_sim.0));
    // Chart series use their series colours: some braille cell has the spec colour.
    let spec = s.themes.palette().series.spec.0;
    let has = |c: Color| {
        buf.content()
            .iter()
            .any(|cell| cell.fg == c && cell.symbol().chars().any(|ch| ('\u{2800}'..='\u{28ff}').contains(&ch)))
    };
    assert!(has(spec), "spec replicas drawn in their colour");
    // `t` cycles to the next theme.
    key(&mut s, KeyCode::Char('t'));
    assert_eq!(s.themes.palette().name, "light");
    // Monochrome draws no colour at all.
    let t = screen(&fixture::state(180, 10.0), 160, 48);
    assert!(t.backend().buffer().content().iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
}

#[test]
fn unreachable_metrics_are_said_loudly() {
    let mut s = fixture::state(30, 10.0);
    let mut row = fixture::row(30, 10.0);
    row.metrics_status = "unreachable: connection refused (http://localhost:9090)".into();
    row.cpu_millicores = None;
    update(&mut s, Msg::Engine(Box::new(scaletui::engine::messages::EngineEvent::Sample(Box::new(row)))));
    for (w, h) in [(80, 24), (160, 48)] {
        let t = text(&screen(&s, w, h));
        assert!(t.lines().next().is_some_and(|l| l.contains("METRICS UNREACHABLE")), "{t}");
    }
    let t = text(&screen(&s, 160, 48));
    assert!(t.contains("unreachable: connection refused (http://localhost:9090)"), "{t}");
}

#[test]
fn the_prompt_preview_is_filled_from_the_dashboard_rows() {
    use scaletui::app::prompt_editor::{PromptEditor, preview_context};
    use scaletui::engine::advisor::prompt::PromptTemplate;
    let rows: Vec<_> = (0..5).map(|i| fixture::row(i, 10.0)).collect();
    let ctx = preview_context(&rows, &fixture::info(10.0), 3).expect("rows");
    let e = PromptEditor::new(&PromptTemplate::default(), Some(ctx));
    let (system, user) = e.preview.clone().expect("renders");
    assert!(system.contains("min_replicas=1"), "{system}");
    assert!(system.contains("10-second intervals"), "{system}");
    let newest = &rows[4];
    let baseline = newest.hpa_sim.desired.expect("baseline");
    assert!(user.contains(&format!("Formula baseline     : {baseline} replicas")), "{user}");
    assert!(user.contains(&format!("Current running pods : {}", newest.current_replicas.expect("spec"))), "{user}");
    // The recent rows and the history table: 3 lines each, the newest row last.
    let stamp = "2024-01-01T00:00:40.000000Z";
    assert_eq!(user.matches(stamp).count(), 2, "{user}");
    assert_eq!(user.matches("2024-01-01T00:00:").count(), 6, "{user}");
    assert!(preview_context(&[], &fixture::info(10.0), 3).is_none(), "no preview context before the first tick");
}
