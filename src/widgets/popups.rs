//! Popups over the dashboard: help (generated from the keymap), confirmations, the task forms,
//! the export path, the prompt editor and the "stopping" notice.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Widget};

use super::palette::Palette;
use super::text::wrap;
use crate::app::forms::{ExportForm, Form};
use crate::app::prompt_editor::PromptEditor;
use crate::app::state::{AppState, Popup};
use crate::engine::advisor::prompt::PLACEHOLDERS;
use crate::engine::types::Mode;

/// The hint line while a popup is open: (key, what it does).
pub fn hints(popup: &Popup) -> Vec<(&'static str, &'static str)> {
    match popup {
        Popup::Help(_) => vec![("Up/Down/PgUp/PgDn", "scroll"), ("Esc", "close")],
        Popup::ConfirmMode(_) | Popup::ConfirmRestore(_) | Popup::ConfirmQuit { .. } => {
            vec![("y", "yes"), ("n/Esc", "no")]
        }
        Popup::Form(_) => vec![("Enter", "launch"), ("Tab/Up/Down", "field"), ("Esc", "cancel")],
        Popup::Export(_) => vec![("Enter", "export"), ("Esc", "cancel")],
        Popup::Prompt(_) => {
            vec![
                ("Ctrl-s", "apply"),
                ("Tab", "system/user"),
                ("PgUp/PgDn", "scroll the preview"),
                ("Ctrl-r", "default template"),
                ("Esc", "cancel"),
            ]
        }
    }
}

/// A rectangle of `w`×`h` centred in `area` (clipped to it).
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

fn frame(area: Rect, buf: &mut Buffer, title: &str, p: &Palette) -> Rect {
    Clear.render(area, buf);
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(p.border(true))
        .style(p.popup())
        .title(Line::from(Span::styled(format!(" {title} "), p.title(true))));
    let inner = block.inner(area);
    block.render(area, buf);
    inner
}

fn put(buf: &mut Buffer, area: Rect, y: &mut u16, line: Line) {
    if *y < area.y + area.height {
        line.render(Rect { x: area.x, y: *y, width: area.width, height: 1 }, buf);
        *y += 1;
    }
}

/// One line of plain text in one style.
fn say(buf: &mut Buffer, area: Rect, y: &mut u16, text: impl Into<String>, style: ratatui::style::Style) {
    put(buf, area, y, Line::from(Span::styled(text.into(), style)));
}

pub fn render(area: Rect, buf: &mut Buffer, state: &AppState) {
    let p = state.palette();
    if state.quitting.is_some() && state.finished.is_none() && state.popup.is_none() {
        let r = centered(area, 64, 5);
        let inner = frame(r, buf, "Stopping", p);
        let mut y = inner.y;
        say(buf, inner, &mut y, "Stopping tasks, restoring the cluster, flushing the CSV…", p.text());
        let elapsed = state.wall_now - state.quitting.unwrap_or(state.wall_now);
        if elapsed >= crate::app::state::SLOW_STOP_S {
            let key = state.keymap.first_key(crate::app::keymap::Action::Quit);
            say(buf, inner, &mut y, format!("This is slow: {key} again leaves now."), p.warning());
        }
        return;
    }
    let Some(popup) = &state.popup else { return };
    match popup {
        Popup::Help(scroll) => help(area, buf, state, *scroll),
        Popup::ConfirmMode(mode) => confirm_mode(area, buf, state, *mode),
        Popup::ConfirmRestore(notice) => confirm_restore(area, buf, state, notice),
        Popup::ConfirmQuit { running } => {
            let r = centered(area, 66, 7);
            let inner = frame(r, buf, "Quit?", p);
            let mut y = inner.y;
            let s = if *running == 1 { "task is" } else { "tasks are" };
            say(buf, inner, &mut y, format!("{running} {s} running."), p.warning());
            say(buf, inner, &mut y, "Quitting stops and cleans them up, restores the cluster", p.text());
            say(buf, inner, &mut y, "and flushes the CSV.", p.text());
            y += 1;
            put(buf, inner, &mut y, yes_no(p, "quit", "stay"));
        }
        Popup::Form(form) => form_popup(area, buf, p, form),
        Popup::Export(form) => export_popup(area, buf, p, form),
        Popup::Prompt(ed) => prompt_popup(area, buf, p, ed),
    }
}

fn yes_no<'a>(p: &Palette, yes: &'a str, no: &'a str) -> Line<'a> {
    Line::from(vec![
        Span::styled("y", p.label()),
        Span::styled(format!(" {yes}    "), p.text()),
        Span::styled("n", p.label()),
        Span::styled("/", p.muted()),
        Span::styled("Esc", p.label()),
        Span::styled(format!(" {no}"), p.text()),
    ])
}

fn confirm_mode(area: Rect, buf: &mut Buffer, state: &AppState, mode: Mode) {
    let p = state.palette();
    let r = centered(area, 72, 9);
    let inner = frame(r, buf, "Switch mode?", p);
    let mut y = inner.y;
    let (min, max) = state
        .info
        .as_ref()
        .map_or((state.cfg.scaling.min_replicas, state.cfg.scaling.max_replicas), |i| (i.min_replicas, i.max_replicas));
    put(
        buf,
        inner,
        &mut y,
        Line::from(vec![Span::styled("Switch to ", p.text()), Span::styled(mode.as_str(), p.accent()), Span::raw("?")]),
    );
    say(
        buf,
        inner,
        &mut y,
        format!("scaletui will apply the advisor's recommendations, clamped to [{min}, {max}]."),
        p.text(),
    );
    let hpa = &state.cfg.cluster.hpa_name;
    let sim = state.info.as_ref().is_some_and(|i| i.cluster.backend == "sim");
    let warn = if sim {
        format!("This removes the HPA {hpa} (here: from the simulated cluster).")
    } else {
        format!("This DELETES the HPA {hpa} from the cluster.")
    };
    say(buf, inner, &mut y, warn, p.warning());
    say(buf, inner, &mut y, "It is re-created when scaletui exits.", p.text());
    y += 1;
    put(buf, inner, &mut y, yes_no(p, "switch", "cancel"));
}

fn confirm_restore(area: Rect, buf: &mut Buffer, state: &AppState, notice: &str) {
    let p = state.palette();
    let width = 76.min(area.width);
    let lines = crate::widgets::text::wrap(notice, width.saturating_sub(4) as usize);
    let r = centered(area, width, (lines.len() as u16).saturating_add(6));
    let inner = frame(r, buf, "Put the HPA back?", p);
    let mut y = inner.y;
    for l in lines {
        say(buf, inner, &mut y, l, p.warning());
    }
    y += 1;
    say(buf, inner, &mut y, "Restore it now, as it was saved?", p.text());
    put(buf, inner, &mut y, yes_no(p, "restore", "not now"));
}

/// One line of the help: a group title, or a key's description (the keys on its first line).
enum HelpLine {
    Group(&'static str),
    Entry { keys: String, text: String },
}

/// The help popup's rectangle in `area` and its lines, descriptions wrapped to its width.
fn help_layout(area: Rect, state: &AppState) -> (Rect, Vec<HelpLine>) {
    let sections = state.keymap.help_sections();
    let kw = sections.iter().flat_map(|(_, r)| r.iter().map(|(k, _)| k.chars().count())).max().unwrap_or(4) + 2;
    let width = 114.min(area.width);
    let text_w = (width.saturating_sub(2) as usize).saturating_sub(kw + 2).max(8);
    let mut lines = Vec::new();
    for (group, entries) in sections {
        lines.push(HelpLine::Group(group));
        for (keys, desc) in entries {
            for (i, part) in wrap(desc, text_w).into_iter().enumerate() {
                let keys = if i == 0 { format!("  {keys:<kw$}") } else { " ".repeat(kw + 2) };
                lines.push(HelpLine::Entry { keys, text: part });
            }
        }
    }
    // The hint line (how to scroll, how to close) stays visible below it.
    let room = if area.height > 6 { area.height - 1 } else { area.height };
    let h = (lines.len() as u16).saturating_add(2).min(room);
    let r = centered(area, width, h);
    (Rect { y: area.y + (room - h) / 2, ..r }, lines)
}

/// How many of `lines` fit in the help's rectangle `r`, and how far they can scroll.
fn scroll_limits(r: Rect, lines: usize) -> (usize, usize) {
    let visible = r.height.saturating_sub(2) as usize;
    (visible, lines.saturating_sub(visible))
}

/// On a screen of `area`: how many lines of the help fit, and how far it can scroll.
pub fn help_scroll_limits(area: Rect, state: &AppState) -> (usize, usize) {
    let (r, lines) = help_layout(area, state);
    scroll_limits(r, lines.len())
}

fn help(area: Rect, buf: &mut Buffer, state: &AppState, scroll: usize) {
    let p = state.palette();
    let (r, lines) = help_layout(area, state);
    let (visible, max) = scroll_limits(r, lines.len());
    let scroll = scroll.min(max);
    let title = if lines.len() > visible {
        format!("Keys {}–{} of {} (↑↓ PgUp PgDn)", scroll + 1, (scroll + visible).min(lines.len()), lines.len())
    } else {
        "Keys".to_string()
    };
    let inner = frame(r, buf, &title, p);
    let mut y = inner.y;
    for line in lines.iter().skip(scroll).take(visible) {
        match line {
            HelpLine::Group(g) => say(buf, inner, &mut y, *g, p.accent()),
            HelpLine::Entry { keys, text } => put(
                buf,
                inner,
                &mut y,
                Line::from(vec![Span::styled(keys.clone(), p.label()), Span::styled(text.clone(), p.text())]),
            ),
        }
    }
}

fn form_popup(area: Rect, buf: &mut Buffer, p: &Palette, form: &Form) {
    let visible = form.visible_fields();
    let h = visible.len() as u16 + 5;
    let r = centered(area, 84, h);
    let inner = frame(r, buf, form.title, p);
    if inner.width < 10 {
        return;
    }
    let lw = form.fields.iter().map(|f| f.label.len()).max().unwrap_or(8) as u16 + 2;
    let field_w = (if inner.width >= 90 { 24u16 } else { 14 }).min(inner.width.saturating_sub(lw));
    let mut y = inner.y;
    for i in visible {
        if y >= inner.y + inner.height {
            break;
        }
        let f = &form.fields[i];
        let focused = i == form.focus;
        let label_style = if focused { p.accent() } else { p.label() };
        buf.set_stringn(inner.x, y, f.label, lw as usize, label_style);
        let field = Rect { x: inner.x + lw, y, width: field_w, height: 1 };
        buf.set_style(field, if focused { p.selection() } else { p.muted() });
        f.input.render(field, buf);
        let help_x = inner.x + lw + field_w + 1;
        if help_x < inner.x + inner.width {
            buf.set_stringn(help_x, y, f.help, (inner.x + inner.width - help_x) as usize, p.muted());
        }
        y += 1;
    }
    y += 1;
    if let Some(e) = &form.error {
        say(buf, inner, &mut y, e.clone(), p.error());
    } else {
        say(buf, inner, &mut y, "Enter launches it in the background.", p.muted());
    }
}

fn export_popup(area: Rect, buf: &mut Buffer, p: &Palette, form: &ExportForm) {
    let r = centered(area, 90, 7);
    let inner = frame(r, buf, "Export to CSV", p);
    let mut y = inner.y;
    say(
        buf,
        inner,
        &mut y,
        format!("The {} rows the dashboard holds, with the record's header, to:", form.rows),
        p.text(),
    );
    if y < inner.y + inner.height {
        let field = Rect { x: inner.x, y, width: inner.width, height: 1 };
        buf.set_style(field, p.selection());
        form.path.input.render(field, buf);
        y += 2;
    }
    match &form.error {
        Some(e) => say(buf, inner, &mut y, e.clone(), p.error()),
        None => say(buf, inner, &mut y, "Enter writes it; the run's own CSV keeps going.", p.muted()),
    }
}

fn prompt_popup(area: Rect, buf: &mut Buffer, p: &Palette, ed: &PromptEditor) {
    let r = centered(area, area.width.saturating_sub(4).max(20), area.height.saturating_sub(2).max(6));
    let inner = frame(r, buf, "Advisor prompt template", p);
    if inner.width < 20 || inner.height < 4 {
        return;
    }
    let [left, right] = Layout::horizontal([Constraint::Percentage(55), Constraint::Fill(1)]).areas(inner);
    let [sys, usr] = Layout::vertical([Constraint::Percentage(50), Constraint::Fill(1)]).areas(left);
    for (i, (area, title, ta)) in [(sys, "system", &ed.system), (usr, "user", &ed.user)].into_iter().enumerate() {
        let focused = ed.focus == i;
        let b = Block::new()
            .borders(Borders::ALL)
            .border_style(p.border(focused))
            .title(Line::from(Span::styled(format!(" {title} "), p.title(focused))));
        let a = b.inner(area);
        b.render(area, buf);
        ta.render(a, buf);
    }
    // Right: the preview (or why it does not render) above the placeholders.
    let ph = (PLACEHOLDERS.len() as u16 + 2).min(right.height / 2);
    let [top, bottom] = Layout::vertical([Constraint::Fill(1), Constraint::Length(ph)]).areas(right);
    let b = Block::new().borders(Borders::ALL).border_style(p.border(false)).title(Line::from(Span::styled(
        if ed.live { " preview: the messages it sends now (PgUp/PgDn) " } else { " preview (no tick yet; PgUp/PgDn) " },
        p.title(false),
    )));
    let a = b.inner(top);
    b.render(top, buf);
    let w = a.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    match &ed.preview {
        Ok((s, u)) => {
            lines.push(Line::from(Span::styled("system:", p.accent())));
            lines.extend(wrap(s, w).into_iter().map(|l| Line::from(Span::styled(l, p.text()))));
            lines.push(Line::from(Span::styled("user:", p.accent())));
            lines.extend(wrap(u, w).into_iter().map(|l| Line::from(Span::styled(l, p.text()))));
        }
        Err(e) => lines.extend(wrap(e, w).into_iter().map(|l| Line::from(Span::styled(l, p.error())))),
    }
    let mut y = a.y;
    let skip = (ed.preview_scroll as usize).min(lines.len().saturating_sub(a.height as usize));
    for l in lines.into_iter().skip(skip) {
        put(buf, a, &mut y, l);
    }
    let b = Block::new()
        .borders(Borders::ALL)
        .border_style(p.border(false))
        .title(Line::from(Span::styled(" placeholders ", p.title(false))));
    let a = b.inner(bottom);
    b.render(bottom, buf);
    let mut y = a.y;
    for (k, d) in PLACEHOLDERS {
        put(
            buf,
            a,
            &mut y,
            Line::from(vec![Span::styled(format!("{{{k}}} "), p.label()), Span::styled(*d, p.muted())]),
        );
    }
}
