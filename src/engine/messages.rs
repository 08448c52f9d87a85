//! Messages between the engine and its front ends (the dashboard, the headless runner).

use std::path::PathBuf;

use serde::Serialize;

use crate::engine::advisor::prompt::PromptTemplate;
use crate::engine::load::LoadParams;
use crate::engine::record::{RecordedEvent, Row};
use crate::engine::stress::StressParams;
use crate::engine::types::{ClusterInfo, Mode};

/// Identifies a background task.
pub type TaskId = u64;

/// A background task as the tasks panel shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskStatus {
    pub id: TaskId,
    /// `cpu stress`, `memory stress`, `load`.
    pub kind: String,
    /// Parameters, one line.
    pub params: String,
    /// `starting`, `running on 3 pods`, `done`, `failed: …`.
    pub state: String,
    pub finished: bool,
    /// 0..1, `None` when the task runs until stopped.
    pub progress: Option<f64>,
    /// Live figures, one line (e.g. `target 80 rps · achieved 79.6 · p99 41 ms`).
    pub figures: String,
}

/// Facts about the run, sent once at start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    pub cluster: ClusterInfo,
    pub mode: Mode,
    pub interval_s: f64,
    pub duration_s: Option<f64>,
    pub csv_path: PathBuf,
    pub events_path: PathBuf,
    pub start: f64,
    pub speed: String,
    pub metrics_source: String,
    pub scenario: Option<String>,
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub cpu_target: i32,
    pub memory_target: i32,
    pub cpu_request_m: Option<f64>,
    pub memory_request_mib: Option<f64>,
    /// Recommenders with their own columns (for exports with the same header).
    pub recommenders: Vec<(String, Vec<String>)>,
    pub driver: String,
    /// Recommenders that can drive `ai_scaler` (recommend replicas), in order.
    pub drivers: Vec<String>,
    /// The LLM advisor (`model at url`) when the run has one (a recommender named `ai`).
    pub advisor: Option<String>,
    pub read_only: bool,
    /// `[scaling] apply_limits = "none"`: recommendations are applied without the behavior.
    pub limits_off: bool,
    /// The advisor's prompt template in effect (for the prompt editor).
    pub prompt_template: PromptTemplate,
}

/// Streaming progress of the LLM advisor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AdvisorEvent {
    /// A call started (attempt number).
    Asking { attempt: u32 },
    /// Text arrived.
    Delta(String),
    /// The call ended: parsed, or failed with a reason.
    Done { ok: bool, status: String, replicas: Option<i32>, latency_ms: Option<f64> },
}

/// Engine → front end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum EngineEvent {
    Started(Box<RunInfo>),
    Sample(Box<Row>),
    /// The metric source's samples from before the start, oldest first (not recorded: they
    /// fill the charts and the advisor's history).
    History(Vec<Row>),
    Event(RecordedEvent),
    Task(TaskStatus),
    Advisor(AdvisorEvent),
    /// Something the user should see that is not a recorded event.
    Notice(String),
    Finished {
        reason: String,
        rows: u64,
        csv_path: PathBuf,
        events_path: PathBuf,
        restored: Vec<String>,
    },
}

/// Front end → engine.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineCommand {
    SetMode(Mode),
    StartStress(StressParams),
    StartLoad(LoadParams),
    StopTask(TaskId),
    AskAdvisor,
    /// Replace the advisor's prompt template for the rest of the run.
    SetPromptTemplate(PromptTemplate),
    SetDriver(String),
    /// Put back the HPA an earlier run removed and never restored.
    RestoreSavedHpa,
    Shutdown,
}
