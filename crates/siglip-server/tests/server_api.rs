//! The HTTP API against a real server process on 127.0.0.1 with the tiny fixtures: every route,
//! JSON and multipart, both embedding encodings, and parity with transformers.

mod common;

use base64::Engine as _;
use common::logit_of;
use common::server::Server;
use serde_json::{json, Value};

/// The reference images as they are, JPEGs included: their pixels are Pillow's, so the
/// logits must be transformers' (the `libjpeg` feature, on by default).
fn reference_image(name: &str) -> String {
    format!("images/{name}")
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn classify_and_embeddings_match_transformers() {
    let outputs = common::reference_json("outputs.json");
    let client = reqwest::Client::new();
    for case in outputs.as_array().unwrap() {
        let model = case["model"].as_str().unwrap();
        let server = Server::start(model, &[], None);
        let labels = common::strings(&case["labels"]);
        let names = common::strings(&case["images"]);
        let images: Vec<String> = names
            .iter()
            .map(|n| common::data_url(&reference_image(n)))
            .collect();
        let expected = common::float_rows(&case["logits_per_image"]);

        // JSON, several images at once.
        let (status, body) = post(
            &client,
            server.url("/v1/classify"),
            json!({"images": images, "labels": labels}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["model"], model);
        for (i, row) in expected.iter().enumerate() {
            for (j, label) in labels.iter().enumerate() {
                let err = (logit_of(&body["data"][i], label) - row[j]).abs();
                assert!(err <= 1e-4, "{model} image {i} label {label}: {err}");
            }
        }

        // Multipart, one image: the same answer as JSON.
        let bytes = std::fs::read(common::fixture(&reference_image(names[1]))).unwrap();
        let mut form = reqwest::multipart::Form::new().part(
            "image",
            reqwest::multipart::Part::bytes(bytes).file_name("x.png"),
        );
        for label in &labels {
            form = form.text("labels", label.to_string());
        }
        let multipart: Value = client
            .post(server.url("/v1/classify"))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for (j, label) in labels.iter().enumerate() {
            assert!((logit_of(&multipart["data"][0], label) - expected[1][j]).abs() <= 1e-4);
        }

        // Embeddings: texts are embedded as given (so send the templated prompts), images too.
        let template = case["template"].as_str().unwrap();
        let prompts: Vec<String> = labels.iter().map(|l| template.replace("{}", l)).collect();
        let mut input: Vec<Value> = prompts.iter().map(|p| json!(p)).collect();
        input.push(json!({"type": "image_url", "image_url": {"url": images[0]}}));
        let (status, floats) = post(
            &client,
            server.url("/v1/embeddings"),
            json!({"input": input, "model": model}),
        )
        .await;
        assert_eq!(status, 200, "{floats}");
        let text_expected = common::float_rows(&case["text_embeds"]);
        let image_expected = common::float_rows(&case["image_embeds"]);
        for (i, data) in floats["data"].as_array().unwrap().iter().enumerate() {
            assert_eq!(data["index"], i);
            let got = common::floats(&data["embedding"]);
            let want = if i < prompts.len() {
                &text_expected[i]
            } else {
                &image_expected[0]
            };
            assert!(common::cosine(&got, want) >= 0.99999, "{model} input {i}");
        }
        assert_eq!(floats["usage"]["prompt_tokens"], 64 * prompts.len());

        // base64: little-endian f32, equal to the floats.
        let (_, encoded) = post(
            &client,
            server.url("/v1/embeddings"),
            json!({"input": input, "encoding_format": "base64"}),
        )
        .await;
        let b64 = encoded["data"][0]["embedding"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let decoded: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(decoded, common::floats(&floats["data"][0]["embedding"]));

        // modality=image makes plain strings images.
        let (status, as_image) = post(
            &client,
            server.url("/v1/embeddings"),
            json!({"input": [images[0]], "modality": "image"}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            common::floats(&as_image["data"][0]["embedding"]),
            common::floats(&floats["data"][prompts.len()]["embedding"])
        );
    }
}

#[tokio::test]
async fn models_health_ready_metrics_and_request_ids() {
    let server = Server::start(
        "tiny-p14",
        &["--served-model-name", "test-org/siglip-tiny"],
        None,
    );
    let client = reqwest::Client::new();
    let models: Value = client
        .get(server.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "test-org/siglip-tiny");
    assert_eq!(models["data"][0]["object"], "model");
    let one = client
        .get(server.url("/v1/models/test-org/siglip-tiny"))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let missing = client
        .get(server.url("/v1/models/other-org/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(body["error"]["type"], "not_found_error");

    assert_eq!(
        client
            .get(server.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(server.url("/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let echoed = client
        .get(server.url("/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    let fresh = client.get(server.url("/nowhere")).send().await.unwrap();
    assert!(!fresh.headers()["x-request-id"].is_empty());

    // Two requests with the same labels: the second hits the label cache.
    let image = common::data_url("images/rgb_46x46.png");
    for _ in 0..2 {
        let (status, _) = post(
            &client,
            server.url("/v1/classify"),
            json!({"image": image, "labels": ["cat", "dog"], "model": "test-org/siglip-tiny"}),
        )
        .await;
        assert_eq!(status, 200);
    }
    // A label repeated within one request runs the text tower once, and both get its score.
    let (status, body) = post(
        &client,
        server.url("/v1/classify"),
        json!({"image": image, "labels": ["zebra", "zebra"]}),
    )
    .await;
    assert_eq!(status, 200);
    let scores = body["data"][0]["scores"].as_array().unwrap();
    assert_eq!(scores[0]["logit"], scores[1]["logit"]);
    let metrics = server.metrics().await;
    for name in [
        "siglip_requests_total",
        "siglip_request_duration_seconds",
        "siglip_queue_wait_seconds",
        "siglip_inference_seconds",
        "siglip_batch_size",
        "siglip_queue_depth",
        "siglip_cpu_blocking_info",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    let hits = metric_value(&metrics, "siglip_label_cache_hits_total");
    let misses = metric_value(&metrics, "siglip_label_cache_misses_total");
    assert_eq!(
        (hits, misses),
        (2.0, 3.0),
        "cat and dog missed then hit; zebra missed once"
    );
}

/// A metric's value in Prometheus text, summed over its label sets (`{model="…"}`).
pub fn metric_value(text: &str, name: &str) -> f64 {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter(|rest| rest.starts_with([' ', '{']))
        .filter_map(|rest| rest.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(!values.is_empty(), "{name} not in metrics");
    values.iter().sum()
}

/// Every JPEG the decoder takes is served: arithmetic-coded files once failed over HTTP alone,
/// where the decode budget read the header with a parser that refused them (found by fuzzing).
#[tokio::test]
async fn arithmetic_coded_jpegs_are_served() {
    let server = Server::start("tiny-p16", &[], None);
    let client = reqwest::Client::new();
    for name in ["arith_420_64x48.jpg", "arith_progressive_422_59x41.jpg"] {
        let image = common::data_url(&format!("jpeg/{name}"));
        let (status, body) = post(
            &client,
            server.url("/v1/classify"),
            json!({"image": image, "labels": ["cat", "dog"]}),
        )
        .await;
        assert_eq!(status, 200, "{name}: {body}");
    }
}
