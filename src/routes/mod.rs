//! One module per route group. Shared here: reading a JSON body with OpenAI-style errors,
//! and decoding + preprocessing images on the blocking pool.

pub mod classify;
pub mod embeddings;
pub mod health;
pub mod models;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::engine::{Engine, Pixels};
use crate::error::ApiError;
use crate::image_input::{load_image, ImageSource};
use crate::server::Shared;

/// The request's media type, lower-cased, without parameters.
pub fn media_type(request: &Request) -> String {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The whole body, or 413 past the configured limit.
pub async fn body_bytes(state: &Shared, request: Request) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(request.into_body(), state.config.limits.max_body_bytes)
        .await
        .map_err(|_| ApiError::body_too_large())
}

/// Parses a JSON body; a syntax error and a wrong field are both 400 with the parser's words.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        let code = if error.is_syntax() || error.is_eof() {
            "invalid_json"
        } else {
            "invalid_request"
        };
        ApiError::bad_request(code, format!("invalid request body: {error}"))
    })
}

/// A JSON body of a JSON-only route: 415 for other content types.
pub async fn read_json<T: DeserializeOwned>(
    state: &Shared,
    request: Request,
) -> Result<T, ApiError> {
    if media_type(&request) != "application/json" {
        return Err(ApiError::unsupported_media_type());
    }
    parse_json(&body_bytes(state, request).await?)
}

/// Fetches, decodes and preprocesses images on the blocking pool, one task per image.
pub async fn preprocess(
    state: &std::sync::Arc<Shared>,
    engine: &Engine,
    sources: Vec<(ImageSource, String)>,
) -> Result<Vec<Pixels>, ApiError> {
    let preprocessor = engine.preprocessor.clone();
    let tasks = sources.into_iter().map(|(source, param)| {
        let state = state.clone();
        let preprocessor = preprocessor.clone();
        tokio::task::spawn_blocking(move || {
            let image = load_image(source, &state.fetcher, &state.decode_limits(), &param)?;
            Ok::<_, ApiError>(preprocessor.pixel_values(&image))
        })
    });
    let mut pixels = Vec::new();
    for result in futures::future::join_all(tasks).await {
        pixels.push(result.map_err(ApiError::internal)??);
    }
    Ok(pixels)
}
