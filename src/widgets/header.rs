//! The header: what is being run against (SIMULATED, loudly, on the simulator), the target, who is
//! in control, the tick, the run clock, the health of the metrics and the cluster, the CSV path.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::app::state::AppState;
use crate::engine::types::Mode;

/// `h:mm:ss` (or `m:ss` under an hour).
pub fn clock(s: f64) -> String {
    let s = s.max(0.0) as u64;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 { format!("{h}:{m:02}:{sec:02}") } else { format!("{m}:{sec:02}") }
}

/// Keep the end of a long text (paths): `…tail`.
pub fn tail(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let skip = n - (max - 1);
    format!("…{}", text.chars().skip(skip).collect::<String>())
}

pub fn render(area: Rect, buf: &mut Buffer, state: &AppState) {
    if area.height == 0 {
        return;
    }
    let p = state.palette();
    let sep = || Span::styled(" · ", p.muted());
    let mut l1: Vec<Span> = Vec::new();
    let row = state.last_row();
    match &state.info {
        Some(info) if info.cluster.backend == "sim" => {
            l1.push(Span::styled(" SIMULATED ", p.badge("sim")));
            l1.push(Span::raw(" "));
            l1.push(Span::styled(format!("{}/{}", info.cluster.namespace, info.cluster.deployment), p.text()));
        }
        Some(info) => {
            l1.push(Span::styled(format!(" {} ", info.cluster.backend.to_uppercase()), p.badge("kube")));
            l1.push(Span::raw(" "));
            l1.push(Span::styled(
                format!("{} {}/{}", info.cluster.context, info.cluster.namespace, info.cluster.deployment),
                p.text(),
            ));
        }
        None => {
            let sim = state.cfg.cluster.backend == crate::config::Backend::Sim;
            l1.push(Span::styled(
                if sim { " SIMULATED " } else { " KUBE " },
                p.badge(if sim { "sim" } else { "kube" }),
            ));
            l1.push(Span::styled(" starting…", p.muted()));
        }
    }
    // Unhealthy sources are said first, loudly.
    if let Some(r) = row {
        if r.metrics_status != "ok" && !r.metrics_status.is_empty() {
            let word =
                if r.metrics_status.starts_with("unreachable") { "METRICS UNREACHABLE" } else { "METRICS DEGRADED" };
            l1.push(Span::raw(" "));
            l1.push(Span::styled(format!(" {word} "), p.badge("error")));
        }
        if r.cluster_status != "ok" && !r.cluster_status.is_empty() {
            l1.push(Span::raw(" "));
            l1.push(Span::styled(" CLUSTER ERROR ", p.badge("error")));
        }
    }
    l1.push(sep());
    l1.push(Span::styled("mode ", p.muted()));
    l1.push(Span::styled(state.mode.as_str(), p.accent()));
    if state.mode == crate::engine::types::Mode::AiScaler {
        l1.push(Span::styled(" driven by ", p.muted()));
        l1.push(Span::styled(state.driver.as_str(), p.accent()));
    }
    if let Some(info) = &state.info {
        l1.push(sep());
        l1.push(Span::styled(format!("tick {}s", fmt_secs(info.interval_s)), p.text()));
        if info.speed != "1" {
            l1.push(Span::styled(format!(" ×{}", info.speed), p.muted()));
        }
        l1.push(sep());
        let elapsed = state.elapsed_s();
        let clock_text = match info.duration_s {
            Some(d) => format!("{} / {}", clock(elapsed), clock(d)),
            None => clock(elapsed),
        };
        l1.push(Span::styled(clock_text, p.text()));
        if info.driver != "ai" {
            l1.push(sep());
            l1.push(Span::styled(format!("driver {}", info.driver), p.text()));
        }
        if info.read_only {
            l1.push(Span::raw(" "));
            l1.push(Span::styled(" READ-ONLY ", p.badge("warning")));
        }
        if state.saved_hpa.is_some() {
            l1.push(Span::raw(" "));
            l1.push(Span::styled(" HPA NOT RESTORED ", p.badge("error")));
        }
        if info.limits_off && state.mode == Mode::AiScaler {
            l1.push(Span::raw(" "));
            l1.push(Span::styled(" NO LIMITS ", p.badge("warning")));
        }
    }
    if state.view.frozen_at.is_some() {
        l1.push(Span::raw(" "));
        l1.push(Span::styled(" FROZEN ", p.badge("warning")));
    }
    if state.finished.is_some() {
        l1.push(Span::raw(" "));
        l1.push(Span::styled(" RUN ENDED ", p.badge("warning")));
    } else if state.quitting.is_some() {
        l1.push(Span::raw(" "));
        l1.push(Span::styled(" STOPPING ", p.badge("warning")));
    }
    Line::from(l1).render(Rect { height: 1, ..area }, buf);
    if area.height < 2 {
        return;
    }
    // Line 2: sources, rows, the record.
    let mut l2: Vec<Span> = vec![Span::raw(" ")];
    match row {
        Some(r) => {
            let ms = if r.metrics_status.is_empty() { "–" } else { r.metrics_status.as_str() };
            l2.push(Span::styled(format!("metrics {}: ", r.metrics_source), p.muted()));
            l2.push(Span::styled(ms.to_string(), if ms == "ok" { p.success() } else { p.error() }));
            l2.push(sep());
            l2.push(Span::styled("cluster: ", p.muted()));
            let cs = if r.cluster_status.is_empty() { "–" } else { r.cluster_status.as_str() };
            l2.push(Span::styled(cs.to_string(), if cs == "ok" { p.success() } else { p.error() }));
        }
        None => l2.push(Span::styled("waiting for the first tick", p.muted())),
    }
    l2.push(sep());
    l2.push(Span::styled(format!("{} rows", state.rows_seen), p.text()));
    if let Some(info) = &state.info {
        l2.push(sep());
        let used: usize = l2.iter().map(|s| s.content.chars().count()).sum();
        let room = (area.width as usize).saturating_sub(used + 5);
        l2.push(Span::styled("csv ", p.muted()));
        l2.push(Span::styled(tail(&info.csv_path.display().to_string(), room), p.label()));
    }
    Line::from(l2).render(Rect { y: area.y + 1, height: 1, ..area }, buf);
}

fn fmt_secs(s: f64) -> String {
    if s.fract() == 0.0 { format!("{}", s as i64) } else { format!("{s:.1}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_and_tails() {
        assert_eq!(clock(59.9), "0:59");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(tail("abcdef", 4), "…def");
        assert_eq!(tail("abc", 4), "abc");
        assert_eq!(tail("abc", 0), "");
    }
}
