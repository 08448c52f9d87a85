//! Everything that is not drawing. Nothing here imports ratatui.
pub mod hpa;
