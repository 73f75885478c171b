//! Image inputs given as URLs: off by default (tested in server_errors.rs); when enabled,
//! fetched with redirects followed and re-checked, and private addresses refused unless the
//! config allows them. A small HTTP server in this test process plays the image host.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use common::server::Server;
use serde_json::{json, Value};

/// Serves `/cat.png` (a fixture), `/moved` (302 to /cat.png) and `/ftp` (302 to ftp://…).
fn image_host() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let png = std::fs::read(common::fixture("images/rgb_46x46.png")).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_string();
            let head = |status: &str, extra: &str, length: usize| {
                format!("HTTP/1.1 {status}\r\n{extra}Content-Length: {length}\r\nConnection: close\r\n\r\n")
            };
            let _ = match path.as_str() {
                "/cat.png" => stream
                    .write_all(head("200 OK", "Content-Type: image/png\r\n", png.len()).as_bytes())
                    .and_then(|_| stream.write_all(&png)),
                "/moved" => {
                    stream.write_all(head("302 Found", "Location: /cat.png\r\n", 0).as_bytes())
                }
                "/ftp" => stream.write_all(
                    head("302 Found", "Location: ftp://127.0.0.1/cat.png\r\n", 0).as_bytes(),
                ),
                _ => stream.write_all(head("404 Not Found", "", 0).as_bytes()),
            };
        }
    });
    format!("http://{address}")
}

async fn classify(server: &Server, image: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/v1/classify"))
        .json(&json!({"image": {"url": image}, "labels": ["cat"]}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn url_images_follow_the_rules() {
    let host = image_host();

    let open = "[url_fetch]\nenabled = true\nallow_private_addresses = true\nmax_bytes = 100000\n";
    let server = Server::start("tiny-p14", &[], Some(open));
    let (status, body) = classify(&server, &format!("{host}/cat.png")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = classify(&server, &format!("{host}/moved")).await;
    assert_eq!(status, 200, "redirect: {body}");
    let (status, body) = classify(&server, &format!("{host}/ftp")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("image_url_error")),
        "{body}"
    );
    let (status, _) = classify(&server, &format!("{host}/missing.png")).await;
    assert_eq!(status, 400);
    drop(server);

    let small = "[url_fetch]\nenabled = true\nallow_private_addresses = true\nmax_bytes = 100\n";
    let server = Server::start("tiny-p14", &[], Some(small));
    let (status, body) = classify(&server, &format!("{host}/cat.png")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("image_too_large")),
        "{body}"
    );
    drop(server);

    // Enabled, but loopback is private: refused, also when reached through a redirect. The
    // client hears the same words whether the address was refused, the port is closed, or the
    // server answered 404: nothing to scan ports with.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = Server::start("tiny-p14", &["--allow-url-images", "true"], None);
    let mut messages = Vec::new();
    for path in ["/cat.png", "/moved"] {
        let (status, body) = classify(&server, &format!("{host}{path}")).await;
        assert_eq!(status, 400, "{body}");
        messages.push(body["error"]["message"].as_str().unwrap().to_string());
    }
    drop(server);
    let server = Server::start("tiny-p14", &[], Some(open));
    for url in [
        format!("http://127.0.0.1:{closed_port}/cat.png"),
        format!("{host}/missing.png"),
    ] {
        let (status, body) = classify(&server, &url).await;
        assert_eq!(status, 400, "{body}");
        messages.push(body["error"]["message"].as_str().unwrap().to_string());
    }
    assert!(
        messages
            .iter()
            .all(|m| m == "the image URL could not be fetched"),
        "{messages:?}"
    );
}

/// Downloads from a host that never answers hold fetch slots, not decode slots: another
/// client's base64 image is answered at once, not after the downloads time out.
#[tokio::test]
async fn slow_downloads_do_not_hold_up_other_images() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/cat.png", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        // Accept and hold every connection, answering nothing.
        let held: Vec<_> = silent.incoming().collect();
        drop(held);
    });
    let config = "[url_fetch]\nenabled = true\nallow_private_addresses = true\n\
                  connect_timeout_ms = 8000\ntotal_timeout_ms = 8000\n";
    let server = std::sync::Arc::new(Server::start("tiny-p14", &[], Some(config)));
    let downloads: Vec<_> = (0..4)
        .map(|_| {
            let server = server.clone();
            let url = silent_url.clone();
            tokio::spawn(async move { classify(&server, &url).await })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let start = std::time::Instant::now();
    let (status, body) = classify(&server, &common::data_url("images/rgb_46x46.png")).await;
    let waited = start.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(
        waited < std::time::Duration::from_secs(3),
        "a base64 image waited {waited:?} behind downloads"
    );
    for download in downloads {
        assert_eq!(download.await.unwrap().0, 400);
    }
}
