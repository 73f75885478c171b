//! SigLIP 2 through the server and the `classify` command: the tiny FixRes and NaFlex fixtures
//! of `tests/fixtures/siglip2/` give transformers' logits for every committed image through
//! `/v1/classify` (multipart and JSON) and `classify`; NaFlex images of mixed shapes batch like
//! single ones; `max_num_patches` is checked by name; `/v1/models` says what was loaded; a
//! SigLIP 1 and a SigLIP 2 model served side by side each answer as they do alone.

mod common;

use std::process::Command;

use common::logit_of;
use common::server::Server;
use serde_json::{json, Value};

/// The SigLIP 2 references, one entry per fixture model.
fn references() -> Vec<Value> {
    common::fixture_json("siglip2/reference/siglip2_outputs.json")
        .as_array()
        .unwrap()
        .clone()
}

fn reference(model: &str) -> Value {
    references()
        .into_iter()
        .find(|r| r["model"] == model)
        .unwrap()
}

fn model_dir(model: &str) -> String {
    common::fixture(&format!("siglip2/models/{model}"))
        .to_str()
        .unwrap()
        .to_string()
}

/// `Server::start` names models under tests/fixtures/models.
fn start(model: &str, args: &[&str]) -> Server {
    Server::start(&format!("../siglip2/models/{model}"), args, None)
}

fn image_part(name: &str) -> reqwest::multipart::Part {
    let bytes = std::fs::read(common::fixture(&format!("images/{name}"))).unwrap();
    reqwest::multipart::Part::bytes(bytes).file_name(name.to_string())
}

/// Every image's logits, one multipart request each, against the reference `variant`.
async fn check_every_image(server: &Server, model: Option<&str>, reference: &Value, variant: &str) {
    let client = reqwest::Client::new();
    let labels = common::strings(&reference["labels"]);
    for (name, expected) in reference["images"].as_object().unwrap() {
        let mut form = reqwest::multipart::Form::new().part("image", image_part(name));
        for label in &labels {
            form = form.text("labels", label.to_string());
        }
        if let Some(model) = model {
            form = form.text("model", model.to_string());
        }
        let response = client
            .post(server.url("/v1/classify"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let body: Value = response.json().await.unwrap();
        let want = common::floats(&expected[variant]);
        for (label, want) in labels.iter().zip(want) {
            let err = (logit_of(&body["data"][0], label) - want).abs();
            assert!(err <= 1e-4, "{} {name} {label}: {err}", reference["model"]);
        }
    }
}

#[tokio::test]
async fn every_image_gets_transformers_logits_over_http() {
    let fixres = model_dir("tiny-fixres-gemma");
    let fast = model_dir("tiny-fixres-gemmafast");
    let server = start(
        "tiny-naflex",
        &[
            "--model",
            &fixres,
            "--model",
            &fast,
            "--served-model-name",
            "naflex",
            "--served-model-name",
            "fixres",
            "--served-model-name",
            "fixres-fast",
        ],
    );
    check_every_image(&server, None, &reference("tiny-naflex"), "lowercased").await;
    // FixRes: the default follows do_lower_case (true), as the checkpoints were trained.
    check_every_image(
        &server,
        Some("fixres"),
        &reference("tiny-fixres-gemma"),
        "lowercased",
    )
    .await;
    let fast_reference = reference("tiny-fixres-gemmafast");
    check_every_image(&server, Some("fixres-fast"), &fast_reference, "lowercased").await;

    let models: Value = reqwest::get(server.url("/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let naflex = &models["data"][0]["siglip"];
    assert_eq!(naflex["family"], "siglip2", "{models}");
    assert_eq!(naflex["architecture"], "naflex");
    assert_eq!(naflex["max_num_patches"], 64);
    assert_eq!(naflex["embedding_size"], 32);
    assert_eq!(naflex["text_lowercase"], true);
    let fixres = &models["data"][1]["siglip"];
    assert_eq!(fixres["family"], "siglip2");
    assert_eq!(fixres["architecture"], "fixed_resolution");
    assert_eq!(fixres["image_size"], json!([48, 48]));
    assert_eq!(fixres["max_num_patches"], Value::Null);
}

#[tokio::test]
async fn text_lowercase_false_gives_transformers_fixres_ids_exactly() {
    let server = start("tiny-fixres-gemma", &["--text-lowercase", "false"]);
    let reference = reference("tiny-fixres-gemma");
    // JSON this time: the image as a data URL.
    let client = reqwest::Client::new();
    let labels = common::strings(&reference["labels"]);
    for (name, expected) in reference["images"].as_object().unwrap() {
        let body = json!({"image": common::data_url(&format!("images/{name}")), "labels": labels});
        let response = client
            .post(server.url("/v1/classify"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let body: Value = response.json().await.unwrap();
        for (label, want) in labels.iter().zip(common::floats(&expected["as_is"])) {
            let err = (logit_of(&body["data"][0], label) - want).abs();
            assert!(err <= 1e-4, "{name} {label}: {err}");
        }
    }
}

#[tokio::test]
async fn naflex_images_of_mixed_shapes_batch_like_single_ones() {
    let server = start(
        "tiny-naflex",
        &["--max-batch-size", "8", "--max-wait-ms", "50"],
    );
    let client = reqwest::Client::new();
    let names = [
        "chelsea.png",
        "rgb_7x513.png",
        "rgb_1x1.png",
        "rgb_1000x10.png",
        "l_31x29.png",
        "rgba_200x150.png",
        "p_200x150.png",
        "coffee.bmp",
    ];
    let embed = |name: &str, budget: Option<u64>| {
        let mut body = json!({"input": [{"type": "image_url",
            "image_url": {"url": common::data_url(&format!("images/{name}"))}}]});
        if let Some(n) = budget {
            body["max_num_patches"] = json!(n);
        }
        client.post(server.url("/v1/embeddings")).json(&body).send()
    };
    let vector = |body: &Value| common::floats(&body["data"][0]["embedding"]);
    let mut alone = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let budget = [None, Some(16), Some(100)][i % 3];
        let body: Value = embed(name, budget).await.unwrap().json().await.unwrap();
        alone.push(vector(&body));
    }
    for _ in 0..4 {
        let together = futures::future::join_all(
            names
                .iter()
                .enumerate()
                .map(|(i, name)| embed(name, [None, Some(16), Some(100)][i % 3])),
        )
        .await;
        for ((response, alone), name) in together.into_iter().zip(&alone).zip(names) {
            let body: Value = response.unwrap().json().await.unwrap();
            let diff = vector(&body)
                .iter()
                .zip(alone)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(diff <= 1e-5, "{name}: batched differs from alone by {diff}");
        }
    }
}

#[tokio::test]
async fn max_num_patches_is_checked_by_name() {
    let fixres = model_dir("tiny-fixres-gemma");
    let server = start(
        "tiny-naflex",
        &[
            "--model",
            &fixres,
            "--served-model-name",
            "naflex",
            "--served-model-name",
            "fixres",
        ],
    );
    let client = reqwest::Client::new();
    let image = common::data_url("images/rgb_46x46.png");
    let classify = |model: &str, budget: Value| {
        let body =
            json!({"model": model, "image": image, "labels": ["cat"], "max_num_patches": budget});
        client.post(server.url("/v1/classify")).json(&body).send()
    };
    for bad in [
        json!(0),
        json!(-1),
        json!(1.5),
        json!("16"),
        json!(null),
        json!(1_000_000),
        json!([16]),
    ] {
        if bad.is_null() {
            // null is "not given".
            assert_eq!(classify("naflex", bad).await.unwrap().status(), 200);
            continue;
        }
        let response = classify("naflex", bad.clone()).await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["param"], "max_num_patches", "{bad}: {error}");
        assert_eq!(error["error"]["code"], "invalid_max_num_patches");
    }
    for good in [1, 16, 4096] {
        assert_eq!(
            classify("naflex", json!(good)).await.unwrap().status(),
            200,
            "{good}"
        );
    }
    let response = classify("fixres", json!(16)).await.unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["param"], "max_num_patches");
    // Multipart takes it as a form field.
    let form = reqwest::multipart::Form::new()
        .part("image", image_part("rgb_46x46.png"))
        .text("labels", "cat")
        .text("max_num_patches", "many");
    let response = client
        .post(server.url("/v1/classify"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // The server is still there, and answers.
    assert_eq!(classify("naflex", json!(9)).await.unwrap().status(), 200);
}

#[test]
fn classify_command_prints_transformers_logits() {
    for (model, args, variant) in [
        ("tiny-naflex", vec![], "lowercased"),
        ("tiny-fixres-gemma", vec![], "lowercased"),
        (
            "tiny-fixres-gemma",
            vec!["--text-lowercase", "false"],
            "as_is",
        ),
    ] {
        let reference = reference(model);
        let labels = common::strings(&reference["labels"]);
        let images: Vec<&String> = reference["images"].as_object().unwrap().keys().collect();
        let output = Command::new(env!("CARGO_BIN_EXE_siglip-server"))
            .arg("classify")
            .arg("--model")
            .arg(model_dir(model))
            .args(&args)
            .args(labels.iter().flat_map(|l| ["--label", l]))
            .args(
                images
                    .iter()
                    .map(|i| common::fixture(&format!("images/{i}"))),
            )
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
        for (i, name) in images.iter().enumerate() {
            let want = common::floats(&reference["images"][name.as_str()][variant]);
            for (label, want) in labels.iter().zip(want) {
                let err = (logit_of(&printed["data"][i], label) - want).abs();
                assert!(err <= 1e-4, "{model} {args:?} {name} {label}: {err}");
            }
        }
    }
}

#[tokio::test]
async fn siglip_1_and_2_side_by_side_answer_as_alone() {
    let naflex = model_dir("tiny-naflex");
    let server = Server::start(
        "tiny-p16",
        &[
            "--model",
            &naflex,
            "--served-model-name",
            "v1",
            "--served-model-name",
            "v2",
        ],
        None,
    );
    let client = reqwest::Client::new();
    // SigLIP 2 NaFlex, named: transformers' logits for every image.
    check_every_image(&server, Some("v2"), &reference("tiny-naflex"), "lowercased").await;
    // SigLIP 1, the default: its own references (outputs.json).
    let outputs = common::reference_json("outputs.json");
    let case = outputs
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == "tiny-p16")
        .unwrap();
    let labels = common::strings(&case["labels"]);
    for (i, image) in case["images"].as_array().unwrap().iter().enumerate() {
        let url = common::data_url(&format!("images/{}", image.as_str().unwrap()));
        let body: Value = client
            .post(server.url("/v1/classify"))
            .json(&json!({"image": url, "labels": labels}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["model"], "v1");
        let want = common::floats(&case["logits_per_image"][i]);
        for (label, want) in labels.iter().zip(want) {
            let err = (logit_of(&body["data"][0], label) - want).abs();
            assert!(err <= 1e-4, "SigLIP 1 image {i} {label}: {err}");
        }
    }
    let models: Value = client
        .get(server.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["siglip"]["family"], "siglip");
    assert_eq!(
        models["data"][0]["siglip"]["tokenizer"],
        "sentencepiece_unigram"
    );
    assert_eq!(models["data"][1]["siglip"]["family"], "siglip2");
}
