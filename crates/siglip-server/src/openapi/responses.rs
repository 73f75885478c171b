//! The error responses each route's handler gives, for the document (`responses(...)` of the
//! `#[utoipa::path]` annotations). The layers in front of every route add theirs in
//! `openapi::document`: 431 everywhere, 401 where API keys guard the route. Never built.
#![allow(dead_code)]

use utoipa::{IntoResponses, ToSchema};

use crate::error::ErrorBody;
use crate::routes::hf_inference::InferenceError;

/// The errors of `/v1/classify` and `/v1/embeddings`, as OpenAI error objects.
#[derive(IntoResponses)]
pub enum ApiErrors {
    /// Malformed JSON or multipart, a missing or wrong field, an image that does not decode,
    /// too many images or labels, `max_num_patches` out of range or sent to a fixed-resolution
    /// model, image URLs while URL fetching is off (`image_url_disabled`).
    #[response(status = 400)]
    BadRequest(ErrorBody<'static>),
    /// The `model` field names no served model (`model_not_found`).
    #[response(status = 404)]
    ModelNotFound(ErrorBody<'static>),
    /// The request body stopped arriving (`limits.body_idle_timeout_ms`).
    #[response(status = 408)]
    BodyTimeout(ErrorBody<'static>),
    /// The body (`limits.max_body_bytes`), or one image's pixels or decoding memory, is over
    /// its limit.
    #[response(status = 413)]
    TooLarge(ErrorBody<'static>),
    /// A content type other than the route takes.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody<'static>),
    /// At capacity (queue, work or body budget); retry after `Retry-After`.
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    AtCapacity(ErrorBody<'static>),
    /// The model is still loading, or the server is shutting down; retry after `Retry-After`.
    #[response(status = 503, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    Unavailable(ErrorBody<'static>),
    /// The request waited longer than `batching.request_timeout_ms`.
    #[response(status = 504)]
    Timeout(ErrorBody<'static>),
}

/// The errors of `POST /`, in the Inference API's shape.
#[derive(IntoResponses)]
pub enum InferenceApiErrors {
    /// Malformed JSON, a missing or wrong field, an image that does not decode, too many
    /// labels.
    #[response(status = 400)]
    BadRequest(InferenceError),
    /// The request body stopped arriving.
    #[response(status = 408)]
    BodyTimeout(InferenceError),
    /// The body, or the image's pixels or decoding memory, is over its limit.
    #[response(status = 413)]
    TooLarge(InferenceError),
    /// A content type other than `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(InferenceError),
    /// At capacity; retry after `Retry-After`. The body budget, checked before the route is
    /// known, answers with the OpenAI error object.
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    AtCapacity(AtCapacity),
    /// The model is still loading, or the server is shutting down; retry after `Retry-After`.
    #[response(status = 503, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    Unavailable(InferenceError),
    /// The request waited longer than `batching.request_timeout_ms`.
    #[response(status = 504)]
    Timeout(InferenceError),
}

/// A 429 on `POST /`: the Inference API's shape from the handler, the OpenAI error object
/// from the body budget in front of every route.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum AtCapacity {
    /// From the handler.
    Inference(InferenceError),
    /// From the body budget.
    OpenAi(ErrorBody<'static>),
}

/// `GET /v1/models/{id}`'s errors.
#[derive(IntoResponses)]
pub enum ModelErrors {
    /// The id is not UTF-8 once percent-decoded.
    #[response(status = 400)]
    BadRequest(ErrorBody<'static>),
    /// No served model has this id (`model_not_found`).
    #[response(status = 404)]
    NotFound(ErrorBody<'static>),
}

/// `GET /ready`'s error.
#[derive(IntoResponses)]
pub enum NotReady {
    /// A model is still loading, or the server is shutting down.
    #[response(status = 503, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    Unavailable(ErrorBody<'static>),
}
