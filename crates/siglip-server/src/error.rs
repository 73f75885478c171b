//! `ApiError`: every non-2xx response, as an OpenAI error object. The other layers' errors
//! (the library's, the engine's, URL fetching's) become HTTP statuses here, in one `From` each.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use siglip::image_decode::DecodeError;
use siglip::preprocess::PatchError;
use siglip::zero_shot::RequestError;
use utoipa::ToSchema;

use crate::engine::EngineError;
use crate::url_fetch::FetchError;

/// An error the client sees: status, OpenAI `type`, machine-readable `code`, and the field
/// (`param`) it concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// User-facing message; never internal details for 5xx.
    pub message: String,
    /// The request field at fault, if any.
    pub param: Option<String>,
    /// Machine-readable code, e.g. `empty_labels`.
    pub code: String,
    /// Seconds to wait before retrying (429, 503).
    pub retry_after: Option<u64>,
}

/// The body of every error response (the OpenAI error object).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"message": "labels must not be empty",
    "type": "invalid_request_error", "param": "labels", "code": "empty_labels"}}))]
pub struct ErrorBody<'a> {
    /// What went wrong.
    error: ErrorObject<'a>,
}

/// What went wrong, in OpenAI's words.
#[derive(Serialize, ToSchema)]
pub struct ErrorObject<'a> {
    /// For a person; never internal details for a 5xx.
    message: &'a str,
    /// The class of error, from the status.
    #[serde(rename = "type")]
    kind: ErrorType,
    /// The request field at fault (`labels`, `images[2]`, `input[0]`), or null.
    #[schema(required = true)]
    param: Option<&'a str>,
    /// Machine-readable, e.g. `empty_labels`, `model_not_found`, `queue_full`.
    code: &'a str,
}

/// OpenAI's error `type`, one per class of status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// 400, 405, 408, 413, 415, 431: the request itself is wrong.
    InvalidRequestError,
    /// 401.
    AuthenticationError,
    /// 404.
    NotFoundError,
    /// 429.
    RateLimitError,
    /// 5xx.
    ServerError,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
            code: code.into(),
            retry_after: None,
        }
    }

    /// 400 about one field.
    pub fn invalid(param: &str, code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message).with_param(param)
    }

    /// 400 about the request as a whole.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 413: the body, or one image's pixel count, is over its limit.
    pub fn too_large(param: Option<&str>, code: &str, message: impl Into<String>) -> Self {
        let error = Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message);
        match param {
            Some(p) => error.with_param(p),
            None => error,
        }
    }

    /// 404 for a model id nobody serves.
    pub fn model_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("the model {id:?} does not exist"),
        )
        .with_param("model")
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "missing or invalid API key: send Authorization: Bearer <key>",
        )
    }

    /// 429 with a `Retry-After`.
    pub fn queue_full(retry_after: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "queue_full",
            "the server is at capacity; retry shortly",
        );
        error.retry_after = Some(retry_after);
        error
    }

    /// 503: not ready yet, or shutting down.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        error.retry_after = Some(1);
        error
    }

    /// 504: waited longer than the request timeout.
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the request waited longer than the server's request timeout",
        )
    }

    /// 500: a bug. `detail` is logged, never sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal server error",
        )
    }

    /// 404 for a path no route serves.
    pub fn not_found_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route",
        )
    }

    /// 413 for the request body.
    pub fn body_too_large() -> Self {
        Self::too_large(
            None,
            "body_too_large",
            "the request body is larger than the server accepts",
        )
    }

    /// 408: the request body stalled.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the request body stopped arriving",
        )
    }

    /// 431: too many header fields, or too many header bytes.
    pub fn headers_too_large(max_headers: usize, max_header_bytes: usize) -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request headers are too large: at most {max_headers} fields and \
                 {max_header_bytes} bytes"
            ),
        )
    }

    /// 415.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json or multipart/form-data",
        )
    }

    /// Any other status.
    pub fn with_status(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self::new(status, code, message)
    }

    /// Names the field at fault.
    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_string());
        self
    }

    /// The OpenAI `type` for this status.
    pub fn kind(&self) -> ErrorType {
        match self.status {
            StatusCode::UNAUTHORIZED => ErrorType::AuthenticationError,
            StatusCode::NOT_FOUND => ErrorType::NotFoundError,
            StatusCode::TOO_MANY_REQUESTS => ErrorType::RateLimitError,
            s if s.is_server_error() => ErrorType::ServerError,
            _ => ErrorType::InvalidRequestError,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorObject {
                message: &self.message,
                kind: self.kind(),
                param: self.param.as_deref(),
                code: &self.code,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::AtCapacity => Self::queue_full(1),
            EngineError::Timeout => Self::timeout(),
            EngineError::ShuttingDown => Self::unavailable(error.to_string()),
            EngineError::Failed(detail) => Self::internal(detail),
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        Self::invalid(error.param(), error.code(), error.to_string())
    }
}

/// A 400 `invalid_image`, or 413 for an image over the pixel limits; the caller names the
/// field with [`ApiError::with_param`].
impl From<DecodeError> for ApiError {
    fn from(error: DecodeError) -> Self {
        match error {
            DecodeError::TooManyPixels { .. } => {
                Self::too_large(None, "image_too_large", error.to_string())
            }
            other => Self::bad_request("invalid_image", other.to_string()),
        }
    }
}

/// A 400 `invalid_image`: the image cannot be cut into a NaFlex model's patches; the caller
/// names the field with [`ApiError::with_param`].
impl From<PatchError> for ApiError {
    fn from(error: PatchError) -> Self {
        Self::bad_request("invalid_image", error.to_string())
    }
}

/// A 400 `image_url_error` (`image_url_disabled` when URLs are off), or 413 past the size cap;
/// the caller names the field with [`ApiError::with_param`].
impl From<FetchError> for ApiError {
    fn from(error: FetchError) -> Self {
        match error {
            FetchError::Disabled => Self::bad_request("image_url_disabled", error.to_string()),
            FetchError::TooLarge { .. } => {
                Self::too_large(None, "image_too_large", error.to_string())
            }
            FetchError::BadUrl(_) | FetchError::Failed => {
                Self::bad_request("image_url_error", error.to_string())
            }
        }
    }
}
