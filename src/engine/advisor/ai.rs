//! The LLM advisor: the recommender named `ai` (PRODUCT.md §7).
//!
//! Each tick renders the prompt template with the tick's figures and asks the model; the reply is
//! streamed (the dashboard shows it as it arrives through [`AdvisorEvent`]s), parsed and
//! validated, and the model gets up to [`MAX_ATTEMPTS`] tries with the error fed back. Transport
//! failures are not retried: the tick records why and `ai_scaler` applies the fallback.
//!
//! Two ways to run, chosen by [`RecommendInput::wait`]:
//! - virtual clock (`--speed max`): the tick waits for the answer (bounded by `timeout_s`), so a
//!   run's decisions do not depend on the machine's speed;
//! - real time: a background worker does the calls, one at a time; a tick hands it the newest
//!   prompt (an older one still waiting is dropped: newest wins) and records the newest finished
//!   answer, or `pending` when none has finished since the last tick. A tick never waits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::client::{ApiKey, CallError, ChatClient, ChatMessage, Completion, FailKind, RequestOptions};
use super::client::{ResponseFormatKind, request_body};
use super::parse::{Answer, clean_stream_text, parse_reply};
use super::prompt::{self, PromptTemplate};
use super::{RecOutput, RecommendInput, Recommender};
use crate::config::Config;
use crate::engine::messages::{AdvisorEvent, EngineEvent};
use crate::engine::record::AiColumns;

/// Model replies asked for per tick, at most (the first and two corrections).
pub const MAX_ATTEMPTS: u32 = 3;
/// Streamed text is sent to the front end at most this often (the first piece at once).
const DELTA_EVERY: Duration = Duration::from_millis(40);

/// What the advisor needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AdvisorSettings {
    pub url: String,
    pub model: String,
    /// Bounds a whole call (every attempt and any `Retry-After` wait).
    pub timeout: Duration,
    pub max_tokens: u32,
    pub history_rows: usize,
    pub response_format: ResponseFormatKind,
    pub interval_s: f64,
    pub prompt: PromptTemplate,
}

impl AdvisorSettings {
    pub fn from_config(cfg: &Config) -> Self {
        let a = &cfg.advisor;
        Self {
            url: a.url.clone(),
            model: a.model.clone(),
            timeout: Duration::from_secs_f64(a.timeout_s.clamp(0.001, 86_400.0)),
            max_tokens: a.max_tokens,
            history_rows: a.history_rows,
            response_format: a.response_format,
            interval_s: cfg.experiment.interval,
            prompt: a.prompt.clone(),
        }
    }
}

/// What the server turned out to refuse (remembered for the run) and when it asked us to wait.
#[derive(Debug)]
struct Policy {
    format: ResponseFormatKind,
    include_usage: bool,
    not_before: Option<Instant>,
}

/// One tick's question.
#[derive(Debug, Clone)]
struct Job {
    system: String,
    user: String,
    min: i32,
    max: i32,
}

/// The result of one call (all its attempts): what the row records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallOutcome {
    pub answer: Option<Answer>,
    /// Clamped to [min, max].
    pub replicas: Option<i32>,
    /// `parsed` or a failure code (see [`FailKind::code`], `invalid`, `truncated`).
    pub code: String,
    /// Why the call failed (empty when it did not).
    pub reason: String,
    /// Everything that went wrong on the way, in order: the failure, or what was overcome on the
    /// way to an answer (earlier attempts, clamping, skipped stream lines, a refused
    /// `response_format`).
    pub error: String,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub attempts: u32,
}

impl CallOutcome {
    /// The status line: `parsed` or `failed: why`.
    pub fn status(&self) -> String {
        if self.answer.is_some() { "parsed".into() } else { format!("failed: {}", self.reason) }
    }

    pub fn to_output(&self) -> RecOutput {
        let a = self.answer.as_ref();
        RecOutput {
            replicas: self.replicas,
            status: self.status(),
            ai: Some(AiColumns {
                recommended_replicas: self.replicas,
                predicted_cpu_millicores: a.map(|a| a.predicted_cpu_millicores),
                predicted_memory_mebibytes: a.map(|a| a.predicted_memory_mebibytes),
                confidence: a.map(|a| a.confidence),
                reasoning: a.map(|a| a.reasoning.clone()),
                status: Some(self.code.clone()),
                error: (!self.error.is_empty()).then(|| self.error.clone()),
                latency_ms: Some(self.latency_ms),
                ttft_ms: self.ttft_ms,
                prompt_tokens: self.prompt_tokens,
                completion_tokens: self.completion_tokens,
                attempts: Some(self.attempts),
            }),
            values: Vec::new(),
        }
    }
}

fn pending_output() -> RecOutput {
    RecOutput {
        replicas: None,
        status: "pending".into(),
        ai: Some(AiColumns { status: Some("pending".into()), ..AiColumns::default() }),
        values: Vec::new(),
    }
}

fn error_output(code: &str, error: String) -> RecOutput {
    RecOutput {
        replicas: None,
        status: format!("failed: {error}"),
        ai: Some(AiColumns { status: Some(code.into()), error: Some(error), ..AiColumns::default() }),
        values: Vec::new(),
    }
}

/// Does the calls: the client, the settings and what was learnt about the server.
struct Caller {
    client: ChatClient,
    timeout: Duration,
    max_tokens: u32,
    policy: Mutex<Policy>,
    events: Option<mpsc::Sender<EngineEvent>>,
}

/// Watches a stream: time to first token, characters, and the text for the front end (coalesced).
struct Tap<'a> {
    events: Option<&'a mpsc::Sender<EngineEvent>>,
    started: Instant,
    first: Option<Instant>,
    chars: usize,
    pending: String,
    last_flush: Option<Instant>,
}

impl Tap<'_> {
    fn delta(&mut self, text: &str) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.chars += text.chars().count();
        if self.events.is_none() {
            return;
        }
        self.pending.push_str(&clean_stream_text(text));
        if self.last_flush.is_none_or(|t| now.duration_since(t) >= DELTA_EVERY) {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Some(tx) = self.events.filter(|_| !self.pending.is_empty()) {
            let _ = tx.try_send(EngineEvent::Advisor(AdvisorEvent::Delta(std::mem::take(&mut self.pending))));
            self.last_flush = Some(Instant::now());
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Caller {
    fn emit(&self, e: AdvisorEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.try_send(EngineEvent::Advisor(e));
        }
    }

    fn notice(&self, text: String) {
        if let Some(tx) = &self.events {
            let _ = tx.try_send(EngineEvent::Notice(text));
        }
    }

    fn policy(&self) -> std::sync::MutexGuard<'_, Policy> {
        self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ask until a valid answer, a transport failure or [`MAX_ATTEMPTS`] replies.
    async fn run(&self, job: &Job) -> CallOutcome {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut messages = vec![ChatMessage::System(job.system.clone()), ChatMessage::User(job.user.clone())];
        let mut out = CallOutcome::default();
        let mut notes: Vec<String> = Vec::new();
        let mut tap = Tap {
            events: self.events.as_ref(),
            started: start,
            first: None,
            chars: 0,
            pending: String::new(),
            last_flush: None,
        };
        let mut last_failure = ("invalid", String::new());
        for attempt in 1..=MAX_ATTEMPTS {
            out.attempts = attempt;
            self.emit(AdvisorEvent::Asking { attempt });
            let reply = self.request(&messages, deadline, &mut tap, &mut notes).await;
            tap.flush();
            out.ttft_ms = tap.first.map(|t| ms(t.duration_since(tap.started)));
            let c = match reply {
                Ok(c) => c,
                Err(e) => {
                    notes.push(e.message.clone());
                    last_failure = (e.kind.code(), e.message);
                    break;
                }
            };
            out.prompt_tokens = sum(out.prompt_tokens, c.prompt_tokens);
            out.completion_tokens = sum(out.completion_tokens, c.completion_tokens);
            if c.malformed > 0 {
                notes.push(format!("skipped {} malformed stream line(s)", c.malformed));
            }
            match parse_reply(&c.content) {
                Ok(answer) => {
                    let clamped = answer.replicas.clamp(job.min, job.max.max(job.min));
                    if clamped != answer.replicas {
                        notes.push(format!("recommended {}, clamped to [{}, {}]", answer.replicas, job.min, job.max));
                    }
                    out.replicas = Some(clamped);
                    out.answer = Some(answer);
                    out.code = "parsed".into();
                    break;
                }
                Err(e) => {
                    let truncated = c.finish_reason.as_deref() == Some("length");
                    let why = if truncated {
                        format!("the reply was cut off at max_tokens ({}): {e}", self.max_tokens)
                    } else {
                        e
                    };
                    last_failure = (if truncated { "truncated" } else { "invalid" }, why.clone());
                    notes.push(format!("attempt {attempt}: {why}"));
                    if attempt < MAX_ATTEMPTS {
                        messages.push(ChatMessage::Assistant(c.content));
                        messages.push(ChatMessage::User(feedback(truncated, &why)));
                    }
                }
            }
        }
        if out.answer.is_none() {
            out.code = last_failure.0.to_string();
            out.reason = if matches!(last_failure.0, "invalid" | "truncated") {
                format!("no valid answer in {} attempts: {}", out.attempts, last_failure.1)
            } else {
                last_failure.1
            };
        }
        out.error = notes.join("; ");
        out.latency_ms = ms(start.elapsed());
        out
    }

    /// Tell the front end the call ended (sent once the answer can be taken by a tick).
    fn done(&self, out: &CallOutcome) {
        self.emit(AdvisorEvent::Done {
            ok: out.answer.is_some(),
            status: out.status(),
            replicas: out.replicas,
            latency_ms: Some(out.latency_ms),
        });
    }

    /// One reply: waits out a `Retry-After`, and asks again without what the server refuses
    /// (`response_format`, `stream_options`), remembering that for the run.
    async fn request(
        &self,
        messages: &[ChatMessage],
        deadline: Instant,
        tap: &mut Tap<'_>,
        notes: &mut Vec<String>,
    ) -> Result<Completion, CallError> {
        loop {
            let (format, include_usage, not_before) = {
                let p = self.policy();
                (p.format, p.include_usage, p.not_before)
            };
            if let Some(nb) = not_before.filter(|nb| *nb > Instant::now()) {
                if nb > deadline {
                    let left = nb.saturating_duration_since(Instant::now()).as_secs_f64().ceil();
                    return Err(CallError {
                        kind: FailKind::RateLimited,
                        message: format!(
                            "the server asked to wait (Retry-After); {left} s left, more than the timeout"
                        ),
                        retry_after: None,
                    });
                }
                tokio::time::sleep_until(nb.into()).await;
            }
            let body = request_body(
                &self.client.model,
                messages,
                RequestOptions { max_tokens: self.max_tokens, format, include_usage },
            );
            let chars_before = tap.chars;
            let mut on_delta = |t: &str| tap.delta(t);
            let call = self.client.complete(&body, &mut on_delta);
            let res = match tokio::time::timeout_at(deadline.into(), call).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(CallError {
                        kind: FailKind::Timeout,
                        message: format!(
                            "no complete reply within {} s ({} characters received)",
                            self.timeout.as_secs_f64(),
                            tap.chars - chars_before
                        ),
                        retry_after: None,
                    });
                }
            };
            match res {
                Err(e) if format != ResponseFormatKind::None && e.refuses_response_format() => {
                    let weaker = format.weaker().unwrap_or(ResponseFormatKind::None);
                    self.policy().format = weaker;
                    let note = format!(
                        "the server refused response_format {} ({}); asking with {} for the rest of the run",
                        format.as_str(),
                        e.message,
                        weaker.as_str()
                    );
                    self.notice(format!("AI advisor: {note}"));
                    notes.push(note);
                }
                Err(e) if include_usage && e.refuses("stream_options") => {
                    self.policy().include_usage = false;
                    let note = format!("the server refused stream_options ({}); asking without", e.message);
                    self.notice(format!("AI advisor: {note}"));
                    notes.push(note);
                }
                Err(e) => {
                    if let Some(ra) = e.retry_after {
                        self.policy().not_before = Some(Instant::now() + ra);
                    }
                    return Err(e);
                }
                Ok(c) => return Ok(c),
            }
        }
    }
}

fn sum(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x + y),
        (x, y) => x.or(y),
    }
}

/// The correction message after a bad reply (the seed advisor's wording).
fn feedback(truncated: bool, why: &str) -> String {
    if truncated {
        format!(
            "Your previous response was cut off before the JSON object was complete. Error: {why}\n\
             Reply ONLY with the JSON object and a one-sentence reasoning, nothing else."
        )
    } else {
        format!(
            "Your previous response was not valid JSON. Error: {why}\n\
             Reply ONLY with the corrected JSON object, nothing else."
        )
    }
}

/// The real-time worker: one call at a time, newest prompt first.
struct Worker {
    jobs: watch::Sender<Option<Job>>,
    slot: Arc<Mutex<Slot>>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Slot {
    /// Finished and not yet recorded by a tick.
    finished: Option<CallOutcome>,
}

fn lock(slot: &Mutex<Slot>) -> std::sync::MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

impl Worker {
    fn spawn(caller: Arc<Caller>) -> Self {
        let (jobs, mut rx) = watch::channel::<Option<Job>>(None);
        let slot = Arc::new(Mutex::new(Slot::default()));
        let s = slot.clone();
        let task = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let Some(job) = rx.borrow_and_update().clone() else { continue };
                let out = caller.run(&job).await;
                lock(&s).finished = Some(out.clone());
                caller.done(&out);
            }
        });
        Self { jobs, slot, task }
    }
}

/// Waiting out a model server that does not answer: the next try is `BACKOFF_FIRST_S` after
/// the first failure to connect, doubling to at most `BACKOFF_MAX_S`, each delay drawn between
/// half and all of that (jitter), all in the run's clock (virtual time in headless runs).
const BACKOFF_FIRST_S: f64 = 5.0;
const BACKOFF_MAX_S: f64 = 300.0;

#[derive(Debug, Clone)]
struct Backoff {
    failures: u32,
    next_try: f64,
    error: String,
}

/// The `ai` recommender.
pub struct AiAdvisor {
    caller: Arc<Caller>,
    template: PromptTemplate,
    interval_s: f64,
    history_rows: usize,
    worker: Option<Worker>,
    last_job: Option<Job>,
    backoff: Option<Backoff>,
    jitter: crate::engine::rng::Rng,
}

impl AiAdvisor {
    /// `events` receives the streamed text and call status (sent with `try_send`: never blocks).
    pub fn new(s: &AdvisorSettings, key: ApiKey, events: Option<mpsc::Sender<EngineEvent>>) -> Result<Self, String> {
        prompt::validate(&s.prompt)?;
        let connect = s.timeout.min(Duration::from_secs(10));
        let client = ChatClient::new(&s.url, &s.model, key, connect)?;
        let caller = Caller {
            client,
            timeout: s.timeout,
            max_tokens: s.max_tokens,
            policy: Mutex::new(Policy { format: s.response_format, include_usage: true, not_before: None }),
            events,
        };
        Ok(Self {
            caller: Arc::new(caller),
            template: s.prompt.clone(),
            interval_s: s.interval_s,
            history_rows: s.history_rows,
            worker: None,
            last_job: None,
            backoff: None,
            jitter: crate::engine::rng::Rng::new(0xAD_71CE),
        })
    }

    /// Learn from a finished call at `now`: an unreachable server is tried again later.
    fn after_call(&mut self, out: &CallOutcome, now: f64) {
        if out.code != "unreachable" {
            self.backoff = None;
            return;
        }
        let failures = self.backoff.as_ref().map_or(0, |b| b.failures) + 1;
        let full = (BACKOFF_FIRST_S * 2f64.powi(failures.min(30) as i32 - 1)).min(BACKOFF_MAX_S);
        let delay = full * (0.5 + 0.5 * self.jitter.uniform());
        let error = if out.reason.is_empty() { out.error.clone() } else { out.reason.clone() };
        self.backoff = Some(Backoff { failures, next_try: now + delay, error });
    }

    /// While waiting out an unreachable server: the tick's answer without a call.
    fn backing_off(&self, now: f64) -> Option<RecOutput> {
        let b = self.backoff.as_ref().filter(|b| now < b.next_try)?;
        let left = (b.next_try - now).ceil();
        Some(error_output("unreachable", format!("unreachable — next try in {left:.0} s ({})", b.error)))
    }

    /// Seconds until the next try at the model server, while backing off.
    pub fn next_try_in(&self, now: f64) -> Option<f64> {
        self.backoff.as_ref().map(|b| b.next_try - now).filter(|s| *s > 0.0)
    }

    /// From the configuration, with the API key from the environment.
    pub fn from_config(cfg: &Config, events: Option<mpsc::Sender<EngineEvent>>) -> Result<Self, String> {
        Self::new(&AdvisorSettings::from_config(cfg), ApiKey::from_env(), events)
    }

    /// The `response_format` currently asked for (weaker than configured after a refusal).
    pub fn response_format(&self) -> ResponseFormatKind {
        self.caller.policy().format
    }

    fn job(&self, input: &RecommendInput<'_>) -> Result<Job, String> {
        let ctx = prompt::context(input, self.interval_s, self.history_rows);
        let (system, user) = prompt::render(&self.template, &ctx)?;
        Ok(Job { system, user, min: input.min_replicas, max: input.max_replicas })
    }
}

#[async_trait]
impl Recommender for AiAdvisor {
    fn name(&self) -> &str {
        "ai"
    }

    async fn recommend(&mut self, input: &RecommendInput<'_>) -> RecOutput {
        if input.wait
            && let Some(out) = self.backing_off(input.now)
        {
            return out;
        }
        let job = match self.job(input) {
            Ok(j) => j,
            Err(e) => return error_output("template_error", format!("prompt template: {e}")),
        };
        self.last_job = Some(job.clone());
        if input.wait {
            let out = self.caller.run(&job).await;
            self.caller.done(&out);
            self.after_call(&out, input.now);
            return out.to_output();
        }
        let caller = self.caller.clone();
        let worker = self.worker.get_or_insert_with(|| Worker::spawn(caller));
        let finished = lock(&worker.slot).finished.take();
        if let Some(o) = &finished {
            self.after_call(o, input.now);
        }
        if let Some(out) = self.backing_off(input.now) {
            return finished.filter(|o| o.code != "unreachable").map_or(out, |o| o.to_output());
        }
        if let Some(w) = &self.worker {
            w.jobs.send_replace(Some(job));
        }
        finished.map_or_else(pending_output, |o| o.to_output())
    }

    fn ask_now(&mut self) {
        // The user asks: try the server now, whatever the backoff says.
        if let Some(b) = self.backoff.as_mut() {
            b.next_try = f64::NEG_INFINITY;
        }
        if let (Some(w), Some(job)) = (&self.worker, &self.last_job) {
            w.jobs.send_replace(Some(job.clone()));
        }
    }

    fn set_prompt_template(&mut self, t: PromptTemplate) -> Result<(), String> {
        prompt::validate(&t)?;
        self.template = t;
        Ok(())
    }

    async fn shutdown(&mut self) {
        if let Some(w) = self.worker.take() {
            w.task.abort();
            let _ = w.task.await;
        }
    }
}
