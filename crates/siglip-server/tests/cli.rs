//! The one-shot `classify` command, run as a real process on the fixture models.

mod common;

use std::process::Command;

/// Runs `classify`; `images` are paths under tests/fixtures.
fn classify(model: &str, labels: &[&str], images: &[String]) -> std::process::Output {
    classify_with_env(model, labels, images, &[])
}

/// [`classify`] with extra environment variables.
fn classify_with_env(
    model: &str,
    labels: &[&str],
    images: &[String],
    env: &[(&str, &str)],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_siglip-server"))
        .envs(env.iter().copied())
        .arg("classify")
        .arg("--model")
        .arg(common::fixture(&format!("models/{model}")))
        .args(labels.iter().flat_map(|l| ["--label", l]))
        .args(images.iter().map(|i| common::fixture(i)))
        .output()
        .unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Logits the command printed for image `index`, in the order of `labels`.
fn printed_logits(response: &serde_json::Value, index: usize, labels: &[String]) -> Vec<f32> {
    let entry = &response["data"][index];
    assert_eq!(entry["index"], index);
    let scores = entry["scores"].as_array().unwrap();
    let by_score: Vec<f64> = scores
        .iter()
        .map(|s| s["score"].as_f64().unwrap())
        .collect();
    assert!(
        by_score.windows(2).all(|w| w[0] >= w[1]),
        "scores not sorted: {by_score:?}"
    );
    labels
        .iter()
        .map(|label| {
            let s = scores
                .iter()
                .find(|s| s["label"] == label.as_str())
                .unwrap();
            let logit = s["logit"].as_f64().unwrap();
            let score = s["score"].as_f64().unwrap();
            assert!((score - 1.0 / (1.0 + (-logit).exp())).abs() < 1e-6);
            logit as f32
        })
        .collect()
}

/// Every product path this CPU has: our AVX-512 and AVX2 kernels, and candle's, which CUDA
/// and CPUs with neither use (`SIGLIP_CPU_ISA` forces each level here).
#[test]
fn classify_prints_transformers_scores() {
    let detected = siglip_kernels::isa::detected();
    for level in siglip_kernels::CpuIsa::ALL
        .into_iter()
        .filter(|l| *l <= detected)
    {
        classify_matches_transformers(&[("SIGLIP_CPU_ISA", level.as_str())]);
    }
}

#[test]
fn an_unknown_cpu_isa_stops_classify_with_the_choices() {
    let output = classify_with_env(
        "tiny-p16",
        &["cat"],
        &["images/chelsea.png".to_string()],
        &[("SIGLIP_CPU_ISA", "sse9")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("expected auto, avx512, avx2 or generic"),
        "{stderr}"
    );
}

fn classify_matches_transformers(env: &[(&str, &str)]) {
    let outputs = common::reference_json("outputs.json");
    for case in outputs.as_array().unwrap() {
        let model = case["model"].as_str().unwrap();
        let labels: Vec<String> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        let images: Vec<String> = case["images"]
            .as_array()
            .unwrap()
            .iter()
            // JPEGs as they are: decoded as Pillow decodes them (the `libjpeg` feature).
            .map(|i| format!("images/{}", i.as_str().unwrap()))
            .collect();
        let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
        let output = classify_with_env(model, &label_refs, &images, env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let response: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(response["object"], "list");
        assert_eq!(response["model"], model);
        assert_eq!(response["usage"]["images"], images.len());
        assert_eq!(response["usage"]["prompt_tokens"], 64 * labels.len());
        let expected = common::float_rows(&case["logits_per_image"]);
        for (i, image) in images.iter().enumerate() {
            let err = max_abs_diff(&printed_logits(&response, i, &labels), &expected[i]);
            eprintln!("{model} {image} {env:?}: logits max abs err {err:.2e}");
            assert!(err <= 1e-4, "{model} {image}: logits differ by {err}");
        }
    }
}

#[test]
fn top_k_keeps_the_best_labels() {
    let output = Command::new(env!("CARGO_BIN_EXE_siglip-server"))
        .args([
            "classify",
            "--top-k",
            "2",
            "--labels",
            "cat,dog,car",
            "--model",
        ])
        .arg(common::fixture("models/tiny-p14"))
        .arg(common::fixture("images/rgb_46x46.png"))
        .output()
        .unwrap();
    assert!(output.status.success());
    let response: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(response["data"][0]["scores"].as_array().unwrap().len(), 2);
}

#[test]
fn failures_are_one_line_errors() {
    let missing = Command::new(env!("CARGO_BIN_EXE_siglip-server"))
        .args([
            "classify",
            "--model",
            "/no/such/model",
            "--labels",
            "cat",
            "x.png",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("/no/such/model") && !stderr.contains("panicked"),
        "{stderr}"
    );

    let not_an_image = classify("tiny-p16", &["cat"], &["../README.md".to_string()]);
    assert_eq!(not_an_image.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&not_an_image.stderr);
    assert!(
        stderr.contains("README.md") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
