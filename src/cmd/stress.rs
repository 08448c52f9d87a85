//! `scaletui stress cpu|memory`: the stressors on their own.
use crate::cli::StressCommand;
use crate::config::Config;

pub async fn run(_what: StressCommand, _cfg: Config, _speed_flag: bool) -> Result<(), String> {
    Err("todo".into())
}
