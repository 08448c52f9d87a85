//! `scaletui calibrate --url URL`: measure a real service and write a simulator profile.

use crate::cli::CalibrateArgs;
use crate::engine::calibrate::{CalibrateParams, calibrate, profile_toml};

pub async fn run(a: &CalibrateArgs) -> Result<(), String> {
    let params = CalibrateParams {
        url: a.url.clone(),
        probe_s: a.probe_s,
        step_s: a.step_s,
        growth: a.growth,
        max_rps: a.max_rps,
        concurrency: a.concurrency,
        timeout_s: a.timeout,
    };
    eprintln!("scaletui calibrate: measuring {}", a.url);
    let fit = calibrate(&params, |line| eprintln!("  {line}")).await?;
    let now = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC").to_string();
    let text = profile_toml(&fit, &now);
    eprintln!(
        "  fit: {} workers x {:.3} ms (cv {:.3}): {:.1} requests/s{}",
        fit.concurrency,
        fit.mean_ms,
        fit.cv,
        fit.capacity_rps,
        if fit.saturated { "" } else { " at least (never saturated)" }
    );
    if a.json {
        eprintln!("{}", serde_json::to_string_pretty(&fit).map_err(|e| e.to_string())?);
    }
    match &a.output {
        Some(p) => {
            std::fs::write(p, &text).map_err(|e| format!("{}: {e}", p.display()))?;
            eprintln!("  wrote {}", p.display());
            Ok(())
        }
        None => crate::cli::print_out(&text),
    }
}
