//! Load: rate schedules (pure) and the open-loop HTTP load generator.
pub mod schedule;

pub use schedule::{Level, Schedule};
