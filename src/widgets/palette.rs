//! Colours by meaning: semantic slots for the interface and one colour per chart series. A theme
//! file (`themes/*.toml`) fills every slot; renderers ask for a slot, never for a colour, so a
//! theme never needs a code change. [`Palette::monochrome`] is used when `NO_COLOR` is set.

use ratatui::style::{Color, Modifier, Style};
use serde::{Deserialize, Deserializer};

/// A colour as written in a theme: a name (`red`, `light-blue`, `reset`), `#rrggbb` or an index
/// of the 256-colour palette (`"208"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThemeColor(pub Color);

impl<'de> Deserialize<'de> for ThemeColor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<Color>().map(ThemeColor).map_err(|_| {
            serde::de::Error::custom(format!(
                "{s:?} is not a colour (a name like \"light-blue\", \"#rrggbb\" or a 256-colour index)"
            ))
        })
    }
}

/// Interface slots.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiColors {
    /// Text and background of every panel (`reset` = the terminal's own).
    pub fg: ThemeColor,
    pub bg: ThemeColor,
    /// Secondary text: axis labels, units, finished tasks.
    pub muted: ThemeColor,
    /// Titles, the mode, highlights.
    pub accent: ThemeColor,
    pub border: ThemeColor,
    pub border_focus: ThemeColor,
    /// Field labels, keys in hints.
    pub label: ThemeColor,
    pub success: ThemeColor,
    pub warning: ThemeColor,
    pub error: ThemeColor,
    /// The selected row.
    pub selection_fg: ThemeColor,
    pub selection_bg: ThemeColor,
    /// Badges (SIMULATED, READ-ONLY, FROZEN): text, and the background per kind.
    pub badge_fg: ThemeColor,
    pub badge_sim: ThemeColor,
    pub badge_kube: ThemeColor,
    /// Popups (forms, help, confirmations).
    pub popup_bg: ThemeColor,
    /// Progress bars.
    pub gauge: ThemeColor,
}

/// One colour per chart series.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesColors {
    pub spec: ThemeColor,
    pub ready: ThemeColor,
    pub hpa_sim: ThemeColor,
    pub hpa_live: ThemeColor,
    pub ai: ThemeColor,
    /// Other recommenders, in order (cycled when there are more).
    pub recommenders: Vec<ThemeColor>,
    /// Min/max guides and target lines' dots.
    pub guide: ThemeColor,
    pub cpu: ThemeColor,
    pub cpu_target: ThemeColor,
    pub memory: ThemeColor,
    pub memory_target: ThemeColor,
    /// The advisor's predicted CPU and memory.
    pub ai_predicted: ThemeColor,
    pub rps: ThemeColor,
    pub served: ThemeColor,
    pub errors: ThemeColor,
    pub load_target: ThemeColor,
    pub load_achieved: ThemeColor,
    pub p50: ThemeColor,
    pub p95: ThemeColor,
    pub p99: ThemeColor,
}

/// A theme.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Palette {
    pub name: String,
    pub ui: UiColors,
    pub series: SeriesColors,
    /// Monochrome: colours are ignored and emphasis uses bold/reverse.
    #[serde(skip)]
    pub mono: bool,
}

impl Palette {
    /// Parse a theme file's text (`source` names it in errors).
    pub fn parse(text: &str, source: &str) -> Result<Self, String> {
        let p: Palette = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().trim().replace('\n', " ");
            match line {
                Some(l) => format!("{source}:{l}: {msg}"),
                None => format!("{source}: {msg}"),
            }
        })?;
        if p.series.recommenders.is_empty() {
            return Err(format!("{source}: series.recommenders needs at least one colour"));
        }
        Ok(p)
    }

    /// The `NO_COLOR` palette: the terminal's own colours, emphasis by bold and reverse video.
    pub fn monochrome() -> Self {
        let r = ThemeColor(Color::Reset);
        Palette {
            name: "monochrome".into(),
            ui: UiColors {
                fg: r,
                bg: r,
                muted: r,
                accent: r,
                border: r,
                border_focus: r,
                label: r,
                success: r,
                warning: r,
                error: r,
                selection_fg: r,
                selection_bg: r,
                badge_fg: r,
                badge_sim: r,
                badge_kube: r,
                popup_bg: r,
                gauge: r,
            },
            series: SeriesColors {
                spec: r,
                ready: r,
                hpa_sim: r,
                hpa_live: r,
                ai: r,
                recommenders: vec![r],
                guide: r,
                cpu: r,
                cpu_target: r,
                memory: r,
                memory_target: r,
                ai_predicted: r,
                rps: r,
                served: r,
                errors: r,
                load_target: r,
                load_achieved: r,
                p50: r,
                p95: r,
                p99: r,
            },
            mono: true,
        }
    }

    fn fg_style(&self, c: ThemeColor) -> Style {
        if self.mono { Style::new() } else { Style::new().fg(c.0) }
    }

    pub fn base(&self) -> Style {
        if self.mono { Style::new() } else { Style::new().fg(self.ui.fg.0).bg(self.ui.bg.0) }
    }

    pub fn text(&self) -> Style {
        self.fg_style(self.ui.fg)
    }

    pub fn muted(&self) -> Style {
        if self.mono { Style::new().add_modifier(Modifier::DIM) } else { self.fg_style(self.ui.muted) }
    }

    pub fn accent(&self) -> Style {
        self.fg_style(self.ui.accent).add_modifier(Modifier::BOLD)
    }

    pub fn label(&self) -> Style {
        self.fg_style(self.ui.label)
    }

    pub fn success(&self) -> Style {
        self.fg_style(self.ui.success)
    }

    pub fn warning(&self) -> Style {
        self.fg_style(self.ui.warning).add_modifier(Modifier::BOLD)
    }

    pub fn error(&self) -> Style {
        self.fg_style(self.ui.error).add_modifier(Modifier::BOLD)
    }

    pub fn border(&self, focused: bool) -> Style {
        match (focused, self.mono) {
            (true, true) => Style::new().add_modifier(Modifier::BOLD),
            (false, true) => Style::new(),
            (true, false) => Style::new().fg(self.ui.border_focus.0),
            (false, false) => Style::new().fg(self.ui.border.0),
        }
    }

    pub fn title(&self, focused: bool) -> Style {
        let s = if focused { self.accent() } else { self.fg_style(self.ui.fg).add_modifier(Modifier::BOLD) };
        s.add_modifier(Modifier::BOLD)
    }

    pub fn selection(&self) -> Style {
        if self.mono {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().fg(self.ui.selection_fg.0).bg(self.ui.selection_bg.0)
        }
    }

    /// A loud badge; `kind` picks the background (`sim`, `kube`, `warning`, `error`).
    pub fn badge(&self, kind: &str) -> Style {
        if self.mono {
            return Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD);
        }
        let bg = match kind {
            "sim" => self.ui.badge_sim,
            "kube" => self.ui.badge_kube,
            "error" => self.ui.error,
            _ => self.ui.warning,
        };
        Style::new().fg(self.ui.badge_fg.0).bg(bg.0).add_modifier(Modifier::BOLD)
    }

    pub fn popup(&self) -> Style {
        if self.mono { Style::new() } else { Style::new().fg(self.ui.fg.0).bg(self.ui.popup_bg.0) }
    }

    pub fn gauge(&self) -> Style {
        if self.mono { Style::new() } else { Style::new().fg(self.ui.gauge.0) }
    }

    /// A series' colour (the terminal's default in monochrome).
    pub fn series(&self, c: ThemeColor) -> Color {
        if self.mono { Color::Reset } else { c.0 }
    }

    /// The colour of the `i`-th extra recommender.
    pub fn recommender(&self, i: usize) -> Color {
        let list = &self.series.recommenders;
        match list.get(i % list.len().max(1)) {
            Some(c) => self.series(*c),
            None => Color::Reset,
        }
    }
}
