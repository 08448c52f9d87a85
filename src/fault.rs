//! Fault injection for the tests of what happens when scaletui panics: set
//! `SCALETUI_FAULT_PANIC_IN=task|engine|ui`, and when: `SCALETUI_FAULT_PANIC_WHEN_FILE=PATH`
//! (once that file exists) or `SCALETUI_FAULT_PANIC_AFTER_S=N` (after N seconds, default 3).
//! Without these variables nothing here does anything.

use std::path::PathBuf;
use std::time::Duration;

/// Where `SCALETUI_FAULT_PANIC_IN` makes scaletui panic: fault injections that check the
/// terminal is restored, the run stopped cleanly, the cluster restored and the exit status 101
/// whatever panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A background task of the dashboard.
    Task,
    /// The experiment's task.
    Engine,
    /// The dashboard's own loop.
    Ui,
}

/// When the fault fires.
#[derive(Debug, Clone)]
enum Trigger {
    After(Duration),
    FileExists(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Faults {
    at: Option<(Fault, Trigger)>,
}

impl Faults {
    pub fn from_env() -> Self {
        let secs = std::env::var("SCALETUI_FAULT_PANIC_AFTER_S").ok().and_then(|v| v.parse::<f64>().ok());
        let place = match std::env::var("SCALETUI_FAULT_PANIC_IN").ok().as_deref() {
            Some("engine") => Some(Fault::Engine),
            Some("ui") => Some(Fault::Ui),
            Some("task") => Some(Fault::Task),
            Some(_) => None,
            None if secs.is_some() => Some(Fault::Task),
            None => None,
        };
        let trigger = match std::env::var_os("SCALETUI_FAULT_PANIC_WHEN_FILE") {
            Some(path) => Trigger::FileExists(PathBuf::from(path)),
            None => Trigger::After(Duration::from_secs_f64(secs.unwrap_or(3.0).clamp(0.0, 86_400.0))),
        };
        Self { at: place.map(|p| (p, trigger)) }
    }

    /// Resolves when the fault at `place` is due; never when none is set there.
    pub async fn fire(&self, place: Fault) {
        match &self.at {
            Some((p, Trigger::After(after))) if *p == place => tokio::time::sleep(*after).await,
            Some((p, Trigger::FileExists(path))) if *p == place => {
                while !path.exists() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            _ => std::future::pending().await,
        }
    }

    pub fn spawn_task_fault(&self) {
        if matches!(self.at, Some((Fault::Task, _))) {
            let this = self.clone();
            tokio::spawn(async move {
                let s = this;
                s.fire(Fault::Task).await;
                panic!("fault injected in a task by SCALETUI_FAULT_PANIC_IN");
            });
        }
    }
}
