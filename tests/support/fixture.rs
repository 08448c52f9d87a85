//! A deterministic dashboard state for the screen tests and the benchmark: a simulated run with
//! a sine load, scaling, an advisor, tasks and events — everything fed through `update` as the
//! engine would send it.

#![allow(dead_code)]

use scaletui::app::keymap::Keymap;
use scaletui::app::state::AppState;
use scaletui::app::theme::Themes;
use scaletui::app::update::{Msg, update};
use scaletui::config::Config;
use scaletui::engine::advisor::prompt::PromptTemplate;
use scaletui::engine::messages::{AdvisorEvent, EngineEvent, RunInfo, TaskStatus};
use scaletui::engine::record::{AiColumns, HpaSim, LoadColumns, RecordedEvent, Row};
use scaletui::engine::types::{ClusterInfo, Mode, Traffic};

pub const START: f64 = 1_704_067_200.0; // 2024-01-01T00:00:00Z

pub fn info(interval: f64) -> RunInfo {
    RunInfo {
        cluster: ClusterInfo {
            backend: "sim".into(),
            context: "simulated".into(),
            namespace: "default".into(),
            deployment: "webapp".into(),
        },
        mode: Mode::Comparison,
        interval_s: interval,
        duration_s: None,
        csv_path: "experiment_data/experiment_comparison_20240101_000000.csv".into(),
        events_path: "experiment_data/experiment_comparison_20240101_000000_events.csv".into(),
        start: START,
        speed: "10".into(),
        metrics_source: "sim".into(),
        scenario: None,
        min_replicas: 1,
        max_replicas: 10,
        cpu_target: 60,
        memory_target: 80,
        cpu_request_m: Some(100.0),
        memory_request_mib: Some(64.0),
        recommenders: vec![("queue".into(), vec![])],
        driver: "ai".into(),
        drivers: vec!["ai".into(), "queue".into()],
        advisor: Some("qwen2.5-coder:3b at http://localhost:11434/v1".into()),
        read_only: false,
        limits_off: false,
        prompt_template: PromptTemplate::default(),
    }
}

/// Tick `i` of a run with a sine load (period 20 min) and a stretch with no metrics.
pub fn row(i: usize, interval: f64) -> Row {
    let e = i as f64 * interval;
    let load = 90.0 + 70.0 * (2.0 * std::f64::consts::PI * e / 1200.0 - std::f64::consts::FRAC_PI_2).sin();
    let spec = ((load * 2.0 + 10.0) / 60.0).ceil().clamp(1.0, 10.0) as i32;
    let ready = if i.is_multiple_of(7) { (spec - 1).max(1) } else { spec };
    let cpu = 5.0 + load * 2.0 / f64::from(ready);
    let gap = (i % 500) >= 40 && (i % 500) < 43;
    let rec = (spec + if load > 120.0 { 1 } else { 0 }).min(10);
    Row {
        t: START + e,
        elapsed_s: e,
        mode: Mode::Comparison,
        current_replicas: Some(spec),
        ready_replicas: Some(ready),
        cpu_millicores: (!gap).then_some(cpu),
        memory_mebibytes: (!gap).then_some(20.0 + load * 0.05),
        cpu_request_millicores: Some(100.0),
        memory_request_mebibytes: Some(64.0),
        pod_count: Some(ready as u32),
        hpa_sim: HpaSim {
            desired: Some((spec + i32::from(i.is_multiple_of(11))).min(10)),
            raw_desired: Some(spec),
            cpu_desired: Some(spec),
            mem_desired: Some(1),
            action: "no_change".into(),
            cpu_ratio: Some(cpu / 60.0),
            mem_ratio: Some(0.4),
            reason: String::new(),
        },
        hpa_current_replicas: Some(spec),
        hpa_desired_replicas: Some(spec),
        ai: AiColumns {
            recommended_replicas: Some(rec),
            predicted_cpu_millicores: Some(cpu * 0.95),
            predicted_memory_mebibytes: Some(25.0),
            confidence: Some(0.82),
            reasoning: Some("Load is rising steadily over the last rows; one pod above the baseline.".into()),
            status: Some("parsed".into()),
            error: None,
            latency_ms: Some(1840.0),
            ttft_ms: Some(310.0),
            prompt_tokens: Some(812),
            completion_tokens: Some(64),
            attempts: Some(1),
        },
        applied_replicas: Some(spec),
        applied_by: "observation_only".into(),
        backend: "sim".into(),
        metrics_source: "sim".into(),
        metrics_status: if gap { "degraded: no samples yet".into() } else { "ok".into() },
        cluster_status: "ok".into(),
        hpa_present: Some(true),
        applied_note: String::new(),
        recommended_replicas: Some(5),
        applied_limit: String::new(),
        traffic: Some(Traffic {
            rps: load,
            served_rps: load * 0.99,
            errors_per_s: if load > 150.0 { 1.5 } else { 0.0 },
            p50_ms: Some(4.0 + load / 40.0),
            p95_ms: Some(9.0 + load / 8.0),
            p99_ms: Some(15.0 + load / 4.0),
            in_flight: load / 50.0,
            waiting: load / 100.0,
            ..Traffic::default()
        }),
        load: LoadColumns::default(),
        stress_cpu_workers: 0,
        stress_memory_mib: 0,
        stress_pods: 0,
        driver: "ai".into(),
        scenario: String::new(),
        recommenders: vec![scaletui::engine::record::RecommenderCells {
            name: "queue".into(),
            replicas: Some((spec + 1).min(10)),
            status: "parsed".into(),
            values: vec![],
        }],
    }
}

pub fn event(elapsed: f64, kind: &str, detail: &str) -> EngineEvent {
    EngineEvent::Event(RecordedEvent {
        t: START + elapsed,
        elapsed_s: elapsed,
        kind: kind.into(),
        mode: Mode::Comparison,
        detail: detail.into(),
    })
}

/// A state after `ticks` ticks `interval` seconds apart, drawn at the newest tick.
pub fn state(ticks: usize, interval: f64) -> AppState {
    let mut cfg = Config::default();
    cfg.experiment.interval = interval;
    let mut s = AppState::new(cfg, Keymap::default(), Themes::monochrome(), START);
    let feed = |s: &mut AppState, e: EngineEvent| {
        update(s, Msg::Engine(Box::new(e)));
    };
    feed(&mut s, EngineEvent::Started(Box::new(info(interval))));
    feed(&mut s, event(0.0, "run_start", "backend=sim metrics=sim speed=10 interval=10s scenario=-"));
    feed(&mut s, event(0.0, "mode_switch", "start in comparison"));
    for i in 0..ticks {
        feed(&mut s, EngineEvent::Sample(Box::new(row(i, interval))));
    }
    let end = ticks.saturating_sub(1) as f64 * interval;
    feed(
        &mut s,
        event(end - 300.0, "task_start", "#1 cpu stress (2 workers/pod, 300s, refresh 15s, key): running on 3 pods"),
    );
    feed(&mut s, event(end - 200.0, "scale", "3 -> 5 by hpa_sim"));
    feed(
        &mut s,
        event(
            end - 120.0,
            "task_failed",
            "#2 load (ramp 10->150 rps over 120s, hold 180s): http://10.0.0.9:8080/ refused the connection",
        ),
    );
    feed(&mut s, event(end - 60.0, "error", "scale to 6 failed: simulated conflict"));
    feed(
        &mut s,
        EngineEvent::Task(TaskStatus {
            id: 1,
            kind: "cpu stress".into(),
            params: "2 workers/pod, 300s, refresh 15s".into(),
            state: "running on 3 pods".into(),
            finished: false,
            progress: Some(0.4),
            figures: "6 workers on 3 pods".into(),
        }),
    );
    feed(
        &mut s,
        EngineEvent::Task(TaskStatus {
            id: 2,
            kind: "load".into(),
            params: "ramp 10->150 rps over 120s, hold 180s".into(),
            state: "failed: http://10.0.0.9:8080/ refused the connection".into(),
            finished: true,
            progress: None,
            figures: String::new(),
        }),
    );
    for e in [
        AdvisorEvent::Asking { attempt: 1 },
        AdvisorEvent::Delta("{\"recommended_replicas\": 6, \"confidence\": 0.82, ".into()),
        AdvisorEvent::Delta("\"reasoning\": \"Load is rising steadily over the last rows; ".into()),
        AdvisorEvent::Delta("one pod above the baseline.\"".into()),
    ] {
        feed(&mut s, EngineEvent::Advisor(e));
    }
    // The wall clock at the newest tick (speed 10).
    update(&mut s, Msg::Tick(START + end / 10.0));
    s.toast = None;
    s
}
