//! `GET /health`, `GET /ready` and `GET /metrics`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

use crate::api::{Health, Readiness};
use crate::error::ApiError;
use crate::openapi::responses::NotReady;
use crate::state::AppState;

/// 200 while the process serves.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    summary = "Liveness: 200 while the process serves",
    responses((status = 200, description = "The process is serving", body = Health))
)]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// 200 once every model is loaded and warmed up; 503 before that and while shutting down.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    summary = "Readiness: 200 once every model is loaded and warmed up",
    responses(
        (status = 200, description = "Every model is loaded and warmed up", body = Readiness),
        NotReady,
    )
)]
pub async fn ready(State(state): State<Arc<AppState>>) -> Result<Json<Readiness>, ApiError> {
    if state.shutting_down.load(Ordering::SeqCst) {
        return Err(ApiError::unavailable("the server is shutting down"));
    }
    if !state.ready() {
        return Err(ApiError::unavailable("the models are still loading"));
    }
    let models: Vec<String> = state.models.iter().map(|m| m.name.clone()).collect();
    Ok(Json(Readiness {
        status: "ready",
        model: models[0].clone(),
        models,
    }))
}

/// Prometheus text format (OpenMetrics).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    responses((
        status = 200,
        description = "Requests by route and status, latencies, batch sizes, queue depths and \
            label-cache hits, per model",
        body = String,
        content_type = "application/openmetrics-text"
    ))
)]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    for model in &state.models {
        if let Some(engine) = model.engine.get() {
            let (images, texts) = engine.queue_depths();
            state.metrics.set_queue_depths(&model.name, images, texts);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
