//! Several models in one process: each answers as it does alone (transformers' logits for its
//! own fixture), the `model` field picks one, the first answers requests that name none, and
//! the listing, readiness and metrics cover them all.

mod common;

use common::logit_of;
use common::server::Server;
use serde_json::{json, Value};

#[tokio::test]
async fn each_model_answers_as_it_does_alone() {
    let second = common::fixture("models/tiny-p14");
    let server = Server::start(
        "tiny-p16",
        &[
            "--model",
            second.to_str().unwrap(),
            "--served-model-name",
            "p16",
            "--served-model-name",
            "p14",
        ],
        None,
    );
    let client = reqwest::Client::new();
    let post = |body: Value| client.post(server.url("/v1/classify")).json(&body).send();

    let outputs = common::reference_json("outputs.json");
    for case in outputs.as_array().unwrap() {
        let name = match case["model"].as_str().unwrap() {
            "tiny-p16" => "p16",
            _ => "p14",
        };
        let labels = common::strings(&case["labels"]);
        let images: Vec<String> = case["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| common::data_url(&format!("images/{}", i.as_str().unwrap())))
            .collect();
        let response = post(json!({"model": name, "images": images, "labels": labels}))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["model"], name);
        for (i, row) in common::float_rows(&case["logits_per_image"])
            .iter()
            .enumerate()
        {
            for (j, label) in labels.iter().enumerate() {
                let err = (logit_of(&body["data"][i], label) - row[j]).abs();
                assert!(err <= 1e-4, "{name} image {i} label {label}: {err}");
            }
        }
    }

    let image = common::data_url("images/rgb_46x46.png");
    let unnamed: Value = post(json!({"image": image, "labels": ["cat"]}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unnamed["model"], "p16", "the first model answers");
    let unknown = post(json!({"model": "nope", "image": image, "labels": ["cat"]}))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let error: Value = unknown.json().await.unwrap();
    assert_eq!(error["error"]["code"], "model_not_found");

    let models: Value = client
        .get(server.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["p16", "p14"]);
    let one = client
        .get(server.url("/v1/models/p14"))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let embeddings: Value = client
        .post(server.url("/v1/embeddings"))
        .json(&json!({"model": "p14", "input": "a cat"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(embeddings["model"], "p14");
    assert_eq!(
        embeddings["data"][0]["embedding"].as_array().unwrap().len(),
        48
    );

    let ready: Value = client
        .get(server.url("/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["models"], json!(["p16", "p14"]));
    let metrics = server.metrics().await;
    for model in ["p16", "p14"] {
        let label = format!("model=\"{model}\",tower=\"image\"");
        assert!(metrics.contains(&label), "no {label} in the metrics");
    }
}

#[test]
fn a_model_that_cannot_load_stops_the_start_with_its_name() {
    let args = ["--model", "/no/such/model", "--served-model-name", "good"];
    let args = [&args[..], &["--served-model-name", "broken"]].concat();
    let error = common::server::refused_start("tiny-p16", &args, &[]);
    assert!(error.contains("broken"), "{error}");
}
