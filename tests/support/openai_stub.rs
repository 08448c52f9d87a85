//! An OpenAI-compatible chat server for tests, in process on `127.0.0.1:0`.
//!
//! It answers `GET /v1/models` and `POST /v1/chat/completions`, plain or streamed the way real
//! servers stream (reference/real-parts.md §2e): a role-only first chunk (llama-cpp-python) or one
//! with `content: null` (llama.cpp's server) or the role in every delta (Ollama), content deltas,
//! a final chunk with `finish_reason`, a usage chunk when `stream_options.include_usage` is set,
//! and `data: [DONE]`. Each request takes the next scripted [`Reply`] (or the default one), whose
//! fault knobs make it slow, stall, break off, send a malformed line, or fail with an HTTP error.
//! Server-wide knobs refuse `response_format`, `stream_options` or unknown models. Every request is recorded.
//!
//! Use: `let stub = Stub::start().await; stub.push(Reply::answer(4));` and point the client at
//! `stub.base_url()`. The server stops when the `Stub` is dropped.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The model the stub says it serves (the production default name).
pub const MODEL: &str = "qwen2.5-coder:3b";

/// How the chunks of a stream look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// llama-cpp-python: a role-only first delta, content deltas, an empty last delta.
    #[default]
    LlamaCppPython,
    /// llama.cpp's `llama-server`: the first delta is `{"role":"assistant","content":null}`,
    /// chunks carry `timings`.
    LlamaServer,
    /// Ollama: the role in every delta, no separate role chunk.
    Ollama,
}

/// One answer, with its faults.
#[derive(Debug, Clone)]
pub struct Reply {
    pub content: String,
    pub finish_reason: String,
    /// Answer with this HTTP status and `error_message` instead of a completion.
    pub status: Option<u16>,
    pub error_message: String,
    /// `Retry-After` header of an error answer.
    pub retry_after: Option<String>,
    /// Before the response headers.
    pub latency: Duration,
    /// Between streamed tokens.
    pub token_delay: Duration,
    /// After this many tokens, send nothing more (no bytes) until the client gives up.
    pub stall_after: Option<usize>,
    /// After this many tokens, cut the connection (no finish, no `[DONE]`).
    pub disconnect_after: Option<usize>,
    /// After this many tokens, end the body cleanly but without finish and `[DONE]`.
    pub eof_after: Option<usize>,
    /// A broken `data:` line (truncated JSON) after the first token, and a line that is no SSE field.
    pub malformed_line: bool,
    /// One JSON completion even when a stream was asked for.
    pub plain: bool,
    /// Send a usage chunk when asked (`stream_options.include_usage`).
    pub usage: bool,
    pub style: Style,
    /// `\r\n` line ends, a `: keep-alive` comment first, and each event split in two writes.
    pub awkward_framing: bool,
}

impl Default for Reply {
    fn default() -> Self {
        Self {
            content: String::new(),
            finish_reason: "stop".into(),
            status: None,
            error_message: String::new(),
            retry_after: None,
            latency: Duration::ZERO,
            token_delay: Duration::ZERO,
            stall_after: None,
            disconnect_after: None,
            eof_after: None,
            malformed_line: false,
            plain: false,
            usage: true,
            style: Style::default(),
            awkward_framing: false,
        }
    }
}

/// A valid answer's JSON text.
pub fn answer_json(replicas: i64, confidence: f64, reasoning: &str) -> String {
    json!({
        "recommended_replicas": replicas,
        "predicted_cpu_millicores": 55.5,
        "predicted_memory_mebibytes": 40.0,
        "confidence": confidence,
        "reasoning": reasoning,
    })
    .to_string()
}

impl Reply {
    /// Any text as the model's reply.
    pub fn content(text: impl Into<String>) -> Self {
        Self { content: text.into(), ..Self::default() }
    }

    /// A valid answer recommending `replicas`.
    pub fn answer(replicas: i64) -> Self {
        Self::content(answer_json(replicas, 0.8, &format!("load trend suggests {replicas} replicas")))
    }

    /// An HTTP error with an OpenAI-shaped body.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self { status: Some(status), error_message: message.into(), ..Self::default() }
    }

    /// 429 with `Retry-After: secs`.
    pub fn rate_limited(secs: u64) -> Self {
        Self { retry_after: Some(secs.to_string()), ..Self::error(429, "rate limit reached, slow down") }
    }

    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }

    pub fn token_delay(mut self, d: Duration) -> Self {
        self.token_delay = d;
        self
    }

    pub fn stall_after(mut self, tokens: usize) -> Self {
        self.stall_after = Some(tokens);
        self
    }

    pub fn disconnect_after(mut self, tokens: usize) -> Self {
        self.disconnect_after = Some(tokens);
        self
    }

    pub fn eof_after(mut self, tokens: usize) -> Self {
        self.eof_after = Some(tokens);
        self
    }

    pub fn malformed_line(mut self) -> Self {
        self.malformed_line = true;
        self
    }

    pub fn plain(mut self) -> Self {
        self.plain = true;
        self
    }

    pub fn finish(mut self, reason: &str) -> Self {
        self.finish_reason = reason.into();
        self
    }

    pub fn style(mut self, s: Style) -> Self {
        self.style = s;
        self
    }

    pub fn awkward_framing(mut self) -> Self {
        self.awkward_framing = true;
        self
    }

    pub fn without_usage(mut self) -> Self {
        self.usage = false;
        self
    }
}

/// The reply split the way a model streams it: words and pieces of at most 4 characters.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if c.is_whitespace() || cur.chars().count() >= 4 {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A request as the stub received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub body: Value,
    pub authorization: Option<String>,
    pub at: Instant,
}

impl Recorded {
    /// The text of the message at `i`.
    pub fn message(&self, i: usize) -> String {
        self.body["messages"][i]["content"].as_str().unwrap_or_default().to_string()
    }

    pub fn messages(&self) -> usize {
        self.body["messages"].as_array().map_or(0, Vec::len)
    }

    /// `response_format.type`, if any.
    pub fn response_format(&self) -> Option<String> {
        self.body.get("response_format").and_then(|f| f["type"].as_str()).map(String::from)
    }
}

#[derive(Debug, Default)]
struct Inner {
    queue: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    requests: Mutex<Vec<Recorded>>,
    /// (refused `response_format` types, status, message).
    refuse_formats: Mutex<Option<(Vec<String>, u16, String)>>,
    /// (status, message) for requests with `stream_options` (older servers reject it).
    refuse_stream_options: Mutex<Option<(u16, String)>>,
    known_models: Mutex<Option<Vec<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running server.
pub struct Stub {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stub {
    /// Start on 127.0.0.1 on a free port. The default reply is a valid answer of 3 replicas.
    pub async fn start() -> Self {
        Self::start_at("127.0.0.1:0").await
    }

    /// Start on a given address (a server that comes up where a client already looks).
    pub async fn start_at(addr: &str) -> Self {
        let inner = Arc::new(Inner::default());
        *lock(&inner.default) = Reply::answer(3);
        let app = Router::new()
            .route("/v1/models", get(models))
            .route("/v1/chat/completions", post(chat))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner, task }
    }

    /// The API base URL (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answer the next request with this (after the ones already scripted).
    pub fn push(&self, r: Reply) {
        lock(&self.inner.queue).push_back(r);
    }

    /// The reply when nothing is scripted.
    pub fn set_default(&self, r: Reply) {
        *lock(&self.inner.default) = r;
    }

    /// Refuse requests whose `response_format.type` is one of `types` (e.g. llama-cpp-python's
    /// 500 for `json_schema`, or a server without JSON mode).
    pub fn refuse_response_format(&self, types: &[&str], status: u16, message: &str) {
        *lock(&self.inner.refuse_formats) =
            Some((types.iter().map(|t| t.to_string()).collect(), status, message.to_string()));
    }

    /// Refuse requests that carry `stream_options`.
    pub fn refuse_stream_options(&self, status: u16, message: &str) {
        *lock(&self.inner.refuse_stream_options) = Some((status, message.to_string()));
    }

    /// Answer 404 (as Ollama does) for any other model.
    pub fn only_models(&self, models: &[&str]) {
        *lock(&self.inner.known_models) = Some(models.iter().map(|m| m.to_string()).collect());
    }

    /// The chat requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.inner.requests).iter().filter(|r| r.path.ends_with("/chat/completions")).cloned().collect()
    }
}

async fn models(State(inner): State<Arc<Inner>>) -> Response {
    let names = lock(&inner.known_models).clone().unwrap_or_else(|| vec![MODEL.to_string()]);
    let data: Vec<Value> = names
        .iter()
        .map(|n| json!({"id": n, "object": "model", "created": 1_700_000_000, "owned_by": "library"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

fn error_response(status: u16, message: &str, retry_after: Option<&str>) -> Response {
    let kind = match status {
        400 => "invalid_request_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        _ => "api_error",
    };
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    let mut resp =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response();
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

async fn chat(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(String::from);
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return error_response(400, "the body is not JSON", None);
    };
    lock(&inner.requests).push(Recorded {
        path: "/v1/chat/completions".into(),
        body: req.clone(),
        authorization,
        at: Instant::now(),
    });
    if !req["messages"].is_array() {
        return error_response(400, "Expected 'messages' to be an array", None);
    }
    let model = req["model"].as_str().unwrap_or_default().to_string();
    if let Some(known) = lock(&inner.known_models).clone()
        && !known.contains(&model)
    {
        return error_response(404, &format!("model \"{model}\" not found, try pulling it first"), None);
    }
    if let Some(kind) = req.get("response_format").and_then(|f| f["type"].as_str()) {
        let refuse = lock(&inner.refuse_formats).clone();
        if let Some((types, status, message)) = refuse
            && types.iter().any(|t| t == kind)
        {
            return error_response(status, &message, None);
        }
    }
    let refuse = lock(&inner.refuse_stream_options).clone();
    if let Some((status, message)) = refuse
        && req.get("stream_options").is_some()
    {
        return error_response(status, &message, None);
    }
    let reply = lock(&inner.queue).pop_front().unwrap_or_else(|| lock(&inner.default).clone());
    if !reply.latency.is_zero() {
        tokio::time::sleep(reply.latency).await;
    }
    if let Some(status) = reply.status {
        return error_response(status, &reply.error_message, reply.retry_after.as_deref());
    }
    let prompt_chars: usize = req["messages"]
        .as_array()
        .map(|ms| ms.iter().map(|m| m["content"].as_str().map_or(0, str::len)).sum())
        .unwrap_or(0);
    let prompt_tokens = (prompt_chars / 4).max(1) as u64;
    let toks = tokens(&reply.content);
    let stream = req["stream"].as_bool() == Some(true) && !reply.plain;
    if !stream {
        let body = json!({
            "id": "chatcmpl-stub", "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "system_fingerprint": "fp_stub",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content},
                         "finish_reason": reply.finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": toks.len(),
                      "total_tokens": prompt_tokens + toks.len() as u64}
        });
        return axum::Json(body).into_response();
    }
    let include_usage = req["stream_options"]["include_usage"].as_bool() == Some(true) && reply.usage;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(produce(tx, reply, model, toks, prompt_tokens, include_usage));
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) }));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Write the stream; returns early when the client has gone.
async fn produce(
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    reply: Reply,
    model: String,
    toks: Vec<String>,
    prompt_tokens: u64,
    include_usage: bool,
) {
    let nl = if reply.awkward_framing { "\r\n" } else { "\n" };
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({
            "id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "system_fingerprint": "fp_stub",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        });
        if reply.style == Style::LlamaServer {
            c["timings"] = json!({"prompt_n": prompt_tokens, "predicted_per_second": 1000.0});
        }
        format!("data: {c}{nl}{nl}")
    };
    let send = |text: String| {
        let tx = tx.clone();
        let split = reply.awkward_framing;
        async move {
            if split && text.len() > 8 {
                let cut = text.len() / 2;
                let cut = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
                tx.send(Ok(Bytes::from(text[..cut].to_string()))).await.is_ok() && {
                    tokio::task::yield_now().await;
                    tx.send(Ok(Bytes::from(text[cut..].to_string()))).await.is_ok()
                }
            } else {
                tx.send(Ok(Bytes::from(text))).await.is_ok()
            }
        }
    };
    if reply.awkward_framing && !send(format!(": keep-alive{nl}{nl}")).await {
        return;
    }
    let role_first = match reply.style {
        Style::LlamaCppPython => Some(json!({"role": "assistant"})),
        Style::LlamaServer => Some(json!({"role": "assistant", "content": null})),
        Style::Ollama => None,
    };
    if let Some(d) = role_first
        && !send(chunk(d, Value::Null)).await
    {
        return;
    }
    for (i, tok) in toks.iter().enumerate() {
        if reply.stall_after == Some(i) {
            tx.closed().await;
            return;
        }
        if reply.disconnect_after == Some(i) {
            cut(&tx).await;
            return;
        }
        if reply.eof_after == Some(i) {
            return;
        }
        if i > 0 && !reply.token_delay.is_zero() {
            tokio::time::sleep(reply.token_delay).await;
        }
        let delta = match reply.style {
            Style::Ollama => json!({"role": "assistant", "content": tok}),
            _ => json!({"content": tok}),
        };
        if !send(chunk(delta, Value::Null)).await {
            return;
        }
        if i == 0
            && reply.malformed_line
            && !send(format!("data: {{\"choices\":[{{\"delta\":{{\"content\"{nl}{nl}this line is not sse{nl}{nl}"))
                .await
        {
            return;
        }
    }
    let n = toks.len();
    if reply.stall_after.is_some_and(|s| s >= n) {
        tx.closed().await;
        return;
    }
    if reply.disconnect_after.is_some_and(|s| s >= n) {
        cut(&tx).await;
        return;
    }
    if reply.eof_after.is_some_and(|s| s >= n) {
        return;
    }
    if !send(chunk(json!({}), json!(reply.finish_reason))).await {
        return;
    }
    if include_usage {
        let u = json!({
            "id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "choices": [],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": prompt_tokens + n as u64}
        });
        if !send(format!("data: {u}{nl}{nl}")).await {
            return;
        }
    }
    let _ = send(format!("data: [DONE]{nl}{nl}")).await;
}

/// Cut the connection mid-body, after what was sent has had time to reach the client.
async fn cut(tx: &mpsc::Sender<Result<Bytes, std::io::Error>>) {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = tx.send(Err(std::io::Error::other("connection cut by the stub"))).await;
}
