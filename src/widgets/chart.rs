//! A time chart: several series already downsampled (≈ two points per column, `NaN` = a break),
//! horizontal guides (min/max, targets), the legend with each series' newest value in the top
//! border and the time axis in the bottom one. All series share one braille canvas layer, so the
//! cost is proportional to the points drawn, not to the history.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine, Points};
use ratatui::widgets::{Block, Borders, Widget};

use super::palette::Palette;

/// One series.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    pub name: &'a str,
    pub color: Color,
    pub points: &'a [(f64, f64)],
    /// Draw as steps (hold the value until the next sample): counts such as replicas.
    pub step: bool,
    /// The newest value, for the legend.
    pub value: Option<String>,
}

/// A horizontal reference line.
#[derive(Debug, Clone)]
pub struct Guide<'a> {
    pub name: &'a str,
    pub value: f64,
    pub color: Color,
}

#[derive(Debug, Clone)]
pub struct TimeChart<'a> {
    pub title: &'a str,
    pub series: Vec<Series<'a>>,
    pub guides: Vec<Guide<'a>>,
    pub x: (f64, f64),
    pub y: (f64, f64),
    /// Whole-number axis labels (replicas).
    pub integer: bool,
    pub focused: bool,
    /// Bottom border: (left, right) labels of the time axis.
    pub x_labels: (String, String),
    /// Extra text after the legend (figures that have no series here).
    pub note: Option<String>,
    pub palette: &'a Palette,
}

/// Round up to 1, 2, 2.5 or 5 × 10^k.
pub fn nice_ceil(v: f64) -> f64 {
    if !(v > 0.0) || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v - 1e-9 * p {
            return m * p;
        }
    }
    10.0 * p
}

/// A short axis label: `150`, `2.5`, `1.2k`, `3.4M`.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `-15m`, `-2h30m`, `-45s` for an age in seconds.
pub fn age(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s == 0 {
        return "0".into();
    }
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    match (h, m, sec) {
        (0, 0, sec) => format!("-{sec}s"),
        (0, m, 0) => format!("-{m}m"),
        (0, m, sec) => format!("-{m}m{sec}s"),
        (h, 0, _) => format!("-{h}h"),
        (h, m, _) => format!("-{h}h{m}m"),
    }
}

impl<'a> Widget for TimeChart<'a> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let p = self.palette;
        // The legend: title, series, guides, note — each item only if it still fits.
        let room = area.width.saturating_sub(2) as usize;
        let mut legend: Vec<Span> = vec![Span::styled(format!(" {} ", self.title), p.title(self.focused))];
        let mut used = self.title.chars().count() + 2;
        let mut add = |legend: &mut Vec<Span<'a>>, items: Vec<Span<'a>>| {
            let w: usize = items.iter().map(|s| s.content.chars().count()).sum();
            if used + w <= room {
                used += w;
                legend.extend(items);
            }
        };
        for s in &self.series {
            let text = match &s.value {
                Some(v) => format!("{} {v} ", s.name),
                None => format!("{} – ", s.name),
            };
            add(&mut legend, vec![Span::styled("━", Style::new().fg(s.color)), Span::styled(text, p.text())]);
        }
        for g in &self.guides {
            add(
                &mut legend,
                vec![
                    Span::styled("┄", Style::new().fg(g.color)),
                    Span::styled(format!("{} {} ", g.name, short(g.value)), p.muted()),
                ],
            );
        }
        if let Some(n) = &self.note {
            add(&mut legend, vec![Span::styled(format!("{n} "), p.muted())]);
        }
        let block = Block::new()
            .borders(Borders::ALL)
            .border_style(p.border(self.focused))
            .title(Line::from(legend))
            .title_bottom(Line::from(Span::styled(format!(" {} ", self.x_labels.0), p.muted())).left_aligned())
            .title_bottom(Line::from(Span::styled(format!(" {} ", self.x_labels.1), p.muted())).right_aligned());
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.width < 4 || inner.height < 1 {
            return;
        }
        let (lo, hi) = self.y;
        let (lo, hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
        // Y labels: top and bottom, and the middle when there is room.
        let label = |v: f64| if self.integer { format!("{}", v.round() as i64) } else { short(v) };
        let mut labels = vec![(0u16, label(hi))];
        if inner.height >= 2 {
            labels.push((inner.height - 1, label(lo)));
        }
        if inner.height >= 5 {
            // The middle value, on the row that draws it.
            let v = if self.integer { ((lo + hi) / 2.0).round() } else { (lo + hi) / 2.0 };
            let row = (((hi - v) / (hi - lo)) * f64::from(inner.height)).floor() as u16;
            if row > 0 && row < inner.height - 1 {
                labels.push((row, label(v)));
            }
        }
        let lw = labels.iter().map(|(_, s)| s.chars().count()).max().unwrap_or(1) as u16;
        let lw = lw.min(inner.width / 3);
        for (row, text) in &labels {
            let x = inner.x + lw.saturating_sub(text.chars().count() as u16);
            buf.set_stringn(x, inner.y + row, text, lw as usize, p.muted());
        }
        let plot =
            Rect { x: inner.x + lw + 1, y: inner.y, width: inner.width.saturating_sub(lw + 1), height: inner.height };
        if plot.width == 0 {
            return;
        }
        let (x0, x1) = self.x;
        let empty = self.series.iter().all(|s| s.points.iter().all(|q| q.0.is_nan()));
        let bg = if p.mono { Color::Reset } else { p.ui.bg.0 };
        Canvas::default()
            .marker(Marker::Braille)
            .background_color(bg)
            .x_bounds([x0, x1])
            .y_bounds([lo, hi])
            .paint(|ctx| {
                // Guides as dotted lines: one dot in four across the width.
                let span = x1 - x0;
                let n = (plot.width as usize * 2 / 4).max(2);
                for g in &self.guides {
                    if g.value >= lo && g.value <= hi {
                        let coords: Vec<(f64, f64)> =
                            (0..=n).map(|i| (x0 + span * i as f64 / n as f64, g.value)).collect();
                        ctx.draw(&Points { coords: &coords, color: g.color });
                    }
                }
                // The legend lists the most important series first; draw it last (on top).
                for s in self.series.iter().rev() {
                    let pts = s.points;
                    if pts.len() == 1 && !pts[0].0.is_nan() {
                        ctx.draw(&Points { coords: pts, color: s.color });
                    }
                    for w in pts.windows(2) {
                        let (a, b) = (w[0], w[1]);
                        if a.0.is_nan() || b.0.is_nan() {
                            // A break: draw the lone point before it.
                            if !a.0.is_nan() {
                                ctx.draw(&Points { coords: &[a], color: s.color });
                            }
                            continue;
                        }
                        if s.step {
                            ctx.draw(&CanvasLine::new(a.0, a.1, b.0, a.1, s.color));
                            ctx.draw(&CanvasLine::new(b.0, a.1, b.0, b.1, s.color));
                        } else {
                            ctx.draw(&CanvasLine::new(a.0, a.1, b.0, b.1, s.color));
                        }
                    }
                }
            })
            .render(plot, buf);
        if empty && plot.height >= 1 {
            let msg = "waiting for the first tick…";
            let w = (msg.chars().count() as u16).min(plot.width);
            let x = plot.x + (plot.width - w) / 2;
            buf.set_stringn(x, plot.y + plot.height / 2, msg, w as usize, p.muted());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_numbers_and_labels() {
        assert_eq!(nice_ceil(0.0), 1.0);
        assert_eq!(nice_ceil(7.0), 10.0);
        assert_eq!(nice_ceil(1.7), 2.0);
        assert_eq!(nice_ceil(2.2), 2.5);
        assert_eq!(nice_ceil(130.0), 200.0);
        assert_eq!(nice_ceil(250.0), 250.0);
        assert_eq!(short(1500.0), "1.5k");
        assert_eq!(short(25_000.0), "25k");
        assert_eq!(short(2.5), "2.5");
        assert_eq!(short(60.0), "60");
        assert_eq!(age(900.0), "-15m");
        assert_eq!(age(9000.0), "-2h30m");
        assert_eq!(age(45.0), "-45s");
    }

    #[test]
    fn tiny_areas_do_not_panic() {
        let p = Palette::monochrome();
        let pts = [(0.0, 1.0), (f64::NAN, f64::NAN), (2.0, 3.0)];
        for (w, h) in [(0, 0), (1, 1), (3, 2), (5, 3), (8, 4), (20, 5)] {
            let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
            TimeChart {
                title: "T",
                series: vec![Series { name: "a", color: Color::Reset, points: &pts, step: true, value: None }],
                guides: vec![Guide { name: "max", value: 2.0, color: Color::Reset }],
                x: (0.0, 2.0),
                y: (0.0, 4.0),
                integer: true,
                focused: false,
                x_labels: ("-2s".into(), "now".into()),
                note: Some("p95 3".into()),
                palette: &p,
            }
            .render(buf.area, &mut buf);
        }
    }
}
