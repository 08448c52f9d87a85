//! Load: rate schedules (pure) and the open-loop HTTP load generator.
pub mod schedule;

use serde::Serialize;

pub use schedule::{Level, Schedule};

/// What the load generator is asked to do (the `l` form, `scaletui load`, a scenario on a real
/// cluster).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadParams {
    pub schedule: Schedule,
    /// Target URL; `None`: the cluster's load target (the simulator's endpoint, a port-forward).
    pub url: Option<String>,
    /// Most requests in flight at once.
    pub concurrency: usize,
    pub timeout_s: f64,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl LoadParams {
    /// One line for the tasks panel and the events file.
    pub fn describe(&self) -> String {
        let s = match &self.schedule {
            Schedule::Constant { rps, duration_s } => format!("constant {rps:.0} rps for {duration_s:.0}s"),
            Schedule::Ramp { start_rps, end_rps, ramp_s, hold_s } => {
                format!("ramp {start_rps:.0}->{end_rps:.0} rps over {ramp_s:.0}s, hold {hold_s:.0}s")
            }
            Schedule::Step { levels } => format!("{} steps over {:.0}s", levels.len(), self.schedule.duration()),
            Schedule::Sine { min_rps, max_rps, period_s, duration_s } => {
                format!("sine {min_rps:.0}..{max_rps:.0} rps, period {period_s:.0}s, {duration_s:.0}s")
            }
            Schedule::Trace { values, step_s } => format!("trace of {} values every {step_s}s", values.len()),
        };
        match &self.url {
            Some(u) => format!("{s} -> {u}"),
            None => s,
        }
    }
}
