//! `GET /v1/models` and `GET /v1/models/{id}`.

use axum::extract::{Path, State};
use axum::Json;

use crate::api::{ModelCard, ModelList};
use crate::error::ApiError;
use crate::server::AppState;

fn card(id: &str) -> ModelCard {
    ModelCard {
        id: id.to_string(),
        object: "model",
        created: 0,
        owned_by: "siglip-server",
    }
}

/// The served models (one).
pub async fn list(State(state): State<AppState>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: vec![card(&state.model_id)],
    })
}

/// One model, or 404 `model_not_found`.
pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ModelCard>, ApiError> {
    state.check_model(Some(&id))?;
    Ok(Json(card(&id)))
}
