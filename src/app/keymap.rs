//! The keymap as data: every action with its name (the `[ui.keys]` config key), description,
//! group and default keys. The help screen (`?`), the hint line and the README's keys table all
//! come from this table; `[ui.keys]` in the config replaces an action's keys.

use std::collections::BTreeMap;
use std::fmt;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    ModeHpaOnly,
    ModeAiScaler,
    ModeComparison,
    CpuStress,
    MemoryStress,
    Load,
    StopTask,
    AskAdvisor,
    CycleDriver,
    EditPrompt,
    Export,
    ZoomIn,
    ZoomOut,
    ZoomReset,
    Freeze,
    NextTheme,
    FocusNext,
    FocusPrev,
    Up,
    Down,
    Help,
    Close,
    Quit,
}

/// One row of the keymap.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub action: Action,
    /// The config name (`[ui.keys] <name> = ["key", ...]`).
    pub name: &'static str,
    pub keys: Vec<Key>,
    pub desc: &'static str,
    /// Short label for the hint line (`None`: not shown there).
    pub hint: Option<&'static str>,
    pub group: &'static str,
}

/// The default keymap: (action, name, keys, description, hint, group).
#[allow(clippy::type_complexity)]
const DEFAULTS: &[(Action, &str, &[&str], &str, Option<&str>, &str)] = &[
    (Action::ModeHpaOnly, "mode_hpa_only", &["1"], "switch to hpa_only: the HPA scales", Some("hpa"), "Control"),
    (
        Action::ModeAiScaler,
        "mode_ai_scaler",
        &["2"],
        "switch to ai_scaler: the advisor scales (asks first: it removes the HPA)",
        Some("ai"),
        "Control",
    ),
    (
        Action::ModeComparison,
        "mode_comparison",
        &["3"],
        "switch to comparison: observe and record only",
        Some("compare"),
        "Control",
    ),
    (Action::AskAdvisor, "ask_advisor", &["a"], "ask the advisor now", None, "Control"),
    (Action::EditPrompt, "edit_prompt", &["p"], "edit the advisor's prompt template", None, "Control"),
    (
        Action::CycleDriver,
        "cycle_driver",
        &["d"],
        "next recommender to drive ai_scaler (ai, queue, forecast, learned)",
        None,
        "Control",
    ),
    (Action::CpuStress, "cpu_stress", &["c"], "start a CPU stress (form)", Some("cpu"), "Tasks"),
    (Action::MemoryStress, "memory_stress", &["m"], "start a memory stress (form)", Some("mem"), "Tasks"),
    (Action::Load, "load", &["l"], "start the load generator (form)", Some("load"), "Tasks"),
    (Action::StopTask, "stop_task", &["x"], "stop the selected task", Some("stop"), "Tasks"),
    (Action::ZoomIn, "zoom_in", &["+"], "charts: shorter time window", None, "Charts"),
    (Action::ZoomOut, "zoom_out", &["-"], "charts: longer time window", None, "Charts"),
    (Action::ZoomReset, "zoom_reset", &["="], "charts: default time window", None, "Charts"),
    (Action::Freeze, "freeze", &["f"], "charts: freeze / follow (recording goes on)", Some("freeze"), "Charts"),
    (Action::Export, "export", &["e"], "export the rows the dashboard holds to CSV", Some("export"), "Charts"),
    (Action::FocusNext, "focus_next", &["tab"], "focus the next panel", None, "Panels"),
    (Action::FocusPrev, "focus_prev", &["shift-tab"], "focus the previous panel", None, "Panels"),
    (Action::Up, "up", &["up", "k"], "select / scroll up in the focused panel", None, "Panels"),
    (Action::Down, "down", &["down", "j"], "select / scroll down in the focused panel", None, "Panels"),
    (Action::NextTheme, "next_theme", &["t"], "next theme", None, "General"),
    (Action::Help, "help", &["?"], "show / hide this help", Some("help"), "General"),
    (Action::Close, "close", &["esc"], "close a popup or cancel a form", None, "General"),
    (
        Action::Quit,
        "quit",
        &["q", "ctrl-c"],
        "quit: stops and cleans up tasks, restores the cluster, flushes the CSV (asks when tasks run)",
        Some("quit"),
        "General",
    ),
];

/// A key with modifiers, as written in the config (`q`, `ctrl-c`, `shift-tab`, `f5`, `space`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub const fn new(code: KeyCode, mods: KeyModifiers) -> Self {
        Self { code, mods }
    }

    /// Does a terminal key event match? Shift is part of the character for printable keys
    /// (`?`, `+`, `Q`), so it is ignored there.
    pub fn matches(&self, ev: &KeyEvent) -> bool {
        let norm = |code: KeyCode, mods: KeyModifiers| match code {
            KeyCode::Char(_) => mods - KeyModifiers::SHIFT,
            KeyCode::BackTab => mods | KeyModifiers::SHIFT,
            _ => mods,
        };
        let code = match ev.code {
            KeyCode::Char(c) if ev.modifiers.contains(KeyModifiers::CONTROL) => KeyCode::Char(c.to_ascii_lowercase()),
            c => c,
        };
        code == self.code
            && norm(code, ev.modifiers) & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT)
                == norm(self.code, self.mods)
    }
}

impl std::str::FromStr for Key {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let text = s.trim();
        if text.is_empty() {
            return Err("empty key".into());
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = text;
        // A trailing '-' is the minus key itself ("-" or "ctrl--").
        loop {
            let lower = rest.to_ascii_lowercase();
            let Some((m, tail)) = lower.split_once('-').filter(|(m, t)| !m.is_empty() && !t.is_empty()) else {
                break;
            };
            match m {
                "ctrl" | "control" => mods |= KeyModifiers::CONTROL,
                "alt" => mods |= KeyModifiers::ALT,
                "shift" => mods |= KeyModifiers::SHIFT,
                _ => return Err(format!("unknown modifier {m:?} in {s:?} (ctrl, alt, shift)")),
            }
            rest = &rest[rest.len() - tail.len()..];
        }
        let lower = rest.to_ascii_lowercase();
        let code = match lower.as_str() {
            "tab" if mods.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
            "tab" => KeyCode::Tab,
            "backtab" => {
                mods |= KeyModifiers::SHIFT;
                KeyCode::BackTab
            }
            "esc" | "escape" => KeyCode::Esc,
            "enter" | "return" => KeyCode::Enter,
            "space" => KeyCode::Char(' '),
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "insert" | "ins" => KeyCode::Insert,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" | "pgup" => KeyCode::PageUp,
            "pagedown" | "pgdn" => KeyCode::PageDown,
            f if f.len() > 1 && f.starts_with('f') && f[1..].chars().all(|c| c.is_ascii_digit()) => {
                match f[1..].parse::<u8>() {
                    Ok(n) if (1..=24).contains(&n) => KeyCode::F(n),
                    _ => return Err(format!("no such function key {s:?} (f1..f24)")),
                }
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if !c.is_control() => {
                        KeyCode::Char(if mods.contains(KeyModifiers::CONTROL) { c.to_ascii_lowercase() } else { c })
                    }
                    _ => return Err(format!("unknown key {s:?} (a character, or tab, esc, enter, space, up, f5, …)")),
                }
            }
        };
        Ok(Key::new(code, mods))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        let shift = self.mods.contains(KeyModifiers::SHIFT);
        match self.code {
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            code => {
                if shift {
                    f.write_str("Shift-")?;
                }
                match code {
                    KeyCode::Char(' ') => f.write_str("Space"),
                    KeyCode::Char(c) => write!(f, "{c}"),
                    KeyCode::Tab => f.write_str("Tab"),
                    KeyCode::Esc => f.write_str("Esc"),
                    KeyCode::Enter => f.write_str("Enter"),
                    KeyCode::Backspace => f.write_str("Backspace"),
                    KeyCode::Delete => f.write_str("Delete"),
                    KeyCode::Insert => f.write_str("Insert"),
                    KeyCode::Up => f.write_str("Up"),
                    KeyCode::Down => f.write_str("Down"),
                    KeyCode::Left => f.write_str("Left"),
                    KeyCode::Right => f.write_str("Right"),
                    KeyCode::Home => f.write_str("Home"),
                    KeyCode::End => f.write_str("End"),
                    KeyCode::PageUp => f.write_str("PageUp"),
                    KeyCode::PageDown => f.write_str("PageDown"),
                    KeyCode::F(n) => write!(f, "F{n}"),
                    other => write!(f, "{other:?}"),
                }
            }
        }
    }
}

/// The keymap in effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    pub bindings: Vec<Binding>,
}

impl Default for Keymap {
    fn default() -> Self {
        let bindings = DEFAULTS
            .iter()
            .map(|(action, name, keys, desc, hint, group)| Binding {
                action: *action,
                name,
                // The defaults are literals checked by a test.
                keys: keys.iter().filter_map(|k| k.parse().ok()).collect(),
                desc,
                hint: *hint,
                group,
            })
            .collect();
        Self { bindings }
    }
}

/// The action names `[ui.keys]` accepts.
pub fn action_names() -> Vec<&'static str> {
    DEFAULTS.iter().map(|d| d.1).collect()
}

impl Keymap {
    /// The defaults with `[ui.keys]` applied: each named action gets exactly the keys given.
    /// Errors name the config key (`ui.keys.<action>`) and say what is wrong.
    pub fn with_overrides(overrides: &BTreeMap<String, Vec<String>>) -> Result<Self, (String, String)> {
        let mut map = Self::default();
        for (name, keys) in overrides {
            let key = format!("ui.keys.{name}");
            let Some(b) = map.bindings.iter_mut().find(|b| b.name == name) else {
                return Err((key, format!("unknown action {name:?}; actions: {}", action_names().join(", "))));
            };
            if keys.is_empty() {
                return Err((key, "needs at least one key".into()));
            }
            b.keys = keys.iter().map(|k| k.parse::<Key>()).collect::<Result<_, _>>().map_err(|e| (key.clone(), e))?;
        }
        // One key, one action.
        let mut seen: Vec<(Key, &'static str)> = Vec::new();
        for b in &map.bindings {
            for k in &b.keys {
                if let Some((_, other)) = seen.iter().find(|(s, _)| s == k) {
                    // Name the action the user changed.
                    let (name, rival) = if overrides.contains_key(*other) && !overrides.contains_key(b.name) {
                        (*other, b.name)
                    } else {
                        (b.name, *other)
                    };
                    return Err((
                        format!("ui.keys.{name}"),
                        format!("key {k} is also bound to {rival}; give one of them another key"),
                    ));
                }
                seen.push((*k, b.name));
            }
        }
        Ok(map)
    }

    /// The action a key event triggers.
    pub fn action(&self, ev: &KeyEvent) -> Option<Action> {
        self.bindings.iter().find(|b| b.keys.iter().any(|k| k.matches(ev))).map(|b| b.action)
    }

    pub fn is(&self, action: Action, ev: &KeyEvent) -> bool {
        self.binding(action).is_some_and(|b| b.keys.iter().any(|k| k.matches(ev)))
    }

    pub fn binding(&self, action: Action) -> Option<&Binding> {
        self.bindings.iter().find(|b| b.action == action)
    }

    /// The keys of an action as shown to the user (`q`, `Ctrl-c`).
    pub fn keys_label(&self, action: Action) -> String {
        self.binding(action)
            .map(|b| b.keys.iter().map(Key::to_string).collect::<Vec<_>>().join("/"))
            .unwrap_or_default()
    }

    /// The first key of an action, for short hints.
    pub fn first_key(&self, action: Action) -> String {
        self.binding(action).and_then(|b| b.keys.first()).map(Key::to_string).unwrap_or_default()
    }

    /// Help sections: (group, [(keys, description)]), in table order.
    pub fn help_sections(&self) -> Vec<(&'static str, Vec<(String, &'static str)>)> {
        let mut out: Vec<(&'static str, Vec<(String, &'static str)>)> = Vec::new();
        for b in &self.bindings {
            let keys = b.keys.iter().map(Key::to_string).collect::<Vec<_>>().join(" ");
            match out.iter_mut().find(|(g, _)| *g == b.group) {
                Some((_, rows)) => rows.push((keys, b.desc)),
                None => out.push((b.group, vec![(keys, b.desc)])),
            }
        }
        out
    }

    /// The hint line: (key, label) of the actions that have one.
    pub fn hints(&self) -> Vec<(String, &'static str)> {
        self.bindings.iter().filter_map(|b| Some((b.keys.first()?.to_string(), b.hint?))).collect()
    }
}

impl Keymap {
    /// The README's keys table (a test checks that the README holds exactly this).
    pub fn markdown_table(&self) -> String {
        let mut out = String::from("| Keys | Action (`[ui.keys]` name) | What it does |\n|---|---|---|\n");
        for b in &self.bindings {
            let keys: Vec<String> = b.keys.iter().map(|k| format!("`{k}`")).collect();
            out.push_str(&format!("| {} | `{}` | {} |\n", keys.join(" "), b.name, b.desc));
        }
        out
    }
}

/// Check `[ui.keys]` (used by the config validation so errors name the file and line).
pub fn validate_overrides(overrides: &BTreeMap<String, Vec<String>>) -> Result<(), (String, String)> {
    Keymap::with_overrides(overrides).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn every_default_key_parses_and_is_unique() {
        for (_, name, keys, ..) in DEFAULTS {
            for k in *keys {
                assert!(k.parse::<Key>().is_ok(), "{name}: {k}");
            }
        }
        let map = Keymap::with_overrides(&BTreeMap::new()).expect("defaults have no conflicts");
        assert_eq!(map.bindings.len(), DEFAULTS.len());
        assert!(map.bindings.iter().all(|b| !b.keys.is_empty()));
    }

    #[test]
    fn keys_match_terminal_events() {
        let map = Keymap::default();
        assert_eq!(map.action(&ev(KeyCode::Char('q'), KeyModifiers::NONE)), Some(Action::Quit));
        assert_eq!(map.action(&ev(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(Action::Quit));
        assert_eq!(map.action(&ev(KeyCode::Char('c'), KeyModifiers::NONE)), Some(Action::CpuStress));
        // Shifted printable keys arrive with SHIFT on some terminals.
        assert_eq!(map.action(&ev(KeyCode::Char('?'), KeyModifiers::SHIFT)), Some(Action::Help));
        assert_eq!(map.action(&ev(KeyCode::Char('+'), KeyModifiers::SHIFT)), Some(Action::ZoomIn));
        assert_eq!(map.action(&ev(KeyCode::BackTab, KeyModifiers::SHIFT)), Some(Action::FocusPrev));
        assert_eq!(map.action(&ev(KeyCode::BackTab, KeyModifiers::NONE)), Some(Action::FocusPrev));
        assert_eq!(map.action(&ev(KeyCode::Char('Q'), KeyModifiers::SHIFT)), None);
        assert_eq!(map.action(&ev(KeyCode::Char('q'), KeyModifiers::ALT)), None);
    }

    #[test]
    fn keys_parse_and_print() {
        for (text, shown) in [
            ("q", "q"),
            ("ctrl-c", "Ctrl-c"),
            ("Ctrl-C", "Ctrl-c"),
            ("shift-tab", "Shift-Tab"),
            ("-", "-"),
            ("ctrl--", "Ctrl--"),
            ("f5", "F5"),
            ("space", "Space"),
            ("alt-x", "Alt-x"),
            ("up", "Up"),
        ] {
            let k: Key = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(k.to_string(), shown, "{text}");
            assert_eq!(shown.to_ascii_lowercase().parse::<Key>().map(|k| k.to_string()), Ok(shown.to_string()));
        }
        assert!("hyper-x".parse::<Key>().is_err());
        assert!("f99".parse::<Key>().is_err());
        assert!("abc".parse::<Key>().is_err());
        assert!("".parse::<Key>().is_err());
    }

    #[test]
    fn overrides_replace_keys_and_catch_mistakes() {
        let mut o = BTreeMap::new();
        o.insert("quit".to_string(), vec!["ctrl-q".to_string()]);
        let map = Keymap::with_overrides(&o).expect("valid");
        assert_eq!(map.action(&ev(KeyCode::Char('q'), KeyModifiers::CONTROL)), Some(Action::Quit));
        assert_eq!(map.action(&ev(KeyCode::Char('q'), KeyModifiers::NONE)), None);

        o.insert("stop_task".to_string(), vec!["ctrl-q".to_string()]);
        let (key, msg) = Keymap::with_overrides(&o).expect_err("conflict");
        assert!(key.starts_with("ui.keys."), "{key}");
        assert!(msg.contains("Ctrl-q") && msg.contains("also bound"), "{msg}");

        let mut o = BTreeMap::new();
        o.insert("launch_rocket".to_string(), vec!["r".to_string()]);
        let (key, msg) = Keymap::with_overrides(&o).expect_err("unknown action");
        assert_eq!(key, "ui.keys.launch_rocket");
        assert!(msg.contains("quit"), "{msg}");
    }

    #[test]
    fn the_readme_keys_table_is_the_keymap() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
        let section = readme.split("\n## Keys\n").nth(1).expect("a \"## Keys\" section in README.md");
        let section = section.split("\n## ").next().unwrap_or(section);
        let table: String = section.lines().filter(|l| l.starts_with('|')).map(|l| format!("{l}\n")).collect();
        assert_eq!(table, Keymap::default().markdown_table(), "README.md's keys table differs from the keymap");
    }

    #[test]
    fn config_key_errors_name_the_line() {
        let text = "[ui]\ntheme = \"dark\"\n\n[ui.keys]\nquit = \"q\"\nlaunch = \"r\"\n";
        let e = crate::config::parse(text, "k.toml").expect_err("unknown action");
        assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("ui.keys.launch")), "{e}");
        let e = crate::config::parse("[ui.keys]\nstop_task = \"q\"\n", "k.toml").expect_err("conflict");
        assert_eq!(
            e.to_string(),
            "k.toml:2: key `ui.keys.stop_task`: key q is also bound to quit; give one of them another key"
        );
        let cfg =
            crate::config::parse("[ui.keys]\nquit = [\"ctrl-q\", \"Q\"]\nhelp = \"h\"\n", "k.toml").expect("valid");
        let map = Keymap::with_overrides(&cfg.ui.keys).expect("valid");
        assert_eq!(map.keys_label(Action::Quit), "Ctrl-q/Q");
        assert_eq!(map.keys_label(Action::Help), "h");
    }

    #[test]
    fn help_is_generated_from_the_table() {
        let map = Keymap::default();
        let sections = map.help_sections();
        let rows: usize = sections.iter().map(|(_, r)| r.len()).sum();
        assert_eq!(rows, map.bindings.len());
        assert!(sections.iter().any(|(g, r)| *g == "General" && r.iter().any(|(k, _)| k == "q Ctrl-c")));
    }
}
