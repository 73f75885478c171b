//! Helpers for the server's integration tests: the shared fixture readers, and a real server
//! process (`server`).
#![allow(dead_code, unused_imports)]

pub use siglip_test_support::*;

pub mod server;

/// The logit a `/v1/classify` answer gives `label` for one image (`data[i]`).
pub fn logit_of(entry: &serde_json::Value, label: &str) -> f32 {
    let scores = entry["scores"].as_array().unwrap();
    let score = scores.iter().find(|s| s["label"] == label).unwrap();
    score["logit"].as_f64().unwrap() as f32
}
