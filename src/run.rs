//! Assembling a run from the configuration: clock, cluster, metrics source, recommenders,
//! scenario and the engine's channels. Shared by the dashboard and the headless runner.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::{Backend, Config, MetricsSourceKind, Speed};
use crate::engine::advisor::{AiAdvisor, Recommender};
use crate::engine::clock::{Clock, SharedClock};
use crate::engine::cluster::Cluster;
use crate::engine::cluster::kube::{KubeCluster, KubeSettings, access};
use crate::engine::cluster::sim::SimCluster;
use crate::engine::experiment::{ExperimentSetup, hpa_spec};
use crate::engine::messages::{EngineCommand, EngineEvent};
use crate::engine::metrics::prometheus::PrometheusSource;
use crate::engine::metrics::sim::SimMetrics;
use crate::engine::metrics::{MetricsServer, MetricsSource};
use crate::engine::scenario::Scenario;
use crate::engine::types::wall_now;

/// A problem that stops a run from starting, in words a user can act on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// The parts of a run, ready to start.
pub struct RunParts {
    pub setup: ExperimentSetup,
    pub events: mpsc::Receiver<EngineEvent>,
    pub commands: mpsc::Sender<EngineCommand>,
    pub cluster: Arc<dyn Cluster>,
    pub sim: Option<Arc<SimCluster>>,
    pub clock: SharedClock,
}

/// Find a scenario: a path, or the name of a file in `scenarios/` (with or without `.toml`).
pub fn find_scenario(name: &str) -> Result<Scenario, SetupError> {
    let direct = Path::new(name);
    let candidates = [
        direct.to_path_buf(),
        Path::new("scenarios").join(name),
        Path::new("scenarios").join(format!("{name}.toml")),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(format!("{name}.toml")),
    ];
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => Scenario::load_file(p).map_err(|e| SetupError(format!("scenario {e}"))),
        None => Err(SetupError(format!("scenario {name}: no such file (also looked in scenarios/)"))),
    }
}

/// The configuration of a run, in layers: the built-in defaults under the config file (`file`),
/// the scenario's settings over them, and the flags given on the command line on top (a flag's
/// default value does not count as given). The scenario is `scenario`, else `--scenario`, else
/// the file's `experiment.scenario`.
pub fn layered_config(file: &Config, flags: &crate::cli::RunArgs, scenario: Option<&str>) -> Result<Config, String> {
    let name = scenario
        .map(str::to_string)
        .or_else(|| flags.scenario.clone())
        .unwrap_or_else(|| file.experiment.scenario.clone());
    let mut cfg = match name.trim() {
        "" => file.clone(),
        n => find_scenario(n).map_err(|e| e.to_string())?.apply_settings(file)?,
    };
    flags.apply(&mut cfg).map_err(|e| e.to_string())?;
    model_driver(&mut cfg);
    crate::engine::check_config(&cfg).map_err(|(k, m)| format!("configuration: key `{k}`: {m}"))?;
    Ok(cfg)
}

/// `--driver dqn:DIR` / `learned:MODEL`: that recommender with that model drives.
pub fn model_driver(cfg: &mut Config) {
    let d = cfg.experiment.driver.trim().to_string();
    if let Some((kind, path)) = d.split_once(':')
        && !path.trim().is_empty()
    {
        match kind {
            "dqn" => cfg.recommenders.dqn.model = path.trim().to_string(),
            "learned" => cfg.recommenders.learned.model = path.trim().to_string(),
            _ => return,
        }
        cfg.experiment.driver = kind.to_string();
    }
}

/// Build everything a run needs. `interactive` selects the dashboard's defaults (demo load on the
/// simulator when there is no scenario).
pub async fn build(cfg: &Config, interactive: bool) -> Result<RunParts, SetupError> {
    build_with(cfg, interactive, Vec::new()).await
}

/// [`build`] with recommenders made by the caller (after the configured ones; one may be the
/// driver, as the Python environment's is).
pub async fn build_with(
    cfg: &Config,
    interactive: bool,
    extra: Vec<Box<dyn Recommender>>,
) -> Result<RunParts, SetupError> {
    if interactive && cfg.sim.speed == Speed::Max {
        return Err(SetupError("--speed max only works with --headless (the dashboard runs in real time)".into()));
    }
    let scenario = match cfg.experiment.scenario.trim() {
        "" => None,
        name => Some(find_scenario(name)?),
    };
    let (events_tx, events_rx) = mpsc::channel(4096);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let mut notices = Vec::new();
    let cfg = &prometheus_speed(cfg, &mut notices)?;
    let (clock, cluster, sim): (SharedClock, Arc<dyn Cluster>, Option<Arc<SimCluster>>) = match cfg.cluster.backend {
        Backend::Sim => {
            let clock = Clock::new(wall_now(), cfg.sim.speed);
            let sim = SimCluster::new(
                &cfg.sim,
                clock.clone(),
                &cfg.cluster.namespace,
                &cfg.cluster.deployment,
                &cfg.cluster.hpa_name,
                hpa_spec(cfg),
                cfg.cluster.read_only,
            );
            let cluster: Arc<dyn Cluster> = sim.clone();
            (clock, cluster, Some(sim))
        }
        Backend::Kube => {
            let kube = KubeCluster::connect(KubeSettings::from_config(cfg))
                .await
                .map_err(|e| SetupError(format!("kube backend: {e}")))?;
            notices.extend(permission_notice(&kube, cfg).await);
            let cluster: Arc<dyn Cluster> = Arc::new(kube);
            (Clock::wall(), cluster, None)
        }
    };
    let metrics: Box<dyn MetricsSource> = match (cfg.metrics.source, cfg.cluster.backend) {
        (MetricsSourceKind::Auto | MetricsSourceKind::Sim, Backend::Sim) => match &sim {
            Some(s) => Box::new(SimMetrics::new(s.clone())),
            None => return Err(SetupError("the simulator is missing".into())),
        },
        (MetricsSourceKind::Sim, Backend::Kube) => {
            return Err(SetupError("--metrics sim needs the simulated cluster (--backend sim)".into()));
        }
        (MetricsSourceKind::MetricsServer, _) => Box::new(MetricsServer::new(cluster.clone())),
        (MetricsSourceKind::Prometheus, _) | (MetricsSourceKind::Auto, Backend::Kube) => {
            let source = PrometheusSource::new(&cfg.metrics).map_err(SetupError)?;
            // The client's URL: without any password of the configured one.
            let prom_url = source.client().base_url().to_string();
            if let Some(s) = &sim {
                let url = s.serve_exporter(&cfg.sim.exporter_listen).await.map_err(|e| SetupError(e.to_string()))?;
                notices.push(format!(
                    "the simulated cluster's Prometheus metrics are at {url}; scrape it from the Prometheus at \
                     {prom_url} (example: deploy/prometheus-sim.yml)"
                ));
            }
            // Say early (without delaying the start) when Prometheus is not there.
            let (client, tx, url) = (source.client().clone(), events_tx.clone(), prom_url);
            tokio::spawn(async move {
                let note = match client.version().await {
                    Ok(v) => format!("reading metrics from Prometheus {v} at {url}"),
                    Err(e) => {
                        format!("Prometheus at {url} does not answer yet ({e}); metric cells stay empty until it does")
                    }
                };
                let _ = tx.send(EngineEvent::Notice(note)).await;
            });
            Box::new(source)
        }
    };
    for n in notices {
        let _ = events_tx.try_send(EngineEvent::Notice(n));
    }
    let mut recommenders: Vec<Box<dyn Recommender>> = Vec::new();
    if cfg.advisor.enabled {
        // The LLM advisor streams its reply to the front end through the engine's event channel.
        let advisor =
            AiAdvisor::from_config(cfg, Some(events_tx.clone())).map_err(|e| SetupError(format!("AI advisor: {e}")))?;
        recommenders.push(Box::new(advisor));
    }
    recommenders.extend(crate::engine::advisor::builtin::build(cfg).map_err(SetupError)?);
    recommenders.extend(extra);
    let names: Vec<String> = recommenders.iter().map(|r| r.name().to_string()).collect();
    crate::engine::advisor::builtin::check_driver(&cfg.experiment.driver, &names).map_err(SetupError)?;
    let setup = ExperimentSetup {
        cfg: cfg.clone(),
        cluster: cluster.clone(),
        sim: sim.clone(),
        metrics,
        recommenders,
        clock: clock.clone(),
        demo_load: interactive && scenario.is_none(),
        scenario,
        events: events_tx,
        commands: cmd_rx,
        wall_start: wall_now(),
    };
    Ok(RunParts { setup, events: events_rx, commands: cmd_tx, cluster, sim, clock })
}

/// What this account may not do, checked up front so a user learns it before a step fails.
async fn permission_notice(kube: &KubeCluster, cfg: &Config) -> Option<String> {
    let ops = access::needed(cfg.cluster.read_only, cfg.metrics.source == MetricsSourceKind::MetricsServer);
    match kube.denied(&ops).await {
        Ok(denied) if denied.is_empty() => None,
        Ok(denied) => Some(format!(
            "this account may not {} in namespace {}; those steps will fail (deploy/rbac.yaml grants what scaletui \
             needs)",
            denied.iter().map(|op| format!("{op} (to {})", op.purpose)).collect::<Vec<_>>().join(", "),
            cfg.cluster.namespace
        )),
        Err(e) => {
            Some(format!("cannot check this account's permissions up front ({e}); refusals are named when they happen"))
        }
    }
}

/// Prometheus stamps what it scrapes with the wall clock, so a simulated run read through
/// Prometheus goes in real time: a speed factor becomes 1 (with a notice), `max` is refused.
fn prometheus_speed(cfg: &Config, notices: &mut Vec<String>) -> Result<Config, SetupError> {
    let prometheus = cfg.metrics.source == MetricsSourceKind::Prometheus;
    if cfg.cluster.backend != Backend::Sim || !prometheus || cfg.sim.speed == Speed::Factor(1.0) {
        return Ok(cfg.clone());
    }
    if cfg.sim.speed == Speed::Max {
        return Err(SetupError(
            "--metrics prometheus needs the simulated cluster in real time (Prometheus scrapes it on the wall \
             clock); --speed max cannot be used with it"
                .into(),
        ));
    }
    notices.push(format!(
        "speed {} -> 1: with --metrics prometheus the simulated cluster runs in real time (Prometheus scrapes it \
         on the wall clock)",
        cfg.sim.speed
    ));
    let mut c = cfg.clone();
    c.sim.speed = Speed::Factor(1.0);
    Ok(c)
}
