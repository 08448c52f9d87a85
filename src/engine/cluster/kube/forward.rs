//! The load generator's way into the cluster: a listener on 127.0.0.1 (an ephemeral port) whose
//! every accepted connection is forwarded to a ready pod of the deployment through a kube
//! port-forward. Connections go round-robin over the ready pods (as a Service would spread them),
//! and a pod that went away is skipped: the list is refreshed and the next pod is tried.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::access;
use super::errors::{self, Target};
use crate::engine::cluster::{ClusterError, ClusterResult};

/// A byte stream to a pod's port.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// An open tunnel: the stream, and a future that resolves with the pod side's error, if any.
pub struct Tunnel {
    pub stream: Box<dyn Stream>,
    pub error: Option<BoxFuture<'static, Option<String>>>,
}

/// Opens tunnels to pods (kube port-forward in production).
#[async_trait]
pub trait PodTunnel: Send + Sync {
    async fn open(&self, pod: &str, port: u16) -> ClusterResult<Tunnel>;
}

/// The pods to forward to: ready pods of the deployment, with the port to use.
#[async_trait]
pub trait ReadyPods: Send + Sync {
    async fn ready_pods(&self) -> ClusterResult<Vec<(String, u16)>>;
}

/// kube's WebSocket port-forward.
pub struct KubeTunnel {
    pub api: Api<Pod>,
    pub target: Target,
}

#[async_trait]
impl PodTunnel for KubeTunnel {
    async fn open(&self, pod: &str, port: u16) -> ClusterResult<Tunnel> {
        let op = &access::PORTFORWARD[0];
        let mut pf = tokio::time::timeout(Duration::from_secs(15), self.api.portforward(pod, &[port]))
            .await
            .map_err(|_| errors::timed_out(op, &self.target.server, 15.0))?
            .map_err(|e| errors::map(e, op, pod, &self.target))?;
        let stream = pf
            .take_stream(port)
            .ok_or_else(|| ClusterError::Other(format!("port-forward to {pod}:{port} gave no stream")))?;
        let error = pf.take_error(port).map(|f| Box::pin(f) as BoxFuture<'static, Option<String>>);
        Ok(Tunnel { stream: Box::new(stream), error })
    }
}

/// What the forwarder has done (for the record and for tests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForwardStats {
    pub connections: u64,
    /// Connections that could not be forwarded to any pod.
    pub failed: u64,
    /// Tunnels that could not be opened (a pod gone, refused) and were retried elsewhere.
    pub retries: u64,
    /// Connections per pod.
    pub per_pod: std::collections::BTreeMap<String, u64>,
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Picker {
    pods: Vec<(String, u16)>,
    fetched: Option<Instant>,
    next: usize,
    bad: BTreeSet<String>,
}

/// How long the ready-pod list is trusted.
const POD_LIST_TTL: Duration = Duration::from_secs(5);
/// Pods tried for one connection.
const ATTEMPTS: usize = 3;

struct Shared {
    pods: Arc<dyn ReadyPods>,
    tunnel: Arc<dyn PodTunnel>,
    picker: tokio::sync::Mutex<Picker>,
    stats: Mutex<ForwardStats>,
}

impl Shared {
    fn stats(&self) -> std::sync::MutexGuard<'_, ForwardStats> {
        match self.stats.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The next pod, refreshing the list when it is stale, empty or every pod in it failed.
    async fn pick(&self) -> ClusterResult<(String, u16)> {
        let mut p = self.picker.lock().await;
        let stale = p.fetched.is_none_or(|t| t.elapsed() > POD_LIST_TTL);
        let usable = p.pods.iter().filter(|(n, _)| !p.bad.contains(n)).count();
        if stale || usable == 0 {
            p.pods = self.pods.ready_pods().await?;
            p.fetched = Some(Instant::now());
            // Pods that failed stay skipped only while they are still listed.
            let names: BTreeSet<String> = p.pods.iter().map(|(n, _)| n.clone()).collect();
            p.bad.retain(|n| names.contains(n));
            if p.pods.iter().all(|(n, _)| p.bad.contains(n)) {
                p.bad.clear();
            }
        }
        let candidates: Vec<(String, u16)> = p.pods.iter().filter(|(n, _)| !p.bad.contains(n)).cloned().collect();
        if candidates.is_empty() {
            return Err(ClusterError::Unsupported(
                "no ready pod of the deployment to forward to (pods not ready yet?)".into(),
            ));
        }
        let i = p.next % candidates.len();
        p.next = p.next.wrapping_add(1);
        Ok(candidates[i].clone())
    }

    async fn mark_bad(&self, pod: &str) {
        let mut p = self.picker.lock().await;
        p.bad.insert(pod.to_string());
        // Look again soon: the pod may have been replaced.
        p.fetched = None;
    }

    async fn serve(self: Arc<Self>, mut tcp: TcpStream) {
        self.stats().connections += 1;
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            let (pod, port) = match self.pick().await {
                Ok(t) => t,
                Err(e) => {
                    last = e.to_string();
                    break;
                }
            };
            match self.tunnel.open(&pod, port).await {
                Ok(t) => {
                    *self.stats().per_pod.entry(pod.clone()).or_default() += 1;
                    splice(&mut tcp, t).await;
                    return;
                }
                Err(e) => {
                    last = format!("{pod}: {e}");
                    if attempt + 1 < ATTEMPTS {
                        self.stats().retries += 1;
                    }
                    self.mark_bad(&pod).await;
                }
            }
        }
        let mut s = self.stats();
        s.failed += 1;
        s.last_error = Some(last);
    }
}

/// Copy both ways until either side closes or the pod side reports an error.
async fn splice(tcp: &mut TcpStream, t: Tunnel) {
    let mut stream = t.stream;
    let copy = tokio::io::copy_bidirectional(tcp, &mut stream);
    match t.error {
        Some(err) => {
            tokio::select! {
                _ = copy => {}
                _ = err => {}
            }
        }
        None => {
            let _ = copy.await;
        }
    }
}

/// A running forwarder.
pub struct LocalForward {
    pub url: String,
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl LocalForward {
    /// Listen on 127.0.0.1 (an ephemeral port) and forward each connection.
    pub async fn start(pods: Arc<dyn ReadyPods>, tunnel: Arc<dyn PodTunnel>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            pods,
            tunnel,
            picker: tokio::sync::Mutex::new(Picker::default()),
            stats: Mutex::new(ForwardStats::default()),
        });
        let cancel = CancellationToken::new();
        let (s, c) = (shared.clone(), cancel.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = c.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => {
                            let _ = tcp.set_nodelay(true);
                            let s = s.clone();
                            let c = c.clone();
                            tokio::spawn(async move {
                                tokio::select! {
                                    _ = c.cancelled() => {}
                                    _ = s.serve(tcp) => {}
                                }
                            });
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    },
                }
            }
        });
        Ok(Self { url: format!("http://{addr}"), shared, cancel })
    }

    pub fn stats(&self) -> ForwardStats {
        self.shared.stats().clone()
    }

    /// Stop listening and close every forwarded connection.
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for LocalForward {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Pods `a`, `b`, `c` on port 80; `gone` lists pods whose tunnels fail.
    struct Fake {
        pods: Mutex<Vec<String>>,
        gone: Mutex<BTreeSet<String>>,
        lists: AtomicUsize,
    }

    #[async_trait]
    impl ReadyPods for Fake {
        async fn ready_pods(&self) -> ClusterResult<Vec<(String, u16)>> {
            self.lists.fetch_add(1, Ordering::SeqCst);
            Ok(self.pods.lock().expect("lock").iter().map(|p| (p.clone(), 80)).collect())
        }
    }

    #[async_trait]
    impl PodTunnel for Fake {
        async fn open(&self, pod: &str, port: u16) -> ClusterResult<Tunnel> {
            if self.gone.lock().expect("lock").contains(pod) {
                return Err(ClusterError::NotFound(format!("pod {pod}")));
            }
            // An echo server that names the pod: answers one line then closes.
            let (mine, theirs) = tokio::io::duplex(1024);
            let name = format!("{pod}:{port}\n");
            tokio::spawn(async move {
                let mut theirs = theirs;
                let mut buf = [0u8; 64];
                let _ = theirs.read(&mut buf).await;
                let _ = theirs.write_all(name.as_bytes()).await;
                let _ = theirs.shutdown().await;
            });
            Ok(Tunnel { stream: Box::new(mine), error: None })
        }
    }

    async fn ask(url: &str) -> String {
        let addr = url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"hi").await.expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out
    }

    #[tokio::test]
    async fn round_robin_and_skipping_pods_that_went_away() {
        let fake = Arc::new(Fake {
            pods: Mutex::new(vec!["a".into(), "b".into(), "c".into()]),
            gone: Mutex::new(BTreeSet::new()),
            lists: AtomicUsize::new(0),
        });
        let fwd = LocalForward::start(fake.clone(), fake.clone()).await.expect("start");
        assert!(fwd.url.starts_with("http://127.0.0.1:"), "{}", fwd.url);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(ask(&fwd.url).await);
        }
        assert_eq!(seen, vec!["a:80\n", "b:80\n", "c:80\n"]);
        // b goes away (deleted, still listed for a moment): its connection is retried on another pod.
        fake.gone.lock().expect("lock").insert("b".into());
        let mut answers = Vec::new();
        for _ in 0..4 {
            answers.push(ask(&fwd.url).await);
        }
        assert!(answers.iter().all(|a| a == "a:80\n" || a == "c:80\n"), "{answers:?}");
        let st = fwd.stats();
        assert_eq!(st.failed, 0, "{st:?}");
        assert!(st.retries >= 1, "{st:?}");
        assert!(fake.lists.load(Ordering::SeqCst) >= 2, "the list was refreshed after the failure");
        // Every pod gone: the connection is closed and the failure recorded.
        fake.gone.lock().expect("lock").extend(["a".to_string(), "c".to_string()]);
        assert_eq!(ask(&fwd.url).await, "");
        let st = fwd.stats();
        assert_eq!(st.failed, 1);
        assert!(st.last_error.as_deref().is_some_and(|e| e.contains("not found")), "{st:?}");
        fwd.stop();
    }
}
