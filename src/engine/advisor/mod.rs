//! Recommenders: anything that proposes a replica count each tick. The LLM advisor is one (named
//! `ai`, it fills the seed's `ai_*` columns); built-in ones get `<name>_replicas`,
//! `<name>_status` and their own columns. In `ai_scaler` the configured driver's answer is applied.

pub mod ai;
pub mod builtin;
pub mod client;
pub mod dqn;
pub mod external;
pub mod forecast;
pub mod forest;
pub mod learned;
pub mod parse;
pub mod prompt;
pub mod queue;
pub mod sse;
pub mod vpa;

use async_trait::async_trait;

pub use ai::{AdvisorSettings, AiAdvisor};
pub use client::ResponseFormatKind;

use crate::engine::advisor::prompt::PromptTemplate;
use crate::engine::record::{AiColumns, HpaSim, Row};
use crate::engine::types::{DeploymentState, MetricsSample, Mode, PodInfo};

/// What a recommender sees each tick.
#[derive(Debug, Clone)]
pub struct RecommendInput<'a> {
    pub now: f64,
    pub elapsed_s: f64,
    pub mode: Mode,
    pub deployment: Option<DeploymentState>,
    pub sample: &'a MetricsSample,
    /// The deployment's pods as the cluster lists them this tick.
    pub pods: &'a [PodInfo],
    pub hpa_sim: &'a HpaSim,
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// Percent of the request.
    pub cpu_target: i32,
    pub memory_target: i32,
    /// Recent rows, oldest first (bounded).
    pub history: &'a [Row],
    /// The clock is virtual (`--speed max`): wait for slow answers (bounded by a timeout) so
    /// results do not depend on the machine's speed.
    pub wait: bool,
}

impl<'a> RecommendInput<'a> {
    /// A tick at `now` (elapsed `now`) in `ai_scaler` with the shipped `config.toml`'s limits
    /// (1–10 replicas, targets 60 % CPU and 80 % memory), no deployment state, pods or history,
    /// waiting for slow answers; change fields with struct update syntax.
    pub fn at(now: f64, sample: &'a MetricsSample, hpa_sim: &'a HpaSim) -> Self {
        RecommendInput {
            now,
            elapsed_s: now,
            mode: Mode::AiScaler,
            deployment: None,
            sample,
            pods: &[],
            hpa_sim,
            min_replicas: 1,
            max_replicas: 10,
            cpu_target: 60,
            memory_target: 80,
            history: &[],
            wait: true,
        }
    }
}

/// A recommender's answer for one tick.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecOutput {
    /// `None`: no usable answer this tick (pending, failed, warming up).
    pub replicas: Option<i32>,
    /// `parsed`, `pending`, `warming_up`, `failed: …`.
    pub status: String,
    /// The LLM advisor's seed columns and call figures (only for `ai`).
    pub ai: Option<AiColumns>,
    /// Values of [`Recommender::columns`], in order.
    pub values: Vec<String>,
}

#[async_trait]
pub trait Recommender: Send {
    /// Short name: `ai`, `queue`, `forecast`, `learned`, …
    fn name(&self) -> &str;

    /// The prefix of its CSV columns (`<prefix>_replicas`, …); default: its name.
    fn column_prefix(&self) -> &str {
        self.name()
    }

    /// Extra CSV columns (without the `<name>_` prefix). Not used for `ai`.
    fn columns(&self) -> Vec<String> {
        Vec::new()
    }

    async fn recommend(&mut self, input: &RecommendInput<'_>) -> RecOutput;

    /// Whether its answer can be applied in `ai_scaler` (false for ones that recommend
    /// something other than replicas, like `vpa`).
    fn can_drive(&self) -> bool {
        true
    }

    /// Ask now instead of waiting for the next tick (the `a` key); default: nothing to do.
    fn ask_now(&mut self) {}

    /// Replace the prompt template for the rest of the run (the `p` editor). `Err` says why it
    /// was not taken (e.g. an unknown placeholder); the old template stays. Default: this
    /// recommender has no prompt.
    fn set_prompt_template(&mut self, _template: PromptTemplate) -> Result<(), String> {
        Err(format!("the {} recommender has no prompt template", self.name()))
    }

    /// Stop any work in flight (the run ends).
    async fn shutdown(&mut self) {}
}
