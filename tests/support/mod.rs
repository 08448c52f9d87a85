//! Helpers shared by the integration tests and benches (`mod support;`).
#![allow(dead_code)]

pub mod openai_stub;
