//! Everything that is not drawing. Nothing here imports ratatui.
pub mod clock;
pub mod cluster;
pub mod hpa;
pub mod load;
pub mod rng;
pub mod types;
