//! An open-loop soak for `POST /v1/classify`: requests at a fixed rate for a fixed time, a share
//! of them bad (an image that is not one: the server must answer 400 and carry on), and one JSON
//! line per interval: throughput, latency percentiles of the good answers, answers by status,
//! and the server's resident memory.
//!
//! ```text
//! cargo run --release --example soak -- --url http://127.0.0.1:8080 --pid SERVER_PID \
//!     --rate 2.5 --seconds 1800 [--bad-share 0.1] [--interval 30] [--image PATH]
//! ```
//!
//! `scripts/soak.sh` measures the capacity, runs this at 80% of it and plots the lines.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;

struct Args {
    url: String,
    image: String,
    rate: f64,
    seconds: f64,
    bad_share: f64,
    interval: f64,
    pid: Option<u32>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        url: "http://127.0.0.1:8080".into(),
        image: "tests/fixtures/images/retina_1mp.jpg".into(),
        rate: 1.0,
        seconds: 60.0,
        bad_share: 0.1,
        interval: 10.0,
        pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => args.url = value,
            "--image" => args.image = value,
            "--rate" => args.rate = value.parse()?,
            "--seconds" => args.seconds = value.parse()?,
            "--bad-share" => args.bad_share = value.parse()?,
            "--interval" => args.interval = value.parse()?,
            "--pid" => args.pid = Some(value.parse()?),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
    Ok(args)
}

/// What one interval saw.
#[derive(Default)]
struct Interval {
    latencies: Vec<f64>,
    answers: BTreeMap<String, usize>,
}

fn resident_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let image = std::fs::read(&args.image).with_context(|| format!("reading {}", args.image))?;
    let labels = [
        "cat",
        "dog",
        "a red car",
        "an astronaut",
        "a cup of coffee",
        "a horse",
    ];
    let good = serde_json::json!({
        "image": base64::engine::general_purpose::STANDARD.encode(&image),
        "labels": labels,
    });
    let bad = serde_json::json!({"image": "bm90IGFuIGltYWdl", "labels": labels});
    let client = reqwest::Client::new();
    let url = format!("{}/v1/classify", args.url);
    let current = Arc::new(Mutex::new(Interval::default()));
    let start = Instant::now();
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let mut next_report = args.interval;
    let mut last_report = 0.0;
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0u64;
    let mut in_flight = Vec::new();
    while start.elapsed().as_secs_f64() < args.seconds {
        ticker.tick().await;
        // Every 1/bad_share-th request is bad, spread evenly.
        let is_bad = args.bad_share > 0.0
            && ((sent + 1) as f64 * args.bad_share).floor()
                > (sent as f64 * args.bad_share).floor();
        sent += 1;
        let body = if is_bad { bad.clone() } else { good.clone() };
        let (client, url, interval) = (client.clone(), url.clone(), current.clone());
        in_flight.push(tokio::spawn(async move {
            let began = Instant::now();
            let answer = match client.post(&url).json(&body).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    status.to_string()
                }
                Err(_) => "connection".to_string(),
            };
            let mut interval = interval.lock().unwrap();
            if answer == "200" {
                interval.latencies.push(began.elapsed().as_secs_f64());
            }
            *interval.answers.entry(answer).or_default() += 1;
        }));
        in_flight.retain(|task| !task.is_finished());
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= next_report {
            report(&current, elapsed, elapsed - last_report, args.pid);
            last_report = elapsed;
            next_report += args.interval;
        }
    }
    for task in in_flight {
        task.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    report(&current, elapsed, elapsed - last_report, args.pid);
    Ok(())
}

/// Prints the interval just ended (`interval` seconds long) and starts the next.
fn report(current: &Mutex<Interval>, elapsed: f64, interval: f64, pid: Option<u32>) {
    let mut finished = std::mem::take(&mut *current.lock().unwrap());
    finished.latencies.sort_by(f64::total_cmp);
    let line = serde_json::json!({
        "t_s": (elapsed * 10.0).round() / 10.0,
        "images_per_s": ((finished.latencies.len() as f64 / interval) * 1000.0).round() / 1000.0,
        "answers": finished.answers,
        "p50_ms": (percentile(&finished.latencies, 0.5) * 1e4).round() / 10.0,
        "p99_ms": (percentile(&finished.latencies, 0.99) * 1e4).round() / 10.0,
        "rss_mib": pid.and_then(resident_mib).map(|m| m.round()),
    });
    println!("{line}");
}
