//! The built-in recommenders (`queue`, `forecast`, `vpa`, `learned`, `dqn`): their configuration
//! (`[recommenders.*]`) and how a run assembles them, with an external policy when the driver
//! names one (`exec:CMD`, `http:URL`).

use std::path::Path;

use super::Recommender;
use super::dqn::DqnRecommender;
use super::external::{ExternalPolicy, is_external};
use super::forecast::ForecastRecommender;
use super::learned::{LearnedModel, LearnedRecommender};
use super::queue::QueueRecommender;
use super::vpa::VpaRecommender;
use crate::config::Config;
pub use crate::config::{LearnedConfig, RecommendersConfig};
use crate::engine::learn::model::DqnModel;
use crate::engine::metrics::prometheus::{PromClient, Vars};

/// Names that can drive in `ai_scaler`.
pub const DRIVERS: [&str; 5] = ["ai", "queue", "forecast", "learned", "dqn"];

/// The enabled built-in recommenders, in a fixed order (their CSV columns follow it).
pub fn build(cfg: &Config) -> Result<Vec<Box<dyn Recommender>>, String> {
    let r = &cfg.recommenders;
    let mut out: Vec<Box<dyn Recommender>> = Vec::new();
    if r.queue.enabled {
        let query = r.queue.query.trim();
        if query.is_empty() {
            out.push(Box::new(QueueRecommender::new(r.queue.clone(), cfg.scaling.max_replicas)));
        } else {
            let m = &cfg.metrics;
            let client = PromClient::new(&m.prometheus_url, m.prometheus_timeout_s)
                .map_err(|e| format!("recommenders.queue.query needs metrics.prometheus_url: {e}"))?;
            let c = &cfg.cluster;
            let vars = Vars::of(m, &c.namespace, &c.deployment, &c.container);
            let rendered = vars.render(query);
            out.push(Box::new(QueueRecommender::with_query(
                r.queue.clone(),
                cfg.scaling.max_replicas,
                client,
                rendered,
            )));
        }
    }
    if r.forecast.enabled {
        out.push(Box::new(ForecastRecommender::new(r.forecast.clone())));
    }
    if r.vpa.enabled {
        out.push(Box::new(VpaRecommender::new(r.vpa.clone()).map_err(|e| format!("recommenders.vpa: {e}"))?));
    }
    let model = r.learned.model.trim();
    if !model.is_empty() {
        let m = LearnedModel::load(Path::new(model)).map_err(|e| format!("recommenders.learned.model: {e}"))?;
        out.push(Box::new(LearnedRecommender::new(m)));
    }
    let dqn = r.dqn.model.trim();
    if !dqn.is_empty() {
        let m = DqnModel::load(Path::new(dqn)).map_err(|e| format!("recommenders.dqn.model: {e}"))?;
        out.push(Box::new(DqnRecommender::new(m, cfg.experiment.interval)));
    }
    let driver = cfg.experiment.driver.trim();
    if is_external(driver) {
        let p = ExternalPolicy::from_driver(driver, &cfg.policy, cfg.experiment.interval)?
            .with_duration(cfg.experiment.duration * 60.0);
        out.push(Box::new(p));
    }
    Ok(out)
}

/// Check the driver against what is available; `ai` may be missing (the fallback then applies
/// and says why), a built-in driver that is not enabled is an error.
pub fn check_driver(driver: &str, available: &[String]) -> Result<(), String> {
    if driver == "ai" || available.iter().any(|a| a == driver) {
        return Ok(());
    }
    match driver {
        "learned" => Err("driver learned needs a model: train one with `scaletui train CSV... -o model.json`, then \
                          name it: --driver learned:model.json, compare --policies learned:model.json, or \
                          recommenders.learned.model"
            .into()),
        "dqn" => Err("driver dqn needs a model: train one with `scaletui train dqn --scenario FILE -o DIR`, then \
                       name it: --driver dqn:DIR, compare --policies dqn:DIR, or recommenders.dqn.model = \"DIR\""
            .into()),
        "vpa" => Err("vpa recommends requests, not replicas; it cannot drive".into()),
        d if DRIVERS.contains(&d) => Err(format!("driver {d}: recommenders.{d}.enabled is false")),
        d => Err(format!("unknown driver {d:?} (ai, queue, forecast, learned, dqn, exec:CMD, http:URL)")),
    }
}
