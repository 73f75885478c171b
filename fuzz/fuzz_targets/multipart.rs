//! multipart/form-data bodies as `POST /v1/classify` reads them: axum's `Multipart` is `multer`
//! (the version axum uses), driven here directly and synchronously, with the field handling of
//! `routes/classify.rs` (image bytes, labels as text or a JSON list, `top_k` as an integer,
//! other fields skipped unread).
//!
//! Input: the first line is the `Content-Type` header (its boundary is parsed as axum parses
//! it; when it has none, `XBOUNDARY` is used), the rest is the body. Checks:
//! - a file field's bytes appear verbatim in the body, and all of them together are no longer
//!   than the body;
//! - the parse does not depend on how the body arrives: delivered whole, and delivered in
//!   chunks of 1 to 16 bytes, it yields the same fields, in the same order, with the same
//!   contents, and fails (or not) at the same point.
#![no_main]

use bytes::Bytes;
use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;

const FALLBACK_BOUNDARY: &str = "XBOUNDARY";

#[derive(Debug, PartialEq)]
enum Event {
    Image {
        name: String,
        file_name: Option<String>,
        bytes: Vec<u8>,
    },
    Labels(Vec<String>),
    TopK(Option<usize>),
    Text(String, String),
    Skipped(Option<String>),
    Error(String),
}

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let header = String::from_utf8_lossy(header);
    let boundary =
        multer::parse_boundary(header.trim()).unwrap_or_else(|_| FALLBACK_BOUNDARY.to_string());

    let whole = read_form(&boundary, vec![Bytes::copy_from_slice(body)]);
    let step = usize::from(data.last().copied().unwrap_or(0) % 16) + 1;
    let chunked = read_form(
        &boundary,
        body.chunks(step).map(Bytes::copy_from_slice).collect(),
    );
    assert_eq!(
        whole, chunked,
        "the body read whole and in {step}-byte chunks"
    );

    let mut total = 0;
    for event in &whole {
        if let Event::Image { bytes, .. } = event {
            total += bytes.len();
            assert!(
                bytes.is_empty() || body.windows(bytes.len()).any(|w| w == &bytes[..]),
                "a field's bytes are not in the body"
            );
        }
    }
    assert!(
        total <= body.len(),
        "{total} field bytes from a {}-byte body",
        body.len()
    );
});

fn read_form(boundary: &str, chunks: Vec<Bytes>) -> Vec<Event> {
    let stream = futures::stream::iter(chunks.into_iter().map(Ok::<Bytes, std::io::Error>));
    let mut form = multer::Multipart::new(stream, boundary);
    let mut events = Vec::new();
    block_on(async {
        loop {
            let field = match form.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) => {
                    events.push(Event::Error(e.to_string()));
                    break;
                }
            };
            let name = field.name().unwrap_or("").to_string();
            let event = match name.as_str() {
                "image" | "images" => {
                    let file_name = field.file_name().map(str::to_string);
                    field.bytes().await.map(|bytes| Event::Image {
                        name: name.clone(),
                        file_name,
                        bytes: bytes.to_vec(),
                    })
                }
                "labels" | "candidate_labels" => field.text().await.map(|text| {
                    match serde_json::from_str::<Vec<String>>(&text) {
                        Ok(list) if text.trim_start().starts_with('[') => Event::Labels(list),
                        _ => Event::Labels(vec![text]),
                    }
                }),
                "top_k" => field
                    .text()
                    .await
                    .map(|text| Event::TopK(text.trim().parse().ok())),
                "hypothesis_template" | "model" => field
                    .text()
                    .await
                    .map(|text| Event::Text(name.clone(), text)),
                _ => Ok(Event::Skipped(field.content_type().map(|m| m.to_string()))),
            };
            match event {
                Ok(event) => events.push(event),
                Err(e) => {
                    events.push(Event::Error(e.to_string()));
                    break;
                }
            }
        }
    });
    events
}
