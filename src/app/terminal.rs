//! The terminal: raw mode and the alternate screen while the dashboard runs, restored on every
//! way out — normal return, `?`-error (the [`Guard`]'s drop), panic on any thread (the hook
//! restores, reports, then exits non-zero so no half-alive UI is left on a restored terminal),
//! and signals (the loop turns them into a clean stop).

use std::io::{self, BufWriter, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};

/// Output batched into one write per frame.
pub type Backend = CrosstermBackend<BufWriter<Stdout>>;

static ACTIVE: AtomicBool = AtomicBool::new(false);

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

/// A panic anywhere (the UI task, the engine, any spawned task) restores the terminal, lets the
/// previous hook report it, and exits with status 101. The CSV and events files are flushed per
/// line, so they hold every complete row.
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
        eprintln!("scaletui: stopped after an internal error; the CSV holds every row recorded so far");
        std::process::exit(101);
    }));
}
