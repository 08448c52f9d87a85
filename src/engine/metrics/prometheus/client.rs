//! A small client for Prometheus' HTTP API (`/api/v1/query`, `/api/v1/query_range`).
//!
//! Values arrive as strings (`"0.25"`, `"NaN"`, `"+Inf"`) and are parsed to `f64` as they are;
//! callers drop what is not finite. Errors are sorted into three kinds: Prometheus could not be
//! reached (connection refused, timeout, not ready, a proxy's 502/503/504), Prometheus refused the
//! query (HTTP 400 `bad_data`, 422 `execution`, … with its message), or the answer made no sense.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

/// Labels of a series.
pub type Labels = BTreeMap<String, String>;

/// One series of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// One series of a range query: `(unix seconds, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: Labels,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PromError {
    /// Prometheus could not be reached or is not serving queries.
    Unreachable(String),
    /// Prometheus answered the query with an error.
    Api { status: u16, error_type: String, error: String },
    /// An answer that is not what the API documents.
    BadAnswer(String),
}

impl PromError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, PromError::Unreachable(_))
    }
}

impl fmt::Display for PromError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PromError::Unreachable(m) => f.write_str(m),
            PromError::Api { status, error_type, error } if error_type.is_empty() => {
                write!(f, "HTTP {status}: {error}")
            }
            PromError::Api { status, error_type, error } => write!(f, "HTTP {status} {error_type}: {error}"),
            PromError::BadAnswer(m) => write!(f, "unexpected answer: {m}"),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<Data>,
    #[serde(rename = "errorType", default)]
    error_type: String,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: Labels,
    value: (f64, String),
}

#[derive(Deserialize)]
struct MatrixItem {
    #[serde(default)]
    metric: Labels,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// The most a range query may ask for (Prometheus refuses more than 11,000 points per series).
pub const MAX_POINTS: f64 = 10_000.0;

/// The environment variable holding a bearer token for Prometheus (never written anywhere).
pub const TOKEN_VAR: &str = "SCALETUI_PROMETHEUS_TOKEN";

/// How requests authenticate.
#[derive(Clone, Default)]
enum Auth {
    #[default]
    None,
    /// From the URL's `user:password@`.
    Basic {
        user: String,
        password: Option<String>,
    },
    Bearer(String),
}

#[derive(Clone)]
pub struct PromClient {
    http: reqwest::Client,
    /// Without user information (it is only in `auth`), so messages never show a password.
    base: Url,
    timeout_s: f64,
    auth: Auth,
}

impl PromClient {
    /// A client for the Prometheus at `base_url` (`http://host:9090`, or with a path prefix).
    /// `https://user:password@host/` authenticates with basic auth; a token in
    /// `$SCALETUI_PROMETHEUS_TOKEN` with a bearer header (it wins over basic auth).
    pub fn new(base_url: &str, timeout_s: f64) -> Result<Self, String> {
        let mut base = parse_base(base_url)?;
        let mut auth = Auth::None;
        if !base.username().is_empty() {
            let decode = |s: &str| percent_decode(s);
            auth = Auth::Basic { user: decode(base.username()), password: base.password().map(decode) };
            let _ = base.set_username("");
            let _ = base.set_password(None);
        }
        if let Some(token) = std::env::var(TOKEN_VAR).ok().filter(|t| !t.trim().is_empty()) {
            auth = Auth::Bearer(token.trim().to_string());
        }
        // reqwest's rustls needs a process-wide crypto provider; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(timeout_s))
            .connect_timeout(Duration::from_secs_f64(timeout_s))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { http, base, timeout_s, auth })
    }

    /// Authenticate with this bearer token instead.
    pub fn with_bearer(mut self, token: &str) -> Self {
        self.auth = Auth::Bearer(token.to_string());
        self
    }

    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// `GET /api/v1/query` at `time` (Unix seconds).
    pub async fn instant(&self, query: &str, time: f64) -> Result<Vec<Sample>, PromError> {
        let data = self.get("api/v1/query", &[("query", query.to_string()), ("time", ts(time))]).await?;
        match data.result_type.as_str() {
            "vector" => {
                let items: Vec<VectorItem> = serde_json::from_value(data.result)
                    .map_err(|e| PromError::BadAnswer(format!("vector result: {e}")))?;
                items.into_iter().map(|i| Ok(Sample { labels: i.metric, value: number(&i.value.1)? })).collect()
            }
            "scalar" => {
                let (_, v): (f64, String) = serde_json::from_value(data.result)
                    .map_err(|e| PromError::BadAnswer(format!("scalar result: {e}")))?;
                Ok(vec![Sample { labels: Labels::new(), value: number(&v)? }])
            }
            "matrix" => Err(PromError::BadAnswer(
                "the query returns a range vector (like x[5m]); wrap it in a function such as rate()".into(),
            )),
            other => Err(PromError::BadAnswer(format!("a {other} result, not a number per series"))),
        }
    }

    /// `GET /api/v1/query_range` from `start` to `end` every `step` seconds.
    pub async fn range(&self, query: &str, start: f64, end: f64, step: f64) -> Result<Vec<RangeSeries>, PromError> {
        let step = step.max((end - start) / MAX_POINTS).max(0.001);
        let params = [("query", query.to_string()), ("start", ts(start)), ("end", ts(end)), ("step", ts(step))];
        let data = self.get("api/v1/query_range", &params).await?;
        if data.result_type != "matrix" {
            return Err(PromError::BadAnswer(format!("a {} result from a range query", data.result_type)));
        }
        let items: Vec<MatrixItem> =
            serde_json::from_value(data.result).map_err(|e| PromError::BadAnswer(format!("matrix result: {e}")))?;
        items
            .into_iter()
            .map(|i| {
                let points = i.values.iter().map(|(t, v)| Ok((*t, number(v)?))).collect::<Result<_, PromError>>()?;
                Ok(RangeSeries { labels: i.metric, points })
            })
            .collect()
    }

    /// Prometheus' version (`/api/v1/status/buildinfo`).
    pub async fn version(&self) -> Result<String, PromError> {
        let url = self.url("api/v1/status/buildinfo", &[])?;
        let body = self.send(url).await?;
        let v: serde_json::Value =
            serde_json::from_slice(&body.1).map_err(|e| PromError::BadAnswer(format!("buildinfo: {e}")))?;
        Ok(v["data"]["version"].as_str().unwrap_or("unknown").to_string())
    }

    fn url(&self, path: &str, params: &[(&str, String)]) -> Result<Url, PromError> {
        let mut url = self.base.join(path).map_err(|e| PromError::BadAnswer(format!("URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Data, PromError> {
        let url = self.url(path, params)?;
        let (status, body) = self.send(url).await?;
        let envelope: Option<Envelope> = serde_json::from_slice(&body).ok();
        match envelope {
            Some(env) if env.status == "success" && status < 300 => {
                env.data.ok_or_else(|| PromError::BadAnswer("success without data".into()))
            }
            Some(env) if env.error_type == "unavailable" => {
                Err(PromError::Unreachable(format!("Prometheus is unavailable: {}", env.error)))
            }
            Some(env) if env.status == "error" => {
                Err(PromError::Api { status, error_type: env.error_type, error: env.error })
            }
            // Not Prometheus' JSON: a proxy in front of it, or Prometheus still starting.
            _ if matches!(status, 502..=504) => {
                Err(PromError::Unreachable(format!("HTTP {status} {}", snippet(&body, status))))
            }
            _ if status >= 300 => {
                Err(PromError::Api { status, error_type: String::new(), error: snippet(&body, status) })
            }
            _ => Err(PromError::BadAnswer(format!("not the Prometheus API: {}", snippet(&body, status)))),
        }
    }

    /// One GET; a failure on a pooled connection (Prometheus restarted) is tried once more.
    async fn send(&self, url: Url) -> Result<(u16, bytes::Bytes), PromError> {
        let mut last = None;
        for _ in 0..2 {
            let req = match &self.auth {
                Auth::None => self.http.get(url.clone()),
                Auth::Basic { user, password } => self.http.get(url.clone()).basic_auth(user, password.as_ref()),
                Auth::Bearer(t) => self.http.get(url.clone()).bearer_auth(t),
            };
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    return match resp.bytes().await {
                        Ok(b) => Ok((status, b)),
                        Err(e) => Err(PromError::Unreachable(transport_message(&e, self.timeout_s))),
                    };
                }
                Err(e) if e.is_timeout() => return Err(PromError::Unreachable(transport_message(&e, self.timeout_s))),
                Err(e) => last = Some(e),
            }
        }
        Err(PromError::Unreachable(last.map_or_else(|| "no answer".into(), |e| transport_message(&e, self.timeout_s))))
    }
}

/// Check and normalise a base URL: http(s), ending with `/` so API paths join under it.
pub fn parse_base(base_url: &str) -> Result<Url, String> {
    let mut base = Url::parse(base_url.trim()).map_err(|e| format!("not a URL ({e}): {base_url:?}"))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(format!("must be an http:// or https:// URL, not {base_url:?}"));
    }
    if base.host_str().is_none_or(str::is_empty) {
        return Err(format!("has no host: {base_url:?}"));
    }
    if !base.path().ends_with('/') {
        let p = format!("{}/", base.path());
        base.set_path(&p);
    }
    base.set_query(None);
    Ok(base)
}

/// `%XX` escapes of URL user information, decoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn ts(t: f64) -> String {
    let s = format!("{t:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn number(s: &str) -> Result<f64, PromError> {
    s.trim().parse::<f64>().map_err(|_| PromError::BadAnswer(format!("{s:?} is not a number")))
}

/// A body as one short line for an error message.
fn snippet(body: &[u8], status: u16) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let line: String = line.chars().take(200).collect();
    if line.is_empty() {
        reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("(empty body)")
            .to_string()
    } else {
        line
    }
}

/// What went wrong on the wire, in a few words: "connection refused", "timed out after 10 s".
fn transport_message(e: &reqwest::Error, timeout_s: f64) -> String {
    if e.is_timeout() {
        return format!("timed out after {timeout_s} s");
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    // "Connection refused (os error 111)" -> "connection refused"
    if let Some(i) = msg.find(" (os error") {
        msg.truncate(i);
    }
    let mut chars = msg.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => "request failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(parse_base("http://localhost:9090").expect("ok").as_str(), "http://localhost:9090/");
        let b = parse_base("https://mon.example/prometheus").expect("ok");
        assert_eq!(b.join("api/v1/query").expect("join").as_str(), "https://mon.example/prometheus/api/v1/query");
        assert!(parse_base("localhost:9090").is_err());
        assert!(parse_base("ftp://x").is_err());
        assert!(parse_base("").is_err());
    }

    #[test]
    fn values_are_strings_including_nan_and_inf() {
        assert_eq!(number("0.25").ok(), Some(0.25));
        assert!(number("NaN").expect("nan").is_nan());
        assert_eq!(number("+Inf").ok(), Some(f64::INFINITY));
        assert_eq!(number("-Inf").ok(), Some(f64::NEG_INFINITY));
        assert!(number("lots").is_err());
        assert_eq!(ts(1700000300.0), "1700000300");
        assert_eq!(ts(1700000300.25), "1700000300.25");
    }
}
