//! Plots of a sweep, each as PNG and SVG (the SVG text also goes inline into `report.html`):
//! per scenario and figure a box plot with every seed's value as a point, per policy; replicas
//! and tick p99 over time with the median across seeds and a 5–95 % band; cost against latency
//! (core-hours against p99, one point per run, the policy's mean with its intervals as bars).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::analysis::{Analysis, Cell, FIGURES, figure};
use super::plot::{COLOURS, register_font, tidy};
use super::stats::quantile;
use super::{ReportConfig, RunRow};

const SIZE: (u32, u32) = (1000, 480);

/// One SVG plot of a scenario, for the HTML report.
pub struct SvgPlot {
    pub scenario: usize,
    pub id: String,
    pub title: String,
    pub svg: String,
}

pub struct Plots {
    pub files: Vec<PathBuf>,
    pub svgs: Vec<SvgPlot>,
}

type DrawResult = Result<(), String>;

fn err<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// A y range that shows the values: from 0 when they are all well above it, else padded.
fn y_range(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if lo >= 0.0 && lo <= 0.3 * hi {
        return (0.0, if hi > 0.0 { hi * 1.1 } else { 1.0 });
    }
    let pad = if hi > lo { 0.08 * (hi - lo) } else { lo.abs().max(1.0) * 0.05 };
    (lo - pad, hi + pad)
}

/// A deterministic jitter in [−1, 1] for the i-th point.
fn jitter(i: usize) -> f64 {
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    (x as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

/// A box plot per group with every value as a point.
fn draw_strip<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    groups: &[(String, Vec<f64>)],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let e = err::<DrawingAreaErrorKind<DB::ErrorType>>(title);
    root.fill(&WHITE).map_err(&e)?;
    let n = groups.len().max(1);
    let (y0, y1) = y_range(groups.iter().flat_map(|g| g.1.iter().copied()));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), y0..y1)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_label)
        .y_label_formatter(&|v| tidy(*v))
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(&e)?;
    for (i, (label, vals)) in groups.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let x = i as f64;
        if !vals.is_empty() {
            let (q1, med, q3) = (quantile(vals, 0.25), quantile(vals, 0.5), quantile(vals, 0.75));
            let iqr = q3 - q1;
            let lo = vals.iter().copied().filter(|v| *v >= q1 - 1.5 * iqr).fold(f64::INFINITY, f64::min);
            let hi = vals.iter().copied().filter(|v| *v <= q3 + 1.5 * iqr).fold(f64::NEG_INFINITY, f64::max);
            let w = 0.28;
            chart.draw_series([Rectangle::new([(x - w, q1), (x + w, q3)], c.mix(0.15).filled())]).map_err(&e)?;
            chart.draw_series([Rectangle::new([(x - w, q1), (x + w, q3)], c.stroke_width(1))]).map_err(&e)?;
            chart.draw_series([PathElement::new(vec![(x - w, med), (x + w, med)], c.stroke_width(3))]).map_err(&e)?;
            for (a, b) in [(q3, hi), (q1, lo)] {
                chart.draw_series([PathElement::new(vec![(x, a), (x, b)], c.stroke_width(1))]).map_err(&e)?;
                chart
                    .draw_series([PathElement::new(vec![(x - w / 2.0, b), (x + w / 2.0, b)], c.stroke_width(1))])
                    .map_err(&e)?;
            }
            chart
                .draw_series(
                    vals.iter()
                        .enumerate()
                        .map(|(k, v)| Circle::new((x + 0.18 * jitter(k), *v), 3, c.mix(0.6).filled())),
                )
                .map_err(&e)?;
        }
        let (px, py) = chart.backend_coord(&(x, y0));
        let style = TextStyle::from(("sans-serif", 14).into_font()).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ));
        root.draw(&Text::new(label.clone(), (px, py + 8), style)).map_err(&e)?;
    }
    root.present().map_err(&e)?;
    Ok(())
}

/// A chart over time: file name, title, y label, the value per tick, a guide line.
type TimeSeries<'a> = (&'a str, String, &'a str, fn(&RunRow) -> Option<f64>, Option<(f64, String)>);

/// One band series: (minutes, 5 %, median, 95 %).
type Band = Vec<(f64, f64, f64, f64)>;

fn draw_bands<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    bands: &[(String, Band)],
    guide: Option<(f64, String)>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let e = err::<DrawingAreaErrorKind<DB::ErrorType>>(title);
    root.fill(&WHITE).map_err(&e)?;
    let x_max = bands.iter().flat_map(|b| b.1.iter().map(|p| p.0)).fold(1.0 / 60.0, f64::max);
    let mut y_max = bands.iter().flat_map(|b| b.1.iter().map(|p| p.3)).filter(|v| v.is_finite()).fold(0.0, f64::max);
    if let Some((g, _)) = &guide {
        y_max = y_max.max(*g);
    }
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc(y_label)
        .x_label_formatter(&|v| tidy(*v))
        .y_label_formatter(&|v| tidy(*v))
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(&e)?;
    for (i, (label, band)) in bands.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        if band.is_empty() {
            continue;
        }
        let mut poly: Vec<(f64, f64)> = band.iter().map(|p| (p.0, p.3)).collect();
        poly.extend(band.iter().rev().map(|p| (p.0, p.1)));
        chart.draw_series([Polygon::new(poly, c.mix(0.15).filled())]).map_err(&e)?;
        chart
            .draw_series(LineSeries::new(band.iter().map(|p| (p.0, p.2)), c.stroke_width(2)))
            .map_err(&e)?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    if let Some((g, label)) = guide {
        let red = RGBColor(200, 0, 0);
        chart
            .draw_series(LineSeries::new([(0.0, g), (x_max, g)], red.stroke_width(1)))
            .map_err(&e)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(&e)?;
    root.present().map_err(&e)?;
    Ok(())
}

/// One policy on the cost–latency plane: its runs, its mean and the intervals of the means.
struct CostLatency {
    label: String,
    points: Vec<(f64, f64)>,
    mean: Option<(f64, f64)>,
    x_ci: (f64, f64),
    y_ci: (f64, f64),
}

fn draw_cost_latency<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, arms: &[CostLatency]) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let e = err::<DrawingAreaErrorKind<DB::ErrorType>>(title);
    root.fill(&WHITE).map_err(&e)?;
    let (x0, x1) = y_range(arms.iter().flat_map(|a| a.points.iter().map(|p| p.0)));
    let (y0, y1) = y_range(arms.iter().flat_map(|a| a.points.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .x_desc("CPU core-hours")
        .y_desc("p99 ms")
        .x_label_formatter(&|v| tidy(*v))
        .y_label_formatter(&|v| tidy(*v))
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(&e)?;
    for (i, a) in arms.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        chart.draw_series(a.points.iter().map(|p| Circle::new(*p, 3, c.mix(0.35).filled()))).map_err(&e)?;
        let Some((mx, my)) = a.mean else { continue };
        chart.draw_series([PathElement::new(vec![(a.x_ci.0, my), (a.x_ci.1, my)], c.stroke_width(2))]).map_err(&e)?;
        chart.draw_series([PathElement::new(vec![(mx, a.y_ci.0), (mx, a.y_ci.1)], c.stroke_width(2))]).map_err(&e)?;
        chart
            .draw_series([Circle::new((mx, my), 7, c.filled())])
            .map_err(&e)?
            .label(a.label.clone())
            .legend(move |(x, y)| Circle::new((x + 9, y), 5, c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(&e)?;
    root.present().map_err(&e)?;
    Ok(())
}

/// The median and 5–95 % band across seeds of a per-tick value, tick by tick.
fn band(runs: &[&Cell], value: fn(&RunRow) -> Option<f64>) -> Band {
    let len = runs.iter().map(|c| c.run.rows.len()).min().unwrap_or(0);
    let Some(first) = runs.first() else { return Vec::new() };
    let t0 = first.run.rows.first().map_or(0.0, |r| r.obs.elapsed_s);
    (0..len)
        .filter_map(|i| {
            let vals: Vec<f64> = runs.iter().filter_map(|c| value(&c.run.rows[i])).filter(|v| v.is_finite()).collect();
            if vals.is_empty() {
                return None;
            }
            let x = (first.run.rows[i].obs.elapsed_s - t0) / 60.0;
            Some((x, quantile(&vals, 0.05), quantile(&vals, 0.5), quantile(&vals, 0.95)))
        })
        .collect()
}

fn file_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// Every plot of a sweep into `<dir>/plots/`.
pub fn plot_sweep(dir: &Path, cells: &[Cell], a: &Analysis, rcfg: &ReportConfig) -> Result<Plots, String> {
    register_font();
    let plots_dir = dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(|e| format!("{}: {e}", plots_dir.display()))?;
    let mut out = Plots { files: Vec::new(), svgs: Vec::new() };
    for (s, sc_name) in a.scenarios.iter().enumerate() {
        let stem = file_safe(sc_name);
        let mut emit = |name: &str, title: String, draw: &dyn Fn(Target<'_>) -> DrawResult| -> Result<(), String> {
            let png = plots_dir.join(format!("{stem}-{name}.png"));
            draw(Target::Png(BitMapBackend::new(&png, SIZE).into_drawing_area()))?;
            let mut svg = String::new();
            draw(Target::Svg(SVGBackend::with_string(&mut svg, SIZE).into_drawing_area()))?;
            let svg_path = plots_dir.join(format!("{stem}-{name}.svg"));
            std::fs::write(&svg_path, &svg).map_err(|e| format!("{}: {e}", svg_path.display()))?;
            out.files.push(png);
            out.files.push(svg_path);
            out.svgs.push(SvgPlot { scenario: s, id: format!("plot-{stem}-{name}"), title, svg });
            Ok(())
        };
        for fig in &FIGURES {
            let groups: Vec<(String, Vec<f64>)> = (0..a.arms.len())
                .map(|arm| {
                    let mut v: Vec<(u64, f64)> = cells
                        .iter()
                        .filter(|c| c.scenario == s && c.arm == arm)
                        .filter_map(|c| (fig.get)(&c.summary).filter(|v| v.is_finite()).map(|v| (c.seed, v)))
                        .collect();
                    v.sort_by_key(|x| x.0);
                    (a.arms[arm].clone(), v.into_iter().map(|x| x.1).collect())
                })
                .collect();
            if groups.iter().all(|g| g.1.is_empty()) {
                continue;
            }
            let title = format!("{} · {} over seeds", sc_name, fig.title);
            emit(fig.name, title.clone(), &|t| match t {
                Target::Png(r) => draw_strip(r, &title, fig.title, &groups),
                Target::Svg(r) => draw_strip(r, &title, fig.title, &groups),
            })?;
        }
        let per_arm: Vec<Vec<&Cell>> = (0..a.arms.len())
            .map(|arm| {
                let mut v: Vec<&Cell> = cells.iter().filter(|c| c.scenario == s && c.arm == arm).collect();
                v.sort_by_key(|c| c.seed);
                v
            })
            .collect();
        let series: [TimeSeries<'_>; 2] = [
            (
                "replicas",
                format!("{} · replicas (median, 5–95 % over seeds)", sc_name),
                "replicas",
                |r| r.obs.current_replicas,
                None,
            ),
            (
                "p99",
                format!("{} · tick p99 (median, 5–95 % over seeds)", sc_name),
                "milliseconds",
                |r| r.p99_ms,
                Some((rcfg.slo_ms, format!("SLO {} ms", rcfg.slo_ms))),
            ),
        ];
        for (name, title, y_label, value, guide) in series {
            let bands: Vec<(String, Band)> =
                per_arm.iter().enumerate().map(|(arm, runs)| (a.arms[arm].clone(), band(runs, value))).collect();
            if bands.iter().all(|b| b.1.is_empty()) {
                continue;
            }
            emit(name, title.clone(), &|t| match t {
                Target::Png(r) => draw_bands(r, &title, y_label, &bands, guide.clone()),
                Target::Svg(r) => draw_bands(r, &title, y_label, &bands, guide.clone()),
            })?;
        }
        let (Some(xf), Some(yf)) = (figure("core_hours"), figure("p99_ms")) else {
            continue;
        };
        let arms: Vec<CostLatency> = per_arm
            .iter()
            .enumerate()
            .map(|(arm, runs)| {
                let points = runs
                    .iter()
                    .filter_map(|c| Some(((FIGURES[xf].get)(&c.summary)?, (FIGURES[yf].get)(&c.summary)?)))
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .collect();
                let (dx, dy) = (a.stats[s][arm][xf].described, a.stats[s][arm][yf].described);
                CostLatency {
                    label: a.arms[arm].clone(),
                    points,
                    mean: dx.zip(dy).map(|(x, y)| (x.mean, y.mean)),
                    x_ci: dx.map_or((0.0, 0.0), |d| (d.ci_low, d.ci_high)),
                    y_ci: dy.map_or((0.0, 0.0), |d| (d.ci_low, d.ci_high)),
                }
            })
            .collect();
        if arms.iter().all(|a| a.points.is_empty()) {
            continue;
        }
        let title = format!("{} · cost against latency (runs; means with 95 % CI)", sc_name);
        emit("cost-latency", title.clone(), &|t| match t {
            Target::Png(r) => draw_cost_latency(r, &title, &arms),
            Target::Svg(r) => draw_cost_latency(r, &title, &arms),
        })?;
    }
    Ok(out)
}

/// Where a plot is drawn.
enum Target<'a> {
    Png(DrawingArea<BitMapBackend<'a>, Shift>),
    Svg(DrawingArea<SVGBackend<'a>, Shift>),
}
