//! The real binary in a real terminal: tmux (installed by scripts/test.sh) runs `scaletui` on the
//! simulated cluster; the tests type keys with `send-keys`, read the screen with `capture-pane`,
//! then check that the terminal is back to normal and what the files hold.
//!
//! Each test runs its own tmux server on a private socket, so they run in parallel and never
//! touch a user's sessions.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Tmux {
    socket: PathBuf,
}

fn tmux_available() {
    let ok = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    assert!(ok, "tmux is needed by this test (scripts/test.sh installs it: apt-get install tmux)");
}

impl Tmux {
    /// Start `script` (a shell command) in a `w`×`h` pane.
    fn start(dir: &Path, script: &str, w: u16, h: u16) -> Self {
        tmux_available();
        let t = Tmux { socket: dir.join("tmux.sock") };
        let out =
            t.run(&["new-session", "-d", "-s", "e2e", "-x", &w.to_string(), "-y", &h.to_string(), "sh", "-c", script]);
        assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));
        t
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux runs")
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let out = self.run(&["send-keys", "-t", "e2e", k]);
            assert!(out.status.success(), "send-keys {k}: {}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "e2e"]).stdout).to_string()
    }

    /// Wait until the screen satisfies `pred` (or fail with the last screen).
    fn wait(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}; the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_text(&self, text: &str, secs: u64) -> String {
        self.wait(&format!("{text:?}"), secs, |s| s.contains(text))
    }

    fn pane_pid(&self) -> u32 {
        let out = self.run(&["display-message", "-p", "-t", "e2e", "#{pane_pid}"]);
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("pane pid")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The shell command: run scaletui, then show its exit status and the terminal's modes.
fn script(out: &Path, env: &str) -> String {
    // Stressors long enough that only `x` or the exit ends them (two wall minutes at ×10), and a
    // config file the forms are prefilled from.
    let config = out.with_extension("toml");
    std::fs::write(
        &config,
        "[stress.cpu]\nworkers = 3\nduration = 1200\n\n[stress.memory]\nmb = 20\nduration = 1200\n",
    )
    .expect("config");
    format!(
        "cd {root} && env -u SCALETUI_CONFIG -u NO_COLOR {env} {bin} --config {config} --output-dir {out}; echo EXIT=$?; stty -a; sleep 120",
        root = env!("CARGO_MANIFEST_DIR"),
        bin = env!("CARGO_BIN_EXE_scaletui"),
        config = config.display(),
        out = out.display(),
    )
}

/// `stty -a` in the pane after the exit shows a terminal in its normal (cooked) mode.
fn assert_terminal_restored(t: &Tmux, screen: &str) {
    let words: Vec<&str> = screen.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig", "opost"] {
        assert!(words.contains(&flag), "{flag} is on after the exit:\n{screen}");
        assert!(!words.contains(&format!("-{flag}").as_str()), "-{flag}: still in raw mode:\n{screen}");
    }
    let alt = t.run(&["display-message", "-p", "-t", "e2e", "#{alternate_on}"]);
    assert_eq!(String::from_utf8_lossy(&alt.stdout).trim(), "0", "left the alternate screen");
}

fn rows_shown(screen: &str) -> usize {
    screen.split(" rows").next().and_then(|head| head.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn files(dir: &Path) -> (PathBuf, PathBuf) {
    let mut csv = None;
    let mut events = None;
    for e in std::fs::read_dir(dir).expect("output dir").flatten() {
        let p = e.path();
        let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if name.starts_with("experiment_") && name.ends_with("_events.csv") {
            events = Some(p);
        } else if name.starts_with("experiment_") && name.ends_with(".csv") {
            csv = Some(p);
        }
    }
    (csv.expect("the run's CSV"), events.expect("the events file"))
}

fn records(path: &Path) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(path).expect("readable CSV");
    r.records().map(|x| x.expect("complete row")).collect()
}

/// The percentage shown on the progress line of the task titled `title`.
fn progress_of(screen: &str, title: &str) -> Option<u32> {
    let lines: Vec<&str> = screen.lines().collect();
    let i = lines.iter().position(|l| l.contains(title))?;
    let next = lines.get(i + 1)?;
    let pct = next.split('%').next()?;
    pct.rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[test]
fn drive_the_dashboard_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("data");
    let t = Tmux::start(dir.path(), &script(&out, ""), 160, 48);

    // It starts on the simulated cluster and the charts fill.
    t.wait("the simulated cluster and a few rows", 60, |s| s.contains("SIMULATED") && rows_shown(s) >= 3);

    // ai_scaler asks first.
    t.keys(&["2"]);
    t.wait_text("Switch to ai_scaler?", 10);
    t.keys(&["y"]);
    t.wait_text("mode ai_scaler", 15);

    // A CPU stress from its form: it shows in the tasks panel and its progress moves.
    t.keys(&["c"]);
    t.wait("the CPU stress form, prefilled from the config", 10, |s| {
        s.contains("CPU stress") && s.contains("workers     3") && s.contains("duration s  1200")
    });
    t.keys(&["Enter"]);
    t.wait("the CPU stress running with progress", 30, |s| {
        s.contains("#1 cpu stress") && progress_of(s, "#1 cpu stress").is_some_and(|p| p >= 1)
    });

    // A load ramp from its form: it runs against the simulated cluster's HTTP endpoint and its
    // progress line moves.
    t.keys(&["l"]);
    t.wait_text("Load generator", 10);
    t.keys(&["Enter"]);
    t.wait("the load ramp running with progress", 30, |s| progress_of(s, "#2 load").is_some_and(|p| p >= 1));

    // `x` stops the selected task: the newest running one, the load ramp ...
    t.keys(&["x"]);
    t.wait("the load ramp stopped", 20, |s| s.contains("#2 load  stopped"));
    // ... then the selection falls back to the CPU stress, still running.
    t.keys(&["x"]);
    t.wait("the CPU stress stopped", 20, |s| s.contains("#1 cpu stress  done"));

    // Export what the dashboard holds.
    t.keys(&["e"]);
    t.wait_text("Export to CSV", 10);
    t.keys(&["Enter"]);
    let s = t.wait_text("exported ", 20);
    // The toast on the bottom line.
    let line = s.lines().rev().find(|l| l.trim_start().starts_with("exported ")).expect("toast");
    let (n, path) =
        line.trim().strip_prefix("exported ").and_then(|r| r.split_once(" rows to ")).expect("exported N rows to PATH");
    let n: usize = n.parse().expect("a row count");
    let exported = records(Path::new(path.trim()));
    assert!(n >= 3 && exported.len() == n, "export holds {} rows, said {n}", exported.len());

    // A memory stress keeps running, so quitting asks.
    t.keys(&["m"]);
    t.wait_text("Memory stress", 10);
    t.keys(&["Enter"]);
    t.wait_text("#3 memory stress", 20);
    t.keys(&["q"]);
    t.wait_text("Quit?", 10);
    t.keys(&["y"]);
    let s = t.wait("the exit", 60, |s| s.contains("EXIT=") && s.contains("speed"));
    assert!(s.contains("EXIT=0"), "{s}");
    assert!(s.contains("scaletui: quit ("), "the summary is printed after the exit:\n{s}");
    assert_terminal_restored(&t, &s);

    // The record: rows, and the events of every step.
    let (csv, events) = files(&out);
    let rows = records(&csv);
    assert!(rows.len() >= n, "the run's CSV holds {} rows (the export had {n})", rows.len());
    let ev: Vec<(String, String)> = records(&events).iter().map(|r| (r[2].to_string(), r[4].to_string())).collect();
    let has = |kind: &str, text: &str| ev.iter().any(|(k, d)| k == kind && d.contains(text));
    assert!(has("mode_switch", "comparison -> ai_scaler (key)"), "{ev:?}");
    assert!(has("task_start", "#1 cpu stress"), "{ev:?}");
    assert!(has("task_stop", "#1 cpu stress stopped"), "{ev:?}");
    assert!(has("task_start", "#2 load"), "{ev:?}");
    assert!(has("task_stop", "#2 load"), "{ev:?}");
    // The rows recorded while the ramp ran carry what it achieved.
    let header = csv::Reader::from_path(&csv).expect("readable CSV").headers().expect("a header").clone();
    let col = header.iter().position(|h| h == "load_achieved_rps").expect("a load_achieved_rps column");
    let achieved = rows.iter().filter_map(|r| r[col].parse::<f64>().ok()).fold(0.0_f64, f64::max);
    assert!(achieved > 0.0, "no row records achieved load: {header:?}");
    assert!(!has("task_failed", "#2 load"), "{ev:?}");
    assert!(has("task_start", "#3 memory stress"), "{ev:?}");
    assert!(has("task_stop", "#3 memory stress stopped at exit"), "{ev:?}");
    assert!(has("restore", ""), "the HPA removed by ai_scaler is restored: {ev:?}");
    assert!(has("run_end", "quit"), "{ev:?}");
}

/// SIGTERM stops the run like `q` (no question), restores the terminal, completes the files.
#[test]
fn sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("data");
    let t = Tmux::start(dir.path(), &script(&out, ""), 100, 30);
    t.wait("a few rows", 60, |s| rows_shown(s) >= 2);
    t.keys(&["c"]);
    t.wait_text("CPU stress", 10);
    t.keys(&["Enter"]);
    t.wait_text("#1 cpu stress", 20);
    // The pane runs `sh -c`; scaletui is its child.
    let shell = t.pane_pid();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).expect("children");
    let pid: u32 = children.split_whitespace().next().and_then(|p| p.parse().ok()).expect("scaletui's pid");
    let kill = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    assert!(kill.success());
    let s = t.wait("the exit", 60, |s| s.contains("EXIT=") && s.contains("speed"));
    assert!(s.contains("EXIT=0"), "{s}");
    assert_terminal_restored(&t, &s);
    let (csv, events) = files(&out);
    assert!(records(&csv).len() >= 2);
    let ev: Vec<String> = records(&events).iter().map(|r| format!("{} {}", &r[2], &r[4])).collect();
    assert!(ev.iter().any(|e| e.starts_with("task_stop #1 cpu stress stopped at exit")), "{ev:?}");
    assert!(ev.iter().any(|e| e.starts_with("run_end quit")), "{ev:?}");
}

/// A panic in a background task restores the terminal and exits non-zero.
/// A panic anywhere — a background task, the engine, the dashboard's own loop — restores the
/// terminal at once, then the run still ends cleanly: the HPA that ai_scaler removed is put back
/// (by the engine's own end, or by the dashboard when the engine itself is gone), the files hold
/// complete rows, and the exit status is 101.
fn panic_in(place: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("data");
    let trigger = dir.path().join("panic-now");
    let env = format!("SCALETUI_FAULT_PANIC_IN={place} SCALETUI_FAULT_PANIC_WHEN_FILE={}", trigger.display());
    let t = Tmux::start(dir.path(), &script(&out, &env), 120, 60);
    t.wait("a few rows", 60, |s| s.contains("SIMULATED") && rows_shown(s) >= 2);
    // ai_scaler deletes the simulated HPA: something to restore.
    t.keys(&["2"]);
    t.wait_text("Switch to ai_scaler?", 10);
    t.keys(&["y"]);
    t.wait_text("mode ai_scaler", 15);
    std::fs::write(&trigger, b"").expect("trigger");

    let s = t.wait("the exit", 60, |s| s.contains("EXIT=") && s.contains("speed"));
    assert!(s.contains("EXIT=101"), "{place}: {s}");
    assert!(
        s.contains(&format!(
            "scaletui: panic: fault injected in {}",
            match place {
                "task" => "a task",
                "engine" => "the engine",
                _ => "the dashboard",
            }
        )),
        "{place}: the panic is reported:\n{s}"
    );
    assert!(s.contains("restored: restored the HPA as it was at start"), "{place}: the HPA is restored:\n{s}");
    assert_terminal_restored(&t, &s);
    let (csv, events) = files(&out);
    assert!(!records(&csv).is_empty(), "{place}: rows before the panic");
    let ev: Vec<String> = records(&events).iter().map(|r| r[2].to_string()).collect();
    if place == "engine" {
        // The engine is gone: the dashboard restored the cluster, the events file stops short.
        assert!(!ev.iter().any(|k| k == "run_end"), "{place}: {ev:?}");
    } else {
        // The engine ended the run itself.
        assert!(ev.iter().any(|k| k == "restore") && ev.iter().any(|k| k == "run_end"), "{place}: {ev:?}");
    }
}

#[test]
fn a_panic_in_a_background_task_stops_the_run_cleanly() {
    panic_in("task");
}

#[test]
fn a_panic_in_the_engine_still_restores_the_cluster() {
    panic_in("engine");
}

#[test]
fn a_panic_in_the_dashboard_loop_stops_the_run_cleanly() {
    panic_in("ui");
}
