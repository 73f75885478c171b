//! Image inputs of the API (data URL, bare base64, http(s) URL, `{"url": …}` objects and OpenAI
//! `image_url` content parts) to bytes, then to decoded RGB images within the limits.

use base64::engine::{general_purpose::GeneralPurposeConfig, DecodePaddingMode, GeneralPurpose};
use base64::{alphabet, Engine as _};
use image::RgbImage;

use crate::error::ApiError;
use crate::json_input::Item;
use crate::url_fetch::UrlFetcher;
use siglip::image_decode::{decode_rgb_with, decoding_cost, ColourKey, DecodeLimits};

/// Where an image's bytes are. Base64 stays encoded until [`bytes_and_cost`] runs on the
/// blocking pool, so that megabytes of decoding never occupy an async worker.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// Bytes sent in the request (a multipart file).
    Bytes(Vec<u8>),
    /// Base64 text (standard or URL-safe, padding optional) from a data URL or a bare string.
    Base64(String),
    /// An http(s) URL to fetch.
    Url(String),
}

fn lenient(alphabet: &alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

/// Standard or URL-safe base64, padding optional, whitespace ignored.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: std::borrow::Cow<str> = if text.contains(|c: char| c.is_ascii_whitespace()) {
        text.chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>()
            .into()
    } else {
        text.into()
    };
    let engine = if compact.contains(['-', '_']) {
        lenient(&alphabet::URL_SAFE)
    } else {
        lenient(&alphabet::STANDARD)
    };
    engine.decode(compact.as_bytes()).ok()
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(param, "invalid_image", message)
}

/// Reads one image input: a string or one of the object forms (`{"url": …}`, or a content
/// part's `{"image_url": "…"}` / `{"image_url": {"url": …}}`).
pub fn parse_image(item: &Item, param: &str) -> Result<ImageSource, ApiError> {
    match item {
        Item::Text(text) => parse_image_string(text, param),
        Item::Part(part) => match (&part.url, &part.image_url) {
            (Some(url), _) | (None, Some(url)) => parse_image_string(url, param),
            (None, None) => Err(invalid(
                param,
                "an image object needs a \"url\" or an \"image_url\": {\"url\": …}",
            )),
        },
        Item::Other => Err(invalid(
            param,
            "an image must be a data URL, base64, a URL, or an image_url object",
        )),
    }
}

fn parse_image_string(text: &str, param: &str) -> Result<ImageSource, ApiError> {
    let text = text.trim();
    if text.starts_with("http://") || text.starts_with("https://") {
        return Ok(ImageSource::Url(text.to_string()));
    }
    if let Some(rest) = text.strip_prefix("data:") {
        let (header, payload) = rest
            .split_once(',')
            .ok_or_else(|| invalid(param, "a data URL needs a comma before its payload"))?;
        if !header.ends_with(";base64") {
            return Err(invalid(param, "only base64 data URLs are accepted"));
        }
        return Ok(ImageSource::Base64(payload.to_string()));
    }
    if text.is_empty() {
        return Err(invalid(param, "the image is empty"));
    }
    Ok(ImageSource::Base64(text.to_string()))
}

/// The bytes of an image input, with what decoding them will hold at its peak (from the
/// header). Blocking (base64 decoding, and a URL's download): call it on the blocking pool.
pub fn bytes_and_cost(
    source: ImageSource,
    fetcher: &UrlFetcher,
    limits: &DecodeLimits,
    param: &str,
) -> Result<(Vec<u8>, u64), ApiError> {
    let bytes = match source {
        ImageSource::Bytes(bytes) => bytes,
        ImageSource::Base64(text) => decode_base64(&text).ok_or_else(|| {
            invalid(
                param,
                "the image is not a data URL, an http(s) URL, or valid base64",
            )
        })?,
        ImageSource::Url(url) => fetcher
            .fetch(&url)
            .map_err(|e| ApiError::from(e).with_param(param))?,
    };
    let cost =
        decoding_cost(&bytes, limits).map_err(|error| ApiError::from(error).with_param(param))?;
    Ok((bytes, cost))
}

/// Decodes one image's bytes. Blocking: call it on the blocking pool.
pub fn decode(
    bytes: &[u8],
    limits: &DecodeLimits,
    colour_key: ColourKey,
    param: &str,
) -> Result<RgbImage, ApiError> {
    decode_rgb_with(bytes, limits, colour_key)
        .map_err(|error| ApiError::from(error).with_param(param))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(value: serde_json::Value) -> Item {
        serde_json::from_value(value).unwrap()
    }

    fn bytes_of(value: serde_json::Value) -> Option<Vec<u8>> {
        match parse_image(&item(value), "image").unwrap() {
            ImageSource::Base64(text) => decode_base64(&text),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_input_form_is_read() {
        let bytes = Some(vec![0xff, 0xd8, 0xff]);
        assert_eq!(bytes_of(json!("data:image/jpeg;base64,/9j/")), bytes);
        assert_eq!(bytes_of(json!("/9j/")), bytes);
        assert_eq!(bytes_of(json!("_9j_")), bytes);
        assert_eq!(bytes_of(json!(" /9j/\n")), bytes);
        assert_eq!(bytes_of(json!({"url": "/9j/"})), bytes);
        let part = json!({"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/", "detail": "high"}});
        assert_eq!(bytes_of(part), bytes);
        assert_eq!(
            parse_image(&item(json!("https://x/y.png")), "image").unwrap(),
            ImageSource::Url("https://x/y.png".into())
        );
        assert_eq!(bytes_of(json!("not base64!!")), None);
    }

    #[test]
    fn bad_inputs_are_400() {
        for bad in [
            json!(""),
            json!(5),
            json!({"nope": 1}),
            json!("data:image/png,abc"),
        ] {
            let error = parse_image(&item(bad.clone()), "image").unwrap_err();
            assert_eq!(
                (error.status.as_u16(), error.code.as_str()),
                (400, "invalid_image"),
                "{bad}"
            );
        }
    }
}
