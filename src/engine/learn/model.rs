//! A trained DQN on disk: a directory with `model.safetensors` (the online network's weights)
//! and `model.json` (what the weights mean: kind, version, features and their normalisation,
//! actions, the network's shape, the reward, the scenario and seed it was trained on, the
//! training figures). Loading checks all of it: a model of another kind, version or shape is a
//! clear error, never a wrong answer.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::dqn::{DqnSettings, QNet};
use crate::engine::rng::Rng;

pub const DQN_KIND: &str = "scaletui-dqn";
pub const DQN_VERSION: u32 = 1;

/// What training measured (written at the end and with each checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainingFigures {
    pub steps: u64,
    pub episodes: u64,
    pub seconds: f64,
    pub steps_per_s: f64,
    pub epsilon: f64,
    /// Mean episode reward of the last ten episodes.
    pub recent_reward: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DqnModelInfo {
    pub kind: String,
    pub version: u32,
    /// The observation: empty = seed 003's four features.
    pub observe: Vec<String>,
    /// The feature names in order (seed 003's or `observe`).
    pub features: Vec<String>,
    /// The rate seed 003's rate features divide by (requests/s).
    pub max_rps: f64,
    /// The replica change of each action.
    pub actions: Vec<i32>,
    /// Layer sizes, inputs first.
    pub dims: Vec<usize>,
    pub reward: String,
    pub scenario: String,
    pub seed: u64,
    pub interval_s: f64,
    pub settings: DqnSettings,
    pub training: TrainingFigures,
}

/// A loaded model.
pub struct DqnModel {
    pub info: DqnModelInfo,
    pub net: QNet,
    pub dir: PathBuf,
}

/// The directory of a model path (the directory itself, or the directory of its model.json).
pub fn model_dir(path: &Path) -> PathBuf {
    if path.file_name().is_some_and(|n| n == "model.json") {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        path.to_path_buf()
    }
}

impl DqnModel {
    pub fn load(path: &Path) -> Result<Self, String> {
        let dir = model_dir(path);
        let json = dir.join("model.json");
        let text = std::fs::read_to_string(&json).map_err(|e| format!("{}: {e}", json.display()))?;
        let info: DqnModelInfo =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a scaletui DQN model: {e}", json.display()))?;
        if info.kind != DQN_KIND {
            return Err(format!("{}: a {:?} model, not a DQN ({DQN_KIND})", json.display(), info.kind));
        }
        if info.version != DQN_VERSION {
            return Err(format!(
                "{}: model version {}, this scaletui reads version {DQN_VERSION}; train it again",
                json.display(),
                info.version
            ));
        }
        if info.dims.len() < 2 || info.dims[0] != info.features.len() || info.dims.last() != Some(&info.actions.len()) {
            return Err(format!(
                "{}: the network's shape {:?} does not fit {} features and {} actions",
                json.display(),
                info.dims,
                info.features.len(),
                info.actions.len()
            ));
        }
        if info.dims.iter().any(|d| *d == 0 || *d > 4096) {
            return Err(format!("{}: layer sizes must be 1..=4096, not {:?}", json.display(), info.dims));
        }
        let names: Vec<String> = if info.observe.is_empty() {
            super::features::SEED003_FEATURES.iter().map(|s| s.to_string()).collect()
        } else {
            info.observe.clone()
        };
        if names != info.features {
            return Err(format!(
                "{}: the features {:?} are not the observation's {names:?}",
                json.display(),
                info.features
            ));
        }
        if let Some(f) = info.observe.iter().find(|f| !super::features::FIGURES.contains(&f.as_str())) {
            return Err(format!("{}: unknown feature {f:?} (a model of another scaletui?)", json.display()));
        }
        if !(info.max_rps > 0.0 && info.max_rps.is_finite()) {
            return Err(format!("{}: max_rps must be positive", json.display()));
        }
        let mut net = QNet::new(&info.dims, &mut Rng::new(0))?;
        net.load(&dir.join("model.safetensors"))?;
        Ok(Self { info, net, dir })
    }

    /// Write `net` and `info` into `dir` (created). The JSON goes last, so a directory with a
    /// model.json always has its weights.
    pub fn save(dir: &Path, net: &QNet, info: &DqnModelInfo) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let tmp = dir.join("model.safetensors.tmp");
        net.save(&tmp)?;
        std::fs::rename(&tmp, dir.join("model.safetensors")).map_err(|e| format!("{}: {e}", dir.display()))?;
        let text = serde_json::to_string_pretty(info).map_err(|e| e.to_string())?;
        let tmp = dir.join("model.json.tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join("model.json")).map_err(|e| format!("{}: {e}", dir.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(dims: Vec<usize>) -> DqnModelInfo {
        DqnModelInfo {
            kind: DQN_KIND.into(),
            version: DQN_VERSION,
            observe: Vec::new(),
            features: super::super::features::SEED003_FEATURES.iter().map(|s| s.to_string()).collect(),
            max_rps: 4.0,
            actions: vec![-1, 0, 1],
            dims,
            reward: "seed003".into(),
            scenario: "step".into(),
            seed: 1,
            interval_s: 30.0,
            settings: DqnSettings::default(),
            training: TrainingFigures::default(),
        }
    }

    #[test]
    fn a_saved_model_loads_with_the_same_outputs_and_wrong_ones_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = QNet::new(&[4, 16, 3], &mut Rng::new(2)).expect("net");
        DqnModel::save(dir.path(), &net, &info(vec![4, 16, 3])).expect("save");
        let m = DqnModel::load(&dir.path().join("model.json")).expect("load");
        let x = [0.3, 0.2, 0.1, 0.0];
        assert_eq!(m.net.q(&x).expect("q"), net.q(&x).expect("q"));
        // Another kind.
        let mut other = info(vec![4, 16, 3]);
        other.kind = "scaletui-random-forest".into();
        std::fs::write(dir.path().join("model.json"), serde_json::to_string(&other).expect("json")).expect("write");
        let e = DqnModel::load(dir.path()).err().expect("refused");
        assert!(e.contains("not a DQN"), "{e}");
        // A shape that the weights do not have.
        std::fs::write(dir.path().join("model.json"), serde_json::to_string(&info(vec![4, 32, 3])).expect("json"))
            .expect("write");
        assert!(DqnModel::load(dir.path()).is_err());
        // A shape that does not fit the features.
        std::fs::write(dir.path().join("model.json"), serde_json::to_string(&info(vec![5, 16, 3])).expect("json"))
            .expect("write");
        let e = DqnModel::load(dir.path()).err().expect("refused");
        assert!(e.contains("does not fit"), "{e}");
        // A shape no file should ask for.
        std::fs::write(dir.path().join("model.json"), serde_json::to_string(&info(vec![4, 1 << 30, 3])).expect("json"))
            .expect("write");
        assert!(DqnModel::load(dir.path()).err().expect("refused").contains("1..=4096"));
        // Garbage.
        std::fs::write(dir.path().join("model.json"), "{").expect("write");
        assert!(DqnModel::load(dir.path()).err().expect("refused").contains("not a scaletui DQN model"));
    }
}
