//! scaletui — a terminal dashboard for live Kubernetes autoscaling experiments.
//!
//! `main` wires the command line to the configuration and then to the dashboard, the headless
//! runner or a subcommand. See `src/lib.rs` for the map of the modules.

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;

use scaletui::cli::{Cli, Command, HpaCommand, print_out};
use scaletui::config;
use scaletui::engine::hpa::{self, ReconcileInput};

fn main() -> ExitCode {
    // SAFETY: the first statement of main; no other thread exists yet.
    unsafe { scaletui::engine::learn::dqn::prefer_serial_tensors() };
    // reqwest and kube share rustls with the ring provider; it must be installed first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = color_eyre::install();
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("scaletui: error: {msg}");
            ExitCode::from(2)
        }
    }
}

fn real_main(cli: Cli) -> Result<ExitCode, String> {
    // Only the dashboard draws; elsewhere a theme is checked (a typo is still an error) and has
    // no effect, which is said once.
    if let Some(t) = &cli.run.theme
        && (cli.command.is_some() || cli.run.headless)
    {
        scaletui::app::theme::load(t, false).map_err(|e| format!("--theme: {e}"))?;
        eprintln!("scaletui: --theme {t}: nothing is drawn here, so the theme has no effect");
    }
    match cli.command {
        Some(Command::Hpa(HpaCommand::Explain { file })) => hpa_explain(&file),
        Some(Command::Hpa(HpaCommand::Conformance { file })) => hpa_conformance(file.as_deref()),
        Some(Command::Config { default: true }) => {
            print_out(config::DEFAULT_CONFIG_TOML)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Compare(a)) => {
            // The compared scenario's settings go between the file and the flags.
            let (file, _) = config::load_checked(cli.run.config.as_deref(), scaletui::engine::check_config)
                .map_err(|e| e.to_string())?;
            Ok(ExitCode::from(scaletui::report::commands::run_compare(&file, &cli.run, &a)?))
        }
        Some(Command::Report(a)) => {
            let (cfg, _) = load_config(&cli.run)?;
            scaletui::report::commands::run_report(cfg, &a)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Train(a)) => {
            let (cfg, _) = load_config(&cli.run)?;
            let code = scaletui::report::commands::run_train(cfg, &a)?;
            Ok(ExitCode::from(code))
        }
        Some(Command::Config { default: false }) => {
            let (cfg, origin) = load_config(&cli.run)?;
            let text = toml::to_string_pretty(&cfg).map_err(|e| e.to_string())?;
            print_out(&format!("# configuration from {origin}, with command-line flags applied\n{text}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Load(args)) => {
            let (cfg, _origin) = load_config(&cli.run)?;
            let code = runtime()?.block_on(scaletui::cmd::load::run(*args, cfg, cli.run.speed.is_some()))?;
            Ok(ExitCode::from(code))
        }
        Some(Command::Calibrate(a)) => {
            runtime()?.block_on(scaletui::cmd::calibrate::run(&a))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Restore(args)) => {
            let (cfg, _origin) = load_config(&cli.run)?;
            let code = runtime()?.block_on(scaletui::cmd::restore::run(cfg, &args))?;
            Ok(ExitCode::from(code))
        }
        Some(Command::Stress(what)) => {
            let (cfg, _origin) = load_config(&cli.run)?;
            runtime()?.block_on(scaletui::cmd::stress::run(what, cfg, cli.run.speed.is_some()))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let (cfg, _origin) = load_config(&cli.run)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?;
            if cli.run.headless {
                rt.block_on(scaletui::headless::run(cfg)).map_err(|e| e.to_string())
            } else {
                rt.block_on(scaletui::app::run(cfg))
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Defaults < config file < scenario settings < command-line flags.
fn load_config(args: &scaletui::cli::RunArgs) -> Result<(config::Config, config::ConfigOrigin), String> {
    let (file, origin) =
        config::load_checked(args.config.as_deref(), scaletui::engine::check_config).map_err(|e| e.to_string())?;
    let cfg = scaletui::run::layered_config(&file, args, None)?;
    Ok((cfg, origin))
}

fn hpa_explain(file: &str) -> Result<ExitCode, String> {
    let text = if file == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| format!("cannot read standard input: {e}"))?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{file}: not JSON: {e}"))?;
    // Accept a whole conformance case too (its `input`).
    let value = match value.get("input") {
        Some(input) if value.get("kind").is_some() => input.clone(),
        _ => value,
    };
    let input: ReconcileInput =
        serde_json::from_value(value).map_err(|e| format!("{file}: not an HPA situation: {e}"))?;
    let out = hpa::reconcile(&input);
    let json = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
    print_out(&format!("{json}\n"))?;
    Ok(ExitCode::SUCCESS)
}

fn hpa_conformance(file: Option<&std::path::Path>) -> Result<ExitCode, String> {
    // Without a file: the 140 cases of the specification and the ones ported from Kubernetes'
    // own tests beside them.
    let texts: Vec<(String, String)> = match file {
        Some(p) => {
            vec![(p.display().to_string(), std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?)]
        }
        None => vec![
            ("hpa_cases.json".into(), include_str!("../tests/data/hpa_cases.json").to_string()),
            ("hpa_upstream_cases.json".into(), include_str!("../tests/data/hpa_upstream_cases.json").to_string()),
        ],
    };
    let mut results = Vec::new();
    for (name, text) in &texts {
        let cases: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("{name}: not JSON: {e}"))?;
        results.extend(hpa::conformance::run_all(&cases).map_err(|e| format!("{name}: {e}"))?);
    }
    let failed: Vec<_> = results.iter().filter(|r| !r.passed).collect();
    let mut text = String::new();
    for f in &failed {
        text += &format!("FAIL {} ({}): {}\n", f.id, f.kind, f.detail);
    }
    text += &format!("hpa conformance: {} passed, {} failed\n", results.len() - failed.len(), failed.len());
    print_out(&text)?;
    Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
