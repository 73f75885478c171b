//! Connections and headers: a pooling client keeps working after the server answers without
//! reading the body, and oversized headers get a 431 OpenAI error.

mod common;

use common::server::Server;
use serde_json::Value;

/// What a pooling client does (urllib3, requests and httpx, which never retry a POST): after an
/// early answer to a large body (404 route, 415, 401), it sends its next request on the same
/// connection unless the answer said `Connection: close`. That next request must be answered.
#[tokio::test]
async fn a_pooled_connection_survives_an_unread_body() {
    let server = Server::start("tiny-p16", &["--api-key", "secret"], None);
    let address = server.base.strip_prefix("http://").unwrap().to_string();
    let early_answers = [
        (
            "/v1/nope",
            "Authorization: Bearer secret\r\n",
            "application/json",
            404,
        ),
        (
            "/v1/classify",
            "Authorization: Bearer secret\r\n",
            "text/plain",
            415,
        ),
        ("/v1/classify", "", "application/json", 401),
    ];
    for (path, auth, content_type, status) in early_answers {
        let address = address.clone();
        let (head, next) = tokio::task::spawn_blocking(move || {
            keep_alive_pair(&address, path, auth, content_type)
        })
        .await
        .unwrap();
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {head}"
        );
        let closes = head.to_ascii_lowercase().contains("connection: close");
        assert!(
            closes || next.starts_with("HTTP/1.1 200"),
            "after {path}'s {status} without Connection: close, the next request got {next:?}"
        );
    }
}

/// Sends a 300 KB POST on one connection and reads the answer's head; then, as a pooling client
/// would, sends a GET on the same connection and returns what comes back (empty if nothing).
fn keep_alive_pair(address: &str, path: &str, auth: &str, content_type: &str) -> (String, String) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let body = vec![b'x'; 300_000];
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer, and stop reading, part way: a failed write is what clients see too.
    let _ = stream.write_all(&body);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut response_head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
        response_head.push_str(&line);
    }
    let mut answer_body = vec![0; length];
    reader.read_exact(&mut answer_body).unwrap();
    let get = "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\n\r\n";
    let mut next = String::new();
    if stream.write_all(get.as_bytes()).is_ok() {
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        next = line;
    }
    (response_head, next)
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let server = Server::start(
        "tiny-p16",
        &[],
        Some("[limits]\nmax_header_bytes = 4096\nmax_headers = 20\n"),
    );
    let client = reqwest::Client::new();
    let long = client
        .get(server.url("/v1/models"))
        .header("x-padding", "a".repeat(5000))
        .send()
        .await
        .unwrap();
    let many = (0..25)
        .fold(client.get(server.url("/v1/models")), |r, i| {
            r.header(format!("x-h{i}"), "1")
        })
        .send()
        .await
        .unwrap();
    for response in [long, many] {
        assert_eq!(response.status(), 431);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "headers_too_large", "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    }
    let within = client
        .get(server.url("/v1/models"))
        .header("x-padding", "a".repeat(3000))
        .send()
        .await
        .unwrap();
    assert_eq!(within.status(), 200);
}

const SHORT_HEAD_TIMEOUT: &str =
    "[connections]\nmax_connections = 2\nheader_read_timeout_ms = 300\n";

/// Reads until the server closes the connection, or `limit` passes; what came back and when.
fn read_until_closed(
    stream: &mut std::net::TcpStream,
    limit: std::time::Duration,
) -> (String, std::time::Duration) {
    use std::io::Read;
    let start = std::time::Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    (
        String::from_utf8_lossy(&received).into_owned(),
        start.elapsed(),
    )
}

#[test]
fn a_half_sent_head_and_an_idle_connection_are_closed_on_time() {
    use std::io::Write;
    let server = Server::start("tiny-p16", &[], Some(SHORT_HEAD_TIMEOUT));
    let address = server.base.strip_prefix("http://").unwrap();
    let limit = std::time::Duration::from_secs(5);

    let mut half = std::net::TcpStream::connect(address).unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let (_, waited) = read_until_closed(&mut half, limit);
    assert!(
        waited < std::time::Duration::from_secs(2),
        "closed after {waited:?}"
    );

    let mut idle = std::net::TcpStream::connect(address).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (answer, waited) = read_until_closed(&mut idle, limit);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        waited < std::time::Duration::from_secs(2),
        "idle for {waited:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_one_to_close() {
    let server = Server::start(
        "tiny-p16",
        &[],
        Some("[connections]\nmax_connections = 2\nheader_read_timeout_ms = 60000\n"),
    );
    let address = server.base.strip_prefix("http://").unwrap();
    let held: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(address).unwrap())
        .collect();
    // Let the accept loop take both before the third arrives.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap();
    let refused = client.get(server.url("/health")).send().await;
    assert!(
        refused.is_err(),
        "a third connection was served: {refused:?}"
    );
    drop(held);
    let client = reqwest::Client::new();
    let served = client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(served.status(), 200);
}
