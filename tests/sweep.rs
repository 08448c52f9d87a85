//! Sweeps (`compare` over scenarios × policies × seeds) and grouped reports through the real
//! binary: results that do not depend on `--jobs`, common random numbers, the HTML report, a
//! Ctrl-C that keeps what finished, `--vary`, and `report --label` / `--group`.

use std::collections::BTreeSet;
use std::path::Path;

use assert_cmd::Command;
use quick_xml::events::Event;

fn scaletui() -> Command {
    let mut c = Command::cargo_bin("scaletui").expect("binary");
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("SCALETUI_CONFIG");
    c
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn csv_rows(p: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let h = r.headers().expect("header").iter().map(String::from).collect();
    let rows = r.records().map(|x| x.expect("row").iter().map(String::from).collect()).collect();
    (h, rows)
}

fn column(p: &Path, name: &str) -> Vec<String> {
    let (h, rows) = csv_rows(p);
    let i = h.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name} in {}", p.display()));
    rows.into_iter().map(|r| r[i].clone()).collect()
}

/// The value of (policy, figure, column) in a stats.csv.
fn stat(p: &Path, policy: &str, figure: &str, col: &str) -> f64 {
    let (h, rows) = csv_rows(p);
    let at = |n: &str| h.iter().position(|c| c == n).unwrap_or_else(|| panic!("no column {n}"));
    let row = rows
        .iter()
        .find(|r| r[at("policy")] == policy && r[at("figure")] == figure)
        .unwrap_or_else(|| panic!("no {policy} {figure} in {}", p.display()));
    row[at(col)].parse().unwrap_or_else(|_| panic!("{policy} {figure} {col}: {:?}", row[at(col)]))
}

fn sweep(out: &Path, extra: &[&str]) -> String {
    let o = scaletui()
        .args(["compare", "--scenario", "classic", "--policies", "hpa:70,queue", "--duration", "8"])
        .args(["--resamples", "500", "-o"])
        .arg(out)
        .args(extra)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{text}\n{}", String::from_utf8_lossy(&o.stderr));
    text
}

/// Table ids, and per figure id whether it holds an SVG with text, from a well-formed report.
fn parse_html(text: &str) -> (Vec<String>, Vec<(String, bool)>) {
    let mut r = quick_xml::Reader::from_str(text);
    let mut tables = Vec::new();
    let mut figures: Vec<(String, bool)> = Vec::new();
    let mut in_figure = false;
    let mut in_svg = false;
    let id_of = |e: &quick_xml::events::BytesStart<'_>| {
        e.attributes().flatten().find(|a| a.key.as_ref() == "id").map(|a| a.value.to_string()).unwrap_or_default()
    };
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) => match e.name().as_ref() {
                "table" => tables.push(id_of(&e)),
                "figure" => {
                    figures.push((id_of(&e), false));
                    in_figure = true;
                }
                "svg" => in_svg = in_figure,
                "text" if in_svg => {
                    if let Some(f) = figures.last_mut() {
                        f.1 = true;
                    }
                }
                _ => {}
            },
            Ok(Event::End(e)) => match e.name().as_ref() {
                "figure" => in_figure = false,
                "svg" => in_svg = false,
                _ => {}
            },
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("report.html is not well formed at {}: {e}", r.buffer_position()),
        }
    }
    (tables, figures)
}

#[test]
fn a_sweep_does_not_depend_on_jobs_pairs_by_seed_and_writes_its_report() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let text = sweep(&one, &["--seeds", "1..3", "--jobs", "1"]);
    sweep(&two, &["--seeds", "1..3", "--jobs", "2"]);
    for f in ["runs.csv", "stats.csv", "report.md"] {
        assert_eq!(read(&one.join(f)), read(&two.join(f)), "{f} differs between --jobs 1 and 2");
    }
    assert!(text.contains("2 policies × 3 seeds = 6 runs; 6 finished"), "{text}");
    assert!(text.contains("| hpa-70 |") && text.contains("| queue  |"), "{text}");
    assert!(text.contains("paired difference against hpa-70"), "{text}");
    // Long form: one row per (run, figure) known.
    let seeds: BTreeSet<String> = column(&one.join("runs.csv"), "seed").into_iter().collect();
    assert_eq!(seeds, ["1", "2", "3"].iter().map(|s| s.to_string()).collect());
    let n = stat(&one.join("stats.csv"), "queue", "p99_ms", "n");
    assert_eq!(n, 3.0);
    let (lo, mean, hi) = (
        stat(&one.join("stats.csv"), "queue", "p99_ms", "ci_low"),
        stat(&one.join("stats.csv"), "queue", "p99_ms", "mean"),
        stat(&one.join("stats.csv"), "queue", "p99_ms", "ci_high"),
    );
    assert!(lo <= mean && mean <= hi, "{lo} {mean} {hi}");
    assert!(stat(&one.join("stats.csv"), "queue", "core_hours", "paired_n") == 3.0);

    // Common random numbers: for one seed both policies saw the same arrivals, tick by tick;
    // another seed saw others.
    let arrived =
        |policy: &str, seed: u64| column(&one.join("classic").join(policy).join(format!("seed-{seed}.csv")), "arrived");
    let (a, b) = (arrived("hpa-70", 1), arrived("queue", 1));
    assert!(a.len() >= 15 && a == b, "the same arrivals per tick for seed 1");
    assert!(a.iter().filter_map(|v| v.parse::<f64>().ok()).sum::<f64>() > 10_000.0);
    assert_ne!(a, arrived("hpa-70", 2), "seed 2 draws other arrivals");
    for p in ["hpa-70", "queue"] {
        for s in 1..=3 {
            let stem = one.join("classic").join(p).join(format!("seed-{s}"));
            for ext in [".csv", "_events.csv", "_summary.json"] {
                assert!(Path::new(&format!("{}{ext}", stem.display())).is_file(), "{}{ext}", stem.display());
            }
        }
    }

    // The HTML report: every table and every plot, inline.
    let html = read(&one.join("report.html"));
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src="), "self-contained");
    let (tables, figures) = parse_html(&html);
    assert_eq!(tables, ["table-0-0", "table-0-1", "table-0-2"]);
    let svg_files: BTreeSet<String> = std::fs::read_dir(one.join("plots"))
        .expect("plots")
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".svg")).map(|n| format!("plot-{n}")))
        .collect();
    let ids: BTreeSet<String> = figures.iter().map(|f| f.0.clone()).collect();
    assert_eq!(ids, svg_files, "one inline plot per SVG file");
    for want in [
        "plot-classic-p99_ms",
        "plot-classic-core_hours",
        "plot-classic-replicas",
        "plot-classic-p99",
        "plot-classic-cost-latency",
    ] {
        assert!(ids.contains(want), "{want} in {ids:?}");
    }
    assert!(figures.iter().all(|f| f.1), "every plot has its labels: {figures:?}");
    for id in &ids {
        let png = one.join("plots").join(format!("{}.png", id.trim_start_matches("plot-")));
        assert_eq!(&std::fs::read(&png).expect("png")[..4], b"\x89PNG");
    }

    // The same runs reported as recorded groups give the same statistics (paired by position).
    let files = |p: &str| {
        (1..=3)
            .map(|s| one.join("classic").join(p).join(format!("seed-{s}.csv")).display().to_string())
            .collect::<Vec<_>>()
    };
    let rep = tmp.path().join("rep");
    let o = scaletui()
        .arg("report")
        .arg("--label")
        .arg(format!("hpa-70={}", files("hpa-70").join(",")))
        .arg("--label")
        .arg(format!("queue={}", files("queue").join(",")))
        .args(["--resamples", "500", "-o"])
        .arg(&rep)
        .output()
        .expect("report");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (p, f) in [("hpa-70", "p99_ms"), ("queue", "core_hours"), ("queue", "served_pct")] {
        let (x, y) = (stat(&one.join("stats.csv"), p, f, "mean"), stat(&rep.join("stats.csv"), p, f, "mean"));
        assert!((x - y).abs() < 1e-9, "{p} {f}: {x} vs {y}");
    }
    assert_eq!(
        stat(&one.join("stats.csv"), "queue", "p99_ms", "wilcoxon_p"),
        stat(&rep.join("stats.csv"), "queue", "p99_ms", "wilcoxon_p")
    );
    // --group finds the policies in the records themselves.
    let grp = tmp.path().join("grp");
    let o = scaletui()
        .args(["report", "--group", "-o"])
        .arg(&grp)
        .args(files("hpa-70"))
        .args(files("queue"))
        .output()
        .expect("report");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("hpa_only 3") && out.contains("ai_scaler:queue 3"), "{out}");
}

#[test]
fn vary_makes_a_row_per_value_and_bad_keys_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("v");
    let o = scaletui()
        .args(["compare", "--scenario", "classic", "--policies", "hpa", "--duration", "8", "--seeds", "1,2"])
        .args(["--vary", "scaling.cpu_target=40,95", "--resamples", "200", "-o"])
        .arg(&out)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("| hpa cpu_target=40 |") && text.contains("| hpa cpu_target=95 |"), "{text}");
    let s = out.join("stats.csv");
    let (low, high) = (
        stat(&s, "hpa cpu_target=40", "replica_hours", "mean"),
        stat(&s, "hpa cpu_target=95", "replica_hours", "mean"),
    );
    assert!(low > high * 1.05, "a 40 % target runs more replicas than 95 %: {low} vs {high}");

    let o = scaletui()
        .args(["compare", "--scenario", "classic", "--policies", "hpa", "--seeds", "1", "--vary", "scaling.nope=1"])
        .arg("-o")
        .arg(tmp.path().join("bad"))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("nope"), "{err}");
    let o = scaletui().args(["compare", "--scenario", "classic", "--seeds", "9..1"]).output().expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("empty"));
}

#[test]
fn ctrl_c_keeps_the_finished_runs_and_marks_the_results_partial() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("p");
    let bin = assert_cmd::cargo::cargo_bin("scaletui");
    let child = std::process::Command::new(bin)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("SCALETUI_CONFIG")
        .args(["compare", "--scenario", "classic", "--policies", "hpa:70", "--duration", "8", "--seeds", "1..200"])
        .args(["--jobs", "1", "--resamples", "100", "-o"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let first = out.join("classic").join("hpa-70").join("seed-2_summary.json");
    let t0 = std::time::Instant::now();
    while !first.is_file() {
        assert!(t0.elapsed().as_secs() < 120, "no run finished in 2 minutes");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let st = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(st.success());
    let o = child.wait_with_output().expect("ends");
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(130), "{text}{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.starts_with("PARTIAL"), "{text}");
    let manifest: serde_json::Value = serde_json::from_str(&read(&out.join("sweep.json"))).expect("json");
    assert_eq!(manifest["complete"], false);
    let done = manifest["finished_runs"].as_u64().expect("finished");
    assert!((2..200).contains(&done), "{done}");
    let seeds: BTreeSet<String> = column(&out.join("runs.csv"), "seed").into_iter().collect();
    assert_eq!(seeds.len() as u64, done, "every finished run is in runs.csv");
    assert!(read(&out.join("report.html")).contains("PARTIAL"));
    // What was under way is not left half-written.
    let left: Vec<_> = std::fs::read_dir(out.join("classic").join("hpa-70"))
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".run-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
