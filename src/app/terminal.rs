//! The terminal: raw mode and the alternate screen while the dashboard runs, restored on every
//! way out — normal return, `?`-error (the [`Guard`]'s drop), panic on any thread (the hook
//! restores and reports at once, then the loop stops the run like `q` so the engine ends its
//! tasks and restores the cluster; nothing is drawn after it), and signals (the loop turns them
//! into a clean stop).

use std::io::{self, BufWriter, Stdout, Write};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};

/// Output batched into one write per frame.
pub type Backend = CrosstermBackend<BufWriter<Stdout>>;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static PANICKED: AtomicBool = AtomicBool::new(false);
static PANIC_NOTIFY: LazyLock<tokio::sync::Notify> = LazyLock::new(tokio::sync::Notify::new);

/// How long the run may take to stop after a panic before the process exits anyway.
const PANIC_EXIT_AFTER: Duration = Duration::from_secs(90);

/// Whether a panic happened anywhere since the start.
pub fn has_panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// Resolves once a panic has happened (at once if one already has).
pub async fn panicked() {
    if has_panicked() {
        return;
    }
    PANIC_NOTIFY.notified().await;
}

/// Undo what [`enter`] did (once; safe to call from any thread, any number of times).
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let mut out = io::stdout();
        let _ = execute!(out, LeaveAlternateScreen, Show);
        let _ = out.flush();
    }
}

/// Restores the terminal when dropped.
pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Raw mode, alternate screen, hidden cursor.
pub fn enter() -> io::Result<(Terminal<Backend>, Guard)> {
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let guard = Guard;
    execute!(io::stdout(), EnterAlternateScreen, Hide)?;
    let terminal = Terminal::new(CrosstermBackend::new(BufWriter::with_capacity(1 << 16, io::stdout())))?;
    Ok((terminal, guard))
}

/// A panic anywhere (the UI task, the engine, any spawned task or thread) restores the terminal,
/// lets the previous hook report it and wakes [`panicked`]: the dashboard then stops the run like
/// `q` (stressors and load stopped, the cluster restored, the files complete) and exits with
/// status 101. Should that stop hang, a watchdog exits with 101 after [`PANIC_EXIT_AFTER`].
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("scaletui: panic: {msg}{place}");
        if !PANICKED.swap(true, Ordering::SeqCst) {
            eprintln!("scaletui: stopping the run after an internal error (tasks stopped, cluster restored)");
            PANIC_NOTIFY.notify_one();
            std::thread::spawn(|| {
                std::thread::sleep(PANIC_EXIT_AFTER);
                eprintln!(
                    "scaletui: the run did not stop within {}s of the panic; exiting",
                    PANIC_EXIT_AFTER.as_secs()
                );
                std::process::exit(101);
            });
        }
    }));
}
