//! `scaletui._core`: the Rust side of the Python package. `RustEnv` is one environment
//! (`scaletui::gym::Env`), `RustVecEnv` steps many on several threads with the GIL released.
//! The Gymnasium classes are thin Python over these (python/scaletui/env.py).

use std::path::PathBuf;

use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};

use scaletui::gym::{ActionSpace, Env, EnvSpec, FIGURES, StepOut, figure};

fn err(e: String) -> PyErr {
    PyValueError::new_err(e)
}

/// A Python value as a TOML value (bool, int, float, str, list, dict).
fn to_toml(v: &Bound<'_, PyAny>) -> PyResult<toml::Value> {
    if v.is_instance_of::<PyBool>() {
        return Ok(toml::Value::Boolean(v.extract()?));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(toml::Value::Integer(v.extract()?));
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(toml::Value::Float(v.extract()?));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(toml::Value::String(v.extract()?));
    }
    if let Ok(list) = v.cast::<PyList>() {
        return Ok(toml::Value::Array(list.iter().map(|x| to_toml(&x)).collect::<PyResult<_>>()?));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut t = toml::Table::new();
        for (k, x) in d.iter() {
            t.insert(k.extract::<String>()?, to_toml(&x)?);
        }
        return Ok(toml::Value::Table(t));
    }
    Err(PyValueError::new_err(format!("config value {v}: use bool, int, float, str, list or dict")))
}

/// Dotted overrides from a dict: `{"sim.seed": 3}` or nested `{"sim": {"seed": 3}}`.
fn overrides(d: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, toml::Value)>> {
    fn walk(prefix: &str, d: &Bound<'_, PyDict>, out: &mut Vec<(String, toml::Value)>) -> PyResult<()> {
        for (k, v) in d.iter() {
            let k: String = k.extract()?;
            let key = if prefix.is_empty() { k } else { format!("{prefix}.{k}") };
            match v.cast::<PyDict>() {
                Ok(inner) => walk(&key, inner, out)?,
                Err(_) => out.push((key, to_toml(&v)?)),
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if let Some(d) = d {
        walk("", d, &mut out)?;
    }
    Ok(out)
}

fn spec_of(
    scenario: &str,
    config: Option<&Bound<'_, PyDict>>,
    actions: &str,
    observe: Option<Vec<String>>,
    max_rps: Option<f64>,
    record_dir: Option<PathBuf>,
) -> PyResult<EnvSpec> {
    let mut spec = EnvSpec::new(scenario, &overrides(config)?).map_err(err)?;
    spec.actions = ActionSpace::parse(actions).map_err(err)?;
    spec.observe = observe.unwrap_or_default();
    if let Some(m) = max_rps {
        spec.max_rps = m;
    }
    spec.record_dir = record_dir;
    spec.check().map_err(err)?;
    Ok(spec)
}

/// The info dict of a step: the tick's figures (CSV names; None when there is none), the HPA's
/// answer, what was applied at the previous tick, the reward's terms.
/// The figures that are counts (ints in the info dict).
const COUNTS: &[&str] = &[
    "current_replicas",
    "ready_replicas",
    "min_replicas",
    "max_replicas",
    "pod_count",
    "hpa_sim_desired",
    "arrived",
    "served",
    "rejected",
    "timed_out",
    "failed",
];

fn info<'py>(py: Python<'py>, s: &StepOut) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let o = &s.observation;
    for f in FIGURES {
        let v = figure(o, f);
        if COUNTS.contains(f) {
            d.set_item(*f, v.map(|x| x as i64))?;
        } else {
            d.set_item(*f, v)?;
        }
    }
    // Not the wall-clock time `t`: an episode's info is the seed's alone.
    d.set_item("tick", o.tick)?;
    d.set_item("hpa_sim_action", &o.hpa_sim_action)?;
    d.set_item("mode", &o.mode)?;
    let prev = o.history.last();
    d.set_item("applied_replicas", prev.and_then(|r| r.applied_replicas))?;
    d.set_item("applied_by", prev.map(|r| r.applied_by.clone()))?;
    d.set_item("requested_replicas", s.requested)?;
    d.set_item("reward_performance", s.reward.performance)?;
    d.set_item("reward_resources", s.reward.resources)?;
    d.set_item("reward_alignment", s.reward.alignment)?;
    d.set_item("reward_latency", s.reward.latency)?;
    Ok(d)
}

/// One environment.
#[pyclass(module = "scaletui._core")]
struct RustEnv {
    inner: Env,
}

#[pymethods]
impl RustEnv {
    #[new]
    #[pyo3(signature = (scenario="", config=None, actions="delta", observe=None, max_rps=None, record_dir=None))]
    fn new(
        scenario: &str,
        config: Option<&Bound<'_, PyDict>>,
        actions: &str,
        observe: Option<Vec<String>>,
        max_rps: Option<f64>,
        record_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        let spec = spec_of(scenario, config, actions, observe, max_rps, record_dir)?;
        Ok(Self { inner: Env::new(spec).map_err(err)? })
    }

    #[getter]
    fn n_actions(&self) -> usize {
        self.inner.action_count()
    }

    #[getter]
    fn features(&self) -> Vec<String> {
        self.inner.spec.features()
    }

    #[getter]
    fn bounds(&self) -> Vec<(f32, f32)> {
        self.inner.spec.bounds()
    }

    #[getter]
    fn min_replicas(&self) -> i32 {
        self.inner.spec.cfg.scaling.min_replicas
    }

    #[getter]
    fn max_replicas(&self) -> i32 {
        self.inner.spec.cfg.scaling.max_replicas
    }

    #[getter]
    fn interval_s(&self) -> f64 {
        self.inner.spec.cfg.experiment.interval
    }

    #[getter]
    fn duration_s(&self) -> f64 {
        self.inner.spec.cfg.experiment.duration * 60.0
    }

    #[getter]
    fn scenario(&self) -> String {
        self.inner.spec.cfg.experiment.scenario.clone()
    }

    /// The CSV of the last finished episode, when recording (`record_dir`).
    #[getter]
    fn last_csv(&self) -> Option<PathBuf> {
        self.inner.last_csv.clone()
    }

    /// `(observation, info)`.
    fn reset<'py>(&mut self, py: Python<'py>, seed: u64) -> PyResult<(Bound<'py, PyArray1<f32>>, Bound<'py, PyDict>)> {
        let inner = &mut self.inner;
        let out = py.detach(|| inner.reset(seed)).map_err(PyRuntimeError::new_err)?;
        Ok((PyArray1::from_vec(py, out.obs.clone()), info(py, &out)?))
    }

    /// `(observation, reward, terminated, truncated, info)`.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        action: i64,
    ) -> PyResult<(Bound<'py, PyArray1<f32>>, f64, bool, bool, Bound<'py, PyDict>)> {
        let inner = &mut self.inner;
        let out = py.detach(|| inner.step(action)).map_err(PyRuntimeError::new_err)?;
        Ok((PyArray1::from_vec(py, out.obs.clone()), out.reward.total, out.terminated, out.truncated, info(py, &out)?))
    }

    fn close(&mut self, py: Python<'_>) {
        let inner = &mut self.inner;
        py.detach(|| inner.close());
    }
}

/// Many environments, stepped together on several threads without the GIL. An environment
/// whose episode ended is reset on its next step (Gymnasium's next-step autoreset): that step
/// returns its first observation, reward 0 and no end; its next seed is its last plus `n`.
#[pyclass(module = "scaletui._core")]
struct RustVecEnv {
    envs: Vec<Env>,
    seeds: Vec<u64>,
    ended: Vec<bool>,
    dim: usize,
}

enum Outcome {
    Stepped(StepOut),
    Reset(StepOut),
}

impl RustVecEnv {
    fn run<F>(&mut self, f: F) -> Result<Vec<Outcome>, String>
    where
        F: Fn(usize, &mut Env, &mut u64, &mut bool) -> Result<Outcome, String> + Sync,
    {
        let n = self.envs.len();
        let threads = std::thread::available_parallelism().map(|t| t.get()).unwrap_or(1).min(n).max(1);
        let chunk = n.div_ceil(threads);
        let mut results: Vec<Option<Result<Outcome, String>>> = (0..n).map(|_| None).collect();
        let f = &f;
        std::thread::scope(|s| {
            let parts = self
                .envs
                .chunks_mut(chunk)
                .zip(self.seeds.chunks_mut(chunk))
                .zip(self.ended.chunks_mut(chunk))
                .zip(results.chunks_mut(chunk))
                .enumerate();
            for (c, (((envs, seeds), ended), res)) in parts {
                s.spawn(move || {
                    for (j, (((env, seed), end), slot)) in
                        envs.iter_mut().zip(seeds.iter_mut()).zip(ended.iter_mut()).zip(res.iter_mut()).enumerate()
                    {
                        *slot = Some(f(c * chunk + j, env, seed, end));
                    }
                });
            }
        });
        results.into_iter().map(|r| r.unwrap_or_else(|| Err("internal: a thread gave no result".into()))).collect()
    }

    #[allow(clippy::type_complexity)]
    fn pack<'py>(
        &self,
        py: Python<'py>,
        outs: &[Outcome],
    ) -> PyResult<(Bound<'py, PyAny>, Vec<f64>, Vec<bool>, Vec<bool>, Bound<'py, PyList>)> {
        let mut flat = Vec::with_capacity(outs.len() * self.dim);
        let (mut rew, mut term, mut trunc) = (Vec::new(), Vec::new(), Vec::new());
        let infos = PyList::empty(py);
        for o in outs {
            let (s, stepped) = match o {
                Outcome::Stepped(s) => (s, true),
                Outcome::Reset(s) => (s, false),
            };
            flat.extend_from_slice(&s.obs);
            rew.push(if stepped { s.reward.total } else { 0.0 });
            term.push(stepped && s.terminated);
            trunc.push(stepped && s.truncated);
            let d = info(py, s)?;
            d.set_item("autoreset", !stepped)?;
            infos.append(d)?;
        }
        let arr = PyArray1::from_vec(py, flat).reshape([outs.len(), self.dim])?;
        Ok((arr.into_any(), rew, term, trunc, infos))
    }
}

#[pymethods]
impl RustVecEnv {
    #[new]
    #[pyo3(signature = (n, scenario="", config=None, actions="delta", observe=None, max_rps=None))]
    fn new(
        n: usize,
        scenario: &str,
        config: Option<&Bound<'_, PyDict>>,
        actions: &str,
        observe: Option<Vec<String>>,
        max_rps: Option<f64>,
    ) -> PyResult<Self> {
        if n == 0 {
            return Err(PyValueError::new_err("VectorEnv needs at least one environment"));
        }
        let spec = spec_of(scenario, config, actions, observe, max_rps, None)?;
        let dim = spec.features().len();
        let envs = (0..n).map(|_| Env::new(spec.clone())).collect::<Result<Vec<_>, _>>().map_err(err)?;
        Ok(Self { envs, seeds: vec![0; n], ended: vec![false; n], dim })
    }

    /// `(observations[n, d], infos)`; environment `i` starts with seed `seed + i`.
    fn reset<'py>(&mut self, py: Python<'py>, seed: u64) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyList>)> {
        let outs = py
            .detach(|| {
                self.run(|i, env, s, ended| {
                    *s = seed + i as u64;
                    *ended = false;
                    env.reset(*s).map(Outcome::Reset)
                })
            })
            .map_err(PyRuntimeError::new_err)?;
        let (obs, _, _, _, infos) = self.pack(py, &outs)?;
        Ok((obs, infos))
    }

    /// `(observations[n, d], rewards[n], terminated[n], truncated[n], infos)`.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: Vec<i64>,
    ) -> PyResult<(Bound<'py, PyAny>, Vec<f64>, Vec<bool>, Vec<bool>, Bound<'py, PyList>)> {
        let n = self.envs.len();
        if actions.len() != n {
            return Err(PyValueError::new_err(format!("{} actions for {n} environments", actions.len())));
        }
        let stride = n as u64;
        let outs = py
            .detach(|| {
                self.run(|i, env, s, ended| {
                    if *ended {
                        *s += stride;
                        *ended = false;
                        return env.reset(*s).map(Outcome::Reset);
                    }
                    let out = env.step(actions[i])?;
                    *ended = out.terminated || out.truncated;
                    Ok(Outcome::Stepped(out))
                })
            })
            .map_err(PyRuntimeError::new_err)?;
        self.pack(py, &outs)
    }

    #[getter]
    fn n_actions(&self) -> usize {
        self.envs.first().map_or(0, |e| e.action_count())
    }

    #[getter]
    fn features(&self) -> Vec<String> {
        self.envs.first().map(|e| e.spec.features()).unwrap_or_default()
    }

    #[getter]
    fn bounds(&self) -> Vec<(f32, f32)> {
        self.envs.first().map(|e| e.spec.bounds()).unwrap_or_default()
    }

    fn __len__(&self) -> usize {
        self.envs.len()
    }

    fn close(&mut self, py: Python<'_>) {
        py.detach(|| self.envs.iter_mut().for_each(Env::close));
    }
}

/// Time `steps` steps of one environment in Rust alone (no Python per step; resets not
/// counted): seconds. The benchmark compares it with the same steps from Python.
#[pyfunction]
#[pyo3(signature = (steps, scenario="", config=None, action=1))]
fn rust_step_seconds(
    py: Python<'_>,
    steps: usize,
    scenario: &str,
    config: Option<&Bound<'_, PyDict>>,
    action: i64,
) -> PyResult<f64> {
    let spec = spec_of(scenario, config, "delta", None, None, None)?;
    py.detach(|| {
        let mut env = Env::new(spec)?;
        let mut seed = 0;
        env.reset(seed)?;
        let mut spent = 0.0;
        for _ in 0..steps {
            let started = std::time::Instant::now();
            let out = env.step(action)?;
            spent += started.elapsed().as_secs_f64();
            if out.truncated || out.terminated {
                seed += 1;
                env.reset(seed)?;
            }
        }
        Ok::<_, String>(spent)
    })
    .map_err(PyRuntimeError::new_err)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RustEnv>()?;
    m.add_class::<RustVecEnv>()?;
    m.add_function(wrap_pyfunction!(rust_step_seconds, m)?)?;
    m.add("FIGURES", FIGURES.to_vec())?;
    Ok(())
}
