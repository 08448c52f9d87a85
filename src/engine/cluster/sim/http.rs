//! The simulated Service's HTTP endpoint on 127.0.0.1 (ephemeral port). Every request enters the
//! model as an arrival and is answered when the model finishes it: 200 after its sojourn (in
//! the run's clock, so at speed N a real client waits 1/N of it), 503 at once when no pod is
//! ready or the queue is full, 500 when its pod is killed. A pump advances the model while
//! requests are outstanding and hands out their answers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use super::model::{HttpOutcome, SimModel};
use crate::engine::clock::SharedClock;

/// How often the pump looks for finished requests (wall time).
const PUMP_EVERY: Duration = Duration::from_millis(1);

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<HttpOutcome>>>>;

#[derive(Clone)]
struct AppState {
    model: Arc<Mutex<SimModel>>,
    clock: SharedClock,
    waiters: Waiters,
    wake: Arc<Notify>,
}

pub struct SimServer {
    pub url: String,
    pub addr: SocketAddr,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl SimServer {
    pub async fn start(
        model: Arc<Mutex<SimModel>>,
        clock: SharedClock,
        cancel: CancellationToken,
    ) -> std::io::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = AppState { model, clock, waiters: Arc::default(), wake: Arc::new(Notify::new()) };
        tokio::spawn(pump(state.clone(), cancel.clone()));
        let app = Router::new().fallback(serve).with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await;
        });
        Ok(SimServer { url: format!("http://{addr}/"), addr })
    }
}

/// Advance the model while requests wait for it, and answer those it finished.
async fn pump(s: AppState, cancel: CancellationToken) {
    loop {
        let idle = lock(&s.waiters).is_empty();
        if idle {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = s.wake.notified() => {}
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(PUMP_EVERY) => {}
        }
        let done = super::lock_advanced(&s.model, &s.clock).take_http_done();
        if done.is_empty() {
            continue;
        }
        let mut waiters = lock(&s.waiters);
        for (token, outcome) in done {
            if let Some(tx) = waiters.remove(&token) {
                let _ = tx.send(outcome);
            }
        }
    }
}

async fn serve(State(s): State<AppState>) -> impl IntoResponse {
    let (tx, rx) = oneshot::channel();
    {
        // Register before the model can finish it (the pump takes the same locks in turn).
        let mut model = super::lock_advanced(&s.model, &s.clock);
        match model.http_request() {
            Ok(token) => {
                lock(&s.waiters).insert(token, tx);
            }
            Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "no capacity\n"),
        }
    }
    s.wake.notify_one();
    match rx.await {
        Ok(HttpOutcome::Ok { .. }) => (StatusCode::OK, "ok\n"),
        Ok(HttpOutcome::Unavailable) => (StatusCode::SERVICE_UNAVAILABLE, "no capacity\n"),
        Ok(HttpOutcome::Failed) | Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "lost with its pod\n"),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ServiceConfig, ServiceDistribution, SimConfig, Speed};
    use crate::engine::clock::Clock;
    use crate::engine::cluster::Cluster;
    use crate::engine::cluster::sim::SimCluster;
    use crate::engine::hpa::HpaSpec;

    #[tokio::test]
    async fn real_requests_enter_the_model_and_wait_for_it() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // One pod, one worker, 200 ms of work per request at one core: each answer takes 200 ms
        // of simulated time, 20 ms of wall time at speed 10; two at once queue behind each other.
        let cfg = SimConfig {
            hpa_present: false,
            initial_replicas: 1,
            cpu_limit_m: 1000.0,
            concurrency: 1,
            base_latency_ms: 0.0,
            service: ServiceConfig {
                distribution: ServiceDistribution::Deterministic,
                mean_ms: 200.0,
                ..ServiceConfig::default()
            },
            ..SimConfig::default()
        };
        let spec = HpaSpec { min_replicas: 1, max_replicas: 10, metrics: vec![], behavior: None };
        let clock = Clock::new(0.0, Speed::Factor(10.0));
        let sim = SimCluster::new(&cfg, clock.clone(), "default", "webapp", "webapp-hpa", spec, false);
        let url = sim.load_target().await.expect("endpoint");
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        let (a, b) = tokio::join!(client.get(&url).send(), client.get(&url).send());
        let elapsed = started.elapsed().as_secs_f64();
        for r in [a, b] {
            let r = r.expect("answers");
            assert_eq!(r.status(), 200);
            assert_eq!(r.text().await.expect("body"), "ok\n");
        }
        // The second waited for the first: 400 ms simulated = 40 ms of wall time.
        assert!(elapsed >= 0.039, "{elapsed}");
        let t = sim.take_traffic().expect("traffic");
        let counts = t.counts.expect("counts");
        assert_eq!((counts.arrived, counts.served), (2, 2));
        let p99 = t.p99_ms.expect("latency");
        // The second arrived a moment of wall time after the first (×10 in simulated time) and
        // waited for the rest of the first one's 200 ms: between 200 and 400 ms, near 400.
        assert!(p99 > 300.0 && p99 < 401.0, "the queued one waited behind the first: {p99}");
        // No ready pod: 503 at once.
        sim.scale(0).await.expect("scale");
        clock.sleep_until(clock.now() + 12.0).await;
        let r = client.get(&url).send().await.expect("answers");
        assert_eq!(r.status(), 503);
    }
}
