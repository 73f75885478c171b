//! Shared helpers for the workspace's integration tests: fixture paths (`tests/fixtures` at the
//! workspace root) and readers for the reference files there.

use std::path::PathBuf;

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(rel)
}

/// The resolved files of fixture model `name` (under tests/fixtures/models).
pub fn model_files(name: &str) -> siglip::files::ModelFiles {
    let dir = fixture(&format!("models/{name}"));
    siglip::files::resolve(dir.to_str().unwrap(), None).unwrap()
}

/// A JSON reference file under `tests/fixtures/reference/`.
pub fn reference_json(name: &str) -> serde_json::Value {
    fixture_json(&format!("reference/{name}"))
}

/// A JSON file under `tests/fixtures/`.
pub fn fixture_json(rel: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(rel)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A JSON array of token ids.
pub fn ids(value: &serde_json::Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_u64().unwrap() as u32)
        .collect()
}

/// A JSON array of numbers as f32.
pub fn floats(value: &serde_json::Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// A JSON array of arrays of numbers as rows of f32.
pub fn float_rows(value: &serde_json::Value) -> Vec<Vec<f32>> {
    value.as_array().unwrap().iter().map(floats).collect()
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// A fixture file (path under tests/fixtures) as a base64 data URL.
pub fn data_url(path: &str) -> String {
    use base64::Engine as _;
    let bytes = std::fs::read(fixture(path)).unwrap();
    let mime = if path.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}
