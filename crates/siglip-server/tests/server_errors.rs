//! Every row of API.md's error table, from a real server process: status, OpenAI error body,
//! `type` and `code`. The server must stay up and keep answering after each.

mod common;

use base64::Engine as _;
use common::server::Server;
use serde_json::{json, Value};

const LIMITS: &str = r#"
[limits]
max_body_bytes = 200000
max_images_per_request = 2
max_labels_per_request = 3
max_image_pixels = 100000
body_idle_timeout_ms = 500
"#;

fn png(name: &str) -> String {
    common::data_url(&format!("images/{name}"))
}

/// Checks an error response's status and body, returns the body.
async fn expect_error(
    response: reqwest::Response,
    status: u16,
    kind: &str,
    code: Option<&str>,
) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    if let Some(code) = code {
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    body
}

#[tokio::test]
async fn every_error_is_an_openai_error_object() {
    let server = Server::start("tiny-p14", &[], Some(LIMITS));
    let client = reqwest::Client::new();
    let url = server.url("/v1/classify");
    let image = png("rgb_46x46.png");
    let send = |body: Value| client.post(&url).json(&body).send();
    let invalid = "invalid_request_error";

    // 400s.
    let malformed = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(malformed, 400, invalid, Some("invalid_json")).await;
    expect_error(
        send(json!({"image": image})).await.unwrap(),
        400,
        invalid,
        Some("missing_labels"),
    )
    .await;
    let body = expect_error(
        send(json!({"image": image, "labels": []})).await.unwrap(),
        400,
        invalid,
        Some("empty_labels"),
    )
    .await;
    assert_eq!(body["error"]["param"], "labels");
    expect_error(
        send(json!({"image": image, "labels": ["cat", ""]}))
            .await
            .unwrap(),
        400,
        invalid,
        Some("empty_label"),
    )
    .await;
    expect_error(
        send(json!({"image": image, "labels": "cat"}))
            .await
            .unwrap(),
        400,
        invalid,
        Some("invalid_request"),
    )
    .await;
    expect_error(
        send(json!({"labels": ["cat"]})).await.unwrap(),
        400,
        invalid,
        Some("missing_image"),
    )
    .await;
    expect_error(
        send(json!({"image": image, "images": [image], "labels": ["cat"]}))
            .await
            .unwrap(),
        400,
        invalid,
        None,
    )
    .await;
    expect_error(
        send(json!({"image": "data:image/png;base64,AAAA", "labels": ["cat"]}))
            .await
            .unwrap(),
        400,
        invalid,
        Some("invalid_image"),
    )
    .await;
    expect_error(
        send(json!({"image": "not an image at all!", "labels": ["cat"]}))
            .await
            .unwrap(),
        400,
        invalid,
        Some("invalid_image"),
    )
    .await;
    expect_error(
        send(json!({"images": [image, image, image], "labels": ["cat"]}))
            .await
            .unwrap(),
        400,
        invalid,
        Some("too_many_images"),
    )
    .await;
    expect_error(
        send(json!({"image": image, "labels": ["a", "b", "c", "d"]}))
            .await
            .unwrap(),
        400,
        invalid,
        Some("too_many_labels"),
    )
    .await;
    // Texts of any length are truncated to 64 tokens, as the pipeline truncates them.
    let long = send(json!({"image": image, "labels": ["a cat ".repeat(10_000)]}))
        .await
        .unwrap();
    assert_eq!(long.status(), 200);
    expect_error(
        send(json!({"image": image, "labels": ["cat"], "hypothesis_template": "no slot"}))
            .await
            .unwrap(),
        400,
        invalid,
        Some("invalid_template"),
    )
    .await;
    for template in ["{} and {}", "a {0} of {}", "{{}} {}"] {
        let body = json!({"image": image, "labels": ["cat"], "hypothesis_template": template});
        let response = send(body).await.unwrap();
        expect_error(response, 400, invalid, Some("invalid_template")).await;
    }
    expect_error(
        send(json!({"image": image, "labels": ["cat"], "top_k": 0}))
            .await
            .unwrap(),
        400,
        invalid,
        Some("invalid_top_k"),
    )
    .await;
    expect_error(
        send(json!({"image": "https://example.com/cat.png", "labels": ["cat"]}))
            .await
            .unwrap(),
        400,
        invalid,
        Some("image_url_disabled"),
    )
    .await;
    let embeddings = server.url("/v1/embeddings");
    let bad_dims = client
        .post(&embeddings)
        .json(&json!({"input": "cat", "dimensions": 7}))
        .send()
        .await
        .unwrap();
    expect_error(bad_dims, 400, invalid, Some("invalid_dimensions")).await;
    let bad_format = client
        .post(&embeddings)
        .json(&json!({"input": "cat", "encoding_format": "int8"}))
        .send()
        .await
        .unwrap();
    expect_error(bad_format, 400, invalid, Some("invalid_encoding_format")).await;
    let empty = client
        .post(&embeddings)
        .json(&json!({"input": []}))
        .send()
        .await
        .unwrap();
    expect_error(empty, 400, invalid, Some("empty_input")).await;

    // Multipart with an undecodable file.
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(b"GIF89a garbage".to_vec()).file_name("x.gif"),
        )
        .text("labels", "cat");
    expect_error(
        client.post(&url).multipart(form).send().await.unwrap(),
        400,
        invalid,
        Some("invalid_image"),
    )
    .await;

    // 404s, 405, 413, 415.
    expect_error(
        client.get(server.url("/v2/nothing")).send().await.unwrap(),
        404,
        "not_found_error",
        Some("not_found"),
    )
    .await;
    expect_error(
        send(json!({"image": image, "labels": ["cat"], "model": "gpt-4"}))
            .await
            .unwrap(),
        404,
        "not_found_error",
        Some("model_not_found"),
    )
    .await;
    expect_error(
        client.get(&url).send().await.unwrap(),
        405,
        invalid,
        Some("method_not_allowed"),
    )
    .await;
    let wrong_method = client.delete(server.url("/health")).send().await.unwrap();
    assert!(wrong_method.headers().contains_key("allow"));
    expect_error(wrong_method, 405, invalid, None).await;
    let huge = client
        .post(&url)
        .header("content-type", "application/json")
        .body(vec![b' '; 300_000])
        .send()
        .await
        .unwrap();
    expect_error(huge, 413, invalid, Some("body_too_large")).await;
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(vec![0u8; 300_000]).file_name("x.png"),
        )
        .text("labels", "cat");
    expect_error(
        client.post(&url).multipart(form).send().await.unwrap(),
        413,
        invalid,
        Some("body_too_large"),
    )
    .await;
    // 1000x10 = 10_000 pixels is fine, but a 200x150 (30_000) image... is too; use the big one.
    let big = png("rgba_200x150.png");
    let ok = send(json!({"image": big, "labels": ["cat"]}))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let mut too_many_pixels = image::RgbImage::new(400, 300);
    too_many_pixels.put_pixel(0, 0, image::Rgb([1, 2, 3]));
    let mut encoded = Vec::new();
    too_many_pixels
        .write_to(
            &mut std::io::Cursor::new(&mut encoded),
            image::ImageFormat::Png,
        )
        .unwrap();
    let data = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&encoded)
    );
    expect_error(
        send(json!({"image": data, "labels": ["cat"]}))
            .await
            .unwrap(),
        413,
        invalid,
        Some("image_too_large"),
    )
    .await;
    let text = client
        .post(&url)
        .header("content-type", "text/plain")
        .body("cat")
        .send()
        .await
        .unwrap();
    expect_error(text, 415, invalid, Some("unsupported_media_type")).await;

    // Still serving.
    assert_eq!(
        send(json!({"image": image, "labels": ["cat"]}))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn api_keys_guard_v1_routes_only() {
    let server = Server::start("tiny-p14", &["--api-key", "k1", "--api-key", "k2"], None);
    let client = reqwest::Client::new();
    let models = server.url("/v1/models");
    expect_error(
        client.get(&models).send().await.unwrap(),
        401,
        "authentication_error",
        Some("invalid_api_key"),
    )
    .await;
    expect_error(
        client
            .get(&models)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap(),
        401,
        "authentication_error",
        None,
    )
    .await;
    assert_eq!(
        client
            .get(&models)
            .bearer_auth("k2")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for open in ["/health", "/ready", "/metrics"] {
        assert_eq!(
            client.get(server.url(open)).send().await.unwrap().status(),
            200,
            "{open}"
        );
    }
}

#[tokio::test]
async fn a_stalled_upload_gets_408() {
    use std::io::{Read, Write};
    let server = Server::start("tiny-p14", &[], Some(LIMITS));
    let address = server.base.strip_prefix("http://").unwrap().to_string();
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        let head = "POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"labels\"";
        stream.write_all(head.as_bytes()).unwrap();
        // Then nothing: the server gives up after body_idle_timeout_ms.
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("\"code\":\"body_timeout\""), "{response}");
}
