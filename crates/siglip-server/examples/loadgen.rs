//! A closed-loop load generator for `POST /v1/classify`: N clients, each sending its next
//! request as soon as the last one is answered, for a fixed time.
//!
//! ```text
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8080 \
//!     --image tests/fixtures/images/retina_1mp.jpg --clients 2 --seconds 30 [--labels a,b,...]
//!     [--images-per-request 1] [--multipart] [--fresh-labels] [--pid SERVER_PID]
//! ```
//!
//! Before timing, one request puts the labels in the server's label cache; with
//! `--fresh-labels` every request's labels are new (numbered), so the text tower runs for
//! all of them (JSON bodies only). Prints one JSON
//! line: requests/s, images/s, latency percentiles, non-200 answers by status (and
//! `connection` for no answer), and with `--pid` the
//! server's peak RSS (`VmHWM`) after the run.

use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;

struct Args {
    url: String,
    image: String,
    labels: Vec<String>,
    clients: usize,
    seconds: f64,
    images_per_request: usize,
    multipart: bool,
    fresh_labels: bool,
    pid: Option<u32>,
}

const DEFAULT_LABELS: &str =
    "cat,dog,a red car,an astronaut,a cup of coffee,a horse,a rocket,an eye";

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        url: "http://127.0.0.1:8080".into(),
        image: "tests/fixtures/images/retina_1mp.jpg".into(),
        labels: DEFAULT_LABELS.split(',').map(String::from).collect(),
        clients: 1,
        seconds: 20.0,
        images_per_request: 1,
        multipart: false,
        fresh_labels: false,
        pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--multipart" || flag == "--fresh-labels" {
            args.multipart |= flag == "--multipart";
            args.fresh_labels |= flag == "--fresh-labels";
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => args.url = value,
            "--image" => args.image = value,
            "--labels" => args.labels = value.split(',').map(String::from).collect(),
            "--clients" => args.clients = value.parse()?,
            "--seconds" => args.seconds = value.parse()?,
            "--images-per-request" => args.images_per_request = value.parse()?,
            "--pid" => args.pid = Some(value.parse()?),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

/// One request, built once and sent again and again.
#[derive(Clone)]
enum Body {
    Json(serde_json::Value),
    Multipart { image: Vec<u8>, labels: Vec<String> },
}

impl Body {
    fn new(args: &Args, image: Vec<u8>) -> Self {
        if args.multipart {
            return Self::Multipart {
                image,
                labels: args.labels.clone(),
            };
        }
        let data_url = format!(
            "data:image/jpeg;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&image)
        );
        let images = vec![data_url; args.images_per_request];
        Self::Json(serde_json::json!({ "images": images, "labels": args.labels }))
    }

    /// The same body with every label made unique by `tag`.
    fn with_fresh_labels(&self, tag: &str) -> Self {
        let mut body = self.clone();
        if let Self::Json(json) = &mut body {
            for label in json["labels"].as_array_mut().into_iter().flatten() {
                *label = format!("{} {tag}", label.as_str().unwrap_or_default()).into();
            }
        }
        body
    }

    async fn send(&self, client: &reqwest::Client, url: &str) -> anyhow::Result<u16> {
        let request = client.post(url);
        let request = match self {
            Self::Json(body) => request.json(body),
            Self::Multipart { image, labels } => {
                let mut form = reqwest::multipart::Form::new().part(
                    "image",
                    reqwest::multipart::Part::bytes(image.clone()).file_name("image.jpg"),
                );
                for label in labels {
                    form = form.text("labels", label.clone());
                }
                request.multipart(form)
            }
        };
        let response = request.send().await?;
        let status = response.status().as_u16();
        response.bytes().await?;
        Ok(status)
    }
}

/// `VmHWM` of a process, in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let image = std::fs::read(&args.image).with_context(|| format!("reading {}", args.image))?;
    let url = format!("{}/v1/classify", args.url.trim_end_matches('/'));
    let body = Body::new(&args, image);
    let client = reqwest::Client::new();
    let status = body.send(&client, &url).await?;
    anyhow::ensure!(status == 200, "warm-up request answered {status}");

    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let workers: Vec<_> = (0..args.clients)
        .map(|worker| {
            let (client, body, url) = (client.clone(), body.clone(), url.clone());
            let fresh = args.fresh_labels;
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = std::collections::BTreeMap::<String, usize>::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let body = if fresh {
                        let sent_before = latencies.len() + failures.values().sum::<usize>();
                        body.with_fresh_labels(&format!("#{worker}.{sent_before}"))
                    } else {
                        body.clone()
                    };
                    let failure = match body.send(&client, &url).await {
                        Ok(200) => {
                            latencies.push(sent.elapsed().as_secs_f64());
                            continue;
                        }
                        Ok(status) => status.to_string(),
                        Err(_) => "connection".to_string(),
                    };
                    *failures.entry(failure).or_default() += 1;
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = std::collections::BTreeMap::<String, usize>::new();
    for worker in workers {
        let (l, f) = worker.await?;
        latencies.extend(l);
        for (kind, n) in f {
            *failures.entry(kind).or_default() += n;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let requests = latencies.len() as f64 / elapsed;
    let report = serde_json::json!({
        "clients": args.clients,
        "images_per_request": args.images_per_request,
        "labels": args.labels.len(),
        "labels_cached": !args.fresh_labels,
        "body": if args.multipart { "multipart" } else { "json-base64" },
        "seconds": (elapsed * 100.0).round() / 100.0,
        "ok": latencies.len(),
        "failed": failures.values().sum::<usize>(),
        "failures": failures,
        "requests_per_s": (requests * 1000.0).round() / 1000.0,
        "images_per_s": (requests * args.images_per_request as f64 * 1000.0).round() / 1000.0,
        "latency_ms": {
            "p50": (percentile(&latencies, 0.5) * 1e4).round() / 10.0,
            "p90": (percentile(&latencies, 0.9) * 1e4).round() / 10.0,
            "p99": (percentile(&latencies, 0.99) * 1e4).round() / 10.0,
        },
        "server_peak_rss_mib": args.pid.and_then(peak_rss_mib),
    });
    println!("{report}");
    Ok(())
}
