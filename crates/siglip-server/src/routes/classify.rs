//! `POST /v1/classify`: images and labels (JSON or multipart) to ranked sigmoid scores.

use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::Json;

use super::{body_bytes, max_num_patches, media_type, parse_json, preprocess};
use siglip::zero_shot;

use crate::api::{ClassifyRequest, ClassifyResponse};
use crate::error::ApiError;
use crate::image_input::{parse_image, ImageSource};
use crate::json_input::WholeNumber;
use crate::openapi::{responses::ApiErrors, shapes::ClassifyForm, EXAMPLE_IMAGE};
use crate::state::AppState;

/// A classify request after reading, whatever its content type or route.
#[derive(Debug, Default)]
pub struct ClassifyInput {
    /// The `model` field.
    pub model: Option<String>,
    /// Each image, with the request field it came from.
    pub images: Vec<(ImageSource, String)>,
    /// The candidate labels.
    pub labels: Option<Vec<String>>,
    /// The prompt template, if not the configured default.
    pub hypothesis_template: Option<String>,
    /// Keep the k best labels per image.
    pub top_k: Option<usize>,
    /// NaFlex models: most patches per image, as sent (checked against the model).
    pub max_num_patches: Option<WholeNumber>,
}

/// The handler: read the body (before any refusal: answering earlier would break the client's
/// upload), then [`run`].
#[utoipa::path(
    post,
    path = "/v1/classify",
    tag = "classification",
    summary = "Zero-shot classification of images against candidate labels",
    description = "Each label's `score` is `sigmoid(logit)`, independent of the others (they \
        do not sum to 1). JSON, or `multipart/form-data` with one file field per image.",
    request_body(content(
        (ClassifyRequest = "application/json", example = json!({"image": EXAMPLE_IMAGE,
            "labels": ["a red square", "a blue circle"], "top_k": 1})),
        (ClassifyForm = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "Each image's labels, highest score first",
            body = ClassifyResponse),
        ApiErrors,
    )
)]
pub async fn classify(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Json<ClassifyResponse>, ApiError> {
    let input = read(&state, request).await?;
    run(&state, input).await.map(Json)
}

/// A read request through admission, decode, preprocess, both towers and scores: the
/// `/v1/classify` response (the Hugging Face route reshapes it).
pub async fn run(
    state: &Arc<AppState>,
    input: ClassifyInput,
) -> Result<ClassifyResponse, ApiError> {
    state.served_model(input.model.as_deref())?;
    let (labels, prompts) = validate(state, &input)?;
    let (name, engine) = state.model(input.model.as_deref())?;
    let max_num_patches = max_num_patches(state, (name, engine), input.max_num_patches.as_ref())?;
    let _admitted = engine.admit(input.images.len(), &prompts)?;
    // The text tower runs while the images are decoded and preprocessed.
    let images = preprocess(state, engine, input.images, max_num_patches);
    let (pixels, texts) =
        tokio::try_join!(images, async { Ok(engine.embed_prompts(&prompts).await?) })?;
    let images = engine.embed_images(pixels).await?;
    let ranked = images
        .iter()
        .map(|image| zero_shot::rank(&engine.logits(image, &texts), input.top_k))
        .collect();
    Ok(ClassifyResponse::new(
        name,
        &labels,
        ranked,
        engine.checkpoint.tokenizer.max_length(),
    ))
}

async fn read(state: &AppState, request: Request) -> Result<ClassifyInput, ApiError> {
    match media_type(&request).as_str() {
        "application/json" => from_json(
            state,
            parse_json(state, &body_bytes(state, request).await?)?,
        ),
        "multipart/form-data" => from_multipart(state, request).await,
        _ => Err(ApiError::unsupported_media_type()),
    }
}

fn from_json(state: &AppState, body: ClassifyRequest) -> Result<ClassifyInput, ApiError> {
    // A list cut short by the parser is longer than its limit (see `parse_json`).
    let limits = &state.config.limits;
    if body
        .images
        .as_ref()
        .is_some_and(|l| l.count > l.items.len())
    {
        return Err(too_many_images(limits.max_images_per_request));
    }
    if body
        .labels
        .as_ref()
        .is_some_and(|l| l.count > l.items.len())
    {
        return Err(too_many_labels(limits.max_labels_per_request));
    }
    let images = match (body.image, body.images) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "image",
                "invalid_request",
                "send either image or images, not both",
            ))
        }
        (Some(one), None) => vec![(parse_image(&one, "image")?, "image".to_string())],
        (None, Some(many)) => many
            .items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let param = format!("images[{i}]");
                Ok((parse_image(v, &param)?, param))
            })
            .collect::<Result<_, ApiError>>()?,
        (None, None) => Vec::new(),
    };
    Ok(ClassifyInput {
        model: body.model,
        images,
        labels: body.labels.map(|l| l.items),
        hypothesis_template: body.hypothesis_template,
        top_k: body.top_k,
        max_num_patches: body.max_num_patches,
    })
}

async fn from_multipart(state: &AppState, request: Request) -> Result<ClassifyInput, ApiError> {
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?;
    let mut input = ClassifyInput::default();
    let field_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::body_too_large()
        } else {
            ApiError::bad_request("invalid_multipart", e.body_text())
        }
    };
    while let Some(field) = form.next_field().await.map_err(field_error)? {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "image" | "images" => {
                let param = format!("image[{}]", input.images.len());
                let bytes = field.bytes().await.map_err(field_error)?;
                input
                    .images
                    .push((ImageSource::Bytes(bytes.to_vec()), param));
            }
            "labels" | "candidate_labels" => {
                let text = field.text().await.map_err(field_error)?;
                let labels = input.labels.get_or_insert_with(Vec::new);
                match serde_json::from_str::<Vec<String>>(&text) {
                    Ok(list) if text.trim_start().starts_with('[') => labels.extend(list),
                    _ => labels.push(text),
                }
            }
            "hypothesis_template" => {
                input.hypothesis_template = Some(field.text().await.map_err(field_error)?)
            }
            "model" => input.model = Some(field.text().await.map_err(field_error)?),
            "top_k" => {
                let text = field.text().await.map_err(field_error)?;
                let k = text.trim().parse().map_err(|_| {
                    ApiError::invalid("top_k", "invalid_top_k", "top_k must be a positive integer")
                })?;
                input.top_k = Some(k);
            }
            "max_num_patches" => {
                let text = field.text().await.map_err(field_error)?;
                input.max_num_patches = Some(WholeNumber::from_text(&text));
            }
            _ => {}
        }
    }
    Ok(input)
}

/// Checks the request against the configured limits and the zero-shot rules; the labels and
/// their prompts.
fn validate(
    state: &AppState,
    input: &ClassifyInput,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let limits = &state.config.limits;
    if input.images.is_empty() {
        return Err(ApiError::invalid(
            "image",
            "missing_image",
            "send one image in image, or several in images",
        ));
    }
    if input.images.len() > limits.max_images_per_request {
        return Err(too_many_images(limits.max_images_per_request));
    }
    let labels = input
        .labels
        .clone()
        .ok_or_else(|| ApiError::invalid("labels", "missing_labels", "labels is required"))?;
    if labels.len() > limits.max_labels_per_request {
        return Err(too_many_labels(limits.max_labels_per_request));
    }
    let template = input
        .hypothesis_template
        .as_deref()
        .unwrap_or(&state.config.hypothesis_template);
    if input.top_k == Some(0) {
        return Err(ApiError::invalid(
            "top_k",
            "invalid_top_k",
            "top_k must be at least 1",
        ));
    }
    let prompts = zero_shot::prompts(&labels, template)?;
    Ok((labels, prompts))
}

fn too_many_images(max: usize) -> ApiError {
    ApiError::invalid(
        "images",
        "too_many_images",
        format!("at most {max} images per request"),
    )
}

fn too_many_labels(max: usize) -> ApiError {
    ApiError::invalid(
        "labels",
        "too_many_labels",
        format!("at most {max} labels per request"),
    )
}
