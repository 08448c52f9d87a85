//! The `dqn` recommender: a Double DQN trained on the simulator (`scaletui train dqn`) answers
//! each tick with the current replicas plus its best action's change. Its features are computed
//! from the tick exactly as the training environment computed them (the same code), and its
//! reasoning lists the Q-values of the actions.

use async_trait::async_trait;

use super::external::Observation;
use super::{RecOutput, RecommendInput, Recommender};
use crate::engine::learn::dqn::argmax;
use crate::engine::learn::features::features;
use crate::engine::learn::model::DqnModel;

pub struct DqnRecommender {
    model: DqnModel,
    interval_s: f64,
    tick: u64,
}

impl DqnRecommender {
    pub fn new(model: DqnModel, interval_s: f64) -> Self {
        Self { model, interval_s, tick: 0 }
    }
}

fn signed(d: i32) -> String {
    if d > 0 { format!("+{d}") } else { d.to_string() }
}

#[async_trait]
impl Recommender for DqnRecommender {
    fn name(&self) -> &str {
        "dqn"
    }

    fn columns(&self) -> Vec<String> {
        let mut c: Vec<String> = self.model.info.actions.iter().map(|a| format!("q{}", signed(*a))).collect();
        c.push("reasoning".into());
        c
    }

    async fn recommend(&mut self, input: &RecommendInput<'_>) -> RecOutput {
        let tick = self.tick;
        self.tick += 1;
        let blank = || vec![String::new(); self.model.info.actions.len() + 1];
        let o = Observation::of(input, tick, self.interval_s, f64::INFINITY, 2);
        let Some(cur) = o.current_replicas else {
            return RecOutput { status: "deployment state unknown".into(), values: blank(), ..RecOutput::default() };
        };
        let mut rates: Vec<f64> = o.history.iter().map(|h| h.rps.unwrap_or(0.0)).collect();
        rates.push(o.rps.unwrap_or(0.0));
        let x = features(&self.model.info.observe, self.model.info.max_rps, &o, &rates);
        let q = match self.model.net.q(&x) {
            Ok(q) if q.iter().all(|v| v.is_finite()) => q,
            Ok(_) => {
                return RecOutput {
                    status: "failed: the model gave no number".into(),
                    values: blank(),
                    ..RecOutput::default()
                };
            }
            Err(e) => return RecOutput { status: format!("failed: {e}"), values: blank(), ..RecOutput::default() },
        };
        let best = argmax(&q);
        let change = self.model.info.actions.get(best).copied().unwrap_or(0);
        let want = (cur + change).clamp(o.min_replicas, o.max_replicas.max(o.min_replicas));
        let listed: Vec<String> =
            self.model.info.actions.iter().zip(&q).map(|(a, v)| format!("Q({}) {v:.2}", signed(*a))).collect();
        let reasoning = format!("{}: {} → {want}", listed.join(", "), signed(change));
        let mut values: Vec<String> = q.iter().map(|v| format!("{v:.4}")).collect();
        values.push(reasoning);
        RecOutput { replicas: Some(want), status: "parsed".into(), values, ..RecOutput::default() }
    }
}
