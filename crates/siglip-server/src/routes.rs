//! One module per route group. Here: reading a JSON body with OpenAI-style errors,
//! and decoding + preprocessing images on the blocking pool.

use std::sync::Arc;

pub mod classify;
pub mod docs;
pub mod embeddings;
pub mod health;
pub mod hf_inference;
pub mod models;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::engine::{Engine, Pixels};
use crate::error::ApiError;
use crate::image_input::{bytes_and_cost, decode, ImageSource};
use crate::json_input::{with_list_limit, WholeNumber};
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
/// Lists keep one item more than the images and labels of a request may add up to, so a list
/// cut short is always over its own limit.
pub fn parse_json<T: DeserializeOwned>(state: &AppState, bytes: &[u8]) -> Result<T, ApiError> {
    let limits = &state.config.limits;
    let list_limit = limits.max_images_per_request + limits.max_labels_per_request + 1;
    with_list_limit(list_limit, || serde_json::from_slice(bytes)).map_err(|error| {
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
    parse_json(state, &body_bytes(state, request).await?)
}

/// A request's `max_num_patches` checked against the model and the limit: `None` when not
/// given. Only NaFlex models take it; it must be an integer from 1 to
/// `limits.max_num_patches`.
pub fn max_num_patches(
    state: &AppState,
    (name, engine): (&str, &Engine),
    value: Option<&WholeNumber>,
) -> Result<Option<usize>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let limit = state.config.limits.max_num_patches;
    let invalid =
        |message: String| ApiError::invalid("max_num_patches", "invalid_max_num_patches", message);
    if engine.checkpoint.default_max_num_patches().is_none() {
        return Err(invalid(format!(
            "max_num_patches applies to NaFlex models only; {name} takes images of one fixed size"
        )));
    }
    let sent = match value {
        WholeNumber::Value(n) if (1..=limit as u64).contains(n) => return Ok(Some(*n as usize)),
        WholeNumber::Value(n) => n.to_string(),
        WholeNumber::Other(what) => what.clone(),
    };
    Err(invalid(format!(
        "max_num_patches must be an integer from 1 to {limit}, not {sent}"
    )))
}

/// Fetches, decodes and preprocesses images on the blocking pool, one task per image.
///
/// Each image's bytes come first: a URL is downloaded under a fetch slot, which waits on the
/// network without holding anything decoding needs. Decoding then takes a decode slot (one
/// per core) and as much of the decode budget as its header says it will hold
/// (`limits.max_decode_bytes`), so decoded images alive at once are bounded in count and in
/// bytes. Both are taken here, so a request whose client left starts no more decodes.
///
/// `max_num_patches` overrides a NaFlex model's patch budget (see [`max_num_patches`]).
pub async fn preprocess(
    state: &Arc<AppState>,
    engine: &Engine,
    sources: Vec<(ImageSource, String)>,
    max_num_patches: Option<usize>,
) -> Result<Vec<Pixels>, ApiError> {
    let tasks = sources.into_iter().map(|(source, param)| {
        let state = state.clone();
        let checkpoint = engine.checkpoint.clone();
        async move {
            let _fetching = match source {
                ImageSource::Url(_) => Some(acquire(&state.fetch_slots, 1).await?),
                _ => None,
            };
            let (bytes, cost) = {
                let state = state.clone();
                let param = param.clone();
                blocking(move || {
                    bytes_and_cost(source, &state.fetcher, &state.decode_limits(), &param)
                })
                .await?
            };
            drop(_fetching);
            let kib = u32::try_from(cost.div_ceil(1024)).unwrap_or(u32::MAX);
            if kib as usize > state.config.limits.max_decode_bytes / 1024 {
                return Err(ApiError::too_large(
                    Some(&param),
                    "image_too_large",
                    "decoding the image needs more memory than the server allows one image",
                ));
            }
            let budget = acquire(&state.decode_budget, kib).await?;
            let slot = acquire(&state.decode_slots, 1).await?;
            blocking(move || {
                let _held = (slot, budget);
                let colour_key = checkpoint.colour_key();
                let image = decode(&bytes, &state.decode_limits(), colour_key, &param)?;
                checkpoint
                    .pixels(&image, max_num_patches)
                    .map_err(|e| ApiError::from(e).with_param(&param))
            })
            .await
        }
    });
    futures::future::try_join_all(tasks).await
}

/// Runs `work` on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}

/// `permits` of `slots`, waiting for them.
async fn acquire(
    slots: &Arc<tokio::sync::Semaphore>,
    permits: u32,
) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    slots
        .clone()
        .acquire_many_owned(permits)
        .await
        .map_err(ApiError::internal)
}
