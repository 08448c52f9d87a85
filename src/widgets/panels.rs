//! The advisor, tasks and events panels, the hint line and the one-line status of small
//! terminals.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Widget};

use super::header::clock;
use super::palette::Palette;
use super::text::wrap;
use crate::app::state::{AdvisorStatus, AppState, Focus};

fn panel<'a>(title: Vec<Span<'a>>, focused: bool, p: &Palette) -> Block<'a> {
    Block::new().borders(Borders::ALL).border_style(p.border(focused)).title(Line::from(title))
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "–".to_string(), |x| x.to_string())
}

pub fn advisor(area: Rect, buf: &mut Buffer, state: &AppState) {
    let p = state.palette();
    let a = &state.advisor;
    let status_style = match &a.status {
        AdvisorStatus::Failed(_) => p.error(),
        AdvisorStatus::Asking { .. } | AdvisorStatus::Streaming => p.accent(),
        AdvisorStatus::NotConfigured => p.muted(),
        _ => p.success(),
    };
    let focused = state.focus == Focus::Advisor;
    let mut title = vec![Span::styled(" Advisor ", p.title(focused))];
    if a.status != AdvisorStatus::NotConfigured {
        title.push(Span::styled(format!("{} ", a.status.label()), status_style));
    }
    let block = panel(title, focused, p);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.width < 2 || inner.height == 0 {
        return;
    }
    let w = inner.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let row = state.last_row();
    let ai = row.map(|r| &r.ai);
    let hpa_sim = row.and_then(|r| r.hpa_sim.desired);
    if a.status == AdvisorStatus::NotConfigured {
        lines.push(Line::from(Span::styled("no advisor configured", p.muted())));
        lines.push(Line::from(vec![
            Span::styled("hpa_sim decides ", p.muted()),
            Span::styled(opt(hpa_sim), p.text()),
            Span::styled(" replicas", p.muted()),
        ]));
        if let Some(r) = row {
            lines.push(Line::from(vec![
                Span::styled("applied ", p.muted()),
                Span::styled(format!("{} by {}", opt(r.applied_replicas), r.applied_by), p.text()),
            ]));
        }
    } else {
        if let Some(model) = state.info.as_ref().and_then(|i| i.advisor.as_deref()) {
            lines.push(Line::from(Span::styled(model.to_string(), p.muted())));
        }
        let rec = ai.and_then(|x| x.recommended_replicas).or(a.last_replicas);
        lines.push(Line::from(vec![
            Span::styled("recommends ", p.muted()),
            Span::styled(opt(rec), p.accent()),
            Span::styled("  confidence ", p.muted()),
            Span::styled(opt(ai.and_then(|x| x.confidence).map(|c| format!("{c:.2}"))), p.text()),
            Span::styled("  hpa_sim ", p.muted()),
            Span::styled(opt(hpa_sim), p.text()),
        ]));
        let latency = ai.and_then(|x| x.latency_ms).or(a.last_latency_ms);
        lines.push(Line::from(vec![
            Span::styled("latency ", p.muted()),
            Span::styled(latency.map_or("–".into(), |l| format!("{:.1}s", l / 1000.0)), p.text()),
            Span::styled("  tokens ", p.muted()),
            Span::styled(
                format!("{}→{}", opt(ai.and_then(|x| x.prompt_tokens)), opt(ai.and_then(|x| x.completion_tokens))),
                p.text(),
            ),
            Span::styled("  attempts ", p.muted()),
            Span::styled(opt(ai.and_then(|x| x.attempts)), p.text()),
        ]));
        if let Some(r) = row {
            lines.push(Line::from(vec![
                Span::styled("applied ", p.muted()),
                Span::styled(format!("{} by {}", opt(r.applied_replicas), r.applied_by), p.text()),
                Span::styled(
                    if r.applied_note.is_empty() { String::new() } else { format!("  {}", r.applied_note) },
                    p.muted(),
                ),
            ]));
        }
        if let Some(err) = ai.and_then(|x| x.error.as_deref()) {
            // Two lines of it, so a narrow panel still says what went wrong.
            for part in wrap(&format!("error: {err}"), w).into_iter().take(2) {
                lines.push(Line::from(Span::styled(part, p.error())));
            }
        }
    }
    if let Some(r) = row {
        lines.extend(recommender_lines(r, state));
    }
    let head = lines.len();
    for (i, l) in lines.into_iter().enumerate().take(inner.height as usize) {
        l.render(Rect { y: inner.y + i as u16, height: 1, ..inner }, buf);
    }
    // The reasoning: streamed text, or the newest row's.
    // An external policy driving: its reasoning when the advisor has none.
    let driver_reasoning = row.and_then(|r| driver_reasoning(r, state)).unwrap_or_default();
    let text: &str = if !a.text.is_empty() {
        &a.text
    } else {
        ai.and_then(|x| x.reasoning.as_deref()).filter(|t| !t.is_empty()).unwrap_or(&driver_reasoning)
    };
    let room = (inner.height as usize).saturating_sub(head + 1);
    if room == 0 || text.is_empty() {
        return;
    }
    let wrapped = wrap(text.trim_start(), w);
    let end = wrapped.len().saturating_sub(a.scroll as usize);
    let start = end.saturating_sub(room);
    let y0 = inner.y + head as u16 + 1;
    for (i, l) in wrapped[start..end].iter().enumerate() {
        buf.set_stringn(inner.x, y0 + i as u16, l, w, p.text());
    }
}

/// The driving recommender's `reasoning` column (external policies have one).
fn driver_reasoning(row: &crate::engine::record::Row, state: &AppState) -> Option<String> {
    let cols = &state.info.as_ref()?.recommenders.iter().find(|(n, _)| *n == state.driver)?.1;
    let i = cols.iter().position(|c| c == "reasoning")?;
    let cells = row.recommenders.iter().find(|c| c.name == state.driver)?;
    cells.values.get(i).filter(|v| !v.is_empty()).map(|v| format!("{}: {v}", cells.name))
}

/// One line per built-in recommender: its replicas and status, and for the VPA its request
/// recommendations (target [lower–upper]).
fn recommender_lines<'a>(row: &'a crate::engine::record::Row, state: &AppState) -> Vec<Line<'a>> {
    let p = state.palette();
    let columns = |name: &str| -> Vec<String> {
        state
            .info
            .as_ref()
            .and_then(|i| i.recommenders.iter().find(|(n, _)| n == name))
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    };
    row.recommenders
        .iter()
        .map(|cells| {
            let cols = columns(&cells.name);
            let value = |col: &str| {
                cols.iter().position(|c| c == col).and_then(|i| cells.values.get(i)).filter(|v| !v.is_empty()).cloned()
            };
            let mut spans = vec![Span::styled(format!("{} ", cells.name), p.muted())];
            if let Some(t) = value("cpu_target_m") {
                // The VPA: requests, not replicas.
                let range = |lo: Option<String>, hi: Option<String>| match (lo, hi) {
                    (Some(l), Some(h)) => format!(" [{l}–{h}]"),
                    _ => String::new(),
                };
                spans.push(Span::styled(
                    format!("cpu {t}m{}", range(value("cpu_lower_m"), value("cpu_upper_m"))),
                    p.text(),
                ));
                if let Some(m) = value("memory_target_mib") {
                    spans.push(Span::styled(
                        format!("  mem {m}Mi{}", range(value("memory_lower_mib"), value("memory_upper_mib"))),
                        p.text(),
                    ));
                }
            } else {
                spans.push(Span::styled(opt(cells.replicas), p.accent()));
                if cells.name == state.driver {
                    spans.push(Span::styled(" (driver)", p.muted()));
                }
            }
            if !cells.status.is_empty() && cells.status != "ok" {
                spans.push(Span::styled(format!("  {}", cells.status), p.muted()));
            }
            Line::from(spans)
        })
        .collect()
}

/// A text progress bar: `████░░░░ 58%`.
pub fn bar(progress: f64, width: usize) -> String {
    let width = width.max(1);
    let filled = ((progress.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

pub fn tasks(area: Rect, buf: &mut Buffer, state: &AppState) {
    let p = state.palette();
    let focused = state.focus == Focus::Tasks;
    let running = state.running_tasks();
    let stop_key = state.keymap.first_key(crate::app::keymap::Action::StopTask);
    let block = panel(
        vec![
            Span::styled(" Tasks ", p.title(focused)),
            Span::styled(format!("{running} running "), p.muted()),
            Span::styled(
                if running > 0 { format!("· {stop_key} stops the selected ") } else { String::new() },
                p.muted(),
            ),
        ],
        focused,
        p,
    );
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.width < 4 || inner.height == 0 {
        return;
    }
    let w = inner.width as usize;
    let list = state.tasks_in_order();
    if list.is_empty() {
        let keys = format!(
            "none · {} cpu stress · {} memory · {} load",
            state.keymap.first_key(crate::app::keymap::Action::CpuStress),
            state.keymap.first_key(crate::app::keymap::Action::MemoryStress),
            state.keymap.first_key(crate::app::keymap::Action::Load)
        );
        for (i, l) in wrap(&keys, w).iter().enumerate().take(inner.height as usize) {
            buf.set_stringn(inner.x, inner.y + i as u16, l, w, p.muted());
        }
        return;
    }
    // Each task: a title line, a progress line and (when there is room) its parameters.
    let per = if inner.height as usize >= list.len() * 3 { 3 } else { 2 };
    // Keep the selected task in view.
    let fits = (inner.height as usize / per).max(1);
    let sel = state.selected_task.and_then(|id| list.iter().position(|t| t.id == id)).unwrap_or(0);
    let first = sel.saturating_sub(fits - 1);
    let mut y = inner.y;
    let bottom = inner.y + inner.height;
    for t in list.iter().skip(first) {
        if y >= bottom {
            break;
        }
        let selected = Some(t.id) == state.selected_task;
        let base = if t.finished { p.muted() } else { p.text() };
        let state_style = if t.state.starts_with("failed") {
            p.error()
        } else if t.finished {
            p.muted()
        } else {
            p.success()
        };
        let title = Line::from(vec![
            Span::styled(if selected { "▶ " } else { "  " }, p.accent()),
            Span::styled(format!("#{} {}", t.id, t.kind), base.add_modifier(ratatui::style::Modifier::BOLD)),
            Span::styled("  ", base),
            Span::styled(t.state.clone(), state_style),
        ]);
        let title = if selected { title.style(p.selection()) } else { title };
        title.render(Rect { x: inner.x, y, width: inner.width, height: 1 }, buf);
        y += 1;
        if y >= bottom {
            break;
        }
        let bar_w = (w / 3).clamp(4, 20);
        let mut spans = match (t.progress, t.finished) {
            (Some(f), _) => vec![
                Span::styled(format!("  {}", bar(f, bar_w)), if t.finished { p.muted() } else { p.gauge() }),
                Span::styled(format!(" {:>3.0}%", f * 100.0), base),
            ],
            (None, false) => vec![Span::styled("  until stopped", p.muted())],
            // Ended without a progress figure (e.g. failed at the start): say what it was.
            (None, true) => vec![Span::styled(format!("  {}", t.params), p.muted())],
        };
        if !t.figures.is_empty() {
            spans.push(Span::styled(format!("  {}", t.figures), base));
        }
        Line::from(spans).render(Rect { x: inner.x, y, width: inner.width, height: 1 }, buf);
        y += 1;
        if per == 3 && y < bottom && !(t.finished && t.progress.is_none()) {
            buf.set_stringn(inner.x + 2, y, &t.params, w.saturating_sub(2), p.muted());
            y += 1;
        }
    }
}

fn event_style(p: &Palette, kind: &str) -> Style {
    match kind {
        "error" | "task_failed" => p.error(),
        "mode_switch" | "driver" => p.accent(),
        "scale" => p.success(),
        "hpa" | "restore" | "signal" => p.warning(),
        _ => p.label(),
    }
}

pub fn events(area: Rect, buf: &mut Buffer, state: &AppState) {
    let p = state.palette();
    let focused = state.focus == Focus::Events;
    let scrolled = if state.events_scroll > 0 { format!("↑{} ", state.events_scroll) } else { String::new() };
    let block = panel(vec![Span::styled(" Events ", p.title(focused)), Span::styled(scrolled, p.muted())], focused, p);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.width < 4 || inner.height == 0 {
        return;
    }
    // Newest at the bottom, each event wrapped under its time.
    let h = inner.height as usize;
    let w = inner.width as usize;
    let end = state.events.len().saturating_sub(state.events_scroll);
    let mut rows: Vec<Line> = Vec::new();
    // One time column as wide as the newest (the longest) time shown.
    let tw = state.events.range(..end).next_back().map_or(4, |e| clock(e.elapsed_s).chars().count());
    for e in state.events.range(..end).rev() {
        if rows.len() >= h {
            break;
        }
        let time = format!("{:>tw$}", clock(e.elapsed_s));
        let indent = tw + 1;
        let text = format!("{} {}", e.kind, e.detail);
        let wrapped = wrap(&text, w.saturating_sub(indent).max(8));
        let mut lines: Vec<Line> = Vec::with_capacity(wrapped.len());
        for (i, l) in wrapped.into_iter().enumerate() {
            let lead = if i == 0 { format!("{time} ") } else { " ".repeat(indent) };
            let body = if i == 0 && l.len() >= e.kind.len() {
                let (k, rest) = l.split_at(e.kind.len());
                vec![Span::styled(k.to_string(), event_style(p, &e.kind)), Span::styled(rest.to_string(), p.text())]
            } else {
                vec![Span::styled(l, p.text())]
            };
            let mut spans = vec![Span::styled(lead, p.muted())];
            spans.extend(body);
            lines.push(Line::from(spans));
        }
        for l in lines.into_iter().rev() {
            rows.push(l);
        }
    }
    rows.truncate(h);
    let top = inner.y + (h - rows.len()) as u16;
    for (i, l) in rows.into_iter().rev().enumerate() {
        l.render(Rect { x: inner.x, y: top + i as u16, width: inner.width, height: 1 }, buf);
    }
}

/// The bottom line: a toast, or the keys that apply now.
pub fn hints(area: Rect, buf: &mut Buffer, state: &AppState) {
    let p = state.palette();
    if let Some(t) = &state.toast {
        let style = if t.error { p.error() } else { p.accent() };
        Line::from(Span::styled(format!(" {}", t.text), style)).render(area, buf);
        return;
    }
    let pairs: Vec<(String, String)> = match &state.popup {
        Some(popup) => super::popups::hints(popup).into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        None if state.quitting.is_some() => {
            vec![("".into(), "stopping: cleaning up tasks, restoring the cluster, flushing the CSV…".into())]
        }
        None => {
            // Help and quit always show; the others while they fit.
            let all = state.keymap.hints();
            let width = |(k, v): &(String, &str)| k.chars().count() + v.chars().count() + 3;
            let (keep, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|(_, v)| matches!(*v, "help" | "quit"));
            let mut room = (area.width as usize).saturating_sub(1 + keep.iter().map(width).sum::<usize>());
            let mut shown: Vec<(String, String)> = Vec::new();
            for h in rest {
                if width(&h) > room {
                    break;
                }
                room -= width(&h);
                shown.push((h.0, h.1.to_string()));
            }
            shown.extend(keep.into_iter().map(|(k, v)| (k, v.to_string())));
            shown
        }
    };
    let mut spans = vec![Span::raw(" ")];
    for (k, v) in pairs {
        if !k.is_empty() {
            spans.push(Span::styled(k, p.label().add_modifier(ratatui::style::Modifier::BOLD)));
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(v, p.muted()));
        spans.push(Span::raw("  "));
    }
    Line::from(spans).render(area, buf);
}

/// Small terminals: the essentials as text lines.
pub fn status_lines(area: Rect, buf: &mut Buffer, state: &AppState) {
    if area.height == 0 || area.width == 0 {
        return;
    }
    let p = state.palette();
    let w = area.width as usize;
    let mut lines: Vec<String> = Vec::new();
    if let Some(r) = state.last_row() {
        lines.push(format!(
            "replicas {}/{} hpa_sim {} ai {} cpu {} mem {}",
            opt(r.ready_replicas),
            opt(r.current_replicas),
            opt(r.hpa_sim.desired),
            opt(r.ai.recommended_replicas),
            r.cpu_millicores.map_or("–".into(), |c| format!("{c:.0}m")),
            r.memory_mebibytes.map_or("–".into(), |m| format!("{m:.0}Mi")),
        ));
    } else {
        lines.push("waiting for the first tick".into());
    }
    let running = state.running_tasks();
    lines.push(format!("tasks: {running} running · advisor: {}", state.advisor.status.label()));
    if let Some(e) = state.events.back() {
        lines.push(format!("{} {}", e.kind, e.detail));
    }
    for (i, l) in lines.iter().enumerate().take(area.height as usize) {
        buf.set_stringn(area.x, area.y + i as u16, l, w, p.text());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_words_and_long_tokens() {
        assert_eq!(wrap("the load is rising fast", 10), vec!["the load", "is rising", "fast"]);
        assert_eq!(wrap("    max = 10", 20), vec!["    max = 10"], "indentation is kept");
        assert_eq!(wrap("abcdefghijkl", 5), vec!["abcde", "fghij", "kl"]);
        assert_eq!(wrap("a\n\nb", 5), vec!["a", "", "b"]);
        assert_eq!(bar(0.5, 4), "██░░");
        assert_eq!(bar(2.0, 3), "███");
    }
}
