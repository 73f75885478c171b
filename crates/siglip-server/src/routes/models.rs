//! `GET /v1/models` and `GET /v1/models/{id}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;

use crate::api::{ModelCard, ModelList};
use crate::error::ApiError;
use crate::state::AppState;

fn card(id: &str) -> ModelCard {
    ModelCard {
        id: id.to_string(),
        object: "model",
        created: 0,
        owned_by: "siglip-server",
    }
}

/// The served models (one).
pub async fn list(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: vec![card(&state.served_model_name)],
    })
}

/// One model, or 404 `model_not_found`.
pub async fn one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<ModelCard>, ApiError> {
    state.check_model(Some(&id))?;
    Ok(Json(card(&id)))
}
