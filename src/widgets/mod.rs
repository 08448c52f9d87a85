//! Drawing, and nothing else: every function here reads the dashboard's state and a palette and
//! writes cells into a ratatui `Buffer`. No I/O, no tokio, no state changes.
//!
//! The layout degrades with the terminal: large (≥ 140×34) shows five charts beside the advisor,
//! tasks and events; medium (≥ 70×20) four charts above the three panels; small shows the replicas
//! chart (and CPU when there is room); tiny shows the header and a status line. It never panics,
//! down to 0×0.

pub mod chart;
pub mod header;
pub mod palette;
pub mod panels;
pub mod popups;
pub mod text;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Widget;

use crate::app::state::{AppState, Focus, sid};
use chart::{Guide, Series, TimeChart, nice_ceil};

/// Draw the whole dashboard into a frame.
pub fn draw(frame: &mut Frame, state: &AppState) {
    let area = frame.area();
    render(area, frame.buffer_mut(), state);
}

/// Which arrangement fits the area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Tiny,
    Small,
    Medium,
    Large,
}

pub fn tier(area: Rect) -> Tier {
    match (area.width, area.height) {
        (w, h) if w >= 140 && h >= 34 => Tier::Large,
        (w, h) if w >= 70 && h >= 20 => Tier::Medium,
        (w, h) if w >= 40 && h >= 10 => Tier::Small,
        _ => Tier::Tiny,
    }
}

/// Draw the whole dashboard into a buffer.
pub fn render(area: Rect, buf: &mut Buffer, state: &AppState) {
    let p = state.palette();
    buf.set_style(area, p.base());
    if area.width == 0 || area.height == 0 {
        return;
    }
    let t = tier(area);
    let header_h = if matches!(t, Tier::Medium | Tier::Large) { 2 } else { 1 };
    let [head, body, hints] =
        Layout::vertical([Constraint::Length(header_h), Constraint::Fill(1), Constraint::Length(1)]).areas(area);
    header::render(head, buf, state);
    if area.height >= 2 {
        panels::hints(hints, buf, state);
    }
    match t {
        Tier::Tiny => panels::status_lines(body, buf, state),
        Tier::Small => {
            let [charts, line] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(body);
            if charts.height >= 12 {
                let [a, b] = Layout::vertical([Constraint::Percentage(55), Constraint::Fill(1)]).areas(charts);
                replicas_chart(state, a, buf);
                cpu_chart(state, b, buf);
            } else {
                replicas_chart(state, charts, buf);
            }
            panels::status_lines(line, buf, state);
        }
        Tier::Medium => {
            let [charts, panels_area] = Layout::vertical([Constraint::Percentage(62), Constraint::Fill(1)]).areas(body);
            let [top, bottom] = Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(charts);
            let [a, b] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(top);
            replicas_chart(state, a, buf);
            cpu_chart(state, b, buf);
            if bottom.width >= 120 {
                let [c, d, e] = Layout::horizontal([Constraint::Fill(1); 3]).areas(bottom);
                memory_chart(state, c, buf);
                traffic_chart(state, d, buf, false);
                latency_chart(state, e, buf);
            } else {
                let [c, d] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(bottom);
                memory_chart(state, c, buf);
                traffic_chart(state, d, buf, true);
            }
            let [adv, tasks, events] =
                Layout::horizontal([Constraint::Percentage(38), Constraint::Percentage(31), Constraint::Fill(1)])
                    .areas(panels_area);
            panels::advisor(adv, buf, state);
            panels::tasks(tasks, buf, state);
            panels::events(events, buf, state);
        }
        Tier::Large => {
            let right_w = (body.width * 3 / 10).clamp(46, 72);
            let [charts, side] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(right_w)]).areas(body);
            let [r1, r2, r3] =
                Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(30), Constraint::Fill(1)])
                    .areas(charts);
            replicas_chart(state, r1, buf);
            let [c, m] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(r2);
            cpu_chart(state, c, buf);
            memory_chart(state, m, buf);
            let [tr, lat] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(r3);
            traffic_chart(state, tr, buf, false);
            latency_chart(state, lat, buf);
            let [adv, tasks, events] =
                Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(30), Constraint::Fill(1)])
                    .areas(side);
            panels::advisor(adv, buf, state);
            panels::tasks(tasks, buf, state);
            panels::events(events, buf, state);
        }
    }
    popups::render(area, buf, state);
}

/// Columns of plot a chart of this area has (inner width less the y labels).
fn plot_cols(area: Rect) -> usize {
    area.width.saturating_sub(2 + 5) as usize
}

fn x_labels(state: &AppState) -> (String, String) {
    let (a, b) = state.window();
    let right = if state.view.frozen_at.is_some() { "frozen" } else { "now" };
    (chart::age(b - a), right.to_string())
}

/// The downsampled points of each series, for one chart.
fn points(state: &AppState, ids: &[usize], area: Rect) -> Vec<Vec<(f64, f64)>> {
    let (a, b) = state.window();
    let cols = plot_cols(area).max(1);
    ids.iter()
        .map(|id| {
            let mut out = Vec::new();
            state.store.downsample(*id, a, b, cols, &mut out);
            out
        })
        .collect()
}

/// How a legend shows a series' newest value.
#[derive(Clone, Copy)]
enum Fmt {
    Int,
    Num(&'static str),
}

fn fmt(v: Option<f32>, f: Fmt) -> Option<String> {
    v.map(|x| match f {
        Fmt::Int => format!("{}", x.round() as i64),
        Fmt::Num(unit) => format!("{}{unit}", chart::short(f64::from(x))),
    })
}

/// One series of a chart: store index, legend name, colour, steps, value format.
struct Spec {
    id: usize,
    name: String,
    color: ratatui::style::Color,
    step: bool,
    fmt: Fmt,
}

fn spec(id: usize, name: &str, color: ratatui::style::Color, step: bool, fmt: Fmt) -> Spec {
    Spec { id, name: name.to_string(), color, step, fmt }
}

fn y_max(pts: &[Vec<(f64, f64)>]) -> f64 {
    pts.iter().filter_map(|v| crate::app::series::y_range(v.iter())).map(|r| r.1).fold(0.0, f64::max)
}

/// Downsample the specs' series for `area` and draw them.
#[allow(clippy::too_many_arguments)]
fn chart(
    state: &AppState,
    area: Rect,
    buf: &mut Buffer,
    title: &str,
    specs: &[Spec],
    guides: Vec<Guide>,
    integer: bool,
    note: Option<String>,
) {
    let ids: Vec<usize> = specs.iter().map(|s| s.id).collect();
    let pts = points(state, &ids, area);
    let data_max = y_max(&pts).max(guides.iter().map(|g| g.value).fold(0.0, f64::max));
    let top = if integer { data_max.ceil() + 1.0 } else { nice_ceil(data_max * 1.1) };
    let series = specs
        .iter()
        .zip(&pts)
        .map(|(s, pts)| Series {
            name: &s.name,
            color: s.color,
            points: pts,
            step: s.step,
            value: fmt(state.store.latest(s.id), s.fmt),
        })
        .collect();
    TimeChart {
        title,
        series,
        guides,
        x: state.window(),
        y: (0.0, top),
        integer,
        focused: state.focus == Focus::Charts,
        x_labels: x_labels(state),
        note,
        palette: state.palette(),
    }
    .render(area, buf);
}

fn replicas_chart(state: &AppState, area: Rect, buf: &mut Buffer) {
    let p = state.palette();
    let s = &p.series;
    let mut specs = vec![
        spec(sid::SPEC, "spec", p.series(s.spec), true, Fmt::Int),
        spec(sid::READY, "ready", p.series(s.ready), true, Fmt::Int),
        spec(sid::HPA_SIM, "hpa_sim", p.series(s.hpa_sim), true, Fmt::Int),
        spec(sid::HPA_LIVE, "hpa", p.series(s.hpa_live), true, Fmt::Int),
        spec(sid::AI, "ai", p.series(s.ai), true, Fmt::Int),
    ];
    for (i, (name, id)) in state.rec_series.iter().enumerate() {
        specs.push(spec(*id, name, p.recommender(i), true, Fmt::Int));
    }
    let (min, max) = match &state.info {
        Some(i) => (i.min_replicas, i.max_replicas),
        None => (state.cfg.scaling.min_replicas, state.cfg.scaling.max_replicas),
    };
    let guides = vec![
        Guide { name: "min", value: f64::from(min), color: p.series(s.guide) },
        Guide { name: "max", value: f64::from(max), color: p.series(s.guide) },
    ];
    chart(state, area, buf, "Replicas", &specs, guides, true, None);
}

fn cpu_chart(state: &AppState, area: Rect, buf: &mut Buffer) {
    let s = &state.palette().series;
    let ids = (sid::CPU, sid::AI_CPU, sid::CPU_TARGET);
    per_pod_chart(state, area, buf, "CPU/pod", ("cpu", "m"), ids, (s.cpu, s.cpu_target));
}

fn memory_chart(state: &AppState, area: Rect, buf: &mut Buffer) {
    let s = &state.palette().series;
    let ids = (sid::MEM, sid::AI_MEM, sid::MEM_TARGET);
    per_pod_chart(state, area, buf, "Memory/pod", ("mem", "Mi"), ids, (s.memory, s.memory_target));
}

/// A per-pod resource: usage, the advisor's prediction and the target line (request × target %).
#[allow(clippy::too_many_arguments)]
fn per_pod_chart(
    state: &AppState,
    area: Rect,
    buf: &mut Buffer,
    title: &str,
    (name, unit): (&str, &'static str),
    (usage, predicted, target): (usize, usize, usize),
    (color, target_color): (palette::ThemeColor, palette::ThemeColor),
) {
    let p = state.palette();
    let specs = [
        spec(usage, name, p.series(color), false, Fmt::Num(unit)),
        spec(predicted, "ai pred", p.series(p.series.ai_predicted), false, Fmt::Num(unit)),
    ];
    let guides = state
        .store
        .latest(target)
        .map(|v| Guide { name: "target", value: f64::from(v), color: p.series(target_color) })
        .into_iter()
        .collect();
    chart(state, area, buf, title, &specs, guides, false, None);
}

/// Requests/s: arriving, served, errors, and the load generator's target and achieved rate once
/// it has run. `with_latency` puts the newest percentiles in the legend (when there is no latency
/// chart beside it).
fn traffic_chart(state: &AppState, area: Rect, buf: &mut Buffer, with_latency: bool) {
    let p = state.palette();
    let s = &p.series;
    let mut specs = vec![
        spec(sid::RPS, "rps", p.series(s.rps), false, Fmt::Num("")),
        spec(sid::SERVED, "served", p.series(s.served), false, Fmt::Num("")),
        spec(sid::ERRORS, "err/s", p.series(s.errors), false, Fmt::Num("")),
    ];
    if state.load_seen {
        specs.push(spec(sid::LOAD_ACHIEVED, "load", p.series(s.load_achieved), false, Fmt::Num("")));
        specs.push(spec(sid::LOAD_TARGET, "target", p.series(s.load_target), false, Fmt::Num("")));
    }
    let note = with_latency.then(|| {
        let v = |id| fmt(state.store.latest(id), Fmt::Num("")).unwrap_or_else(|| "–".into());
        format!("p50/95/99 {}/{}/{} ms", v(sid::P50), v(sid::P95), v(sid::P99))
    });
    chart(state, area, buf, "Traffic req/s", &specs, Vec::new(), false, note);
}

fn latency_chart(state: &AppState, area: Rect, buf: &mut Buffer) {
    let p = state.palette();
    let s = &p.series;
    let specs = [
        spec(sid::P99, "p99", p.series(s.p99), false, Fmt::Num("")),
        spec(sid::P95, "p95", p.series(s.p95), false, Fmt::Num("")),
        spec(sid::P50, "p50", p.series(s.p50), false, Fmt::Num("")),
    ];
    let title = match state.last_row() {
        Some(r) if r.load.p50_ms.is_some() => "Latency ms (load generator)",
        _ => "Latency ms",
    };
    chart(state, area, buf, title, &specs, Vec::new(), false, None);
}
