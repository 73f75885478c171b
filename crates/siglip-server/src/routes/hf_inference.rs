//! `POST /`: the Hugging Face Inference API's zero-shot image classification, as
//! `huggingface_hub.InferenceClient(model=URL).zero_shot_image_classification(...)` sends it
//! (TEI answers its own tasks the same way): `{"inputs": <base64 image>, "parameters":
//! {"candidate_labels": [...], "hypothesis_template": "..."}}` in, `[{"label", "score"}, ...]`
//! out, highest score first, the same scores as `/v1/classify`. Errors are that API's
//! `{"error": message, "error_type": type}`, which the client raises with the message.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::classify::{run, ClassifyInput};
use super::read_json;
use crate::error::ApiError;
use crate::image_input::parse_image;
use crate::json_input::{Item, List, WholeNumber};
use crate::state::AppState;

/// The request body.
#[derive(Debug, Deserialize)]
pub struct InferenceRequest {
    /// The image: base64, a data URL, or (when enabled) an http(s) URL.
    pub inputs: Item,
    /// The task's parameters.
    #[serde(default)]
    pub parameters: InferenceParameters,
}

/// `parameters` of a zero-shot image classification.
#[derive(Debug, Default, Deserialize)]
pub struct InferenceParameters {
    /// The labels to score.
    pub candidate_labels: Option<List<String>>,
    /// The prompt template; `{}` becomes the label.
    pub hypothesis_template: Option<String>,
    /// NaFlex models: most patches for the image.
    pub max_num_patches: Option<WholeNumber>,
}

/// One label's score.
#[derive(Debug, Serialize)]
pub struct LabelScore {
    /// The label as sent.
    pub label: String,
    /// `sigmoid(logit)`.
    pub score: f32,
}

/// The handler.
pub async fn zero_shot_image_classification(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Response {
    match classify(&state, request).await {
        Ok(scores) => Json(scores).into_response(),
        Err(error) => inference_error(error),
    }
}

async fn classify(state: &Arc<AppState>, request: Request) -> Result<Vec<LabelScore>, ApiError> {
    let body: InferenceRequest = read_json(state, request).await?;
    let labels = body.parameters.candidate_labels.ok_or_else(|| {
        ApiError::invalid(
            "parameters.candidate_labels",
            "missing_labels",
            "parameters.candidate_labels is required",
        )
    })?;
    if labels.count > labels.items.len() {
        return Err(ApiError::invalid(
            "parameters.candidate_labels",
            "too_many_labels",
            format!(
                "at most {} labels per request",
                state.config.limits.max_labels_per_request
            ),
        ));
    }
    let image = parse_image(&body.inputs, "inputs")?;
    let input = ClassifyInput {
        model: None,
        images: vec![(image, "inputs".to_string())],
        labels: Some(labels.items),
        hypothesis_template: body.parameters.hypothesis_template,
        top_k: None,
        max_num_patches: body.parameters.max_num_patches,
    };
    let response = run(state, input).await?;
    let first = response
        .data
        .into_iter()
        .next()
        .expect("one image, one classification");
    Ok(first
        .scores
        .into_iter()
        .map(|s| LabelScore {
            label: s.label,
            score: s.score,
        })
        .collect())
}

/// The Inference API's error shape, with the status and `Retry-After` of the OpenAI one.
fn inference_error(error: ApiError) -> Response {
    let body = serde_json::json!({"error": error.message, "error_type": error.kind()});
    let status = error.status;
    let retry_after = error.retry_after;
    let mut response = (status, Json(body)).into_response();
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(seconds),
        );
    }
    response
}
