//! The advisor's prompt: system and user messages rendered from a template (editable in
//! `config.toml` and live from the dashboard). Placeholders are `{name}`; `{{` and `}}` are
//! literal braces. The default follows the seed advisor's contract: the HPA formula's baseline
//! with its ratios, the recent history as a small CSV table, limits and targets, and a reply that
//! is ONE JSON object.

use serde::{Deserialize, Serialize};

use super::RecommendInput;
use crate::engine::types::MetricsSample;

pub const DEFAULT_SYSTEM: &str = "You are a Kubernetes autoscaling assistant.
The controller has already computed the baseline replica count using
the HPA formula. Your job is to review the recent metric TREND and
decide whether to keep, increase, or decrease the baseline by 1-2
pods based on whether load is rising or falling.

CSV columns (per-pod averages, {interval}-second intervals):
  {history_columns}

Limits: min_replicas={min_replicas},
        max_replicas={max_replicas}
Targets: cpu={cpu_target}% of cpu_request,
         memory={memory_target}% of mem_request

Reply with ONLY a JSON object - no markdown, no explanation outside JSON:
{{
  \"recommended_replicas\": <int>,
  \"predicted_cpu_millicores\": <float>,
  \"predicted_memory_mebibytes\": <float>,
  \"confidence\": <float 0-1>,
  \"reasoning\": \"<one sentence: state trend direction and why you adjusted or kept baseline>\"
}}";

pub const DEFAULT_USER: &str = "Current running pods : {current_replicas}
Formula baseline     : {baseline} replicas
  (avg_cpu={avg_cpu}m  cpu_ratio={cpu_ratio}
   avg_mem={avg_mem}Mi mem_ratio={mem_ratio})

Most recent 3 rows:
{recent_rows}

Full history (for trend analysis only):
{history_csv}

Should the baseline of {baseline} be kept, increased, or decreased
based on the metric trend? Return the JSON object now.";

/// The two message templates (`[advisor.prompt]` in `config.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptTemplate {
    pub system: String,
    pub user: String,
}

impl Default for PromptTemplate {
    fn default() -> Self {
        Self { system: DEFAULT_SYSTEM.to_string(), user: DEFAULT_USER.to_string() }
    }
}

/// The placeholders a template may use, with a description each (shown by the prompt editor).
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("interval", "seconds between ticks"),
    ("min_replicas", "lower replica limit"),
    ("max_replicas", "upper replica limit"),
    ("cpu_target", "CPU target, % of request"),
    ("memory_target", "memory target, % of request"),
    ("current_replicas", "spec replicas now"),
    ("ready_replicas", "ready replicas now"),
    ("baseline", "the HPA algorithm's decision (hpa_sim_desired)"),
    ("avg_cpu", "mean CPU per pod over the last 3 rows, millicores"),
    ("avg_mem", "mean memory per pod over the last 3 rows, MiB"),
    ("cpu_ratio", "CPU usage / target"),
    ("mem_ratio", "memory usage / target"),
    ("rps", "requests/s now, if known"),
    ("p95_ms", "latency p95 now, if known"),
    ("history_columns", "the history table's header"),
    ("recent_rows", "header + the last 3 rows of the history table"),
    ("history_csv", "header + the last N rows of the history table"),
];

/// Values for the placeholders.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptContext {
    pub values: Vec<(String, String)>,
}

impl PromptContext {
    fn get(&self, k: &str) -> Option<&str> {
        self.values.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

const HISTORY_COLUMNS: &str =
    "timestamp,cpu_millicores,memory_mebibytes,cpu_request_millicores,memory_request_mebibytes,pod_count,rps";

/// Build the placeholder values from a tick's input; `rows` is how many history rows to send.
pub fn context(input: &RecommendInput<'_>, interval_s: f64, rows: usize) -> PromptContext {
    let f = |v: Option<f64>, dp: usize| v.filter(|x| x.is_finite()).map_or(String::new(), |x| format!("{x:.dp$}"));
    let line = |t: f64, s: &MetricsSample| {
        format!(
            "{},{},{},{},{},{},{}",
            crate::engine::types::rfc3339(t),
            f(s.cpu_millicores, 2),
            f(s.memory_mebibytes, 2),
            f(s.cpu_request_millicores, 2),
            f(s.memory_request_mebibytes, 2),
            s.pod_count.map(|n| n.to_string()).unwrap_or_default(),
            f(s.traffic.map(|t| t.rps), 2),
        )
    };
    // The history plus the current observation as the newest line.
    let s = input.sample;
    let now_line = line(input.now, s);
    let mut lines: Vec<String> = input.history.iter().map(|r| line(r.t, &r.sample())).collect();
    lines.push(now_line);
    let tail = |n: usize| lines[lines.len().saturating_sub(n)..].join("\n");
    let mean3 = |pick: &dyn Fn(&crate::engine::record::Row) -> Option<f64>, now: Option<f64>| {
        let mut xs: Vec<f64> = input.history.iter().rev().take(2).filter_map(pick).collect();
        xs.extend(now);
        (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
    };
    let avg_cpu = mean3(&|r| r.cpu_millicores, s.cpu_millicores);
    let avg_mem = mean3(&|r| r.memory_mebibytes, s.memory_mebibytes);
    let dep = input.deployment;
    let values = vec![
        ("interval", format!("{interval_s:.0}")),
        ("min_replicas", input.min_replicas.to_string()),
        ("max_replicas", input.max_replicas.to_string()),
        ("cpu_target", input.cpu_target.to_string()),
        ("memory_target", input.memory_target.to_string()),
        ("current_replicas", dep.map(|d| d.spec_replicas.to_string()).unwrap_or_default()),
        ("ready_replicas", dep.map(|d| d.ready_replicas.to_string()).unwrap_or_default()),
        ("baseline", input.hpa_sim.desired.map(|d| d.to_string()).unwrap_or_default()),
        ("avg_cpu", f(avg_cpu, 2)),
        ("avg_mem", f(avg_mem, 2)),
        ("cpu_ratio", f(input.hpa_sim.cpu_ratio, 3)),
        ("mem_ratio", f(input.hpa_sim.mem_ratio, 3)),
        ("rps", f(s.traffic.map(|t| t.rps), 1)),
        ("p95_ms", f(s.traffic.and_then(|t| t.p95_ms), 1)),
        ("history_columns", HISTORY_COLUMNS.to_string()),
        ("recent_rows", format!("{HISTORY_COLUMNS}\n{}", tail(3))),
        ("history_csv", format!("{HISTORY_COLUMNS}\n{}", tail(rows.max(1)))),
    ];
    PromptContext { values: values.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
}

/// Fill a template. Unknown placeholders are an error naming them.
pub fn fill(template: &str, ctx: &PromptContext) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if tail.starts_with('}') {
            return Err("unmatched } in the template (write }} for a brace)".into());
        } else {
            let Some(end) = tail.find('}') else {
                return Err("unclosed { in the template (write {{ for a brace)".into());
            };
            let name = &tail[1..end];
            match ctx.get(name) {
                Some(v) => out.push_str(v),
                None => return Err(format!("unknown placeholder {{{name}}}")),
            }
            rest = &tail[end + 1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Check a template: every placeholder is known and every brace is matched. The error names the
/// message (`system: unknown placeholder {x}`).
pub fn validate(t: &PromptTemplate) -> Result<(), String> {
    let ctx = PromptContext { values: PLACEHOLDERS.iter().map(|(k, _)| (k.to_string(), String::new())).collect() };
    render(t, &ctx).map(|_| ())
}

/// The exact (system, user) messages a template gives for this context.
pub fn render(t: &PromptTemplate, ctx: &PromptContext) -> Result<(String, String), String> {
    Ok((
        fill(&t.system, ctx).map_err(|e| format!("system: {e}"))?,
        fill(&t.user, ctx).map_err(|e| format!("user: {e}"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_template_renders_with_every_placeholder() {
        let ctx =
            PromptContext { values: PLACEHOLDERS.iter().map(|(k, _)| (k.to_string(), format!("<{k}>"))).collect() };
        let (sys, user) = render(&PromptTemplate::default(), &ctx).expect("renders");
        assert!(sys.contains("min_replicas=<min_replicas>"));
        assert!(sys.contains("\"recommended_replicas\": <int>"), "literal braces kept: {sys}");
        assert!(user.contains("Formula baseline     : <baseline> replicas"));
    }

    #[test]
    fn template_errors_name_the_problem() {
        let ctx = PromptContext::default();
        assert_eq!(fill("a {nope} b", &ctx), Err("unknown placeholder {nope}".into()));
        assert!(fill("a { b", &ctx).is_err());
        assert!(fill("a } b", &ctx).is_err());
        assert_eq!(fill("{{x}}", &ctx), Ok("{x}".into()));
        let bad = PromptTemplate { user: "pods {pods}".into(), ..PromptTemplate::default() };
        assert_eq!(validate(&bad), Err("user: unknown placeholder {pods}".into()));
        assert_eq!(validate(&PromptTemplate::default()), Ok(()));
    }
}
