//! `GET /v1/models` and `GET /v1/models/{id}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;

use crate::api::{ModelCard, ModelList};
use crate::error::ApiError;
use crate::state::{AppState, ServedModel};

fn card(model: &ServedModel) -> ModelCard {
    ModelCard {
        id: model.name.clone(),
        object: "model",
        created: 0,
        owned_by: "siglip-server",
        siglip: model.engine.get().map(|e| e.checkpoint.summary()),
    }
}

/// The served models, the default (first) one first.
pub async fn list(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: state.models.iter().map(card).collect(),
    })
}

/// One model, or 404 `model_not_found`.
pub async fn one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<ModelCard>, ApiError> {
    Ok(Json(card(state.served_model(Some(&id))?)))
}
