//! `POST /v1/embeddings` (OpenAI-compatible): texts and images to L2-normalised embeddings,
//! as floats or as base64 of little-endian f32 bytes.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::Json;
use base64::Engine as _;

use super::{max_num_patches, preprocess, read_json};
use crate::api::{
    EmbeddingData, EmbeddingValue, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage,
};
use crate::error::ApiError;
use crate::image_input::{parse_image, ImageSource};
use crate::json_input::{Item, OneOrMany};
use crate::openapi::{responses::ApiErrors, EXAMPLE_IMAGE};
use crate::state::AppState;
use siglip::checkpoint::Embedding;

/// One input, in request order.
enum Input {
    Text(String),
    Image(ImageSource),
}

/// The handler: read inputs, run each tower on its share, reassemble in input order.
#[utoipa::path(
    post,
    path = "/v1/embeddings",
    operation_id = "createEmbeddings",
    tag = "embeddings",
    summary = "Embeddings of texts and images (OpenAI-compatible)",
    description = "L2-normalised, in input order: a dot product is a cosine similarity. Texts \
        are embedded as given, with no template.",
    request_body(content = EmbeddingsRequest, content_type = "application/json",
        example = json!({"input": ["a photo of a cat",
            {"type": "image_url", "image_url": {"url": EXAMPLE_IMAGE}}]})),
    responses(
        (status = 200, description = "One embedding per input, in input order",
            body = EmbeddingsResponse),
        ApiErrors,
    )
)]
pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Json<EmbeddingsResponse>, ApiError> {
    // The body is read before any refusal: answering earlier would break the client's upload.
    let body: EmbeddingsRequest = read_json(&state, request).await?;
    let (name, engine) = state.model(body.model.as_deref())?;
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "encoding_format",
                "invalid_encoding_format",
                format!("encoding_format must be float or base64, not {other:?}"),
            ))
        }
    };
    if let Some(d) = body.dimensions {
        if d != engine.checkpoint.model.embedding_size() {
            return Err(ApiError::invalid(
                "dimensions",
                "invalid_dimensions",
                format!(
                    "this model's embeddings have {} dimensions",
                    engine.checkpoint.model.embedding_size()
                ),
            ));
        }
    }
    let max_num_patches = max_num_patches(&state, (name, engine), body.max_num_patches.as_ref())?;
    let inputs = read_inputs(&state, &body)?;
    let mut texts = Vec::new();
    let mut images = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        match input {
            Input::Text(text) => texts.push(text.clone()),
            Input::Image(source) => images.push((source.clone(), format!("input[{i}]"))),
        }
    }
    let _admitted = engine.admit(images.len(), &texts)?;
    let pixels = preprocess(&state, engine, images, max_num_patches).await?;
    let (image_embeds, text_embeds) =
        tokio::try_join!(engine.embed_images(pixels), engine.embed_prompts(&texts))?;
    let (mut image_embeds, mut text_embeds) = (image_embeds.into_iter(), text_embeds.into_iter());
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let embedding = match input {
                Input::Text(_) => text_embeds.next(),
                Input::Image(_) => image_embeds.next(),
            }
            .expect("one embedding per input");
            EmbeddingData {
                object: "embedding",
                index,
                embedding: encode(&embedding, base64),
            }
        })
        .collect();
    let tokens = texts.len() * engine.checkpoint.tokenizer.max_length();
    Ok(Json(EmbeddingsResponse {
        object: "list",
        data,
        model: name.to_string(),
        usage: EmbeddingsUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    }))
}

fn encode(embedding: &Embedding, base64: bool) -> EmbeddingValue {
    if base64 {
        let bytes: Vec<u8> = embedding.iter().flat_map(|x| x.to_le_bytes()).collect();
        EmbeddingValue::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
    } else {
        EmbeddingValue::Float(embedding.to_vec())
    }
}

fn read_inputs(state: &AppState, body: &EmbeddingsRequest) -> Result<Vec<Input>, ApiError> {
    let strings_are_images = match body.modality.as_deref() {
        None | Some("text") => false,
        Some("image") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "modality",
                "invalid_modality",
                format!("modality must be text or image, not {other:?}"),
            ))
        }
    };
    let limits = &state.config.limits;
    let items: Vec<&Item> = match &body.input {
        OneOrMany::Many(list) => list.items.iter().collect(),
        OneOrMany::One(single @ Item::Text(_)) => vec![single],
        OneOrMany::One(_) => {
            return Err(ApiError::invalid(
                "input",
                "invalid_input",
                "input must be a string or an array",
            ))
        }
    };
    if items.is_empty() {
        return Err(ApiError::invalid(
            "input",
            "empty_input",
            "input must not be empty",
        ));
    }
    let inputs = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let param = format!("input[{i}]");
            match item {
                Item::Text(_) if strings_are_images => Ok(Input::Image(parse_image(item, &param)?)),
                Item::Text(text) => Ok(Input::Text(text.clone())),
                Item::Part(part) => match part.kind.as_deref() {
                    Some("text") => match &part.text {
                        Some(text) => Ok(Input::Text(text.clone())),
                        None => Err(ApiError::invalid(
                            &param,
                            "invalid_input",
                            "a text part needs a \"text\" string",
                        )),
                    },
                    Some("image_url") => Ok(Input::Image(parse_image(item, &param)?)),
                    _ => Err(ApiError::invalid(
                        &param,
                        "invalid_input",
                        "parts must have type text or image_url",
                    )),
                },
                Item::Other => Err(ApiError::invalid(
                    &param,
                    "invalid_input",
                    "inputs must be strings or content parts",
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let images = inputs
        .iter()
        .filter(|i| matches!(i, Input::Image(_)))
        .count();
    // A list the parser cut short holds one more item than both limits allow together, so one
    // of the two checks below refuses it.
    let texts = inputs.len() - images;
    if images > limits.max_images_per_request {
        return Err(ApiError::invalid(
            "input",
            "too_many_images",
            format!(
                "at most {} images per request",
                limits.max_images_per_request
            ),
        ));
    }
    if texts > limits.max_labels_per_request {
        return Err(ApiError::invalid(
            "input",
            "too_many_texts",
            format!(
                "at most {} texts per request",
                limits.max_labels_per_request
            ),
        ));
    }
    Ok(inputs)
}
