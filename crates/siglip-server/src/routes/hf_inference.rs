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
use utoipa::ToSchema;

use super::classify::{run, ClassifyInput};
use super::read_json;
use crate::error::{ApiError, ErrorType};
use crate::image_input::parse_image;
use crate::json_input::{Item, List, WholeNumber};
use crate::openapi::{responses::InferenceApiErrors, shapes, EXAMPLE_IMAGE};
use crate::state::AppState;

/// The Inference API's zero-shot image classification body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InferenceRequest {
    /// The image: base64, a data URL, or (when enabled) an http(s) URL.
    #[schema(value_type = shapes::ImageInput)]
    pub inputs: Item,
    /// The task's parameters.
    #[serde(default)]
    #[schema(required = true)]
    pub parameters: InferenceParameters,
}

/// `parameters` of a zero-shot image classification.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct InferenceParameters {
    /// The labels to score (at most `limits.max_labels_per_request`, 256 by default).
    #[schema(value_type = Vec<shapes::Label>, required = true, min_items = 1)]
    pub candidate_labels: Option<List<String>>,
    /// Prompt template: exactly one `{}`, which becomes the label, and no other braces.
    #[schema(pattern = r"^[^{}]*\{\}[^{}]*$")]
    pub hypothesis_template: Option<String>,
    /// NaFlex models only: most patches for the image.
    #[schema(value_type = Option<u64>, minimum = 1)]
    pub max_num_patches: Option<WholeNumber>,
}

/// One label's score.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = InferenceLabelScore)]
pub struct LabelScore {
    /// The label as sent.
    pub label: String,
    /// `sigmoid(logit)`.
    pub score: f32,
}

/// The Inference API's error body, which `huggingface_hub` raises with its message.
#[derive(Debug, Serialize, ToSchema)]
pub struct InferenceError {
    /// What went wrong.
    pub error: String,
    /// The OpenAI `type` of the same error.
    pub error_type: ErrorType,
}

/// The handler.
#[utoipa::path(
    post,
    path = "/",
    operation_id = "zeroShotImageClassification",
    tag = "hugging face",
    summary = "Zero-shot image classification, Hugging Face Inference API",
    description = "What `huggingface_hub.InferenceClient(model=URL).zero_shot_image_classification` \
        sends; the same scores as `/v1/classify`, from the first served model. Its own errors \
        are the Inference API's `{\"error\", \"error_type\"}`; those of the layers in front of \
        every route (401, 431, and 429 from the body budget) are OpenAI error objects.",
    request_body(content = InferenceRequest, content_type = "application/json",
        example = json!({"inputs": EXAMPLE_IMAGE,
            "parameters": {"candidate_labels": ["cat", "dog"]}})),
    responses(
        (status = 200, description = "Every label's score, highest first",
            body = Vec<LabelScore>),
        InferenceApiErrors,
    )
)]
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
    let body = InferenceError {
        error: error.message.clone(),
        error_type: error.kind(),
    };
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
