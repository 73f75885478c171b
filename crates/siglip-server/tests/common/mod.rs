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

/// A JSON array of strings (a case's `labels` or `images`), as string slices.
pub fn strings(array: &serde_json::Value) -> Vec<&str> {
    array
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item.as_str().unwrap())
        .collect()
}

/// Classifies the first reference image of tiny-p16 (`outputs.json`) on `server`, which
/// serves that model, and checks every label's logit within 1e-4 of transformers'.
/// `context` names the server's settings in a failure.
pub async fn classifies_as_transformers(server: &server::Server, context: &str) {
    let outputs = reference_json("outputs.json");
    let case = &outputs[0];
    assert_eq!(case["model"], "tiny-p16");
    let labels = strings(&case["labels"]);
    let image = case["images"][0].as_str().unwrap();
    let expected = float_rows(&case["logits_per_image"])[0].clone();
    let body = serde_json::json!({
        "image": data_url(&format!("images/{image}")),
        "labels": labels,
    });
    let response = reqwest::Client::new()
        .post(server.url("/v1/classify"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{context}");
    let answer: serde_json::Value = response.json().await.unwrap();
    for (label, want) in labels.iter().zip(&expected) {
        let got = logit_of(&answer["data"][0], label);
        assert!(
            (got - want).abs() <= 1e-4,
            "{context} {label}: {got} vs {want}"
        );
    }
}
