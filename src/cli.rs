//! The command line (PRODUCT.md §1). Options keep the seed experiment runner's names and
//! defaults; every option also has a `config.toml` key, and flags override the file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Backend, Config, ConfigError, MetricsSourceKind, Speed, validate};
use crate::engine::types::{Fallback, Mode};

#[derive(Debug, Parser)]
#[command(
    name = "scaletui",
    allow_negative_numbers = true,
    version,
    about = "A terminal dashboard for live Kubernetes autoscaling experiments: the HPA beside AI and predictive autoscalers.",
    long_about = "scaletui runs an autoscaling experiment on one Deployment and shows it live: replicas, CPU, \
memory, latency, what the Kubernetes HPA algorithm would decide and what an AI model recommends and why. \
With no options it runs against an embedded simulated cluster. Every run is recorded to CSV."
)]
pub struct Cli {
    #[command(flatten)]
    pub run: RunArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options of a run (the dashboard or `--headless`).
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Who is in control: hpa_only, ai_scaler or comparison [default: comparison]
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<Mode>,
    /// Seconds between control ticks [default: 30]
    #[arg(long)]
    pub interval: Option<f64>,
    /// Minutes to run; 0 = until quit [default: 0]
    #[arg(long)]
    pub duration: Option<f64>,
    /// Prometheus base URL [default: http://localhost:9090]
    #[arg(long)]
    pub prometheus_url: Option<String>,
    /// OpenAI-compatible base URL of the model server [default: http://localhost:11434/v1]
    #[arg(long, visible_alias = "ai-url")]
    pub ollama_url: Option<String>,
    /// Model name [default: qwen2.5-coder:3b]
    #[arg(long)]
    pub model: Option<String>,
    /// Namespace of the deployment [default: default]
    #[arg(long)]
    pub namespace: Option<String>,
    /// The deployment under test [default: webapp]
    #[arg(long)]
    pub deployment: Option<String>,
    /// [default: 1]
    #[arg(long)]
    pub min_replicas: Option<i32>,
    /// [default: 10]
    #[arg(long)]
    pub max_replicas: Option<i32>,
    /// CPU target, percent of the request [default: 60]
    #[arg(long)]
    pub cpu_target: Option<i32>,
    /// Memory target, percent of the request [default: 80]
    #[arg(long)]
    pub memory_target: Option<i32>,
    /// Minutes of history for the advisor and the charts [default: 15]
    #[arg(long)]
    pub history_minutes: Option<f64>,
    /// Where CSV records go [default: ./experiment_data]
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Debug logging to <output-dir>/scaletui.log
    #[arg(long)]
    pub verbose: bool,
    /// sim (embedded simulated cluster) or kube (your kubeconfig) [default: sim]
    #[arg(long, value_parser = parse_backend)]
    pub backend: Option<Backend>,
    /// kubeconfig context (kube backend)
    #[arg(long)]
    pub context: Option<String>,
    /// Metric source: sim, prometheus or metrics-server
    #[arg(long, value_parser = parse_metrics)]
    pub metrics: Option<MetricsSourceKind>,
    /// Configuration file (else $SCALETUI_CONFIG, ./config.toml, the user config folder)
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Theme name (themes/*.toml) or path
    #[arg(long)]
    pub theme: Option<String>,
    /// Refuse every write to the cluster
    #[arg(long)]
    pub read_only: bool,
    /// Leave scaletui's changes (HPA deleted or created) in place on exit
    #[arg(long)]
    pub keep_changes: bool,
    /// At start, put back an HPA that an earlier run removed (ai_scaler) and never restored
    #[arg(long)]
    pub restore_hpa: bool,
    /// No dashboard: progress lines on stderr, CSV paths on stdout at the end
    #[arg(long)]
    pub headless: bool,
    /// Simulator clock: N times real time, or max (headless only) [default: 10]
    #[arg(long, value_parser = parse_speed)]
    pub speed: Option<Speed>,
    /// Seed of the simulator's randomness [default: 42]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Scenario file scripting load phases, stress windows and mode switches
    #[arg(long)]
    pub scenario: Option<String>,
    /// What ai_scaler applies when the advisor has no answer: hold or hpa_sim [default: hpa_sim]
    #[arg(long, value_parser = parse_fallback)]
    pub fallback: Option<Fallback>,
    /// Who drives in ai_scaler: ai, queue, forecast, learned, dqn (or dqn:MODEL_DIR, learned:MODEL), exec:CMD (a policy process), http:URL [default: ai]
    #[arg(long)]
    pub driver: Option<String>,
    /// How ai_scaler applies a recommendation: behavior (through [scaling.behavior]'s windows
    /// and policies, as the HPA would) or none (as recommended) [default: behavior]
    #[arg(long, value_parser = parse_apply_limits)]
    pub apply_limits: Option<crate::config::ApplyLimits>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The HPA algorithm on its own.
    #[command(subcommand)]
    Hpa(HpaCommand),
    /// Print the configuration in effect (after the file and flags), or the built-in default.
    Config {
        /// Print the built-in, fully commented default config.toml instead.
        #[arg(long)]
        default: bool,
    },
    /// Run one scenario on the simulator once per policy (headless, virtual time) and compare:
    /// a table on stdout, summary.csv, plots (PNG and SVG) and each run's CSV in --output-dir.
    Compare(CompareArgs),
    /// The same table and plots from recorded CSVs (simulated or real-cluster runs).
    Report(ReportArgs),
    /// Train a model: `train CSV... -o model.json` (or `train forest`) fits the `learned`
    /// recommender's random forest on recorded CSVs; `train dqn --scenario FILE -o DIR` trains
    /// seed 003's Double DQN on the simulator.
    Train(TrainArgs),
    /// The open-loop HTTP load generator alone: a live line per second, a latency summary at
    /// the end. Without --url it targets the configured cluster (the simulator's endpoint, or a
    /// port-forward to the deployment's Service).
    #[command(allow_negative_numbers = true)]
    Load(Box<LoadArgs>),
    /// Put back the HPA that an ai_scaler run removed and never restored (killed, the API server
    /// gone at exit), from the cluster's saved copy or this machine's; with --backend kube.
    Restore(RestoreArgs),
    /// The CPU and memory stressors alone, on the configured cluster's pods (sim or kube).
    #[command(subcommand, allow_negative_numbers = true)]
    Stress(StressCommand),
    /// Fit the simulator's service law to a real service: a probe one request at a time, then
    /// open-loop steps of rising rate until it falls behind; writes a [sim] profile that
    /// scenarios include.
    Calibrate(CalibrateArgs),
}

/// `scaletui calibrate`.
#[derive(Debug, Clone, Args)]
pub struct CalibrateArgs {
    /// The service to measure
    #[arg(long)]
    pub url: String,
    /// Where the profile goes [default: standard output]
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Seconds of the probe (one request at a time)
    #[arg(long, default_value_t = 5.0)]
    pub probe_s: f64,
    /// Seconds per step of the sweep
    #[arg(long, default_value_t = 4.0)]
    pub step_s: f64,
    /// Rate factor from one step to the next
    #[arg(long, default_value_t = 1.5)]
    pub growth: f64,
    /// Highest rate offered (requests/s)
    #[arg(long, default_value_t = 100_000.0)]
    pub max_rps: f64,
    /// Most requests in flight at once during the sweep
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Seconds before a request counts as timed out
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Print the fit as JSON too (on standard error)
    #[arg(long)]
    pub json: bool,
}

/// `scaletui load`: the seed tool's flags plus patterns, concurrency, timeout and JSON output.
/// Flags left out take their `[load]` value from the configuration.
#[derive(Debug, Clone, Default, Args)]
pub struct LoadArgs {
    /// Target URL [default: load.url, else the cluster's load target]
    #[arg(long)]
    pub url: Option<String>,
    /// Requests per second of the constant pattern (given alone, it selects that pattern)
    #[arg(long)]
    pub rps: Option<f64>,
    /// Seconds; the run lasts duration + hold [default: 300]
    #[arg(long)]
    pub duration: Option<f64>,
    /// Rate at the start of the ramp (any --ramp-* flag selects the ramp pattern)
    #[arg(long)]
    pub ramp_start: Option<f64>,
    /// Rate at the end of the ramp, held after it
    #[arg(long)]
    pub ramp_end: Option<f64>,
    /// Seconds the ramp takes
    #[arg(long)]
    pub ramp_duration: Option<f64>,
    /// Extra seconds after --duration [default: 0]
    #[arg(long)]
    pub hold: Option<f64>,
    /// constant, ramp, step, sine, trace or wave (seed 003's arrival-rate generator over
    /// --duration + --hold seconds, 15 s intervals, 3–260 requests/min)
    #[arg(long)]
    pub pattern: Option<String>,
    /// Trace file for --pattern trace: one requests-per-second value per second
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Steps of --pattern step (between --ramp-start and --ramp-end over --ramp-duration)
    #[arg(long)]
    pub steps: Option<u32>,
    /// Period in seconds of --pattern sine (between --ramp-start and --ramp-end)
    #[arg(long)]
    pub period: Option<f64>,
    /// Seed of --pattern wave [default: load.wave_seed, 100]
    #[arg(long)]
    pub wave_seed: Option<u64>,
    /// Most requests in flight (and connections) at once [default: 256]
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Seconds a request may take [default: 5]
    #[arg(long)]
    pub timeout: Option<f64>,
    /// HTTP method [default: GET]
    #[arg(long)]
    pub method: Option<String>,
    /// Extra header "Name: value" (repeatable)
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// Request body
    #[arg(long)]
    pub body: Option<String>,
    /// Closed loop instead of a schedule: each connection sends its next request when the
    /// previous answer arrives, for --duration + --hold (the most the target serves)
    #[arg(long)]
    pub max_rate: bool,
    /// HTTP client: raw (default: scaletui's own, one write and one read per request), hyper, or
    /// reqwest (always used for https://)
    #[arg(long, value_parser = parse_client)]
    pub client: Option<crate::engine::load::client::ClientKind>,
    /// Print the final summary (and every second) as JSON on stdout; live lines go to stderr
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum StressCommand {
    /// Busy-loop workers in every pod (new pods are picked up every --refresh seconds).
    #[command(allow_negative_numbers = true)]
    Cpu {
        /// Workers per pod [default: 2]
        #[arg(long)]
        workers: Option<u32>,
        /// Seconds; 0 = until Ctrl-C [default: 300]
        #[arg(long)]
        duration: Option<f64>,
        /// At most this many pods; 0 = all [default: 0]
        #[arg(long)]
        max_pods: Option<usize>,
        /// Seconds between looks for new pods [default: 15]
        #[arg(long)]
        refresh: Option<f64>,
    },
    /// Hold MiB in every pod's /dev/shm (after checking free space; always removed at the end).
    #[command(allow_negative_numbers = true)]
    Memory {
        /// MiB per pod [default: 50]
        #[arg(long)]
        mb: Option<u64>,
        /// Seconds; 0 = until Ctrl-C [default: 300]
        #[arg(long)]
        duration: Option<f64>,
        /// At most this many pods; 0 = all [default: 0]
        #[arg(long)]
        max_pods: Option<usize>,
    },
}

fn parse_client(s: &str) -> Result<crate::engine::load::client::ClientKind, String> {
    s.parse()
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The deployment whose HPA was removed [default: the configured one]
    #[arg(long)]
    pub deployment: Option<String>,
    /// Its namespace [default: the configured one]
    #[arg(long)]
    pub namespace: Option<String>,
    /// kubeconfig context [default: the current one]
    #[arg(long)]
    pub context: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Scenario file (or a name in scenarios/); repeat for a sweep over several scenarios
    #[arg(long, required = true)]
    pub scenario: Vec<String>,
    /// Comma-separated: hpa, hpa:TARGET, queue, forecast, learned, ai, exec:CMD (a policy process; no commas in CMD), http:URL
    #[arg(long, default_value = "hpa:70,hpa:90,queue,forecast")]
    pub policies: String,
    /// Seed of the simulator (the same seed gives the same figures)
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// A sweep over seeds: `1..30` (inclusive), `1,2,5` or both (`1..10,20`); with statistics
    #[arg(long)]
    pub seeds: Option<String>,
    /// Runs at once in a sweep [default: the number of cores]
    #[arg(long)]
    pub jobs: Option<usize>,
    /// The policy the others are compared with in a sweep [default: the first]
    #[arg(long)]
    pub baseline: Option<String>,
    /// Bootstrap resamples for the confidence intervals of a sweep
    #[arg(long, default_value_t = 2000)]
    pub resamples: usize,
    /// KEY=V1,V2,...: one policy row per value of a configuration key (repeatable: all combinations)
    #[arg(long)]
    pub vary: Vec<String>,
    /// Minutes per policy [default: the scenario's length + 10 minutes]
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds between control ticks [default: experiment.interval]
    #[arg(long)]
    pub interval: Option<f64>,
    /// Where runs, summary.csv and plots go [default: ./experiment_data/compare_<UTC time>]
    #[arg(long, short = 'o')]
    pub output_dir: Option<PathBuf>,
    /// SLO in milliseconds [default: report.slo_ms]
    #[arg(long)]
    pub slo_ms: Option<f64>,
}

impl CompareArgs {
    /// A sweep (several scenarios, seeds or values) rather than one run per policy.
    pub fn is_sweep(&self) -> bool {
        self.scenario.len() > 1 || self.seeds.is_some() || !self.vary.is_empty()
    }
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Recorded CSVs; LABEL=PATH names a run (default: the file name)
    pub csv: Vec<String>,
    /// NAME=A.csv,B.csv,...: repeated runs of one policy; with statistics over the runs (repeatable)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Group the CSVs by the policy they recorded (mode, and driver in ai_scaler); with statistics
    #[arg(long)]
    pub group: bool,
    /// The group the others are compared with [default: the first]
    #[arg(long)]
    pub baseline: Option<String>,
    /// Bootstrap resamples for the confidence intervals of grouped runs
    #[arg(long, default_value_t = 2000)]
    pub resamples: usize,
    /// One row per phase: split runs where the mode (or the driver) changes
    #[arg(long)]
    pub by_phase: bool,
    /// Where summary.csv and plots go [default: ./experiment_data/report_<UTC time>]
    #[arg(long, short = 'o')]
    pub output_dir: Option<PathBuf>,
    /// SLO in milliseconds [default: report.slo_ms]
    #[arg(long)]
    pub slo_ms: Option<f64>,
}

#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TrainArgs {
    #[command(subcommand)]
    pub kind: Option<TrainKind>,
    /// `scaletui train CSV... -o model.json`: the random forest (as `train forest`)
    #[command(flatten)]
    pub forest: ForestArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TrainKind {
    /// Seed 003's Double DQN with prioritized replay, trained on the simulator (episodes of a
    /// scenario in virtual time); writes DIR/model.safetensors + model.json, the learning curve
    /// and an evaluation on held-out seeds beside the HPA algorithm. Resumes from DIR/checkpoint.
    Dqn(TrainDqnArgs),
    /// The `learned` recommender's random forest, fitted on recorded CSVs.
    Forest(ForestArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ForestArgs {
    /// Recorded CSVs to learn from
    #[arg(required = true)]
    pub csv: Vec<PathBuf>,
    /// The model file to write
    #[arg(long, short = 'o', required = true)]
    pub output: Option<PathBuf>,
    /// Ticks ahead the labels look at
    #[arg(long, default_value_t = 10)]
    pub lookahead: usize,
    /// Trees in the forest
    #[arg(long, default_value_t = 100)]
    pub trees: usize,
    /// Deepest split level
    #[arg(long, default_value_t = 15)]
    pub max_depth: usize,
    /// Fraction of each run, at its end, held out for evaluation
    #[arg(long, default_value_t = 0.2)]
    pub holdout: f64,
    /// Seed of the bootstrap samples
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Label bounds [default: scaling.min_replicas / max_replicas]
    #[arg(long)]
    pub min_replicas: Option<i32>,
    #[arg(long)]
    pub max_replicas: Option<i32>,
}

#[derive(Debug, Clone, Args)]
pub struct TrainDqnArgs {
    /// The scenario of the training episodes (a file, or a name in scenarios/)
    #[arg(long, required = true)]
    pub scenario: String,
    /// Training steps (one per control tick; seed 003 trains 83,000)
    #[arg(long, default_value_t = 83_000)]
    pub steps: u64,
    /// Seed of the network, the exploration and the episodes' seeds
    #[arg(long, default_value_t = 100)]
    pub seed: u64,
    /// The model directory
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// A checkpoint (and the model so far) every this many steps; 0 = only at the end
    #[arg(long, default_value_t = 5000)]
    pub checkpoint_every: u64,
    /// Held-out seeds of the evaluation episodes (`1..10`, `1,5,9`); `none` to skip it
    #[arg(long, default_value = "900001..900010")]
    pub eval_seeds: String,
    /// Start over even when the directory has a checkpoint (it is replaced)
    #[arg(long)]
    pub fresh: bool,
    /// A configuration setting for the episodes, KEY=VALUE (repeatable), e.g.
    /// `--set scaling.max_replicas=13 --set reward.preset=slo_cost`
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum HpaCommand {
    /// Explain one HPA decision: reads a JSON situation (the shape of a conformance `reconcile`
    /// case's input: spec, pods, metrics, history) from FILE or `-` (stdin) and prints the
    /// decision with each step that shaped it.
    Explain {
        /// JSON file, or - for standard input
        file: String,
    },
    /// Run conformance cases (the schema of tests/data/hpa_cases.json) and print the results.
    Conformance {
        /// JSON file of cases [default: the built-in cases]
        file: Option<PathBuf>,
    },
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
}

fn parse_fallback(s: &str) -> Result<Fallback, String> {
    s.parse()
}

fn parse_apply_limits(s: &str) -> Result<crate::config::ApplyLimits, String> {
    match s {
        "behavior" => Ok(crate::config::ApplyLimits::Behavior),
        "none" => Ok(crate::config::ApplyLimits::None),
        _ => Err(format!("unknown apply_limits {s:?} (behavior, none)")),
    }
}

fn parse_speed(s: &str) -> Result<Speed, String> {
    s.parse()
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    match s {
        "sim" => Ok(Backend::Sim),
        "kube" => Ok(Backend::Kube),
        _ => Err(format!("unknown backend {s:?} (sim, kube)")),
    }
}

fn parse_metrics(s: &str) -> Result<MetricsSourceKind, String> {
    match s {
        "sim" => Ok(MetricsSourceKind::Sim),
        "prometheus" => Ok(MetricsSourceKind::Prometheus),
        "metrics-server" => Ok(MetricsSourceKind::MetricsServer),
        _ => Err(format!("unknown metrics source {s:?} (sim, prometheus, metrics-server)")),
    }
}

impl RunArgs {
    /// Flags override the file. The result is validated again, naming the flag.
    pub fn apply(&self, cfg: &mut Config) -> Result<(), ConfigError> {
        let e = &mut cfg.experiment;
        set(&mut e.mode, self.mode);
        set(&mut e.interval, self.interval);
        if self.interval.is_some() {
            // An explicit --interval also holds for the dashboard on the simulator.
            cfg.ui.sim_interval = 0.0;
        }
        set(&mut e.duration, self.duration);
        set(&mut e.history_minutes, self.history_minutes);
        set(&mut e.output_dir, self.output_dir.clone());
        set(&mut e.scenario, self.scenario.clone());
        set(&mut e.fallback, self.fallback);
        set(&mut e.driver, self.driver.clone());
        e.verbose |= self.verbose;
        set(&mut cfg.scaling.apply_limits, self.apply_limits);
        let c = &mut cfg.cluster;
        set(&mut c.backend, self.backend);
        set(&mut c.context, self.context.clone());
        set(&mut c.namespace, self.namespace.clone());
        set(&mut c.deployment, self.deployment.clone());
        c.read_only |= self.read_only;
        c.keep_changes |= self.keep_changes;
        c.restore_hpa |= self.restore_hpa;
        let s = &mut cfg.scaling;
        set(&mut s.min_replicas, self.min_replicas);
        set(&mut s.max_replicas, self.max_replicas);
        set(&mut s.cpu_target, self.cpu_target);
        set(&mut s.memory_target, self.memory_target);
        set(&mut cfg.metrics.source, self.metrics);
        set(&mut cfg.metrics.prometheus_url, self.prometheus_url.clone());
        set(&mut cfg.advisor.url, self.ollama_url.clone());
        set(&mut cfg.advisor.model, self.model.clone());
        set(&mut cfg.sim.speed, self.speed);
        set(&mut cfg.sim.seed, self.seed);
        set(&mut cfg.ui.theme, self.theme.clone());
        validate(cfg).map_err(|(key, message)| ConfigError {
            file: "command line".into(),
            line: None,
            key: Some(flag_for(&key).unwrap_or(key)),
            message,
        })
    }
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

/// The flag that sets a config key, for error messages.
fn flag_for(key: &str) -> Option<String> {
    let flag = match key {
        "experiment.interval" => "--interval",
        "experiment.duration" => "--duration",
        "experiment.history_minutes" => "--history-minutes",
        "scaling.min_replicas" => "--min-replicas",
        "scaling.max_replicas" => "--max-replicas",
        "scaling.cpu_target" => "--cpu-target",
        "scaling.memory_target" => "--memory-target",
        "metrics.prometheus_url" => "--prometheus-url",
        "advisor.url" => "--ollama-url",
        "advisor.model" => "--model",
        _ => return None,
    };
    Some(format!("{flag} (config {key})"))
}

/// Writes `text` to standard output. A reader that went away (`scaletui … | head`) is not an
/// error: the output is simply no longer wanted. Any other failure (a full disk behind a
/// redirection) is reported instead of panicking as `print!` would.
pub fn print_out(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write to standard output: {e}")),
    }
}
