//! Request and response bodies of the HTTP API (../shared/API.md): serde, and their OpenAPI
//! schemas. Fields read by `json_input`'s bounded parsers point at the shapes they accept
//! (`openapi::shapes`).

use serde::Serialize;
use siglip::zero_shot;
use utoipa::ToSchema;

use crate::json_input::{Item, List, OneOrMany, WholeNumber};
use crate::openapi::shapes;

/// `POST /v1/classify` response.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct ClassifyResponse {
    /// Always `"list"`.
    #[schema(schema_with = shapes::list)]
    pub object: &'static str,
    /// The served model id.
    pub model: String,
    /// One entry per image, in request order.
    pub data: Vec<Classification>,
    /// What the request cost.
    pub usage: ClassifyUsage,
}

/// The labels' scores for one image.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct Classification {
    /// Always `"classification"`.
    #[schema(schema_with = shapes::classification)]
    pub object: &'static str,
    /// Index of the image in the request.
    pub index: usize,
    /// Highest score first.
    pub scores: Vec<LabelScore>,
}

/// One label's score for one image.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct LabelScore {
    /// The label as the client sent it.
    pub label: String,
    /// `sigmoid(logit)`: independent per label, never a softmax.
    pub score: f32,
    /// `exp(logit_scale) * cos(image, text) + logit_bias`.
    pub logit: f32,
}

/// Usage of a classify request.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct ClassifyUsage {
    /// Images classified.
    pub images: usize,
    /// Token positions the text tower read (64 per label).
    pub prompt_tokens: usize,
    /// Same as `prompt_tokens`.
    pub total_tokens: usize,
}

impl ClassifyResponse {
    /// The response for each image's ranked scores ([`zero_shot::rank`]).
    pub fn new(
        model: &str,
        labels: &[String],
        ranked: Vec<Vec<zero_shot::LabelScore>>,
        tokens_per_label: usize,
    ) -> Self {
        let prompt_tokens = labels.len() * tokens_per_label;
        let images = ranked.len();
        let classification =
            |(index, scores): (usize, Vec<zero_shot::LabelScore>)| Classification {
                object: "classification",
                index,
                scores: scores
                    .into_iter()
                    .map(|s| LabelScore {
                        label: labels[s.label].clone(),
                        score: s.score,
                        logit: s.logit,
                    })
                    .collect(),
            };
        Self {
            object: "list",
            model: model.to_string(),
            data: ranked.into_iter().enumerate().map(classification).collect(),
            usage: ClassifyUsage {
                images,
                prompt_tokens,
                total_tokens: prompt_tokens,
            },
        }
    }
}

/// `POST /v1/classify` JSON body: exactly one of `image` and `images`, and `labels`.
#[derive(Debug, Clone, Default, serde::Deserialize, ToSchema)]
pub struct ClassifyRequest {
    /// Served model id; the first served model answers when absent.
    pub model: Option<String>,
    /// One image input.
    #[schema(value_type = Option<shapes::ImageInput>)]
    pub image: Option<Item>,
    /// Several image inputs (at most `limits.max_images_per_request`, 16 by default).
    #[schema(value_type = Option<Vec<shapes::ImageInput>>, min_items = 1)]
    pub images: Option<List<Item>>,
    /// Candidate labels (at most `limits.max_labels_per_request`, 256 by default); also
    /// accepted as `candidate_labels`.
    #[serde(alias = "candidate_labels")]
    #[schema(value_type = Vec<shapes::Label>, required = true, min_items = 1)]
    pub labels: Option<List<String>>,
    /// Prompt template: exactly one `{}`, which becomes the label, and no other braces.
    /// Default: the server's `hypothesis_template`, `This is a photo of {}.`
    #[schema(pattern = r"^[^{}]*\{\}[^{}]*$")]
    pub hypothesis_template: Option<String>,
    /// Keep the k best labels per image.
    #[schema(minimum = 1)]
    pub top_k: Option<usize>,
    /// NaFlex models only: most patches per image, from 1 to `limits.max_num_patches` (4096 by
    /// default); the checkpoint's own setting when absent. Anything but a whole number is kept
    /// as a description, so that the error names this field.
    #[schema(value_type = Option<u64>, minimum = 1)]
    pub max_num_patches: Option<WholeNumber>,
}

/// `POST /v1/embeddings` body (OpenAI-compatible).
#[derive(Debug, Clone, serde::Deserialize, ToSchema)]
pub struct EmbeddingsRequest {
    /// Served model id; the first served model answers when absent.
    pub model: Option<String>,
    /// A string, an array of strings, or an array mixing strings, text parts and image parts
    /// (at most `limits.max_images_per_request` images and `limits.max_labels_per_request`
    /// texts).
    #[schema(value_type = shapes::EmbeddingInput)]
    pub input: OneOrMany,
    /// `float` (default) or `base64`.
    #[schema(value_type = Option<shapes::EncodingFormat>)]
    pub encoding_format: Option<String>,
    /// Must equal the model's embedding size when given.
    #[schema(minimum = 1)]
    pub dimensions: Option<usize>,
    /// `image` makes plain strings image inputs.
    #[schema(value_type = Option<shapes::Modality>)]
    pub modality: Option<String>,
    /// NaFlex models only: most patches per image input (see `ClassifyRequest`).
    #[schema(value_type = Option<u64>, minimum = 1)]
    pub max_num_patches: Option<WholeNumber>,
}

/// `POST /v1/embeddings` response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EmbeddingsResponse {
    /// Always `"list"`.
    #[schema(schema_with = shapes::list)]
    pub object: &'static str,
    /// One per input, in input order.
    pub data: Vec<EmbeddingData>,
    /// The served model id.
    pub model: String,
    /// Token positions the text tower read.
    pub usage: EmbeddingsUsage,
}

/// One embedding.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EmbeddingData {
    /// Always `"embedding"`.
    #[schema(schema_with = shapes::embedding)]
    pub object: &'static str,
    /// Position of the input.
    pub index: usize,
    /// Floats, or base64 of little-endian f32 bytes.
    pub embedding: EmbeddingValue,
}

/// An embedding as the client asked for it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingValue {
    /// `encoding_format: "float"`.
    Float(Vec<f32>),
    /// `encoding_format: "base64"`.
    Base64(String),
}

/// Usage of an embeddings request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EmbeddingsUsage {
    /// Token positions the text tower read (64 per text).
    pub prompt_tokens: usize,
    /// Same as `prompt_tokens`.
    pub total_tokens: usize,
}

/// `GET /v1/models` entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelCard {
    /// Served model id.
    pub id: String,
    /// Always `"model"`.
    #[schema(schema_with = shapes::model)]
    pub object: &'static str,
    /// Always 0.
    pub created: u64,
    /// Always `"siglip-server"`.
    #[schema(schema_with = shapes::owner)]
    pub owned_by: &'static str,
    /// What the checkpoint is (family, architecture, input and embedding sizes, tokenizer);
    /// absent while it is still loading.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<shapes::CheckpointSummary>)]
    pub siglip: Option<siglip::checkpoint::Summary>,
}

/// `GET /v1/models` response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `"list"`.
    #[schema(schema_with = shapes::list)]
    pub object: &'static str,
    /// The served models.
    pub data: Vec<ModelCard>,
}

/// `GET /health` response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// Always `"ok"`.
    #[schema(schema_with = shapes::ok)]
    pub status: &'static str,
}

/// `GET /ready` response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    /// Always `"ready"`.
    #[schema(schema_with = shapes::ready)]
    pub status: &'static str,
    /// The default (first) served model.
    pub model: String,
    /// Every served model, the default first.
    pub models: Vec<String>,
}
