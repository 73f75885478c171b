//! `GET /health`, `GET /ready` and `GET /metrics`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// 200 while the process serves.
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// 200 once every model is loaded and warmed up; 503 before that and while shutting down.
pub async fn ready(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if state.shutting_down.load(Ordering::SeqCst) {
        return Err(ApiError::unavailable("the server is shutting down"));
    }
    if !state.ready() {
        return Err(ApiError::unavailable("the models are still loading"));
    }
    let names: Vec<&str> = state.models.iter().map(|m| m.name.as_str()).collect();
    Ok(Json(
        json!({"status": "ready", "model": names[0], "models": names}),
    ))
}

/// Prometheus text format.
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
