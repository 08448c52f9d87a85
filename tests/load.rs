//! The load generator and the stressors, black box: the real binary against local servers
//! started here (127.0.0.1, free ports), and the experiment running load tasks.
//!
//! Counts are checked, never timings: a request count comes from the schedule's integral and
//! holds on a loaded machine; per-second counts allow ±5 %.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The runs whose per-second counts and latencies are checked take turns (the others may run
/// beside them).
static TIMED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn timed() -> std::sync::MutexGuard<'static, ()> {
    TIMED.lock().unwrap_or_else(|p| p.into_inner())
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scaletui"));
    c.env_remove("SCALETUI_CONFIG").current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// A local HTTP server in its own runtime. `stall_after`: the first request at least this long
/// after the first request starts a pause of `stall` during which every request waits for the
/// pause to end (like a GC pause).
struct Server {
    url: String,
    cancel: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn server(stall_after: Option<Duration>, stall: Duration) -> Server {
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
            tx.send(format!("http://{}/", listener.local_addr().expect("addr"))).expect("send");
            // 0 = not started; else nanoseconds since `origin` (+1) of the first request / stall end.
            let origin = Instant::now();
            let first = Arc::new(AtomicU64::new(0));
            let stall_end = Arc::new(AtomicU64::new(0));
            let app = axum::Router::new().fallback(move || {
                let (first, stall_end) = (first.clone(), stall_end.clone());
                async move {
                    let now = origin.elapsed().as_nanos() as u64 + 1;
                    let _ = first.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
                    if let Some(after) = stall_after {
                        let f = first.load(Ordering::SeqCst);
                        if now >= f + after.as_nanos() as u64 {
                            let _ = stall_end.compare_exchange(
                                0,
                                now + stall.as_nanos() as u64,
                                Ordering::SeqCst,
                                Ordering::SeqCst,
                            );
                        }
                        let end = stall_end.load(Ordering::SeqCst);
                        if end > now {
                            tokio::time::sleep(Duration::from_nanos(end - now)).await;
                        }
                    }
                    "ok\n"
                }
            });
            let _ = axum::serve(listener, app).with_graceful_shutdown(c.cancelled_owned()).await;
        });
    });
    let url = rx.recv_timeout(Duration::from_secs(10)).expect("server started");
    Server { url, cancel, thread: Some(thread) }
}

/// `scaletui load ... --json`: the parsed output.
fn load_json(args: &[&str]) -> Value {
    let out = bin().arg("load").args(args).arg("--json").output().expect("runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn constant_2000_rps_for_10_s_sends_20000_evenly() {
    let _turn = timed();
    let s = server(None, Duration::ZERO);
    let v = load_json(&["--url", &s.url, "--rps", "2000", "--duration", "10"]);
    let sum = &v["summary"];
    let sent = u(&sum["counts"]["sent"]);
    assert_eq!(u(&sum["planned"]), 20_000);
    assert!((19_800..=20_200).contains(&sent), "20,000 ± 1 %: {sent}");
    assert_eq!(u(&sum["counts"]["responses"]), sent, "all answered");
    let per_second: Vec<u64> =
        v["seconds"].as_array().expect("seconds").iter().take(10).map(|r| u(&r["counts"]["sent"])).collect();
    assert_eq!(per_second.len(), 10);
    for (k, n) in per_second.iter().enumerate() {
        assert!((1_900..=2_100).contains(n), "second {k}: {n} not within 2,000 ± 5 % ({per_second:?})");
    }
}

#[test]
fn ramp_100_to_1100_over_10_s_sends_the_integral_6000() {
    let _turn = timed();
    let s = server(None, Duration::ZERO);
    let v = load_json(&[
        "--url",
        &s.url,
        "--ramp-start",
        "100",
        "--ramp-end",
        "1100",
        "--ramp-duration",
        "10",
        "--duration",
        "10",
    ]);
    let sent = u(&v["summary"]["counts"]["sent"]);
    // The seed's rate(now) × elapsed would have sent about 11,000.
    assert!((5_940..=6_060).contains(&sent), "6,000 ± 1 %: {sent}");
    let targets: Vec<f64> =
        v["seconds"].as_array().expect("seconds").iter().take(10).map(|r| f(&r["target_rps"])).collect();
    assert_eq!(targets.first().copied(), Some(150.0));
    assert_eq!(targets.last().copied(), Some(1050.0));
}

/// 200 requests/s for 6 s; the server pauses 500 ms once, 2 s in. About 100 requests are
/// scheduled during the pause.
fn stalled_run(concurrency: &str) -> Value {
    let s = server(Some(Duration::from_secs(2)), Duration::from_millis(500));
    load_json(&["--url", &s.url, "--rps", "200", "--duration", "6", "--concurrency", concurrency])
}

#[test]
fn latency_from_the_scheduled_time_shows_a_stall_that_a_closed_loop_hides() {
    // Four connections: during the pause they are all stuck, so the requests scheduled then are
    // sent late, after it. A closed-loop count (service time from the actual send) sees only the
    // four stuck requests; latency from the scheduled time sees all of them.
    let _turn = timed();
    let v = stalled_run("4");
    let sum = &v["summary"];
    let (lat, svc) = (&sum["latency"], &sum["service"]);
    eprintln!("4 connections: counts {}\n  from scheduled: {lat}\n  from send: {svc}", sum["counts"]);
    assert_eq!(u(&sum["counts"]["sent"]), 1_200);
    // About 96 wait (100 scheduled in the pause, 4 on the stuck connections).
    assert!(u(&sum["counts"]["late"]) >= 80, "requests waited for a connection: {}", sum["counts"]);
    assert!(f(&lat["p99_ms"]) >= 400.0, "p99 from the scheduled time reflects the stall: {lat}");
    assert!(f(&lat["p95_ms"]) >= 150.0, "{lat}");
    assert!(f(&svc["max_ms"]) >= 400.0, "the stuck requests saw it: {svc}");
    assert!(f(&svc["p99_ms"]) < 100.0, "only the 4 stuck requests (0.3 %) did: {svc}");

    // Enough connections: every request is sent on time and waits at the server.
    let v = stalled_run("256");
    let sum = &v["summary"];
    eprintln!(
        "256 connections: counts {}\n  from scheduled: {}\n  from send: {}",
        sum["counts"], sum["latency"], sum["service"]
    );
    assert_eq!(u(&sum["counts"]["late"]), 0);
    assert!(f(&sum["latency"]["p99_ms"]) >= 400.0, "{}", sum["latency"]);
    assert!(f(&sum["service"]["p99_ms"]) >= 400.0, "{}", sum["service"]);
}

#[test]
fn live_lines_summary_and_a_dead_target() {
    let s = server(None, Duration::ZERO);
    let out = bin().args(["load", "--url", &s.url, "--rps", "50", "--duration", "2"]).output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let live: Vec<&str> = text.lines().filter(|l| l.starts_with("t=")).collect();
    assert_eq!(live.len(), 2, "a line per second: {text}");
    for want in ["target 50 rps", "p50", "p95", "p99", "errors 0"] {
        assert!(live[0].contains(want), "{want} in {}", live[0]);
    }
    assert!(text.contains("Done. planned 100  sent 100  answered 100"), "{text}");
    assert!(text.contains("latency (from scheduled send): p50"), "{text}");

    // Nothing listens: errors by kind, exit 1.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", dead.local_addr().expect("addr"));
    drop(dead);
    let out = bin().args(["load", "--url", &url, "--rps", "20", "--duration", "1"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("errors 20") && text.contains("connection refused"), "{text}");

    // Bad input: one clear line, exit 2.
    for (args, want) in [
        (vec!["--url", "ftp://x/", "--rps", "5", "--duration", "1"], "bad URL"),
        (vec!["--url", &s.url, "--rps", "-5"], "--rps"),
        (vec!["--url", &s.url, "--pattern", "zigzag"], "--pattern"),
        (vec!["--url", &s.url, "--pattern", "trace", "--trace", "/nonexistent"], "/nonexistent"),
    ] {
        let out = bin().arg("load").args(&args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn sigterm_stops_early_with_a_summary_and_the_simulator_is_the_default_target() {
    // No --url: the simulated cluster's endpoint.
    let mut child = bin()
        .args(["load", "--rps", "40", "--duration", "0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    // Two live lines (on stderr with --json), then SIGTERM.
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    wait_for_lines(&mut stderr, "t=", 2);
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("exits");
    assert!(out.status.success(), "exit status {:?}", out.status);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    let sum = &v["summary"];
    assert_eq!(sum["stopped_early"], true);
    assert!(sum["url"].as_str().expect("url").starts_with("http://127.0.0.1:"), "{sum}");
    assert!(u(&sum["counts"]["responses"]) >= 40, "{sum}");
    assert_eq!(u(&sum["counts"]["status"][1]), u(&sum["counts"]["responses"]), "the simulator answered 200");
}

/// Read lines until `n` of them start with `prefix`; returns what was read.
fn wait_for_lines(r: &mut impl std::io::BufRead, prefix: &str, n: usize) -> String {
    let mut text = String::new();
    let mut seen = 0;
    while seen < n {
        let mut line = String::new();
        let got = r.read_line(&mut line).expect("read");
        assert!(got > 0, "ended before {n} lines starting with {prefix:?}: {text}");
        if line.starts_with(prefix) {
            seen += 1;
        }
        text.push_str(&line);
    }
    text
}

/// `t=   30s cpu stress: …` lines: (elapsed, replicas spec, per-pod CPU values).
fn stress_lines(text: &str) -> Vec<(u64, u32, Vec<f64>, Vec<f64>)> {
    text.lines()
        .filter(|l| l.starts_with("t="))
        .map(|l| {
            let t = l[2..].trim_start().split('s').next().and_then(|x| x.parse().ok()).expect("t");
            let spec = l
                .split("replicas ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|r| r.split('/').nth(1))
                .and_then(|r| r.parse().ok())
                .expect("replicas");
            let nums = |key: &str, unit: &str| -> Vec<f64> {
                l.split(key)
                    .nth(1)
                    .map(|r| r.split('|').next().unwrap_or(""))
                    .unwrap_or("")
                    .split_whitespace()
                    .filter_map(|x| x.trim_end_matches(unit).parse().ok())
                    .collect()
            };
            (t, spec, nums("pod cpu ", "m"), nums("pod memory ", "Mi"))
        })
        .collect()
}

#[test]
fn stress_cpu_and_memory_on_the_simulator() {
    let out = bin()
        .args(["--speed", "max", "stress", "cpu", "--workers", "2", "--duration", "120", "--max-pods", "3"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines = stress_lines(&text);
    assert_eq!(lines[0].1, 3, "{text}");
    assert!(
        lines.iter().any(|(_, _, cpu, _)| cpu.iter().filter(|c| **c >= 199.0).count() >= 3),
        "3 pods at the 200m limit: {text}"
    );
    assert!(lines.iter().any(|(_, spec, _, _)| *spec > 3), "the simulated HPA scales up: {text}");
    assert!(text.contains("running on 3 pods, 6 workers"), "{text}");
    assert!(!text.contains("running on 4 pods"), "--max-pods 3: {text}");
    assert!(text.contains("cpu stress stopped") && text.contains("ended after 120s (done)"), "{text}");

    let out =
        bin().args(["--speed", "max", "stress", "memory", "--mb", "55", "--duration", "60"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines = stress_lines(&text);
    assert!(
        lines.iter().any(|(_, _, _, mem)| mem.len() == 3 && mem.iter().all(|m| *m >= 74.0)),
        "+55 MiB visible: {text}"
    );
    assert_eq!(text.matches("/dev/shm has 64 MiB free").count(), 3, "fully removed: {text}");

    // Too much for /dev/shm: refused before anything starts.
    let out = bin().args(["--speed", "max", "stress", "memory", "--mb", "70"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("try 59 MiB"));
}

#[test]
fn stress_stops_and_cleans_up_on_sigterm() {
    let mut child = bin()
        .args(["stress", "memory", "--mb", "55", "--duration", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut text = wait_for_lines(&mut stdout, "t=", 1);
    std::thread::sleep(Duration::from_millis(200));
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("exits");
    assert!(out.status.success());
    std::io::Read::read_to_string(&mut stdout, &mut text).expect("rest of the output");
    assert!(text.contains("memory stress stopped") && text.contains("stopped after"), "{text}");
    assert_eq!(text.matches("/dev/shm has 64 MiB free").count(), 3, "{text}");
}

mod experiment {
    use super::*;
    use scaletui::config::{Config, Speed};
    use scaletui::engine::experiment::Experiment;
    use scaletui::engine::load::{LoadParams, Schedule};
    use scaletui::engine::messages::{EngineCommand, EngineEvent, TaskStatus};

    fn params(rps: f64, duration_s: f64) -> LoadParams {
        LoadParams {
            schedule: Schedule::Constant { rps, duration_s },
            url: None,
            concurrency: 64,
            timeout_s: 5.0,
            method: "GET".into(),
            headers: vec![],
            body: None,
        }
    }

    /// Run an experiment on the simulator, sending `commands` at their times; returns the
    /// events, the CSV text and the events file.
    async fn run(cfg: Config, commands: Vec<(f64, EngineCommand)>) -> (Vec<EngineEvent>, String, String) {
        run_with(cfg, commands, |_| {}).await
    }

    async fn run_with(
        cfg: Config,
        commands: Vec<(f64, EngineCommand)>,
        adjust: impl FnOnce(&mut scaletui::engine::experiment::ExperimentSetup),
    ) -> (Vec<EngineEvent>, String, String) {
        let mut parts = scaletui::run::build(&cfg, false).await.expect("setup");
        adjust(&mut parts.setup);
        let exp = Experiment::new(parts.setup).expect("record");
        let mut events = parts.events;
        let tx = parts.commands;
        // Commands due at once are queued before the run starts (a virtual-clock run may be
        // over before a task sends anything).
        let (now, later): (Vec<_>, Vec<_>) = commands.into_iter().partition(|(at, _)| *at <= 0.0);
        for (_, c) in now {
            tx.try_send(c).expect("queued");
        }
        let commands = later;
        let handle = tokio::spawn(exp.run(CancellationToken::new()));
        tokio::spawn(async move {
            let t0 = Instant::now();
            for (at, c) in commands {
                tokio::time::sleep_until((t0 + Duration::from_secs_f64(at)).into()).await;
                let _ = tx.send(c).await;
            }
            // Keep the sender alive until the run ends.
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let mut seen = Vec::new();
        while let Some(e) = events.recv().await {
            let done = matches!(e, EngineEvent::Finished { .. });
            seen.push(e);
            if done {
                break;
            }
        }
        let summary = handle.await.expect("run");
        let csv = std::fs::read_to_string(&summary.csv_path).expect("csv");
        let ev = std::fs::read_to_string(&summary.events_path).expect("events");
        (seen, csv, ev)
    }

    fn statuses(events: &[EngineEvent], id: u64) -> Vec<TaskStatus> {
        events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::Task(t) if t.id == id => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn load_tasks_report_each_second_fill_the_record_and_stop_on_every_path() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = Config::default();
        cfg.sim.speed = Speed::Factor(1.0);
        cfg.experiment.interval = 1.0;
        cfg.experiment.duration = 0.1; // 6 s
        cfg.experiment.output_dir = dir.path().to_path_buf();
        let commands = vec![
            (0.0, EngineCommand::StartLoad(params(50.0, 3.0))),
            (0.0, EngineCommand::StartLoad(params(20.0, f64::INFINITY))),
            (0.0, EngineCommand::StartLoad(params(10.0, f64::INFINITY))),
            (2.5, EngineCommand::StopTask(2)),
        ];
        let (events, csv, ev) = run(cfg, commands).await;

        // #1 ends by itself after reporting its seconds with live figures and progress.
        let one = statuses(&events, 1);
        assert!(one.iter().any(|s| s.figures.contains("target 50 rps") && s.figures.contains("p99")), "{one:?}");
        assert!(one.iter().any(|s| s.progress.is_some_and(|p| p > 0.2 && p < 1.0)), "{one:?}");
        let last = one.last().expect("status");
        assert!(last.finished && last.state == "done", "{last:?}");
        // #2 stopped by the command, #3 at the end of the run.
        assert_eq!(statuses(&events, 2).last().map(|s| s.state.as_str()), Some("stopped"));
        assert!(statuses(&events, 3).last().is_some_and(|s| s.finished));
        for want in ["#1 load ended", "#2 load stopped", "#3 load stopped at exit", "task_start"] {
            assert!(ev.contains(want), "{want} in {ev}");
        }
        assert!(ev.contains("#1 load ended") && ev.contains("sent 150 "), "{ev}");

        // load_* columns: filled while load runs (three tasks side by side: 80 rps at first).
        let mut r = csv::Reader::from_reader(csv.as_bytes());
        let header: Vec<String> = r.headers().expect("header").iter().map(String::from).collect();
        let col = |n: &str| header.iter().position(|h| h == n).expect("column");
        let rows: Vec<Vec<String>> = r.records().map(|x| x.expect("row").iter().map(String::from).collect()).collect();
        let targets: Vec<f64> = rows.iter().filter_map(|r| r[col("load_target_rps")].parse().ok()).collect();
        assert!(targets.iter().any(|t| (*t - 80.0).abs() < 1e-6), "{targets:?}");
        let achieved: Vec<f64> = rows.iter().filter_map(|r| r[col("load_achieved_rps")].parse().ok()).collect();
        assert!(achieved.iter().any(|a| *a > 50.0), "{achieved:?}");
        assert!(rows.iter().any(|r| !r[col("load_p99_ms")].is_empty()));
        assert!(rows.iter().any(|r| r[col("load_errors")] == "0" && r[col("load_late")] == "0"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_the_simulator_scenario_load_phases_run_through_the_generator() {
        // A cluster that is not the simulator (as the kube backend is) gets the scenario's load
        // from the load generator, against its load target. The simulated cluster stands in for
        // it here, handed over as a plain `Cluster`.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = Config::default();
        cfg.sim.speed = Speed::Factor(1.0);
        cfg.experiment.interval = 1.0;
        cfg.experiment.duration = 0.07; // 4.2 s
        cfg.experiment.output_dir = dir.path().to_path_buf();
        let text = "[[load]]\npattern = \"constant\"\nat_s = 1\nrps = 30\nduration_s = 2\n";
        let sc =
            scaletui::engine::scenario::Scenario::parse(text, std::path::Path::new("."), "phases").expect("scenario");
        let (_, _, ev) = run_with(cfg, vec![], |setup| {
            setup.sim = None;
            setup.scenario = Some(sc);
        })
        .await;
        assert!(ev.contains("#1 load (constant 30 rps for 2s, scenario) -> http://127.0.0.1:"), "{ev}");
        assert!(ev.contains("#1 load ended") && ev.contains("sent 60 "), "{ev}");
    }

    #[tokio::test]
    async fn load_is_refused_on_the_virtual_clock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = Config::default();
        cfg.sim.speed = Speed::Max;
        cfg.experiment.duration = 1.0;
        cfg.experiment.output_dir = dir.path().to_path_buf();
        let (events, _, ev) = run(cfg, vec![(0.0, EngineCommand::StartLoad(params(50.0, 3.0)))]).await;
        assert!(ev.contains("task_failed") && ev.contains("--speed max"), "{ev}");
        let s = statuses(&events, 1);
        assert!(s.last().is_some_and(|s| s.finished && s.state.starts_with("failed")), "{s:?}");
    }
}
