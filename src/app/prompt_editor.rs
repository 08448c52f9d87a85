//! The `p` prompt editor: the advisor's system and user templates in two text areas, the
//! placeholders with what they mean, and a preview of the exact messages the advisor would send
//! now, filled from the rows the dashboard holds (the same `prompt::context` the advisor uses).

use ratatui::crossterm::event::KeyEvent;
use ratatui::style::{Modifier, Style};
use ratatui_textarea::TextArea;

use crate::engine::advisor::RecommendInput;
use crate::engine::advisor::prompt::{self, PLACEHOLDERS, PromptContext, PromptTemplate};
use crate::engine::messages::RunInfo;
use crate::engine::record::Row;
use crate::engine::types::{DeploymentState, MetricsSample, SourceStatus};

/// The placeholder values for a preview: the newest row as the current observation and the rows
/// before it as the history, of which the table shows `history_rows` (as the advisor does).
/// `None` before the first tick.
pub fn preview_context(rows: &[Row], info: &RunInfo, history_rows: usize) -> Option<PromptContext> {
    let (now, history) = rows.split_last()?;
    let sample = MetricsSample {
        at: now.t,
        cpu_millicores: now.cpu_millicores,
        memory_mebibytes: now.memory_mebibytes,
        cpu_request_millicores: now.cpu_request_millicores,
        memory_request_mebibytes: now.memory_request_mebibytes,
        pod_count: now.pod_count,
        per_pod: Vec::new(),
        traffic: now.traffic,
        status: SourceStatus::Ok,
    };
    let deployment = now.current_replicas.map(|spec| DeploymentState {
        spec_replicas: spec,
        status_replicas: spec,
        ready_replicas: now.ready_replicas.unwrap_or(0),
        available_replicas: now.ready_replicas.unwrap_or(0),
    });
    let input = RecommendInput {
        now: now.t,
        elapsed_s: now.elapsed_s,
        mode: now.mode,
        deployment,
        sample: &sample,
        pods: &[],
        hpa_sim: &now.hpa_sim,
        min_replicas: info.min_replicas,
        max_replicas: info.max_replicas,
        cpu_target: info.cpu_target,
        memory_target: info.memory_target,
        history,
        wait: false,
    };
    Some(prompt::context(&input, info.interval_s, history_rows))
}

/// A context that shows each placeholder as `<name>` (before the first tick).
pub fn placeholder_context() -> PromptContext {
    PromptContext { values: PLACEHOLDERS.iter().map(|(k, _)| (k.to_string(), format!("<{k}>"))).collect() }
}

fn area(text: &str) -> TextArea<'static> {
    let mut t = TextArea::new(text.lines().map(String::from).collect());
    t.set_cursor_line_style(Style::default());
    t
}

pub struct PromptEditor {
    pub system: TextArea<'static>,
    pub user: TextArea<'static>,
    /// 0 = system, 1 = user.
    pub focus: usize,
    ctx: PromptContext,
    /// The context holds real values (else placeholders are shown as `<name>`).
    pub live: bool,
    /// The rendered messages, or why the template does not render.
    pub preview: Result<(String, String), String>,
    /// Lines of the preview scrolled past (PageUp/PageDown).
    pub preview_scroll: u16,
}

impl PromptEditor {
    pub fn new(template: &PromptTemplate, ctx: Option<PromptContext>) -> Self {
        let live = ctx.is_some();
        let mut e = Self {
            system: area(&template.system),
            user: area(&template.user),
            focus: 0,
            ctx: ctx.unwrap_or_else(placeholder_context),
            live,
            preview: Err(String::new()),
            preview_scroll: 0,
        };
        e.restyle();
        e.refresh();
        e
    }

    pub fn template(&self) -> PromptTemplate {
        PromptTemplate { system: self.system.lines().join("\n"), user: self.user.lines().join("\n") }
    }

    fn refresh(&mut self) {
        self.preview = prompt::render(&self.template(), &self.ctx);
    }

    fn restyle(&mut self) {
        let on = Style::default().add_modifier(Modifier::REVERSED);
        let (a, b) = if self.focus == 0 { (on, Style::default()) } else { (Style::default(), on) };
        self.system.set_cursor_style(a);
        self.user.set_cursor_style(b);
    }

    pub fn switch(&mut self) {
        self.focus = 1 - self.focus.min(1);
        self.restyle();
    }

    pub fn reset(&mut self) {
        let d = PromptTemplate::default();
        self.system = area(&d.system);
        self.user = area(&d.user);
        self.restyle();
        self.refresh();
    }

    /// Scroll the preview by `by` lines.
    pub fn scroll_preview(&mut self, by: i32) {
        self.preview_scroll = (i32::from(self.preview_scroll) + by).clamp(0, 2_000) as u16;
    }

    pub fn input(&mut self, key: KeyEvent) {
        let t = if self.focus == 0 { &mut self.system } else { &mut self.user };
        if t.input(key) {
            self.refresh();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};

    #[test]
    fn editing_updates_the_preview_and_reports_errors() {
        let mut e = PromptEditor::new(&PromptTemplate::default(), None);
        assert!(e.preview.as_ref().is_ok_and(|(s, _)| s.contains("min_replicas=<min_replicas>")));
        e.switch();
        for c in " {nope}".chars() {
            e.input(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
        assert_eq!(e.preview, Err("user: unknown placeholder {nope}".into()));
        assert!(e.template().user.starts_with(" {nope}"), "typed at the cursor (the start)");
        e.reset();
        assert_eq!(e.template(), PromptTemplate::default());
        assert!(e.preview.is_ok());
    }
}
