//! The load generator's HTTP/1.1 clients. Each connection slot of the generator owns one
//! keep-alive connection ([`Conn`]), so the concurrency cap is also the most connections opened.
//!
//! - [`ClientKind::Raw`] (default for `http://`): scaletui's own HTTP/1.1 client
//!   ([`super::raw`]): the request's bytes built once, one write and one read per request. The
//!   fastest here (`scripts/bench-load.sh` compares the clients with `wrk`).
//! - [`ClientKind::Hyper`]: hyper's HTTP/1.1 client connection over a tokio `TcpStream`, no pool
//!   in between — the slot *is* the pool entry.
//! - [`ClientKind::Reqwest`] (used for `https://`): reqwest with HTTP/1.1 only and rustls, its own
//!   pool sized to the concurrency cap.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;

use hyper::client::conn::http1::Connection;

use super::raw::{RawConn, RawTarget, io_error};

/// Which HTTP client sends the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    Raw,
    Hyper,
    Reqwest,
}

impl std::str::FromStr for ClientKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raw" => Ok(ClientKind::Raw),
            "hyper" => Ok(ClientKind::Hyper),
            "reqwest" => Ok(ClientKind::Reqwest),
            _ => Err(format!("unknown client {s:?} (raw, hyper, reqwest)")),
        }
    }
}

/// What every request of a run looks like.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub url: String,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RequestSpec {
    /// Check the URL (http or https with a host), the method and the headers (`Name: value`).
    pub fn new(url: &str, method: &str, headers: &[(String, String)], body: Option<&str>) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad URL {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!("bad URL {url:?}: needs http:// or https:// and a host"));
        }
        let method = Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("bad method {method:?}"))?;
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.trim().as_bytes()).map_err(|_| format!("bad header name {k:?}"))?;
            let value = HeaderValue::from_str(v.trim()).map_err(|_| format!("bad value for header {k}"))?;
            map.append(name, value);
        }
        Ok(Self { url: parsed.to_string(), method, headers: map, body: Bytes::from(body.unwrap_or("").to_string()) })
    }

    pub fn is_https(&self) -> bool {
        self.url.starts_with("https://")
    }
}

/// A client shared by all connection slots of a run.
#[derive(Clone)]
pub enum Client {
    Raw(Arc<RawTarget>),
    Hyper(Arc<HyperTarget>),
    Reqwest(reqwest::Client, Arc<RequestSpec>),
}

pub struct HyperTarget {
    spec: RequestSpec,
    addrs: Vec<SocketAddr>,
    /// Origin-form URI (path and query) and the Host header.
    path: Uri,
    host: HeaderValue,
}

impl Client {
    /// Build the client: resolves the host once (hyper) or builds a pool (reqwest).
    pub async fn new(spec: RequestSpec, kind: ClientKind, concurrency: usize) -> Result<Self, String> {
        let kind = if spec.is_https() { ClientKind::Reqwest } else { kind };
        match kind {
            ClientKind::Raw | ClientKind::Hyper => {
                let url = reqwest::Url::parse(&spec.url).map_err(|e| e.to_string())?;
                let host = url.host_str().unwrap_or_default().to_string();
                let port = url.port_or_known_default().unwrap_or(80);
                let lookup_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
                    .await
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?
                    .collect();
                if addrs.is_empty() {
                    return Err(format!("cannot resolve {host}: no address"));
                }
                let mut path = url.path().to_string();
                if let Some(q) = url.query() {
                    path.push('?');
                    path.push_str(q);
                }
                let path: Uri = path.parse().map_err(|e| format!("bad path in {}: {e}", spec.url))?;
                let authority = match url.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host.clone(),
                };
                let host = HeaderValue::from_str(&authority).map_err(|e| format!("bad host {authority}: {e}"))?;
                if kind == ClientKind::Raw {
                    let path = path.to_string();
                    return Ok(Client::Raw(Arc::new(RawTarget::new(
                        &spec.method,
                        &spec.headers,
                        &spec.body,
                        addrs,
                        &path,
                        &authority,
                    ))));
                }
                Ok(Client::Hyper(Arc::new(HyperTarget { spec, addrs, path, host })))
            }
            ClientKind::Reqwest => {
                // reqwest is built without a default crypto provider; ring's (idempotent).
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder()
                    .http1_only()
                    .tcp_nodelay(true)
                    .pool_max_idle_per_host(concurrency)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
                Ok(Client::Reqwest(client, Arc::new(spec)))
            }
        }
    }

    pub fn kind(&self) -> ClientKind {
        match self {
            Client::Raw(_) => ClientKind::Raw,
            Client::Hyper(_) => ClientKind::Hyper,
            Client::Reqwest(..) => ClientKind::Reqwest,
        }
    }

    /// Send one request on the slot's connection (opening one if needed) and read the whole
    /// answer. Returns the status code. On error the connection is dropped.
    pub async fn send(&self, conn: &mut Conn) -> Result<u16, String> {
        match self {
            Client::Raw(t) => t.send(&mut conn.raw, &mut conn.opened).await,
            Client::Hyper(t) => t.send(conn).await,
            Client::Reqwest(c, spec) => {
                let resp = c
                    .request(spec.method.clone(), spec.url.as_str())
                    .headers(spec.headers.clone())
                    .body(spec.body.clone())
                    .send()
                    .await
                    .map_err(|e| reqwest_error(&e))?;
                let status = resp.status().as_u16();
                let mut resp = resp;
                while let Some(_chunk) = resp.chunk().await.map_err(|e| reqwest_error(&e))? {}
                Ok(status)
            }
        }
    }
}

/// One connection slot's keep-alive connection (raw or hyper); reqwest keeps its own pool.
#[derive(Default)]
pub struct Conn {
    inner: Option<HyperConn>,
    raw: Option<RawConn>,
    /// Connections this slot opened.
    pub opened: u64,
}

impl Conn {
    /// Forget the connection (after a timeout: an HTTP/1.1 connection with an unanswered request
    /// cannot be reused).
    pub fn reset(&mut self) {
        self.inner = None;
        self.raw = None;
    }
}

type HyperIo = TokioIo<tokio::net::TcpStream>;
type Driver = Pin<Box<Connection<HyperIo, Full<Bytes>>>>;

/// A connection and its driver, polled in the slot's own task (no task per connection, no
/// wake-ups across tasks per request).
struct HyperConn {
    sender: SendRequest<Full<Bytes>>,
    /// `None` once the connection has closed (dropping the driver fails what was waiting on it).
    driver: Option<Driver>,
}

impl HyperConn {
    /// Still usable: polls the driver once, so a close by the server while the connection sat
    /// idle is noticed before a request is written to it.
    fn usable(&mut self) -> bool {
        if let Some(d) = self.driver.as_mut()
            && futures::FutureExt::now_or_never(d.as_mut()).is_some()
        {
            self.driver = None;
        }
        self.driver.is_some() && !self.sender.is_closed()
    }
}

/// Run `fut` while driving the connection.
async fn drive<F: Future>(driver: &mut Option<Driver>, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    if let Some(d) = driver.as_mut() {
        tokio::select! {
            biased;
            out = &mut fut => return out,
            _ = d.as_mut() => {}
        }
        // Closed: drop the driver, so a request still waiting on it fails instead of hanging.
        *driver = None;
    }
    fut.await
}

impl HyperTarget {
    async fn connect(&self) -> Result<HyperConn, String> {
        let mut last = String::from("no address");
        for addr in &self.addrs {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(|e| format!("handshake: {e}"))?;
                    return Ok(HyperConn { sender, driver: Some(Box::pin(conn)) });
                }
                Err(e) => last = io_error(&e),
            }
        }
        Err(format!("connect: {last}"))
    }

    fn request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.spec.body.clone()));
        *req.method_mut() = self.spec.method.clone();
        *req.uri_mut() = self.path.clone();
        let h = req.headers_mut();
        if !self.spec.headers.is_empty() {
            *h = self.spec.headers.clone();
        }
        if !h.contains_key(HOST) {
            h.insert(HOST, self.host.clone());
        }
        req
    }

    async fn send(&self, conn: &mut Conn) -> Result<u16, String> {
        // A reused connection that the server closed meanwhile gets one retry on a new one.
        for attempt in 0..2 {
            let reused = conn.inner.as_mut().is_some_and(HyperConn::usable);
            if !reused {
                conn.inner = Some(self.connect().await?);
                conn.opened += 1;
            }
            let Some(c) = conn.inner.as_mut() else { return Err("no connection".into()) };
            let req = self.request();
            let HyperConn { sender, driver } = c;
            let result = drive(driver, async {
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                let status = resp.status().as_u16();
                let mut body = resp.into_body();
                while let Some(frame) = body.frame().await {
                    frame?;
                }
                Ok::<u16, hyper::Error>(status)
            })
            .await;
            match result {
                Ok(status) => return Ok(status),
                Err(e) => {
                    conn.inner = None;
                    let stale = reused && (e.is_canceled() || e.is_closed() || e.is_incomplete_message());
                    if !(stale && attempt == 0) {
                        return Err(hyper_error(&e));
                    }
                }
            }
        }
        Err("connection closed".into())
    }
}

fn hyper_error(e: &hyper::Error) -> String {
    use std::error::Error as _;
    if let Some(io) = e.source().and_then(|s| s.downcast_ref::<std::io::Error>()) {
        return io_error(io);
    }
    if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        return "connection closed before the answer".into();
    }
    if e.is_parse() {
        return "malformed answer".into();
    }
    e.to_string()
}

fn reqwest_error(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut src = e.source();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io_error(io);
        }
        src = s.source();
    }
    if e.is_connect() {
        "connect failed".into()
    } else if e.is_body() || e.is_decode() {
        "error reading the answer".into()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_specs_are_checked() {
        assert!(RequestSpec::new("http://127.0.0.1:8080/x?y=1", "get", &[], None).is_ok());
        assert!(RequestSpec::new("ftp://host/", "GET", &[], None).is_err());
        assert!(RequestSpec::new("not a url", "GET", &[], None).is_err());
        assert!(RequestSpec::new("http://h/", "GE T", &[], None).is_err());
        let bad = [("X Bad".to_string(), "v".to_string())];
        assert!(RequestSpec::new("http://h/", "GET", &bad, None).is_err());
        let s = RequestSpec::new("https://h/", "post", &[("X-A".into(), " 1 ".into())], Some("{}")).expect("ok");
        assert!(s.is_https());
        assert_eq!(s.method, Method::POST);
        assert_eq!(s.headers["x-a"], "1");
    }
}
