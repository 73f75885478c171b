//! Image inputs of the API to bytes: data URLs, bare base64 (standard or URL-safe, padding
//! optional, whitespace ignored), http(s) URLs, and the object forms, through
//! `siglip_server::image_input::{parse_image, decode_base64}`.
//!
//! The input is used twice: as a JSON image item (`serde_json::from_slice::<Item>`), and as the
//! text of a string item (lossy UTF-8). Checks:
//! - `parse_image` returns a URL only for an `http://`/`https://` string, base64 text that is a
//!   part of the input, or a 400 `invalid_image` error naming the parameter;
//! - `decode_base64` never yields more bytes than it was given characters (three per four
//!   non-whitespace ones, in fact), and what it yields round-trips: encoded again in either
//!   alphabet, with or without padding, with whitespace inserted, it decodes to the same bytes.
#![no_main]

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use siglip_server::image_input::{decode_base64, parse_image, ImageSource};
use siglip_server::json_input::Item;

fuzz_target!(|data: &[u8]| {
    if let Ok(item) = serde_json::from_slice::<Item>(data) {
        check_item(&item, None);
    }
    let text = String::from_utf8_lossy(data).into_owned();
    check_item(&Item::Text(text.clone()), Some(&text));
    check_base64(&text);
});

/// `source`: the text of a string item (a JSON item's strings are unescaped: not checked).
fn check_item(item: &Item, source: Option<&str>) {
    match parse_image(item, "images[0]") {
        Ok(ImageSource::Url(url)) => {
            assert!(
                url.starts_with("http://") || url.starts_with("https://"),
                "{url:?}"
            );
            assert_eq!(url, url.trim());
        }
        Ok(ImageSource::Base64(text)) => {
            if let Some(source) = source {
                assert!(
                    source.contains(text.as_str()),
                    "base64 text not from the input"
                );
            }
            check_base64(&text);
        }
        Ok(ImageSource::Bytes(_)) => panic!("parse_image made bytes"),
        Err(error) => {
            assert_eq!(error.status.as_u16(), 400);
            assert_eq!(error.code, "invalid_image");
            assert_eq!(error.param.as_deref(), Some("images[0]"));
        }
    }
}

fn check_base64(text: &str) {
    let Some(bytes) = decode_base64(text) else {
        return;
    };
    let significant = text.chars().filter(|c| !c.is_ascii_whitespace()).count();
    assert!(
        bytes.len() <= text.len(),
        "{} bytes from {} characters",
        bytes.len(),
        text.len()
    );
    assert!(
        bytes.len() <= significant / 4 * 3 + 2,
        "{} bytes from {significant}",
        bytes.len()
    );
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        let encoded = engine.encode(&bytes);
        assert_eq!(
            decode_base64(&encoded).as_ref(),
            Some(&bytes),
            "{encoded:?}"
        );
    }
    // Whitespace anywhere (line-wrapped base64, as e-mail and some clients send it).
    let wrapped: String = STANDARD
        .encode(&bytes)
        .as_bytes()
        .chunks(7)
        .map(|c| format!("{}\r\n ", std::str::from_utf8(c).unwrap()))
        .collect();
    assert_eq!(
        decode_base64(&wrapped).as_ref(),
        Some(&bytes),
        "{wrapped:?}"
    );
}
