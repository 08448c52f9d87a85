//! Learned control: seed 003's Double DQN with prioritized replay, on candle tensors.

pub mod dqn;
pub mod features;
pub mod lstm;
pub mod model;
pub mod replay;
