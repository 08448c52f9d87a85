//! The statistics of repeated runs grouped by scenario and policy: the figures compared, per
//! figure the mean, standard deviation, median and bootstrap interval, paired differences
//! against a baseline with Wilcoxon's test and Holm's correction, ranks, and the tables.

use super::stats::{self, Described};
use super::{RunData, Summary};

/// One figure of a run, as the statistics see it.
pub struct Figure {
    pub name: &'static str,
    pub title: &'static str,
    pub higher_is_better: bool,
    pub dp: usize,
    pub get: fn(&Summary) -> Option<f64>,
}

fn traffic(s: &Summary, v: f64) -> Option<f64> {
    (s.traffic_ticks > 0).then_some(v)
}

/// The figures compared, in the order of the tables.
pub const FIGURES: [Figure; 12] = [
    Figure {
        name: "served_pct",
        title: "served %",
        higher_is_better: true,
        dp: 2,
        get: |s| traffic(s, if s.requests > 0.0 { 100.0 * s.served / s.requests } else { 100.0 }),
    },
    Figure {
        name: "dropped_pct",
        title: "dropped %",
        higher_is_better: false,
        dp: 2,
        get: |s| traffic(s, s.dropped_pct()),
    },
    Figure { name: "p50_ms", title: "p50 ms", higher_is_better: false, dp: 1, get: |s| s.p50_ms },
    Figure { name: "p95_ms", title: "p95 ms", higher_is_better: false, dp: 1, get: |s| s.p95_ms },
    Figure { name: "p99_ms", title: "p99 ms", higher_is_better: false, dp: 1, get: |s| s.p99_ms },
    Figure {
        name: "slo_violation_s",
        title: "SLO violation s",
        higher_is_better: false,
        dp: 0,
        get: |s| (s.latency_ticks > 0).then_some(s.slo_violation_s),
    },
    Figure { name: "core_hours", title: "core·h", higher_is_better: false, dp: 3, get: |s| Some(s.cpu_core_hours) },
    Figure {
        name: "replica_hours",
        title: "replica·h",
        higher_is_better: false,
        dp: 2,
        get: |s| Some(s.replica_seconds / 3600.0),
    },
    Figure {
        name: "mean_replicas",
        title: "mean replicas",
        higher_is_better: false,
        dp: 2,
        get: |s| Some(s.mean_replicas),
    },
    Figure {
        name: "scale_events",
        title: "scale events",
        higher_is_better: false,
        dp: 1,
        get: |s| Some(f64::from(s.scale_events)),
    },
    Figure {
        name: "oscillations",
        title: "oscillations",
        higher_is_better: false,
        dp: 1,
        get: |s| Some(f64::from(s.oscillations)),
    },
    Figure {
        name: "time_to_scale_s",
        title: "time to scale s",
        higher_is_better: false,
        dp: 0,
        get: |s| s.time_to_scale_s,
    },
];

/// Figures of the main table on stdout (all of them are in `stats.csv` and the HTML report).
pub const MAIN: [&str; 8] = [
    "served_pct",
    "p99_ms",
    "slo_violation_s",
    "core_hours",
    "replica_hours",
    "scale_events",
    "oscillations",
    "time_to_scale_s",
];
/// Figures of the paired table.
pub const PAIRED: [&str; 4] = ["p99_ms", "slo_violation_s", "core_hours", "served_pct"];
/// Figures whose ranks make the rank table.
pub const RANKED: [&str; 4] = ["p99_ms", "slo_violation_s", "dropped_pct", "core_hours"];

pub fn figure(name: &str) -> Option<usize> {
    FIGURES.iter().position(|f| f.name == name)
}

/// One finished run.
#[derive(Debug, Clone)]
pub struct Cell {
    pub scenario: usize,
    pub arm: usize,
    pub seed: u64,
    pub summary: Summary,
    pub run: RunData,
}

/// A paired comparison of one arm with the baseline on one figure.
#[derive(Debug, Clone, Copy)]
pub struct Paired {
    pub delta: Described,
    pub p: Option<f64>,
    pub holm: Option<f64>,
}

/// The statistics of one (scenario, arm, figure).
#[derive(Debug, Clone)]
pub struct Stat {
    pub described: Option<Described>,
    pub paired: Option<Paired>,
}

/// Everything the tables, CSVs and plots need.
pub struct Analysis {
    /// `[scenario][arm][figure]`.
    pub stats: Vec<Vec<Vec<Stat>>>,
    /// `[scenario][arm][ranked figure]`, then the mean over the ranked figures, last.
    pub ranks: Vec<Vec<Vec<Option<f64>>>>,
    /// The arms' labels and the scenarios' names, for the writers.
    pub arms: Vec<String>,
    pub scenarios: Vec<String>,
    pub baseline: usize,
}

/// The value of a figure per seed for an arm.
fn values(cells: &[Cell], scenario: usize, arm: usize, f: usize) -> Vec<(u64, f64)> {
    cells
        .iter()
        .filter(|c| c.scenario == scenario && c.arm == arm)
        .filter_map(|c| (FIGURES[f].get)(&c.summary).filter(|v| v.is_finite()).map(|v| (c.seed, v)))
        .collect()
}

fn stat_seed(scenario: usize, arm: usize, f: usize, paired: bool) -> u64 {
    0x5EED_0000 ^ ((scenario as u64) << 32) ^ ((arm as u64) << 16) ^ ((f as u64) << 1) ^ u64::from(paired)
}

/// Average ranks (1 = best) of `xs`, ties sharing their mean rank.
fn ranks_of(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut out = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in &idx[i..=j] {
            out[*k] = r;
        }
        i = j + 1;
    }
    out
}

/// The statistics of cells grouped by scenario and arm, paired by seed against `baseline`.
pub fn analyse_groups(
    scenarios: &[String],
    arms: &[String],
    baseline: usize,
    seeds: &[u64],
    cells: &[Cell],
    resamples: usize,
) -> Analysis {
    let mut all = Vec::new();
    let mut all_ranks = Vec::new();
    for s in 0..scenarios.len() {
        let mut per_arm: Vec<Vec<Stat>> = (0..arms.len())
            .map(|a| {
                (0..FIGURES.len())
                    .map(|f| {
                        let v: Vec<f64> = values(cells, s, a, f).into_iter().map(|x| x.1).collect();
                        Stat {
                            described: (!v.is_empty())
                                .then(|| stats::describe(&v, resamples, stat_seed(s, a, f, false))),
                            paired: None,
                        }
                    })
                    .collect()
            })
            .collect();
        #[allow(clippy::needless_range_loop)]
        for f in 0..FIGURES.len() {
            let base = values(cells, s, baseline, f);
            let mut ps = Vec::new();
            for a in 0..arms.len() {
                if a == baseline {
                    ps.push(None);
                    continue;
                }
                let mine = values(cells, s, a, f);
                let d: Vec<f64> = mine
                    .iter()
                    .filter_map(|(seed, v)| base.iter().find(|(b, _)| b == seed).map(|(_, b)| v - b))
                    .collect();
                if d.is_empty() {
                    ps.push(None);
                    continue;
                }
                let p = stats::wilcoxon(&d);
                per_arm[a][f].paired =
                    Some(Paired { delta: stats::describe(&d, resamples, stat_seed(s, a, f, true)), p, holm: None });
                ps.push(p);
            }
            for (a, h) in stats::holm(&ps).into_iter().enumerate() {
                if let Some(p) = per_arm[a][f].paired.as_mut() {
                    p.holm = h;
                }
            }
        }
        // Ranks per seed among the arms that have the figure for that seed, averaged over seeds.
        let mut ranks = vec![vec![None; RANKED.len() + 1]; arms.len()];
        for (ri, name) in RANKED.iter().enumerate() {
            let Some(f) = figure(name) else { continue };
            let mut sums = vec![(0.0, 0usize); arms.len()];
            for &seed in seeds {
                let row: Vec<(usize, f64)> = (0..arms.len())
                    .filter_map(|a| {
                        cells
                            .iter()
                            .find(|c| c.scenario == s && c.arm == a && c.seed == seed)
                            .and_then(|c| (FIGURES[f].get)(&c.summary))
                            .filter(|v| v.is_finite())
                            .map(|v| (a, if FIGURES[f].higher_is_better { -v } else { v }))
                    })
                    .collect();
                if row.len() < arms.len() {
                    continue;
                }
                let r = ranks_of(&row.iter().map(|x| x.1).collect::<Vec<_>>());
                for ((a, _), r) in row.iter().zip(r) {
                    sums[*a].0 += r;
                    sums[*a].1 += 1;
                }
            }
            for (a, (sum, n)) in sums.into_iter().enumerate() {
                ranks[a][ri] = (n > 0).then(|| sum / n as f64);
            }
        }
        for r in &mut ranks {
            let known: Vec<f64> = r[..RANKED.len()].iter().flatten().copied().collect();
            r[RANKED.len()] = (!known.is_empty()).then(|| stats::mean(&known));
        }
        all.push(per_arm);
        all_ranks.push(ranks);
    }
    Analysis { stats: all, ranks: all_ranks, arms: arms.to_vec(), scenarios: scenarios.to_vec(), baseline }
}

fn interval(d: &Described, dp: usize) -> String {
    format!("{:.dp$} [{:.dp$}, {:.dp$}]", d.mean, d.ci_low, d.ci_high)
}

fn p_text(p: Option<f64>) -> String {
    match p {
        None => "-".into(),
        Some(p) if p < 0.001 => "<0.001".into(),
        Some(p) => format!("{p:.3}"),
    }
}

/// The tables of one scenario: (title, header, rows).
pub type Table = (String, Vec<String>, Vec<Vec<String>>);

pub fn tables(a: &Analysis, s: usize, figures: Option<&[&str]>) -> Vec<Table> {
    let chosen: Vec<usize> = match figures {
        Some(names) => names.iter().filter_map(|n| figure(n)).collect(),
        None => (0..FIGURES.len()).collect(),
    };
    let mut head = vec!["policy".to_string(), "n".into()];
    head.extend(chosen.iter().map(|&f| FIGURES[f].title.to_string()));
    let rows = (0..a.arms.len())
        .map(|arm| {
            let st = &a.stats[s][arm];
            let n = st.iter().filter_map(|x| x.described.map(|d| d.n)).max().unwrap_or(0);
            let mut r = vec![a.arms[arm].clone(), n.to_string()];
            r.extend(chosen.iter().map(|&f| st[f].described.map_or("-".into(), |d| interval(&d, FIGURES[f].dp))));
            r
        })
        .collect();
    let mut out = vec![("mean [95 % CI]".to_string(), head, rows)];
    let paired: Vec<usize> = PAIRED.iter().filter_map(|n| figure(n)).collect();
    let mut head = vec!["policy".to_string()];
    for &f in &paired {
        head.push(format!("Δ {}", FIGURES[f].title));
        head.push("p (Holm)".into());
    }
    let rows = (0..a.arms.len())
        .filter(|&arm| arm != a.baseline)
        .map(|arm| {
            let mut r = vec![a.arms[arm].clone()];
            for &f in &paired {
                match a.stats[s][arm][f].paired {
                    Some(p) => {
                        r.push(interval(&p.delta, FIGURES[f].dp));
                        r.push(format!("{} ({})", p_text(p.p), p_text(p.holm)));
                    }
                    None => r.extend(["-".to_string(), "-".to_string()]),
                }
            }
            r
        })
        .collect();
    out.push((format!("paired difference against {} (same seeds)", a.arms[a.baseline]), head, rows));
    let mut head = vec!["policy".to_string()];
    head.extend(RANKED.iter().filter_map(|n| figure(n)).map(|f| FIGURES[f].title.to_string()));
    head.push("mean rank".into());
    let mut order: Vec<usize> = (0..a.arms.len()).collect();
    let last = RANKED.len();
    order.sort_by(|&x, &y| {
        let k = |i: usize| a.ranks[s][i][last].unwrap_or(f64::INFINITY);
        k(x).total_cmp(&k(y))
    });
    let rows = order
        .into_iter()
        .map(|arm| {
            let mut r = vec![a.arms[arm].clone()];
            r.extend(a.ranks[s][arm].iter().map(|v| v.map_or("-".into(), |v| format!("{v:.2}"))));
            r
        })
        .collect();
    out.push(("rank among policies per seed, averaged (1 = best)".to_string(), head, rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_share_ties() {
        assert_eq!(ranks_of(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }
}
