//! One streamed chat completion against an OpenAI-compatible server (Ollama, vLLM, llama.cpp's
//! server, llama-cpp-python, OpenAI).
//!
//! The request body is async-openai's typed [`CreateChatCompletionRequest`]. The transport is
//! reqwest with our own SSE reading, because async-openai 0.43's client cannot do what the advisor
//! must: on an HTTP error it keeps only the status and the parsed body (no `Retry-After`), it
//! loses the status when a 4xx body is not JSON (e.g. `404 page not found` from a wrong base URL),
//! it keeps 5xx bodies as raw text, and it deserializes every stream chunk into strict types
//! (`id`, `created`, `model`, `object`, `index` required; `finish_reason` a closed enum), so a
//! server that leaves one out or sends another value breaks the whole stream. Here every chunk
//! field is optional, `content: null` is fine, unknown fields are ignored, a malformed line is
//! counted and skipped, a body without `text/event-stream` is read as a plain completion, and
//! every failure is classified ([`FailKind`]) with the server's own message.

use std::time::{Duration, SystemTime};

use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, ChatCompletionStreamOptions, CreateChatCompletionRequest, ResponseFormat,
    ResponseFormatJsonSchema,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::parse::REQUIRED_KEYS;
use super::sse::SseDecoder;
use crate::engine::record::one_line;

/// How the request asks for JSON (`advisor.response_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormatKind {
    /// `{"type":"json_schema", …}` with the reply's schema.
    JsonSchema,
    /// `{"type":"json_object"}` (JSON mode).
    #[default]
    JsonObject,
    /// No `response_format`: the prompt alone asks for JSON.
    None,
}

impl ResponseFormatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JsonSchema => "json_schema",
            Self::JsonObject => "json_object",
            Self::None => "none",
        }
    }

    /// What to ask for when the server refuses this one.
    pub fn weaker(self) -> Option<Self> {
        match self {
            Self::JsonSchema => Some(Self::JsonObject),
            Self::JsonObject => Some(Self::None),
            Self::None => None,
        }
    }
}

/// The API key. Sent as `Authorization: Bearer …` and never printed.
#[derive(Clone)]
pub struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(hidden)")
    }
}

/// The environment variables read for the key, in order.
pub const API_KEY_VARS: [&str; 2] = ["SCALETUI_AI_API_KEY", "OPENAI_API_KEY"];
/// Sent when no key is set (Ollama and llama.cpp accept anything non-empty).
pub const DUMMY_API_KEY: &str = "ollama";

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// `$SCALETUI_AI_API_KEY`, else `$OPENAI_API_KEY`, else a dummy key.
    pub fn from_env() -> Self {
        API_KEY_VARS
            .iter()
            .find_map(|v| std::env::var(v).ok().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()))
            .map_or_else(|| Self(DUMMY_API_KEY.into()), Self)
    }
}

/// A message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatMessage {
    System(String),
    User(String),
    Assistant(String),
}

/// What one request asks for besides the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestOptions {
    pub max_tokens: u32,
    pub format: ResponseFormatKind,
    /// Ask for a usage chunk at the end of the stream (`stream_options.include_usage`).
    pub include_usage: bool,
}

/// Longest `reasoning` the schema allows. serde_json writes the properties in alphabetical order,
/// so a grammar-constrained model writes `reasoning` before `recommended_replicas`: without a
/// bound, a small model rambles there until `max_tokens` (seen with SmolLM2 on llama.cpp).
pub const SCHEMA_REASONING_MAX_LENGTH: u32 = 240;

/// The JSON schema of the reply (for `response_format: json_schema`).
pub fn reply_schema() -> Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "recommended_replicas": {"type": "integer", "minimum": 1},
            "predicted_cpu_millicores": {"type": "number", "minimum": 0},
            "predicted_memory_mebibytes": {"type": "number", "minimum": 0},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reasoning": {"type": "string", "maxLength": SCHEMA_REASONING_MAX_LENGTH}
        },
        "required": REQUIRED_KEYS,
        "additionalProperties": false
    })
}

/// The request body: temperature 0, streamed, with the usage chunk and JSON mode as asked.
// `max_tokens` is what Ollama, llama.cpp and vLLM read (OpenAI still accepts it); the newer
// `max_completion_tokens` is not understood everywhere.
#[allow(deprecated)]
pub fn request_body(model: &str, messages: &[ChatMessage], o: RequestOptions) -> CreateChatCompletionRequest {
    let messages = messages
        .iter()
        .map(|m| match m {
            ChatMessage::System(s) => {
                ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage::from(s.as_str()))
            }
            ChatMessage::User(s) => {
                ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage::from(s.as_str()))
            }
            ChatMessage::Assistant(s) => {
                ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage::from(s.as_str()))
            }
        })
        .collect();
    let response_format = match o.format {
        ResponseFormatKind::JsonObject => Some(ResponseFormat::JsonObject),
        ResponseFormatKind::JsonSchema => Some(ResponseFormat::JsonSchema {
            json_schema: ResponseFormatJsonSchema {
                description: None,
                name: "scaling_recommendation".into(),
                schema: reply_schema(),
                strict: Some(true),
            },
        }),
        ResponseFormatKind::None => None,
    };
    CreateChatCompletionRequest {
        model: model.to_string(),
        messages,
        temperature: Some(0.0),
        max_tokens: Some(o.max_tokens),
        response_format,
        stream: Some(true),
        stream_options: o
            .include_usage
            .then_some(ChatCompletionStreamOptions { include_usage: Some(true), include_obfuscation: None }),
        ..Default::default()
    }
}

/// What went wrong with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// No connection (refused, DNS, TLS).
    Unreachable,
    /// No complete reply in time.
    Timeout,
    /// HTTP 429.
    RateLimited,
    /// Another non-2xx status.
    Http(u16),
    /// The server reported an error inside the stream.
    StreamError,
    /// The stream broke or ended before the reply was complete.
    StreamCut,
    /// A 2xx answer that is not a chat completion.
    BadResponse,
}

impl FailKind {
    /// The `ai_status` code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::RateLimited => "rate_limited",
            Self::Http(_) | Self::StreamError => "http_error",
            Self::StreamCut => "stream_cut",
            Self::BadResponse => "bad_response",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    pub kind: FailKind,
    /// A sentence for the screen and the `ai_error` column (the server's own message for HTTP errors).
    pub message: String,
    /// From `Retry-After` (429, 503).
    pub retry_after: Option<Duration>,
}

impl CallError {
    fn new(kind: FailKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), retry_after: None }
    }

    /// The server refused a request field (HTTP 4xx/5xx whose message names it).
    pub fn refuses(&self, field: &str) -> bool {
        matches!(self.kind, FailKind::Http(s) if (400..600).contains(&s) && s != 429 && s != 503)
            && self.message.to_ascii_lowercase().contains(field)
    }

    /// The server refused `response_format` (or the JSON mode it names).
    pub fn refuses_response_format(&self) -> bool {
        ["response_format", "json_object", "json_schema"].iter().any(|f| self.refuses(f))
    }
}

/// A finished reply.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Completion {
    pub content: String,
    pub finish_reason: Option<String>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// Stream lines that could not be read (skipped).
    pub malformed: u32,
}

/// The client for one base URL and model.
#[derive(Debug, Clone)]
pub struct ChatClient {
    http: reqwest::Client,
    endpoint: String,
    /// The base URL as shown to the user (no credentials, no query).
    pub shown_url: String,
    key: ApiKey,
    pub model: String,
}

/// Bodies of error answers are read up to this size.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A non-streamed answer is read up to this size.
const MAX_PLAIN_BODY: usize = 4 * 1024 * 1024;

impl ChatClient {
    /// `base_url` is the API base (`http://localhost:11434/v1`); requests go to
    /// `<base>/chat/completions`.
    pub fn new(base_url: &str, model: &str, key: ApiKey, connect_timeout: Duration) -> Result<Self, String> {
        let url = reqwest::Url::parse(base_url.trim())
            .map_err(|e| format!("advisor URL {:?} is not a URL: {e}", shown(base_url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("advisor URL {} must start with http:// or https://", shown(base_url)));
        }
        // reqwest with rustls needs the process-wide crypto provider (main installs it too).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))?;
        let base = url.as_str().trim_end_matches('/').to_string();
        Ok(Self {
            http,
            endpoint: format!("{base}/chat/completions"),
            shown_url: shown(base_url),
            key,
            model: model.into(),
        })
    }

    /// Send one request and read the reply, passing each piece of content to `on_delta` as it
    /// arrives.
    pub async fn complete(
        &self,
        body: &CreateChatCompletionRequest,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, CallError> {
        let resp = self
            .http
            .post(&self.endpoint)
            .bearer_auth(&self.key.0)
            .header(reqwest::header::ACCEPT, "text/event-stream, application/json")
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.http_error(resp).await);
        }
        let sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("event-stream"));
        if sse { self.read_stream(resp, on_delta).await } else { self.read_plain(resp, on_delta).await }
    }

    fn transport_error(&self, e: &reqwest::Error) -> CallError {
        let cause = error_chain(e);
        if e.is_timeout() {
            CallError::new(FailKind::Timeout, format!("no answer from {} in time ({cause})", self.shown_url))
        } else if e.is_connect() {
            CallError::new(FailKind::Unreachable, format!("cannot connect to {}: {cause}", self.shown_url))
        } else {
            CallError::new(FailKind::Unreachable, format!("request to {} failed: {cause}", self.shown_url))
        }
    }

    async fn http_error(&self, resp: reqwest::Response) -> CallError {
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = read_bounded(resp, MAX_ERROR_BODY).await.unwrap_or_default();
        let mut message = format!("HTTP {}", status.as_u16());
        match server_message(&body) {
            Some(m) => message.push_str(&format!(": {m}")),
            None => {
                if let Some(reason) = status.canonical_reason() {
                    message.push_str(&format!(" {reason}"));
                }
            }
        }
        if status.as_u16() == 404 && !self.shown_url.trim_end_matches('/').ends_with("/v1") {
            message.push_str(&format!(" (is {} the API base? Ollama's is http://HOST:11434/v1)", self.shown_url));
        }
        if let Some(d) = retry_after {
            message.push_str(&format!("; retry after {} s", d.as_secs_f64().ceil()));
        }
        let kind = if status.as_u16() == 429 { FailKind::RateLimited } else { FailKind::Http(status.as_u16()) };
        CallError { kind, message, retry_after }
    }

    async fn read_stream(
        &self,
        resp: reqwest::Response,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, CallError> {
        let mut out = Completion::default();
        let mut decoder = SseDecoder::new();
        let mut done = false;
        let mut bytes = resp.bytes_stream();
        while !done {
            let events = match bytes.next().await {
                Some(Ok(chunk)) => decoder.push(&chunk),
                Some(Err(e)) => {
                    return Err(CallError::new(
                        FailKind::StreamCut,
                        format!(
                            "the stream broke after {} characters of the reply: {}",
                            out.content.chars().count(),
                            error_chain(&e)
                        ),
                    ));
                }
                None => {
                    let events = decoder.finish();
                    if events.is_empty() {
                        break;
                    }
                    events
                }
            };
            for ev in events {
                if ev.data.trim() == "[DONE]" {
                    done = true;
                    break;
                }
                apply_event(&ev.data, &mut out, on_delta)?;
            }
        }
        out.malformed += decoder.malformed_lines;
        if !done && out.finish_reason.is_none() {
            return Err(CallError::new(
                FailKind::StreamCut,
                format!(
                    "the stream ended after {} characters, before the reply was complete (no finish_reason, no [DONE])",
                    out.content.chars().count()
                ),
            ));
        }
        Ok(out)
    }

    /// A server that ignored `stream: true` and sent one JSON completion (or SSE text without
    /// the content type).
    async fn read_plain(
        &self,
        resp: reqwest::Response,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, CallError> {
        let body = read_bounded(resp, MAX_PLAIN_BODY)
            .await
            .map_err(|e| CallError::new(FailKind::StreamCut, format!("the answer broke off: {}", error_chain(&e))))?;
        let text = String::from_utf8_lossy(&body);
        if text.trim_start().starts_with("data:") {
            let mut decoder = SseDecoder::new();
            let mut events = decoder.push(&body);
            events.extend(decoder.finish());
            let mut out = Completion::default();
            for ev in events.iter().take_while(|e| e.data.trim() != "[DONE]") {
                apply_event(&ev.data, &mut out, on_delta)?;
            }
            out.malformed += decoder.malformed_lines;
            return Ok(out);
        }
        let mut out = Completion::default();
        match serde_json::from_str::<Chunk>(&text) {
            Ok(chunk) if chunk.choices.as_ref().is_some_and(|c| !c.is_empty()) || chunk.error.is_some() => {
                apply_chunk(chunk, &mut out, on_delta)?;
                Ok(out)
            }
            _ => Err(CallError::new(
                FailKind::BadResponse,
                format!("the answer is not a chat completion: {}", snippet(&text)),
            )),
        }
    }
}

/// A stream chunk or a whole completion, as leniently as possible.
#[derive(Debug, Deserialize, Default)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    message: Option<Delta>,
    /// Legacy completions.
    #[serde(default)]
    text: Option<Value>,
    #[serde(default)]
    finish_reason: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// Text of a `content` value: a string, or a list of `{type: "text", text}` parts.
fn content_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let s: String = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
            (!s.is_empty()).then_some(s)
        }
        _ => None,
    }
}

fn apply_event(data: &str, out: &mut Completion, on_delta: &mut (dyn FnMut(&str) + Send)) -> Result<(), CallError> {
    match serde_json::from_str::<Chunk>(data) {
        Ok(chunk) => apply_chunk(chunk, out, on_delta),
        // Servers that forget the blank line between events: one JSON per data line.
        Err(_) if data.contains('\n') => {
            for line in data.lines() {
                match serde_json::from_str::<Chunk>(line) {
                    Ok(chunk) => apply_chunk(chunk, out, on_delta)?,
                    Err(_) => out.malformed += 1,
                }
            }
            Ok(())
        }
        Err(_) => {
            out.malformed += 1;
            Ok(())
        }
    }
}

fn apply_chunk(chunk: Chunk, out: &mut Completion, on_delta: &mut (dyn FnMut(&str) + Send)) -> Result<(), CallError> {
    if let Some(err) = chunk.error.filter(|e| !e.is_null()) {
        let msg = error_value_message(&err).unwrap_or_else(|| snippet(&err.to_string()));
        return Err(CallError::new(FailKind::StreamError, format!("the server reported an error: {msg}")));
    }
    if let Some(u) = chunk.usage {
        out.prompt_tokens = u.prompt_tokens.or(out.prompt_tokens);
        out.completion_tokens = u.completion_tokens.or(out.completion_tokens);
    }
    // One choice is asked for (n = 1); take the first.
    if let Some(choice) = chunk.choices.into_iter().flatten().next() {
        let text = [&choice.delta, &choice.message]
            .into_iter()
            .flatten()
            .find_map(|d| d.content.as_ref().and_then(content_text))
            .or_else(|| choice.text.as_ref().and_then(content_text));
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            on_delta(&t);
            out.content.push_str(&t);
        }
        if let Some(r) = choice.finish_reason.as_ref().and_then(Value::as_str) {
            out.finish_reason = Some(r.to_string());
        }
    }
    Ok(())
}

async fn read_bounded(resp: reqwest::Response, max: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk?;
        let room = max.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= max {
            break;
        }
    }
    Ok(out)
}

fn error_value_message(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => ["message", "detail", "error"].iter().find_map(|k| m.get(*k).and_then(error_value_message)),
        Value::Array(xs) => {
            let parts: Vec<String> = xs.iter().filter_map(error_value_message).collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        _ => None,
    }
}

/// The message of an error body: `{"error":{"message":…}}` (OpenAI, Ollama, llama.cpp),
/// `{"error":"…"}`, `{"message":…}`, `{"detail":…}` (FastAPI), or the text itself.
pub fn server_message(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let msg = match serde_json::from_str::<Value>(&text) {
        Ok(v) => error_value_message(&v).unwrap_or_else(|| text.to_string()),
        Err(_) => text.to_string(),
    };
    let msg = snippet(&msg);
    (!msg.is_empty()).then_some(msg)
}

/// One line of at most 300 characters.
fn snippet(s: &str) -> String {
    let line = one_line(s);
    if line.chars().count() <= 300 {
        return line;
    }
    let mut cut: String = line.chars().take(299).collect();
    cut.push('…');
    cut
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(86_400.0)));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(v).ok()?;
    let at = SystemTime::from(at);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(Duration::from_secs(86_400)))
}

/// The error and its causes (`tcp connect error: Connection refused (os error 111)`), without
/// the URL (which may carry credentials) and without the HTTP stack's wrapper messages.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut kind = None;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        match err.downcast_ref::<reqwest::Error>() {
            // reqwest's Display names the URL; keep only what kind of failure it was.
            Some(r) => {
                kind = kind.or(if r.is_connect() {
                    Some("connection failed")
                } else if r.is_timeout() {
                    Some("timed out")
                } else if r.is_body() || r.is_decode() {
                    Some("reading the body failed")
                } else if r.is_request() {
                    Some("sending the request failed")
                } else {
                    None
                });
            }
            None => {
                let s = err.to_string();
                let wrapper = s.starts_with("client error (") || s.starts_with("error sending request");
                if !s.is_empty() && !wrapper && !parts.iter().any(|p| p.contains(&s)) {
                    parts.push(s);
                }
            }
        }
        cur = err.source();
    }
    match (parts.is_empty(), kind) {
        (false, _) => parts.join(": "),
        (true, Some(k)) => k.to_string(),
        (true, None) => "unknown error".into(),
    }
}

/// A URL as shown to the user: without user, password, query and fragment.
pub fn shown(url: &str) -> String {
    match reqwest::Url::parse(url.trim()) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.as_str().trim_end_matches('/').to_string()
        }
        Err(_) => one_line(url).chars().take(100).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_fields_servers_read() {
        let msgs = [ChatMessage::System("s".into()), ChatMessage::User("u".into()), ChatMessage::Assistant("a".into())];
        let o = RequestOptions { max_tokens: 200, format: ResponseFormatKind::JsonObject, include_usage: true };
        let v = serde_json::to_value(request_body("m", &msgs, o)).expect("serializes");
        assert_eq!(v["model"], "m");
        assert_eq!(v["temperature"], 0.0);
        assert_eq!(v["max_tokens"], 200);
        assert_eq!(v["stream"], true);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["response_format"]["type"], "json_object");
        let roles: Vec<&str> =
            v["messages"].as_array().expect("list").iter().filter_map(|m| m["role"].as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant"]);
        assert_eq!(v["messages"][1]["content"], "u");

        let o = RequestOptions { format: ResponseFormatKind::None, include_usage: false, ..o };
        let v = serde_json::to_value(request_body("m", &msgs, o)).expect("serializes");
        assert!(v.get("response_format").is_none() && v.get("stream_options").is_none(), "{v}");
        let o = RequestOptions { format: ResponseFormatKind::JsonSchema, ..o };
        let v = serde_json::to_value(request_body("m", &msgs, o)).expect("serializes");
        assert_eq!(v["response_format"]["type"], "json_schema");
        assert_eq!(v["response_format"]["json_schema"]["schema"]["required"][0], "recommended_replicas");
        let reasoning = &v["response_format"]["json_schema"]["schema"]["properties"]["reasoning"];
        assert_eq!(reasoning["maxLength"], SCHEMA_REASONING_MAX_LENGTH, "bounded: see the constant");
    }

    #[test]
    fn server_messages_of_known_shapes() {
        let m = |s: &str| server_message(s.as_bytes());
        assert_eq!(
            m(r#"{"error":{"message":"model \"x\" not found","type":"api_error"}}"#).as_deref(),
            Some("model \"x\" not found")
        );
        assert_eq!(m(r#"{"error":"boom"}"#).as_deref(), Some("boom"));
        assert_eq!(m(r#"{"detail":[{"msg":"bad"},{"message":"worse"}]}"#).as_deref(), Some("worse"));
        assert_eq!(m("404 page not found\n").as_deref(), Some("404 page not found"));
        assert_eq!(m(""), None);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 1.5 ", now), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn refusal_detection() {
        let e = |status: u16, msg: &str| CallError::new(FailKind::Http(status), msg);
        assert!(e(400, "HTTP 400: response_format is not supported").refuses_response_format());
        assert!(e(500, "HTTP 500: Input should be 'text' or 'json_object'").refuses_response_format());
        assert!(!e(404, "HTTP 404: model not found").refuses_response_format());
        assert!(!CallError::new(FailKind::RateLimited, "json_object").refuses_response_format());
        assert!(e(400, "unknown field stream_options").refuses("stream_options"));
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(shown("https://user:secret@api.example.com/v1/?key=abc"), "https://api.example.com/v1");
        assert_eq!(shown("http://localhost:11434/v1"), "http://localhost:11434/v1");
    }

    #[test]
    fn key_is_never_printed() {
        let k = ApiKey::new("sk-very-secret");
        assert!(!format!("{k:?}").contains("secret"));
        let c = ChatClient::new("http://127.0.0.1:1/v1", "m", k, Duration::from_secs(1)).expect("client");
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn lenient_chunks() {
        let mut out = Completion::default();
        let mut seen = String::new();
        let mut sink = |t: &str| seen.push_str(t);
        for data in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}"#,
            r#"{"choices":[{"delta":{"content":"{\"a\""}}],"timings":{"x":1}}"#,
            r#"{"choices":[{"delta":{"content":[{"type":"text","text":":1}"}]},"finish_reason":"eos_token"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":52,"completion_tokens":17,"total_tokens":69}}"#,
            "{not json",
        ] {
            apply_event(data, &mut out, &mut sink).expect("tolerated");
        }
        let e = apply_event(r#"{"error":{"message":"out of memory"}}"#, &mut out, &mut sink).expect_err("error");
        assert_eq!(out.content, "{\"a\":1}");
        assert_eq!(seen, out.content);
        assert_eq!(out.finish_reason.as_deref(), Some("eos_token"));
        assert_eq!((out.prompt_tokens, out.completion_tokens, out.malformed), (Some(52), Some(17), 1));
        assert_eq!(e.kind, FailKind::StreamError);
        assert_eq!(e.message, "the server reported an error: out of memory");
    }
}
