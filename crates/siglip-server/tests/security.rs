//! Authentication that cannot switch itself off, keys kept out of `--help`, keys from a file,
//! and log lines that a client cannot forge.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::server::Server;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_siglip-server"))
}

#[test]
fn help_does_not_print_the_keys() {
    let output = binary()
        .args(["serve", "--help"])
        .env("SIGLIP_API_KEYS", "sekrit-key-value")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("SIGLIP_API_KEYS"), "{help}");
    assert!(!help.contains("sekrit-key-value"), "{help}");
}

#[test]
fn blank_keys_refuse_to_start() {
    let output = binary()
        .args(["serve", "--port", "0", "--model"])
        .arg(common::fixture("models/tiny-p16"))
        .env("SIGLIP_API_KEYS", " , ")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("blank"), "{error}");
}

#[tokio::test]
async fn keys_come_from_a_file() {
    let path = std::env::temp_dir().join(format!("siglip-keys-test-{}", std::process::id()));
    std::fs::write(&path, "# mounted from a Secret\nfile-key\n").unwrap();
    let server = Server::start(
        "tiny-p16",
        &["--api-keys-file", path.to_str().unwrap()],
        None,
    );
    let client = reqwest::Client::new();
    let models = server.url("/v1/models");
    let without = client.get(&models).send().await.unwrap();
    let with = client
        .get(&models)
        .bearer_auth("file-key")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (without.status().as_u16(), with.status().as_u16()),
        (401, 200)
    );
    std::fs::remove_file(path).unwrap();
}

/// Text log lines of a server that trusts 127.0.0.1 as its proxy, after the given requests.
fn log_lines(trusted: bool, requests: &[(&str, &str)]) -> Vec<String> {
    let config = std::env::temp_dir().join(format!(
        "siglip-log-test-{}-{trusted}.toml",
        std::process::id()
    ));
    let proxies = if trusted { "[\"127.0.0.1\"]" } else { "[]" };
    std::fs::write(&config, format!("trusted_proxies = {proxies}\n")).unwrap();
    let mut child = binary()
        .args(["serve", "--port", "0", "--model"])
        .arg(common::fixture("models/tiny-p16"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    for (forwarded, path) in requests {
        raw_get(&base, path, forwarded);
    }
    std::thread::sleep(Duration::from_millis(200));
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    std::fs::remove_file(config).unwrap();
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.contains("done"))
        .map(str::to_string)
        .collect()
}

/// A GET over a plain socket with an `X-Forwarded-For` header; the response's status line.
fn raw_get(base: &str, path: &str, forwarded: &str) -> String {
    use std::io::{Read, Write};
    let host = base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {forwarded}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.lines().next().unwrap_or("").to_string()
}

#[test]
fn logs_name_the_peer_and_trust_forwarding_only_from_proxies() {
    let forged = "1.2.3.4 id=forged status=200";
    let long = format!("{}, 203.0.113.9", "9".repeat(60_000));
    let requests = [
        (forged, "/health"),
        ("198.51.100.7, 203.0.113.9", "/health"),
        (long.as_str(), "/health"),
    ];
    let untrusted = log_lines(false, &requests);
    let trusted = log_lines(true, &requests);
    assert_eq!(
        (untrusted.len(), trusted.len()),
        (3, 3),
        "{untrusted:?} {trusted:?}"
    );
    for line in untrusted.iter().chain(&trusted) {
        assert!(line.contains("peer=127.0.0.1:"), "{line}");
        assert!(line.len() < 1000, "a {}-byte log line", line.len());
        assert!(!line.contains("forged"), "{line}");
    }
    assert!(
        untrusted.iter().all(|l| l.contains("client=-")),
        "{untrusted:?}"
    );
    // Behind the proxy: the last hop, when it is an address; never the client's own words.
    assert!(trusted[0].contains("client=-"), "{}", trusted[0]);
    assert!(trusted[1].contains("client=203.0.113.9"), "{}", trusted[1]);
    assert!(trusted[2].contains("client=203.0.113.9"), "{}", trusted[2]);
}
