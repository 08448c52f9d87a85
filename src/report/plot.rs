//! Plots of runs overlaid per policy — replicas, p95 latency (with the SLO line) and CPU cores
//! over time — as PNG and SVG. Text uses a font embedded in the binary, so no system font
//! library is needed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{ReportConfig, RunData, RunRow};

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");
static REGISTER: Once = Once::new();

pub(crate) fn register_font() {
    REGISTER.call_once(|| {
        // The embedded font is known to parse (a unit test checks it); if it did not, text
        // would fail to draw and the plot functions return that error.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Distinguishable colours (Okabe–Ito), one per policy, cycling.
pub(crate) const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

/// One chart: a title, a y-axis label, how to read a value from a row, and an optional
/// horizontal guide (the SLO).
struct ChartSpec<'a> {
    file: &'a str,
    title: String,
    y_label: &'a str,
    value: fn(&RunRow) -> Option<f64>,
    guide: Option<(f64, String)>,
    step: bool,
    /// Whole numbers only on the y axis (replica counts).
    integer: bool,
}

/// An axis label without trailing zeros: `2`, `2.5`, `0.25`.
pub(crate) fn tidy(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Labels of a count axis: whole numbers, nothing between them.
fn whole(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 { format!("{v:.0}") } else { String::new() }
}

fn series(run: &RunData, value: fn(&RunRow) -> Option<f64>, step: bool) -> Vec<(f64, f64)> {
    let t0 = run.rows.first().map_or(0.0, |r| r.obs.elapsed_s);
    let mut pts: Vec<(f64, f64)> = Vec::with_capacity(run.rows.len() * 2);
    for r in &run.rows {
        let Some(v) = value(r).filter(|v| v.is_finite()) else { continue };
        let x = (r.obs.elapsed_s - t0) / 60.0;
        if step && let Some(&(_, prev)) = pts.last() {
            pts.push((x, prev));
        }
        pts.push((x, v));
    }
    pts
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, runs: &[RunData], spec: &ChartSpec<'_>) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| format!("{}: {x}", spec.file);
    root.fill(&WHITE).map_err(e)?;
    let all: Vec<Vec<(f64, f64)>> = runs.iter().map(|r| series(r, spec.value, spec.step)).collect();
    let x_max = all.iter().flatten().map(|p| p.0).fold(0.0, f64::max).max(1.0 / 60.0);
    let mut y_max = all.iter().flatten().map(|p| p.1).fold(0.0, f64::max);
    if let Some((g, _)) = &spec.guide {
        y_max = y_max.max(*g);
    }
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(&spec.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc(spec.y_label)
        .x_label_formatter(&|v| tidy(*v))
        .y_label_formatter(if spec.integer { &|v: &f64| whole(*v) } else { &|v: &f64| tidy(*v) })
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    for (i, (run, pts)) in runs.iter().zip(&all).enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(e)?
            .label(run.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    if let Some((g, label)) = &spec.guide {
        let red = RGBColor(200, 0, 0);
        chart
            .draw_series(LineSeries::new([(0.0, *g), (x_max, *g)], red.stroke_width(1)))
            .map_err(e)?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

const SIZE: (u32, u32) = (1000, 480);

/// Replicas, latency and CPU charts, each as PNG and SVG, in `dir`.
pub fn plot_all(dir: &Path, runs: &[RunData], cfg: &ReportConfig) -> Result<Vec<PathBuf>, String> {
    register_font();
    let slo_value: fn(&RunRow) -> Option<f64> = match cfg.slo_percentile {
        50 => |r| r.p50_ms,
        99 => |r| r.p99_ms,
        _ => |r| r.obs.p95_ms,
    };
    let specs = [
        ChartSpec {
            file: "replicas",
            title: "Replicas (spec) over time".into(),
            y_label: "replicas",
            value: |r| r.obs.current_replicas,
            guide: None,
            step: true,
            integer: true,
        },
        ChartSpec {
            file: "latency",
            title: format!("Latency p{} per tick", cfg.slo_percentile),
            y_label: "milliseconds",
            value: slo_value,
            guide: Some((cfg.slo_ms, format!("SLO {} ms", cfg.slo_ms))),
            step: false,
            integer: false,
        },
        ChartSpec {
            file: "cpu",
            title: "CPU in use (all pods)".into(),
            y_label: "cores",
            value: |r| Some(r.obs.cpu_m? * r.obs.pod_count? / 1000.0),
            guide: None,
            step: false,
            integer: false,
        },
    ];
    let mut files = Vec::new();
    for spec in &specs {
        let png = dir.join(format!("{}.png", spec.file));
        draw(BitMapBackend::new(&png, SIZE).into_drawing_area(), runs, spec)?;
        files.push(png);
        let svg = dir.join(format!("{}.svg", spec.file));
        draw(SVGBackend::new(&svg, SIZE).into_drawing_area(), runs, spec)?;
        files.push(svg);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::advisor::learned::Obs;

    #[test]
    fn axis_labels_are_tidy() {
        assert_eq!(tidy(2.0), "2");
        assert_eq!(tidy(2.5), "2.5");
        assert_eq!(tidy(0.25), "0.25");
        assert_eq!(tidy(-0.0001), "0");
        assert_eq!(whole(4.0), "4");
        assert_eq!(whole(4.5), "");
    }

    #[test]
    fn the_embedded_font_parses() {
        assert!(plotters::style::register_font("scaletui-test", FontStyle::Normal, FONT).is_ok());
    }

    #[test]
    fn writes_png_and_svg() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows: Vec<RunRow> = (0..20)
            .map(|i| RunRow {
                obs: Obs {
                    elapsed_s: f64::from(i) * 30.0,
                    current_replicas: Some(f64::from(1 + i / 5)),
                    cpu_m: Some(50.0),
                    pod_count: Some(2.0),
                    p95_ms: Some(f64::from(i) * 10.0),
                    ..Obs::default()
                },
                ..RunRow::default()
            })
            .collect();
        let runs = vec![
            RunData { label: "a".into(), path: PathBuf::new(), rows: rows.clone(), exact: None },
            RunData { label: "b".into(), path: PathBuf::new(), rows, exact: None },
        ];
        let files = plot_all(dir.path(), &runs, &ReportConfig::default()).expect("plots");
        assert_eq!(files.len(), 6);
        for f in &files {
            let bytes = std::fs::read(f).expect("file");
            if f.extension().is_some_and(|e| e == "png") {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", f.display());
            } else {
                let text = String::from_utf8(bytes).expect("utf-8");
                assert!(
                    text.starts_with("<svg") && text.contains("<text") && text.contains("\na\n</text>"),
                    "{}",
                    f.display()
                );
            }
        }
    }
}
