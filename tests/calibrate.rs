//! `scaletui calibrate` against small servers with a known service law, run as a user would;
//! the fitted profile must be within 10 % of the truth and load as a scenario's include.
//!
//! The servers' workers sleep for their service time instead of spinning: a busy-CPU server's
//! truth would depend on what else the (shared, 2-core) machine runs while the tests do.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio::sync::Semaphore;

use scaletui::engine::rng::Rng;

/// A server on 127.0.0.1 with `workers` workers, each request `draw()` milliseconds of work. It
/// runs on its own runtime with a thread per worker (and two more), each worker sleeping on its
/// thread: no hand-off to a blocking pool adds to the service time being measured.
fn server(workers: usize, draw: impl Fn(&mut Rng) -> f64 + Send + Sync + 'static) -> String {
    let sem = Arc::new(Semaphore::new(workers));
    let rng = Arc::new(Mutex::new(Rng::new(5)));
    let draw = Arc::new(draw);
    let app = Router::new().fallback(move || {
        let (sem, rng, draw) = (sem.clone(), rng.clone(), draw.clone());
        async move {
            let Ok(_permit) = sem.acquire().await else { return "closed" };
            let ms = {
                let mut r = rng.lock().unwrap_or_else(|p| p.into_inner());
                draw(&mut r)
            };
            std::thread::sleep(Duration::from_secs_f64(ms / 1000.0));
            "ok"
        }
    });
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers + 2)
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            let _ = axum::serve(listener, app).await;
        });
    });
    format!("http://{addr}/")
}

/// The fitted profile and the measured capacity (requests/s).
fn calibrate(url: &str, probe_s: &str, dir: &std::path::Path) -> (toml::Table, f64) {
    let out = dir.join("profile.toml");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_scaletui"))
        .args(["calibrate", "--url", url, "--probe-s", probe_s, "--step-s", "2", "-o"])
        .arg(&out)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("{stderr}");
    assert!(o.status.success(), "{stderr}");
    let text = std::fs::read_to_string(&out).expect("profile written");
    // The profile loads as a scenario's include and sets the simulator's law.
    std::fs::write(dir.join("s.toml"), "include = [\"profile.toml\"]\n").expect("scenario");
    let sc = scaletui::engine::scenario::Scenario::load_file(&dir.join("s.toml")).expect("scenario with the profile");
    let cfg = sc.apply_settings(&scaletui::config::Config::default()).expect("the profile is a valid [sim]");
    assert_eq!(
        i64::from(cfg.sim.concurrency),
        text.parse::<toml::Table>().expect("toml")["sim"]["concurrency"].as_integer().expect("int")
    );
    let capacity = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("fit: "))
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .expect("the fit line names the capacity");
    (text.parse::<toml::Table>().expect("toml"), capacity)
}

fn within(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * want,
        "{what}: fitted {got}, truth {want} (more than {:.0} % off)",
        tol * 100.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_of_20_ms_are_found() {
    let url = server(2, |_| 20.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = tokio::task::spawn_blocking({
        let (url, dir) = (url.clone(), dir.path().to_path_buf());
        move || calibrate(&url, "4", &dir)
    })
    .await
    .expect("calibrated");
    let (p, capacity) = p;
    within("capacity (requests/s)", capacity, 100.0, 0.10);
    let sim = p["sim"].as_table().expect("[sim]");
    let service = sim["service"].as_table().expect("[sim.service]");
    assert_eq!(sim["concurrency"].as_integer(), Some(2));
    within("mean service (ms)", service["mean_ms"].as_float().expect("mean"), 20.0, 0.10);
    assert_eq!(service["distribution"].as_str(), Some("deterministic"), "{p:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_of_exponential_20_ms_are_found() {
    let url = server(3, |r| r.exponential(20.0));
    let dir = tempfile::tempdir().expect("tempdir");
    let p = tokio::task::spawn_blocking({
        let (url, dir) = (url.clone(), dir.path().to_path_buf());
        move || calibrate(&url, "20", &dir)
    })
    .await
    .expect("calibrated");
    let (p, capacity) = p;
    within("capacity (requests/s)", capacity, 150.0, 0.10);
    let sim = p["sim"].as_table().expect("[sim]");
    let service = sim["service"].as_table().expect("[sim.service]");
    assert_eq!(sim["concurrency"].as_integer(), Some(3));
    within("mean service (ms)", service["mean_ms"].as_float().expect("mean"), 20.0, 0.10);
    within("cv", service["cv"].as_float().expect("cv"), 1.0, 0.10);
}
