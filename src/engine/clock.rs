//! The run's clock: the wall clock, the wall clock sped up (`--speed N`), or a virtual clock that
//! jumps to the next deadline (`--speed max`, headless only).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::Speed;

#[derive(Debug)]
pub struct Clock {
    start_wall: Instant,
    start_t: f64,
    speed: Speed,
    /// Current time in `Max` mode (f64 bits).
    virtual_now: AtomicU64,
}

pub type SharedClock = Arc<Clock>;

impl Clock {
    /// A clock that starts at `start_t` (Unix seconds) and runs at `speed`.
    pub fn new(start_t: f64, speed: Speed) -> SharedClock {
        Arc::new(Self { start_wall: Instant::now(), start_t, speed, virtual_now: AtomicU64::new(start_t.to_bits()) })
    }

    /// The real wall clock (speed 1, starting now).
    pub fn wall() -> SharedClock {
        Self::new(super::types::wall_now(), Speed::Factor(1.0))
    }

    pub fn speed(&self) -> Speed {
        self.speed
    }

    pub fn is_max(&self) -> bool {
        matches!(self.speed, Speed::Max)
    }

    pub fn start(&self) -> f64 {
        self.start_t
    }

    pub fn now(&self) -> f64 {
        match self.speed {
            Speed::Factor(f) => self.start_t + self.start_wall.elapsed().as_secs_f64() * f,
            Speed::Max => f64::from_bits(self.virtual_now.load(Ordering::Acquire)),
        }
    }

    /// Seconds since the clock started.
    pub fn elapsed(&self) -> f64 {
        self.now() - self.start_t
    }

    /// Wall time that corresponds to `d` seconds of this clock.
    pub fn wall_duration(&self, d: f64) -> Duration {
        match self.speed {
            Speed::Factor(f) => Duration::from_secs_f64((d / f).max(0.0)),
            Speed::Max => Duration::ZERO,
        }
    }

    /// Wait until the clock reads `t`. On the virtual clock this moves time forward at once.
    pub async fn sleep_until(&self, t: f64) {
        match self.speed {
            Speed::Factor(_) => {
                let d = t - self.now();
                if d > 0.0 {
                    tokio::time::sleep(self.wall_duration(d)).await;
                }
            }
            Speed::Max => {
                self.advance_to(t);
                tokio::task::yield_now().await;
            }
        }
    }

    /// Move the virtual clock forward to `t` (never backwards). No effect on a real-time clock.
    pub fn advance_to(&self, t: f64) {
        if self.is_max() {
            let mut cur = self.virtual_now.load(Ordering::Acquire);
            while f64::from_bits(cur) < t {
                match self.virtual_now.compare_exchange(cur, t.to_bits(), Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(actual) => cur = actual,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn max_clock_jumps() {
        let c = Clock::new(1000.0, Speed::Max);
        assert_eq!(c.now(), 1000.0);
        c.sleep_until(1030.0).await;
        assert_eq!(c.now(), 1030.0);
        c.sleep_until(1010.0).await;
        assert_eq!(c.now(), 1030.0, "never backwards");
    }

    #[tokio::test]
    async fn factor_clock_runs_faster() {
        let c = Clock::new(0.0, Speed::Factor(100.0));
        c.sleep_until(2.0).await; // 20 ms of wall time
        assert!(c.now() >= 2.0);
    }
}
