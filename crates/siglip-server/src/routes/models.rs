//! `GET /v1/models` and `GET /v1/models/{id}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;

use crate::api::{ModelCard, ModelList};
use crate::error::ApiError;
use crate::openapi::responses::ModelErrors;
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
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "models",
    operation_id = "listModels",
    summary = "The served models, the default one first",
    responses((status = 200, description = "The served models", body = ModelList))
)]
pub async fn list(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: state.models.iter().map(card).collect(),
    })
}

/// One model, or 404 `model_not_found`.
#[utoipa::path(
    get,
    path = "/v1/models/{id}",
    tag = "models",
    operation_id = "retrieveModel",
    summary = "One served model",
    params(("id" = String, Path,
        description = "A served model id; it may hold slashes (`google/siglip-base-patch16-384`)")),
    responses((status = 200, description = "The model", body = ModelCard), ModelErrors)
)]
pub async fn one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<ModelCard>, ApiError> {
    Ok(Json(card(state.served_model(Some(&id))?)))
}
