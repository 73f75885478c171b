//! `GET /openapi.json` and `GET /docs`: the document names every route and resolves every
//! reference, its examples are accepted, the bearer scheme follows the configuration, and the
//! page and its files answer with their media types, all without the API key.

mod common;

use common::server::Server;
use serde_json::Value;

const KEY: &str = "docs-test-key";

/// Every route, as the document spells it.
const ROUTES: &[(&str, &str)] = &[
    ("/v1/classify", "post"),
    ("/v1/embeddings", "post"),
    ("/v1/models", "get"),
    ("/v1/models/{id}", "get"),
    ("/", "post"),
    ("/health", "get"),
    ("/ready", "get"),
    ("/metrics", "get"),
];

async fn document(server: &Server) -> Value {
    let response = reqwest::get(server.url("/openapi.json")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// Every `$ref` in `value`.
fn references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push(target);
            }
            map.values().for_each(|v| references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_describes_every_route_without_the_key() {
    let server = Server::start("tiny-p16", &["--api-key", KEY], None);
    let doc = document(&server).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    for (path, method) in ROUTES {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is missing");
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.contains_key("200"), "{method} {path}");
        assert!(responses.contains_key("431"), "{method} {path}");
        let guarded = path.starts_with("/v1/") || *path == "/";
        assert_eq!(responses.contains_key("401"), guarded, "{method} {path}");
        assert_eq!(operation["security"].is_array(), guarded, "{method} {path}");
    }
    let classify = &doc["paths"]["/v1/classify"]["post"]["requestBody"]["content"];
    assert!(
        classify["application/json"].is_object() && classify["multipart/form-data"].is_object()
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut found = Vec::new();
    references(&doc, &mut found);
    for target in found {
        let name = target.strip_prefix("#/components/schemas/").unwrap();
        assert!(schemas.contains_key(name), "{target} resolves to nothing");
    }
    let scheme = &doc["components"]["securitySchemes"]["api_key"];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"]),
        (&"http".into(), &"bearer".into())
    );
}

#[tokio::test]
async fn without_keys_the_document_asks_for_none() {
    let server = Server::start("tiny-p16", &[], None);
    let doc = document(&server).await;
    assert!(doc["components"].get("securitySchemes").is_none(), "{doc}");
    for (path, method) in ROUTES {
        let operation = &doc["paths"][path][method];
        assert!(operation.get("security").is_none(), "{method} {path}");
        assert!(
            operation["responses"].get("401").is_none(),
            "{method} {path}"
        );
    }
}

/// What "Try it out" sends first: each request body's example is answered 200.
#[tokio::test]
async fn the_request_examples_are_accepted() {
    let server = Server::start("tiny-p16", &["--api-key", KEY], None);
    let doc = document(&server).await;
    let client = reqwest::Client::new();
    for path in ["/v1/classify", "/v1/embeddings", "/"] {
        let example =
            &doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["example"];
        let response = client
            .post(server.url(path))
            .bearer_auth(KEY)
            .json(example)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(status, 200, "{path}: {}", response.text().await.unwrap());
    }
    let id = &doc["paths"]["/v1/models/{id}"]["get"]["parameters"][0]["example"];
    assert_eq!(id, "tiny-p16");
}

#[tokio::test]
async fn the_docs_page_and_its_files_are_served_without_the_key() {
    let server = Server::start("tiny-p16", &["--api-key", KEY], None);
    let page = reqwest::get(server.url("/docs")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    let html = page.text().await.unwrap();
    let files = [
        (
            "/docs/swagger-ui-bundle.js",
            "text/javascript; charset=utf-8",
        ),
        ("/docs/swagger-ui.css", "text/css; charset=utf-8"),
        ("/docs/docs.js", "text/javascript; charset=utf-8"),
        ("/docs/docs.css", "text/css; charset=utf-8"),
        ("/docs/favicon-32x32.png", "image/png"),
    ];
    for (path, content_type) in files {
        assert!(html.contains(path), "the page does not load {path}");
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{path}");
    }
    let missing = reqwest::get(server.url("/docs/nothing.js")).await.unwrap();
    assert_eq!(missing.status(), 404);
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["error"]["code"], "not_found");
    // The key still guards the API itself.
    let models = reqwest::get(server.url("/v1/models")).await.unwrap();
    assert_eq!(models.status(), 401);
}
