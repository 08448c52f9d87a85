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
