//! Concurrency against a real server process: batched answers equal solo answers, batches do
//! form, a full queue answers 429 with Retry-After, a deadline answers 504, and SIGTERM
//! finishes the requests in flight before the process exits 0.

mod common;

use std::time::Duration;

use common::server::Server;
use serde_json::{json, Value};

/// These tests measure timing-dependent behaviour: run them one at a time, not side by side.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn png(name: &str) -> String {
    common::data_url(&format!("images/{name}"))
}

const IMAGES: [&str; 4] = [
    "rgb_46x46.png",
    "rgba_200x150.png",
    "l_200x150.png",
    "p_31x29.png",
];
const LABELS: [&[&str]; 3] = [
    &["cat", "dog"],
    &["a rocket", "coffee", "a horse"],
    &["astronaut"],
];

/// Request number `i` of the mix: every fourth one is invalid.
fn request(i: usize) -> Value {
    match i % 4 {
        3 if i % 8 == 3 => json!({"image": png(IMAGES[0]), "labels": []}),
        3 => json!({"image": "data:image/png;base64,AAAA", "labels": ["cat"]}),
        _ => json!({"image": png(IMAGES[i % IMAGES.len()]), "labels": LABELS[i % LABELS.len()]}),
    }
}

fn logits(body: &Value) -> Vec<(String, f32)> {
    let mut out: Vec<(String, f32)> = body["data"][0]["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["label"].as_str().unwrap().to_string(),
                s["logit"].as_f64().unwrap() as f32,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

async fn classify(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let response = client.post(url).json(body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_get_their_solo_answers() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(
        "tiny-p16",
        &["--max-batch-size", "8", "--max-wait-ms", "20"],
        None,
    );
    let client = reqwest::Client::new();
    let url = server.url("/v1/classify");
    let distinct = 24;
    let mut solo = Vec::new();
    for i in 0..distinct {
        solo.push(classify(&client, &url, &request(i)).await);
    }
    let clients: Vec<_> = (0..32)
        .map(|c| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for round in 0..3 {
                    let i = (c * 7 + round * 5) % distinct;
                    answers.push((i, classify(&client, &url, &request(i)).await));
                }
                answers
            })
        })
        .collect();
    let mut checked = 0;
    let mut worst = 0f32;
    for handle in clients {
        for (i, (status, body)) in handle.await.unwrap() {
            assert!(
                status < 500 || [503, 504, 429].contains(&status),
                "status {status}: {body}"
            );
            assert_eq!(status, solo[i].0, "request {i}: {body}");
            if status == 200 {
                let (got, want) = (logits(&body), logits(&solo[i].1));
                for ((label, a), (_, b)) in got.iter().zip(&want) {
                    worst = worst.max((a - b).abs());
                    assert!(
                        (a - b).abs() <= 1e-5,
                        "request {i} label {label}: {a} vs {b}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 48, "only {checked} valid answers compared");
    eprintln!("largest batched-vs-solo logit difference: {worst:e}");
    let metrics = server.metrics().await;
    let (sum, count) = histogram(&metrics, "siglip_batch_size", "image");
    eprintln!("{checked} valid answers equal their solo answers; image batches: {count} holding {sum} images");
    assert!(
        sum > count,
        "no image batch larger than 1 formed (sum {sum}, count {count})"
    );
}

/// `(sum, count)` of a tower's histogram (the one model's).
fn histogram(metrics: &str, name: &str, tower: &str) -> (f64, f64) {
    let value = |suffix: &str| {
        let prefix = format!("{name}_{suffix}{{model=\"tiny-p16\",tower=\"{tower}\"}}");
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(&prefix)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .unwrap_or_else(|| panic!("{prefix} missing"))
    };
    (value("sum"), value("count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_queue_is_429_with_retry_after() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(
        "tiny-p16",
        &[
            "--max-batch-size",
            "1",
            "--queue-capacity",
            "1",
            "--max-wait-ms",
            "0",
        ],
        None,
    );
    let client = reqwest::Client::new();
    let url = server.url("/v1/classify");
    let body = json!({"image": png(IMAGES[1]), "labels": ["cat", "dog", "car"]});
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            tokio::spawn(async move {
                let response = client.post(&url).json(&body).send().await.unwrap();
                let retry = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap();
                (status, retry, body)
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let (status, retry, body) = task.await.unwrap();
        if status == 429 {
            assert!(retry.is_some(), "429 without Retry-After");
            assert_eq!(body["error"]["type"], "rate_limit_error");
        } else {
            assert_eq!(status, 200, "{body}");
        }
        statuses.push(status);
    }
    assert!(statuses.contains(&429), "the queue never filled");
    assert!(statuses.contains(&200));
}

/// Admission weighs work, not requests: with room for 64 requests but 4 units of work, 40
/// requests that each bring an image and four labels the cache lacks cannot all be in at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admission_counts_images_and_uncached_labels() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(
        "tiny-p16",
        &["--max-batch-size", "1", "--max-wait-ms", "0"],
        Some("[batching]\nqueue_capacity = 64\nwork_capacity = 4\n"),
    );
    let client = reqwest::Client::new();
    let url = server.url("/v1/classify");
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let labels: Vec<String> = (0..4).map(|j| format!("label {i} {j}")).collect();
            let body = json!({"image": png(IMAGES[1]), "labels": labels});
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { client.post(&url).json(&body).send().await.unwrap() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap().status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "work was never full: {statuses:?}");
    assert!(statuses.contains(&200));
}

#[tokio::test]
async fn a_request_past_its_deadline_is_504() {
    let _serial = SERIAL.lock().await;
    // A batch waits up to 2 s for company, but requests may wait only 200 ms.
    let server = Server::start(
        "tiny-p16",
        &[
            "--max-batch-size",
            "64",
            "--max-wait-ms",
            "2000",
            "--request-timeout-ms",
            "200",
        ],
        None,
    );
    let client = reqwest::Client::new();
    let (status, body) = classify(&client, &server.url("/v1/classify"), &request(0)).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["type"], "server_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_requests_in_flight() {
    let _serial = SERIAL.lock().await;
    // Requests sit in the queue for 500 ms, long enough to signal while they wait.
    let server = Server::start(
        "tiny-p16",
        &["--max-batch-size", "64", "--max-wait-ms", "500"],
        None,
    );
    let client = reqwest::Client::new();
    let url = server.url("/v1/classify");
    let tasks: Vec<_> = [0, 1, 2, 4]
        .into_iter()
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { classify(&client, &url, &request(i)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(server.wait(), Some(0));
}
