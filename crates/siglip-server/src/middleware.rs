//! The layers every request passes: request id and log span, metrics, authentication, and
//! the conversion of any non-JSON error response into an OpenAI error object.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::metrics::RequestLabels;
use crate::state::AppState;

/// `Authorization: Bearer <key>` on `/v1/` routes when keys are configured.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let keys = &state.config.api_keys;
    if keys.is_empty() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim());
    match presented {
        Some(key) if key_matches(keys, key) => next.run(request).await,
        _ => ApiError::unauthorized().into_response(),
    }
}

/// Whether `presented` is one of `keys`, in time that depends on neither the keys' lengths nor
/// where a match is: the SHA-256 digests (all 32 bytes) are compared, and every key is tried.
fn key_matches(keys: &[String], presented: &str) -> bool {
    use sha2::{Digest, Sha256};
    let presented = Sha256::digest(presented.as_bytes());
    keys.iter().fold(false, |found, key| {
        let digest = Sha256::digest(key.as_bytes());
        let differing = digest
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        found | (differing == 0)
    })
}

/// Keeps the client's `x-request-id` (if sane) or makes one; echoes it on the response and
/// puts it on the request's log span with the socket's peer address and, behind a trusted
/// proxy, the client address that proxy forwarded. User-controlled values (path, request id)
/// are logged quoted, so that they cannot forge fields of a text log line.
pub async fn request_id(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| *address);
    let client = peer
        .filter(|p| state.config.trusted_proxies.contains(&p.ip()))
        .and_then(|_| forwarded_client(request.headers()));
    let span = tracing::info_span!(
        "request",
        id = ?id,
        method = %request.method(),
        path = ?request.uri().path(),
        peer = %peer.map_or_else(|| "-".to_string(), |p| p.to_string()),
        client = %client.map_or_else(|| "-".to_string(), |c| c.to_string()),
    );
    let value = HeaderValue::from_str(&id).expect("checked to be visible ASCII");
    request.headers_mut().insert("x-request-id", value.clone());
    let mut response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), "done"));
    response.headers_mut().insert("x-request-id", value);
    response
}

/// The address the nearest proxy saw: the last hop of `X-Forwarded-For` (the hops before it
/// are whatever the client wrote), when it parses as an IP address.
fn forwarded_client(headers: &header::HeaderMap) -> Option<IpAddr> {
    let forwarded = headers.get_all("x-forwarded-for").iter().next_back()?;
    let last_hop = forwarded.to_str().ok()?.rsplit(',').next()?.trim();
    (last_hop.len() <= 64)
        .then(|| last_hop.parse().ok())
        .flatten()
}

/// Requests by route and status, and their latency.
pub async fn record_metrics(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let start = Instant::now();
    let response = next.run(request).await;
    let labels = RequestLabels {
        route,
        status: response.status().as_u16(),
    };
    state.metrics.requests.get_or_create(&labels).inc();
    state
        .metrics
        .request_seconds
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    response
}

/// Any error response not already an OpenAI error object (axum's own 404/405/413/415
/// rejections) becomes one.
pub async fn openai_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status.is_success() || status.is_redirection() || is_json {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::not_found_route(),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::method_not_allowed(),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::body_too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::unsupported_media_type(),
        s if s.is_server_error() => ApiError::internal(format!("unexpected {s} response")),
        s => ApiError::with_status(s, "invalid_request", "the request could not be processed"),
    };
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut converted = error.into_response();
    if let Some(allow) = allow {
        converted.headers_mut().insert(header::ALLOW, allow);
    }
    converted
}

/// 431 for a request whose headers exceed `limits.max_headers` fields or
/// `limits.max_header_bytes` bytes (hyper's own buffer limit stays the backstop for larger ones).
pub async fn header_limits(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let limits = &state.config.limits;
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > limits.max_headers || bytes > limits.max_header_bytes {
        return ApiError::headers_too_large(limits.max_headers, limits.max_header_bytes)
            .into_response();
    }
    next.run(request).await
}

/// Takes a share of `limits.max_inflight_body_bytes` before a body is read, held until the
/// response: its `Content-Length`, or the whole `max_body_bytes` when the length is not
/// announced. With none left, 429: bodies being read and parsed at once are bounded in bytes,
/// whatever their number.
pub async fn body_budget(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    use http_body::Body as _;
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let limits = &state.config.limits;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let bytes = announced.map_or(limits.max_body_bytes, |n| n.min(limits.max_body_bytes));
    let kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    match state.body_budget.clone().try_acquire_many_owned(kib) {
        Ok(_held) => next.run(request).await,
        Err(_) => ApiError::queue_full(1).into_response(),
    }
}

/// Says `Connection: close` on any response whose request body was not read to its end.
///
/// A handler may answer before reading the body (a 404 route, a 401, a 415, a 413 part way).
/// hyper then cannot reuse the connection, since the unread rest of the body would be parsed
/// as the next request, and closes it after the response. Without the header a pooling
/// client reuses the closed socket for its next request and loses it; with it, the client
/// opens a new connection.
pub async fn close_if_body_unread(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = ReadToEnd::new(body);
    let finished = body.finished.clone();
    let mut response = next
        .run(Request::from_parts(parts, axum::body::Body::new(body)))
        .await;
    if !finished.load(std::sync::atomic::Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that records whether it was read to its end.
struct ReadToEnd {
    inner: axum::body::Body,
    /// Set once the last frame has been read (or at once for an empty body).
    finished: Arc<std::sync::atomic::AtomicBool>,
}

impl ReadToEnd {
    fn new(inner: axum::body::Body) -> Self {
        use http_body::Body as _;
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(inner.is_end_stream()));
        Self { inner, finished }
    }
}

impl http_body::Body for ReadToEnd {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        let ended = matches!(polled, std::task::Poll::Ready(None)) || self.inner.is_end_stream();
        if ended {
            self.finished
                .store(true, std::sync::atomic::Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
