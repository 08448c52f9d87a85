//! The simulated Service's HTTP endpoint on 127.0.0.1 (ephemeral port). Every request is counted
//! as traffic and answered after the latency the queueing model gives it (or 503 when no pod is
//! ready or the queue is full).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio_util::sync::CancellationToken;

use super::model::{HttpOutcome, SimModel};
use crate::engine::clock::SharedClock;

#[derive(Clone)]
struct AppState {
    model: Arc<Mutex<SimModel>>,
    clock: SharedClock,
}

pub struct SimServer {
    pub url: String,
    pub addr: SocketAddr,
}

impl SimServer {
    pub async fn start(
        model: Arc<Mutex<SimModel>>,
        clock: SharedClock,
        cancel: CancellationToken,
    ) -> std::io::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new().fallback(serve).with_state(AppState { model, clock });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await;
        });
        Ok(SimServer { url: format!("http://{addr}/"), addr })
    }
}

async fn serve(State(s): State<AppState>) -> impl IntoResponse {
    let outcome = super::lock_advanced(&s.model, &s.clock).http_request();
    match outcome {
        HttpOutcome::Ok { latency_ms } => {
            tokio::time::sleep(std::time::Duration::from_secs_f64(latency_ms / 1000.0)).await;
            (StatusCode::OK, "ok\n")
        }
        HttpOutcome::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "no capacity\n"),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{SimConfig, Speed};
    use crate::engine::clock::Clock;
    use crate::engine::cluster::Cluster;
    use crate::engine::cluster::sim::SimCluster;
    use crate::engine::hpa::HpaSpec;

    #[tokio::test]
    async fn serves_real_http_counted_as_traffic() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cfg = SimConfig { hpa_present: false, ..SimConfig::default() };
        let spec = HpaSpec { min_replicas: 1, max_replicas: 10, metrics: vec![], behavior: None };
        let clock = Clock::new(0.0, Speed::Factor(20.0));
        let sim = SimCluster::new(&cfg, clock.clone(), "default", "webapp", "webapp-hpa", spec, false);
        let url = sim.load_target().await.expect("endpoint");
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        for _ in 0..20 {
            let r = client.get(&url).send().await.expect("answers");
            assert_eq!(r.status(), 200);
            assert_eq!(r.text().await.expect("body"), "ok\n");
        }
        // Each answer waited for the model's latency (at least the base latency).
        assert!(started.elapsed().as_secs_f64() >= 20.0 * cfg.base_latency_ms / 1000.0);
        clock.sleep_until(2.0).await;
        let t = sim.take_traffic().expect("traffic");
        assert!(t.p50_ms.expect("latency recorded") >= cfg.base_latency_ms);
        assert!(t.rps > 0.0, "{t:?}");
        // No ready pod: 503.
        sim.scale(0).await.expect("scale");
        clock.sleep_until(clock.now() + 12.0).await;
        let r = client.get(&url).send().await.expect("answers");
        assert_eq!(r.status(), 503);
    }
}
