//! Memory per request, measured: the server's peak resident memory (VmHWM) under hostile
//! bodies stays within a small multiple of what was sent.

mod common;

use common::server::Server;

/// The server process's (current, peak) resident memory in MiB.
fn resident_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap()
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `{"input": [0, 0, …]}` of about `bytes`: ten million values parsed into `serde_json::Value`
/// took 23x the body's size.
fn zeros_body(bytes: usize) -> Vec<u8> {
    let mut body = b"{\"input\": [".to_vec();
    body.extend(std::iter::repeat_n(b"0,".as_slice(), bytes / 2).flatten());
    body.extend_from_slice(b"0]}");
    body
}

#[tokio::test]
async fn hostile_bodies_cost_about_their_size() {
    let server = Server::start("tiny-p16", &[], None);
    let client = reqwest::Client::new();
    let (_, before) = resident_mib(server.pid());
    let body = zeros_body(19 << 20);
    let size_mib = body.len() as f64 / (1 << 20) as f64;

    let response = client
        .post(server.url("/v1/embeddings"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (_, one) = resident_mib(server.pid());
    eprintln!("one {size_mib:.0} MiB body: peak {before:.0} -> {one:.0} MiB");
    assert!(
        one - before < 5.0 * size_mib,
        "one body: {before:.0} -> {one:.0} MiB"
    );

    let requests = (0..10).map(|_| {
        client
            .post(server.url("/v1/embeddings"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    });
    for response in futures::future::join_all(requests).await {
        let status = response.unwrap().status().as_u16();
        assert!(matches!(status, 400 | 429), "{status}");
    }
    let (now, ten) = resident_mib(server.pid());
    eprintln!("ten at once: peak {ten:.0} MiB, now {now:.0} MiB");
    assert!(
        ten - before < 1024.0,
        "ten bodies: {before:.0} -> {ten:.0} MiB"
    );
}

/// A 16-bit RGBA PNG of `side`² pixels, all zero: a few KB that decode to 8 bytes a pixel.
fn png_bomb(side: u32) -> String {
    use base64::Engine as _;
    let image = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::new(side, side);
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// Decoding draws on a budget by what each header says it will hold: an image that alone
/// needs more is refused before decoding, and four that fit one at a time decode one at a time.
#[tokio::test]
async fn decodes_share_a_memory_budget() {
    let budget_mib = 100.0;
    let server = Server::start(
        "tiny-p16",
        &[],
        Some("[limits]\nmax_decode_bytes = 104857600\n"),
    );
    let client = reqwest::Client::new();
    let classify = |image: String| {
        client
            .post(server.url("/v1/classify"))
            .json(&serde_json::json!({"image": image, "labels": ["cat"]}))
            .send()
    };
    // 3000² × (8 + 6) bytes = 126 MB: more than the whole budget.
    let too_big = classify(png_bomb(3000)).await.unwrap();
    assert_eq!(too_big.status(), 413);
    let body: serde_json::Value = too_big.json().await.unwrap();
    assert_eq!(body["error"]["code"], "image_too_large", "{body}");

    // 2000² × 14 = 56 MB each: one at a time within the budget.
    let (_, before) = resident_mib(server.pid());
    let image = png_bomb(2000);
    let responses = futures::future::join_all((0..4).map(|_| classify(image.clone()))).await;
    for response in responses {
        assert_eq!(response.unwrap().status(), 200);
    }
    let (_, peak) = resident_mib(server.pid());
    eprintln!("four 2000x2000 16-bit RGBA decodes: peak {before:.0} -> {peak:.0} MiB");
    // Four at once would hold 4 x 56 MB of decoded pixels alone; the allocator's retention
    // and the resize's buffers come on top of what the budget counts.
    assert!(
        peak - before < 2.0 * budget_mib,
        "decoding took {before:.0} -> {peak:.0} MiB against a {budget_mib} MiB budget"
    );
}
