//! One self-contained `report.html` of a sweep: its notes, per scenario every table and every
//! plot as inline SVG. No scripts, no fonts or styles from the network. The document is also
//! well-formed XML, so tools (and the tests) can parse it.

use std::fmt::Write as _;
use std::path::Path;

use super::analysis::{Analysis, tables};
use super::sweep_plot::SvgPlot;

/// Text for HTML: `&`, `<`, `>` and quotes escaped.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:1100px}\
table{border-collapse:collapse;margin:0.5em 0 1.5em 0;font-size:0.9em}\
th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f2f2f2}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto}.note{color:#555}.partial{color:#b00;font-weight:bold}";

/// Write the report.
pub fn write_report(path: &Path, title: &str, notes: &[String], a: &Analysis, plots: &[SvgPlot]) -> Result<(), String> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    for n in notes {
        let class = if n.starts_with("PARTIAL") { "partial" } else { "note" };
        let _ = writeln!(h, "<p class=\"{class}\">{}</p>", escape(n));
    }
    for (s, name) in a.scenarios.iter().enumerate() {
        let _ = writeln!(h, "<section id=\"scenario-{s}\">\n<h2>{}</h2>", escape(name));
        for (k, (caption, head, rows)) in tables(a, s, None).into_iter().enumerate() {
            let _ = writeln!(h, "<table id=\"table-{s}-{k}\">\n<caption>{}</caption>\n<thead><tr>", escape(&caption));
            for c in &head {
                let _ = write!(h, "<th>{}</th>", escape(c));
            }
            h.push_str("</tr></thead>\n<tbody>\n");
            for r in &rows {
                h.push_str("<tr>");
                for c in r {
                    let _ = write!(h, "<td>{}</td>", escape(c));
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</tbody>\n</table>\n");
        }
        for p in plots.iter().filter(|p| p.scenario == s) {
            let svg = p.svg.trim_start();
            let svg = match svg.strip_prefix("<?xml") {
                Some(rest) => rest.split_once("?>").map_or(svg, |x| x.1.trim_start()),
                None => svg,
            };
            let _ = writeln!(
                h,
                "<figure id=\"{}\">\n{svg}\n<figcaption>{}</figcaption>\n</figure>",
                escape(&p.id),
                escape(&p.title)
            );
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body>\n</html>\n");
    std::fs::write(path, h).map_err(|e| format!("{}: {e}", path.display()))
}
