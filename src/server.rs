//! The HTTP server: shared state, `app(state)` (routes + layers) and `serve` with graceful
//! shutdown. Tests call `app` through a real listener started by the binary.
//!
//! Lifecycle: `serve` binds, answers `/health` at once and `/ready` with 503 until the engine
//! is loaded and warmed up (a blocking task), then 200. SIGTERM/SIGINT set `shutting_down`
//! (`/ready` turns 503), axum stops accepting and drains the connections in flight, then
//! both batching queues finish their accepted entries and the process exits 0.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::config::ServeConfig;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::image_decode::DecodeLimits;
use crate::metrics::{Metrics, RequestLabels, TowerLabels};
use crate::routes;
use crate::url_fetch::UrlFetcher;

/// State shared by every handler.
pub struct ServerState {
    /// The whole configuration.
    pub config: ServeConfig,
    /// Served model id.
    pub model_id: String,
    /// Set once, when the model is loaded and warmed up.
    pub engine: OnceLock<Engine>,
    /// Set by the shutdown signal; `/ready` answers 503 from then on.
    pub shutting_down: AtomicBool,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Fetches URL image inputs (when enabled).
    pub fetcher: UrlFetcher,
    /// One permit per image being fetched, decoded and preprocessed: as many as there are
    /// cores, so decoded images in memory are bounded whatever the number of requests.
    pub decode_slots: Arc<tokio::sync::Semaphore>,
}

/// Handle passed to handlers.
pub type AppState = Arc<ServerState>;

impl ServerState {
    /// New state; the engine is set later by [`ServerState::set_engine`].
    pub fn new(config: ServeConfig, model_id: String) -> Self {
        Self {
            fetcher: UrlFetcher::new(&config.url_fetch),
            config,
            model_id,
            engine: OnceLock::new(),
            shutting_down: AtomicBool::new(false),
            decode_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// The engine, or 503 while loading or shutting down.
    pub fn engine(&self) -> Result<&Engine, ApiError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(ApiError::unavailable("the server is shutting down"));
        }
        self.engine
            .get()
            .ok_or_else(|| ApiError::unavailable("the model is still loading"))
    }

    /// Checks a request's optional `model` field.
    pub fn check_model(&self, model: Option<&str>) -> Result<(), ApiError> {
        match model {
            Some(id) if id != self.model_id => Err(ApiError::model_not_found(id)),
            _ => Ok(()),
        }
    }

    /// Decoder limits from the config.
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_pixels: self.config.limits.max_image_pixels,
            max_side: self.config.limits.max_image_side,
        }
    }
}

/// All routes and layers.
pub fn app(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1/classify", post(routes::classify::classify))
        .route("/v1/embeddings", post(routes::embeddings::embeddings))
        .route("/v1/models", get(routes::models::list))
        .route("/v1/models/{*id}", get(routes::models::one))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let ops = Router::new()
        .route("/health", get(routes::health::health))
        .route("/ready", get(routes::health::ready))
        .route("/metrics", get(routes::health::metrics));
    Router::new()
        .merge(v1)
        .merge(ops)
        .fallback(|| async { ApiError::not_found_route() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(state.config.limits.max_body_bytes))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_millis(state.config.limits.body_idle_timeout_ms),
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .layer(middleware::from_fn(openai_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// `Authorization: Bearer <key>` on `/v1/` routes when keys are configured.
async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
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
        Some(key)
            if keys
                .iter()
                .any(|k| constant_time_eq(k.as_bytes(), key.as_bytes())) =>
        {
            next.run(request).await
        }
        _ => ApiError::unauthorized().into_response(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Keeps the client's `x-request-id` (if sane) or makes one; echoes it on the response and
/// puts it, with the forwarded client address, on the request's log span.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let forwarded = request
        .headers()
        .get("x-forwarded-for")
        .or_else(|| request.headers().get("x-real-ip"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let span = tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path(), client = %forwarded);
    let value = HeaderValue::from_str(&id).expect("checked to be visible ASCII");
    request.headers_mut().insert("x-request-id", value.clone());
    let mut response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), "done"));
    response.headers_mut().insert("x-request-id", value);
    response
}

/// Requests by route and status, and their latency.
async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
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
async fn openai_errors(request: Request, next: Next) -> Response {
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

/// Sets the queue-depth gauges from the engine (called when `/metrics` is scraped).
pub fn refresh_gauges(state: &ServerState) {
    if let Some(engine) = state.engine.get() {
        let (images, texts) = engine.queue_depths();
        state
            .metrics
            .queue_depth
            .get_or_create(&TowerLabels { tower: "image" })
            .set(images as i64);
        state
            .metrics
            .queue_depth
            .get_or_create(&TowerLabels { tower: "text" })
            .set(texts as i64);
    }
}

/// Resolves when SIGTERM or SIGINT arrives, after marking the server as shutting down.
pub async fn shutdown_signal(state: AppState) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal: finishing the requests in flight");
    state.shutting_down.store(true, Ordering::SeqCst);
}

/// Binds, serves, loads the model in the background, and shuts down gracefully.
/// The model's files are resolved before binding, so a missing model fails at once.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let model = config
        .model
        .clone()
        .expect("checked by ServeConfig::resolve");
    let files = crate::model::files::resolve(&model, config.revision.as_deref())?;
    let device = crate::checkpoint::parse_device(&config.device)?;
    let dtype = config.dtype;
    let model_id = config
        .served_model_name
        .clone()
        .unwrap_or_else(|| crate::checkpoint::served_name(&model));
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}:{}: {e}", config.host, config.port))?;
    // The one line scripts and tests wait for.
    println!("listening on http://{}", listener.local_addr()?);
    let state: AppState = Arc::new(ServerState::new(config, model_id));

    let loader = {
        let state = state.clone();
        tokio::spawn(async move {
            let name = state.model_id.clone();
            let checkpoint = tokio::task::spawn_blocking(move || {
                let checkpoint =
                    crate::checkpoint::Checkpoint::from_files(&files, name, &device, dtype)?;
                warm_up(&checkpoint)?;
                crate::memory::keep_freed_memory();
                anyhow::Ok(checkpoint)
            })
            .await??;
            let engine = Engine::start(checkpoint, &state.config, state.metrics.clone());
            let _ = state.engine.set(engine);
            tracing::info!(model = %state.model_id, "ready");
            anyhow::Ok(())
        })
    };
    let mut server = tokio::spawn(
        axum::serve(listener, app(state.clone()))
            .with_graceful_shutdown(shutdown_signal(state.clone()))
            .into_future(),
    );
    tokio::select! {
        // A model that fails to load ends the process with its error.
        loaded = loader => loaded??,
        // A shutdown signal before the model was ready.
        served = &mut server => return Ok(served??),
    }
    server.await??;
    if let Some(engine) = state.engine.get() {
        engine.shutdown().await;
    }
    Ok(())
}

/// One image and one prompt through both towers before `/ready` says yes.
fn warm_up(checkpoint: &crate::checkpoint::Checkpoint) -> anyhow::Result<()> {
    let (w, h) = (
        checkpoint.preprocessor.width,
        checkpoint.preprocessor.height,
    );
    checkpoint.logits(&[image::RgbImage::new(w, h)], &["warm-up".to_string()])?;
    Ok(())
}
