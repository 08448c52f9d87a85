//! scaletui: a terminal dashboard for live Kubernetes autoscaling experiments.
//!
//! - [`cli`], [`config`]: the command line and `config.toml`;
//! - [`engine`]: everything that is not drawing — the HPA algorithm, the simulated cluster, the
//!   control loop, the CSV record, load and stress, metrics, recommenders;
//! - [`run`]: assembles a run; [`headless`]: runs it without a dashboard;
//! - [`report`]: `compare` and `report` (figures, tables, plots); [`train`]: the learned model.
//! - [`app`]: the dashboard (state, update, keys, terminal); [`widgets`]: its drawing.
//! - [`cmd`]: subcommands that run one part alone (`scaletui load`, `scaletui stress`).
//! - [`fault`]: panic injection for the tests of the panic paths.
//! - [`gym`]: the simulator as a reinforcement-learning environment (the Python package's core).
pub mod app;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod engine;
pub mod fault;
pub mod gym;
pub mod headless;
pub mod report;
pub mod rl;
pub mod run;
pub mod train;
pub mod widgets;
