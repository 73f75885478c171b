//! One module per route group. Here: reading a JSON body with OpenAI-style errors,
//! and decoding + preprocessing images on the blocking pool.

use std::sync::Arc;

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
use crate::image_input::{decode, fetch, ImageSource};
use crate::state::AppState;

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
pub async fn body_bytes(state: &AppState, request: Request) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(request.into_body(), state.config.limits.max_body_bytes)
        .await
        .map_err(|error| {
            let cause = error.into_inner();
            if caused_by::<http_body_util::LengthLimitError>(&*cause) {
                ApiError::body_too_large()
            } else if caused_by::<tower_http::timeout::TimeoutError>(&*cause) {
                ApiError::body_timeout()
            } else {
                ApiError::bad_request(
                    "unreadable_body",
                    format!("the request body could not be read: {cause}"),
                )
            }
        })
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

/// Whether `E` is anywhere in `error`'s chain of sources.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<E>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// A JSON body of a JSON-only route: 415 for other content types.
pub async fn read_json<T: DeserializeOwned>(
    state: &AppState,
    request: Request,
) -> Result<T, ApiError> {
    if media_type(&request) != "application/json" {
        return Err(ApiError::unsupported_media_type());
    }
    parse_json(&body_bytes(state, request).await?)
}

/// Fetches, decodes and preprocesses images on the blocking pool, one task per image.
///
/// A URL is downloaded first, under a fetch slot: a download waits on the network and must not
/// hold a decode slot that another request's image could use. Decoding and preprocessing then
/// take a decode slot, which bounds the decoded images alive at once across the server; it is
/// taken here, so a request whose client left starts no more decodes.
pub async fn preprocess(
    state: &Arc<AppState>,
    engine: &Engine,
    sources: Vec<(ImageSource, String)>,
) -> Result<Vec<Pixels>, ApiError> {
    let tasks = sources.into_iter().map(|(source, param)| {
        let state = state.clone();
        let checkpoint = engine.checkpoint.clone();
        async move {
            let source = match source {
                ImageSource::Url(_) => {
                    let _slot = acquire(&state.fetch_slots).await?;
                    let state = state.clone();
                    let param = param.clone();
                    tokio::task::spawn_blocking(move || fetch(source, &state.fetcher, &param))
                        .await
                        .map_err(ApiError::internal)??
                }
                other => other,
            };
            let slot = acquire(&state.decode_slots).await?;
            tokio::task::spawn_blocking(move || {
                let _slot = slot;
                let image = decode(source, &state.decode_limits(), &param)?;
                Ok::<_, ApiError>(checkpoint.pixels(&image))
            })
            .await
            .map_err(ApiError::internal)?
        }
    });
    futures::future::try_join_all(tasks).await
}

async fn acquire(
    slots: &Arc<tokio::sync::Semaphore>,
) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    slots
        .clone()
        .acquire_owned()
        .await
        .map_err(ApiError::internal)
}
