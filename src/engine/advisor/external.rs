//! External policies drive `ai_scaler` from outside the program: `--driver exec:CMD` starts
//! `CMD` (through `sh -c`) and exchanges one JSON object per line with it — scaletui writes each
//! tick's [`Observation`] to its stdin, the policy answers `{"replicas": N, "reasoning": "..."}`
//! on its stdout — and `--driver http:URL` POSTs the same JSON and reads the same answer. The
//! Python environment uses a third transport, a channel, so the same observation and the same
//! validation serve all three.
//!
//! Every answer is checked: a whole number of replicas within `[min_replicas, max_replicas]`
//! (an answer out of range is refused, not clamped: the policy is wrong about its limits), an
//! optional one-line `reasoning`. A policy that does not answer within `[policy] timeout_s` is
//! restarted on the next tick (so a late answer can never be taken for a later tick's); one that
//! exits is restarted on the next tick, with the end of its stderr in the status; garbage is
//! named. In every such case the recommender has no answer and the run's fallback applies, with
//! the reason in the row's `applied_note` and `policy_status`.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, oneshot};

use super::parse::{clean_reasoning, whole_number};
use super::{RecOutput, RecommendInput, Recommender};
use crate::config::ExternalPolicyConfig;
use crate::engine::record::Row;

/// The CSV prefix of an external policy's columns (`policy_replicas`, `policy_status`, …).
pub const COLUMN_PREFIX: &str = "policy";

/// Whether a driver names an external policy.
pub fn is_external(driver: &str) -> bool {
    driver.starts_with("exec:") || driver.starts_with("http:")
}

/// One recent row as an external policy sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct HistoryRow {
    pub elapsed_s: f64,
    pub current_replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    pub cpu_millicores: Option<f64>,
    pub memory_mebibytes: Option<f64>,
    pub hpa_sim_desired: Option<i32>,
    pub applied_replicas: Option<i32>,
    pub applied_by: String,
    pub rps: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

/// What an external policy gets each tick: the figures the advisor's prompt is made of (limits,
/// targets, the HPA algorithm's baseline, usage and ratios, traffic, recent rows), named as the
/// CSV's columns.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Observation {
    /// Ticks asked so far in this run (0 first).
    pub tick: u64,
    /// Unix seconds on the run's clock.
    pub t: f64,
    pub elapsed_s: f64,
    pub interval_s: f64,
    /// The run ends after this tick (its answer is applied, and no later tick comes).
    pub last: bool,
    pub mode: String,
    pub current_replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// Percent of the request.
    pub cpu_target: i32,
    pub memory_target: i32,
    /// The HPA algorithm's decision this tick (`hpa_sim_desired`).
    pub baseline: Option<i32>,
    pub hpa_sim_action: String,
    pub hpa_sim_cpu_ratio: Option<f64>,
    pub hpa_sim_mem_ratio: Option<f64>,
    pub cpu_millicores: Option<f64>,
    pub memory_mebibytes: Option<f64>,
    pub cpu_request_millicores: Option<f64>,
    pub memory_request_mebibytes: Option<f64>,
    /// Mean CPU per pod, percent of its request.
    pub cpu_utilization: Option<f64>,
    pub memory_utilization: Option<f64>,
    pub pod_count: Option<u32>,
    pub rps: Option<f64>,
    pub served_rps: Option<f64>,
    pub errors_per_s: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_mean_ms: Option<f64>,
    pub in_flight: Option<f64>,
    pub waiting: Option<f64>,
    pub arrived: Option<u64>,
    pub served: Option<u64>,
    pub rejected: Option<u64>,
    pub timed_out: Option<u64>,
    pub failed: Option<u64>,
    /// Recent rows, oldest first (`[policy] history_rows`).
    pub history: Vec<HistoryRow>,
}

impl Observation {
    /// The observation of `input`, the `tick`-th of a run with `interval_s` between ticks that
    /// lasts `duration_s` seconds (infinite: no end).
    pub fn of(input: &RecommendInput<'_>, tick: u64, interval_s: f64, duration_s: f64, history_rows: usize) -> Self {
        let s = input.sample;
        let tr = s.traffic;
        let counts = tr.and_then(|t| t.counts);
        let pct = |used: Option<f64>, req: Option<f64>| match (used, req) {
            (Some(u), Some(r)) if r > 0.0 => Some(100.0 * u / r),
            _ => None,
        };
        let skip = input.history.len().saturating_sub(history_rows);
        Self {
            tick,
            t: input.now,
            elapsed_s: input.elapsed_s,
            interval_s,
            last: input.elapsed_s + interval_s >= duration_s - 1e-9,
            mode: input.mode.to_string(),
            current_replicas: input.deployment.map(|d| d.spec_replicas),
            ready_replicas: input.deployment.map(|d| d.ready_replicas),
            min_replicas: input.min_replicas,
            max_replicas: input.max_replicas,
            cpu_target: input.cpu_target,
            memory_target: input.memory_target,
            baseline: input.hpa_sim.desired,
            hpa_sim_action: input.hpa_sim.action.clone(),
            hpa_sim_cpu_ratio: input.hpa_sim.cpu_ratio,
            hpa_sim_mem_ratio: input.hpa_sim.mem_ratio,
            cpu_millicores: s.cpu_millicores,
            memory_mebibytes: s.memory_mebibytes,
            cpu_request_millicores: s.cpu_request_millicores,
            memory_request_mebibytes: s.memory_request_mebibytes,
            cpu_utilization: pct(s.cpu_millicores, s.cpu_request_millicores),
            memory_utilization: pct(s.memory_mebibytes, s.memory_request_mebibytes),
            pod_count: s.pod_count,
            rps: tr.map(|t| t.rps),
            served_rps: tr.map(|t| t.served_rps),
            errors_per_s: tr.map(|t| t.errors_per_s),
            latency_p50_ms: tr.and_then(|t| t.p50_ms),
            latency_p95_ms: tr.and_then(|t| t.p95_ms),
            latency_p99_ms: tr.and_then(|t| t.p99_ms),
            latency_mean_ms: tr.and_then(|t| t.mean_ms),
            in_flight: tr.map(|t| t.in_flight),
            waiting: tr.map(|t| t.waiting),
            arrived: counts.map(|c| c.arrived),
            served: counts.map(|c| c.served),
            rejected: counts.map(|c| c.rejected),
            timed_out: counts.map(|c| c.timed_out),
            failed: counts.map(|c| c.failed),
            history: input.history[skip..].iter().map(history_row).collect(),
        }
    }
}

fn history_row(r: &Row) -> HistoryRow {
    HistoryRow {
        elapsed_s: r.elapsed_s,
        current_replicas: r.current_replicas,
        ready_replicas: r.ready_replicas,
        cpu_millicores: r.cpu_millicores,
        memory_mebibytes: r.memory_mebibytes,
        hpa_sim_desired: r.hpa_sim.desired,
        applied_replicas: r.applied_replicas,
        applied_by: r.applied_by.clone(),
        rps: r.traffic.map(|t| t.rps),
        latency_p95_ms: r.traffic.and_then(|t| t.p95_ms),
    }
}

/// A checked answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyAnswer {
    pub replicas: i32,
    pub reasoning: String,
}

/// Check one answer line against the limits. The errors start with a code (`garbage`,
/// `invalid`, `out_of_range`) and say what was wrong.
pub fn parse_answer(text: &str, min: i32, max: i32) -> Result<PolicyAnswer, String> {
    let short: String = text.trim().chars().take(80).collect();
    let v: Value = serde_json::from_str(text.trim())
        .map_err(|_| format!("garbage: not one JSON object: {:?}", clean_reasoning(&short)))?;
    let Value::Object(o) = v else {
        return Err(format!("garbage: not a JSON object: {:?}", clean_reasoning(&short)));
    };
    let raw = o.get("replicas").or_else(|| o.get("recommended_replicas"));
    let Some(raw) = raw else {
        return Err("invalid: the answer has no \"replicas\"".into());
    };
    let n = whole_number("replicas", raw).map_err(|e| format!("invalid: {e}"))?;
    if n < i64::from(min) || n > i64::from(max) {
        return Err(format!("out_of_range: replicas {n} is outside [{min}, {max}]"));
    }
    let reasoning = match o.get("reasoning") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => clean_reasoning(s),
        Some(other) => clean_reasoning(&other.to_string()),
    };
    Ok(PolicyAnswer { replicas: n as i32, reasoning })
}

/// A request of the channel transport: the observation, and where the answer goes (`None`: no
/// answer this tick; the fallback applies).
pub struct ChannelRequest {
    pub observation: Observation,
    pub reply: oneshot::Sender<Option<PolicyAnswer>>,
}

/// How observations reach the policy.
enum Transport {
    Exec(Box<ExecPolicy>),
    Http { client: reqwest::Client, url: String },
    Channel(mpsc::Sender<ChannelRequest>),
}

/// A recommender whose answers come from outside.
pub struct ExternalPolicy {
    name: String,
    transport: Transport,
    settings: ExternalPolicyConfig,
    interval_s: f64,
    /// Seconds from the start at which the run ends (infinite: no end).
    duration_s: f64,
    ticks: u64,
}

impl ExternalPolicy {
    /// The policy named by `driver` (`exec:CMD` or `http:URL`).
    pub fn from_driver(driver: &str, settings: &ExternalPolicyConfig, interval_s: f64) -> Result<Self, String> {
        let transport = if let Some(cmd) = driver.strip_prefix("exec:") {
            if cmd.trim().is_empty() {
                return Err("driver exec: needs a command, e.g. exec:python3 policy.py".into());
            }
            Transport::Exec(Box::new(ExecPolicy::new(cmd.trim())))
        } else if let Some(rest) = driver.strip_prefix("http:") {
            // `http:URL`: the URL is everything after the prefix (`http:http://host/…`), or the
            // driver itself when it is written as a plain URL (`http://host/…`).
            let url = if rest.starts_with("//") { driver.to_string() } else { rest.to_string() };
            let parsed =
                reqwest::Url::parse(&url).map_err(|e| format!("driver {driver}: {url:?} is not a URL: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!("driver {driver}: the URL must be http:// or https://"));
            }
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs_f64(settings.timeout_s))
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
            Transport::Http { client, url }
        } else {
            return Err(format!("driver {driver:?} is not an external policy (exec:CMD or http:URL)"));
        };
        Ok(Self {
            name: driver.to_string(),
            transport,
            settings: settings.clone(),
            interval_s,
            duration_s: f64::INFINITY,
            ticks: 0,
        })
    }

    /// A policy answered through a channel (the Python environment).
    pub fn channel(
        name: &str,
        tx: mpsc::Sender<ChannelRequest>,
        settings: &ExternalPolicyConfig,
        interval_s: f64,
    ) -> Self {
        Self {
            name: name.to_string(),
            transport: Transport::Channel(tx),
            settings: settings.clone(),
            interval_s,
            duration_s: f64::INFINITY,
            ticks: 0,
        }
    }

    /// The run ends `duration_s` seconds after its start: the observation of the last tick says
    /// so.
    pub fn with_duration(mut self, duration_s: f64) -> Self {
        self.duration_s = if duration_s > 0.0 { duration_s } else { f64::INFINITY };
        self
    }

    async fn ask(&mut self, obs: &Observation) -> Result<String, String> {
        match &mut self.transport {
            Transport::Exec(p) => p.ask(obs, &self.settings).await,
            Transport::Http { client, url } => {
                let resp = client.post(url.as_str()).json(obs).send().await.map_err(|e| {
                    if e.is_timeout() {
                        format!("timeout: no answer within {} s", self.settings.timeout_s)
                    } else {
                        format!("http_error: {e}")
                    }
                })?;
                let status = resp.status();
                let body = resp.text().await.map_err(|e| format!("http_error: {e}"))?;
                if !status.is_success() {
                    let short: String = body.trim().chars().take(80).collect();
                    return Err(format!("http_status: {status}: {}", clean_reasoning(&short)));
                }
                Ok(body)
            }
            Transport::Channel(_) => Err("internal: the channel transport has no text".into()),
        }
    }
}

#[async_trait]
impl Recommender for ExternalPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn column_prefix(&self) -> &str {
        COLUMN_PREFIX
    }

    fn columns(&self) -> Vec<String> {
        vec!["reasoning".into(), "latency_ms".into()]
    }

    async fn recommend(&mut self, input: &RecommendInput<'_>) -> RecOutput {
        let obs = Observation::of(input, self.ticks, self.interval_s, self.duration_s, self.settings.history_rows);
        self.ticks += 1;
        let started = Instant::now();
        let answer = if let Transport::Channel(tx) = &self.transport {
            let (reply, rx) = oneshot::channel();
            match tx.send(ChannelRequest { observation: obs, reply }).await {
                Ok(()) => match rx.await {
                    Ok(Some(a)) => Ok(a),
                    Ok(None) => Err("no action this tick".to_string()),
                    Err(_) => Err("the environment went away".to_string()),
                },
                Err(_) => Err("the environment went away".to_string()),
            }
        } else {
            match self.ask(&obs).await {
                Ok(text) => parse_answer(&text, input.min_replicas, input.max_replicas),
                Err(e) => Err(e),
            }
        };
        let ms = format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0);
        match answer {
            Ok(a) => RecOutput {
                replicas: Some(a.replicas),
                status: "parsed".into(),
                ai: None,
                values: vec![a.reasoning, ms],
            },
            Err(e) => {
                RecOutput { replicas: None, status: format!("failed: {e}"), ai: None, values: vec![String::new(), ms] }
            }
        }
    }

    async fn shutdown(&mut self) {
        if let Transport::Exec(p) = &mut self.transport {
            p.stop().await;
        }
    }
}

/// The last lines a process wrote to stderr (for the status when it exits).
type StderrTail = Arc<Mutex<VecDeque<String>>>;

struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: StderrTail,
    answered: bool,
}

/// A policy process, started on first use and again after it exits or hangs.
struct ExecPolicy {
    command: String,
    running: Option<Running>,
    line: String,
}

impl ExecPolicy {
    fn new(command: &str) -> Self {
        Self { command: command.to_string(), running: None, line: String::new() }
    }

    fn start(&mut self) -> Result<&mut Running, String> {
        if self.running.is_none() {
            let mut child = shell(&self.command)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start {:?}: {e}", self.command))?;
            let (Some(stdin), Some(stdout), Some(stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(format!("cannot start {:?}: no pipes", self.command));
            };
            let tail: StderrTail = Arc::default();
            let t = tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    if let Ok(mut q) = t.lock() {
                        q.push_back(l);
                        while q.len() > 5 {
                            q.pop_front();
                        }
                    }
                }
            });
            self.running =
                Some(Running { child, stdin, stdout: BufReader::new(stdout), stderr: tail, answered: false });
        }
        self.running.as_mut().ok_or_else(|| "internal: no process".to_string())
    }

    async fn ask(&mut self, obs: &Observation, s: &ExternalPolicyConfig) -> Result<String, String> {
        let mut msg = serde_json::to_string(obs).map_err(|e| format!("internal: {e}"))?;
        msg.push('\n');
        let run = self.start()?;
        let wait = s.timeout_s + if run.answered { 0.0 } else { s.startup_s };
        let exchange = async {
            run.stdin.write_all(msg.as_bytes()).await?;
            run.stdin.flush().await?;
            let mut line = String::new();
            let n = run.stdout.read_line(&mut line).await?;
            Ok::<_, std::io::Error>((n, line))
        };
        let outcome = tokio::time::timeout(Duration::from_secs_f64(wait), exchange).await;
        match outcome {
            Ok(Ok((n, line))) if n > 0 => {
                run.answered = true;
                self.line = line;
                Ok(std::mem::take(&mut self.line))
            }
            Ok(Ok(_)) | Ok(Err(_)) => Err(self.exited().await),
            Err(_) => {
                self.stop().await;
                Err(format!("timeout: no answer within {wait} s; the policy is restarted on the next tick"))
            }
        }
    }

    /// The process closed its pipes: say how it ended and forget it.
    async fn exited(&mut self) -> String {
        let Some(mut run) = self.running.take() else { return "exited".into() };
        let status = match tokio::time::timeout(Duration::from_secs(1), run.child.wait()).await {
            Ok(Ok(st)) => st.to_string(),
            _ => {
                let _ = run.child.start_kill();
                "closed its output".to_string()
            }
        };
        // Give the stderr reader a moment to take the last lines.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let tail = run.stderr.lock().map(|q| q.iter().cloned().collect::<Vec<_>>().join(" | ")).unwrap_or_default();
        let tail: String = tail.chars().rev().take(200).collect::<Vec<_>>().into_iter().rev().collect();
        if tail.is_empty() {
            format!("exited: the policy ended ({status}); it is restarted on the next tick")
        } else {
            format!("exited: the policy ended ({status}): {}; it is restarted on the next tick", clean_reasoning(&tail))
        }
    }

    async fn stop(&mut self) {
        if let Some(mut run) = self.running.take() {
            let _ = run.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(2), run.child.wait()).await;
        }
    }
}

#[cfg(unix)]
fn shell(cmd: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c").arg(format!("exec {cmd}"));
    c
}

#[cfg(not(unix))]
fn shell(cmd: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("cmd");
    c.arg("/C").arg(cmd);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked() {
        let ok = parse_answer(r#"{"replicas": 4, "reasoning": "rising\nload"}"#, 1, 10);
        assert_eq!(ok, Ok(PolicyAnswer { replicas: 4, reasoning: "rising load".into() }));
        assert_eq!(parse_answer(r#"{"recommended_replicas": "3"}"#, 1, 10).map(|a| a.replicas), Ok(3));
        assert_eq!(parse_answer(r#"{"replicas": 2.0}"#, 1, 10).map(|a| a.replicas), Ok(2));
        let bad = |t: &str| parse_answer(t, 1, 10).err().unwrap_or_default();
        assert!(bad("hello").starts_with("garbage:"), "{}", bad("hello"));
        assert!(bad("[1]").starts_with("garbage:"));
        assert!(bad(r#"{"reasoning": "x"}"#).starts_with("invalid:"));
        assert!(bad(r#"{"replicas": 2.5}"#).starts_with("invalid:"));
        assert!(bad(r#"{"replicas": "many"}"#).starts_with("invalid:"));
        assert_eq!(bad(r#"{"replicas": 11}"#), "out_of_range: replicas 11 is outside [1, 10]");
        assert_eq!(bad(r#"{"replicas": 0}"#), "out_of_range: replicas 0 is outside [1, 10]");
    }

    #[test]
    fn drivers_name_their_transport() {
        let s = ExternalPolicyConfig::default();
        assert!(is_external("exec:python3 p.py") && is_external("http:http://127.0.0.1:1/") && !is_external("queue"));
        assert!(ExternalPolicy::from_driver("exec:  ", &s, 15.0).is_err());
        assert!(ExternalPolicy::from_driver("http:ftp://x/", &s, 15.0).is_err());
        assert!(ExternalPolicy::from_driver("http:not a url", &s, 15.0).is_err());
        let p = ExternalPolicy::from_driver("http:http://127.0.0.1:9/decide", &s, 15.0);
        assert!(
            matches!(p.map(|p| p.transport), Ok(Transport::Http { url, .. }) if url == "http://127.0.0.1:9/decide")
        );
        let p = ExternalPolicy::from_driver("http://127.0.0.1:9/x", &s, 15.0);
        assert!(matches!(p.map(|p| p.transport), Ok(Transport::Http { url, .. }) if url == "http://127.0.0.1:9/x"));
    }
}
