//! Request and response bodies of the HTTP API (../shared/API.md), serde only.

use serde::Serialize;
use siglip::zero_shot;

use crate::json_input::{Item, List, OneOrMany, WholeNumber};

/// `POST /v1/classify` response.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassifyResponse {
    /// Always `"list"`.
    pub object: &'static str,
    /// The served model id.
    pub model: String,
    /// One entry per image, in request order.
    pub data: Vec<Classification>,
    /// What the request cost.
    pub usage: ClassifyUsage,
}

/// The labels' scores for one image.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Classification {
    /// Always `"classification"`.
    pub object: &'static str,
    /// Index of the image in the request.
    pub index: usize,
    /// Highest score first.
    pub scores: Vec<LabelScore>,
}

/// One label's score for one image.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelScore {
    /// The label as the client sent it.
    pub label: String,
    /// `sigmoid(logit)`: independent per label, never a softmax.
    pub score: f32,
    /// `exp(logit_scale) * cos(image, text) + logit_bias`.
    pub logit: f32,
}

/// Usage of a classify request.
#[derive(Debug, Clone, Serialize, PartialEq)]
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

/// `POST /v1/classify` JSON body (multipart forms are read into the same struct).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ClassifyRequest {
    /// Served model id; optional while one model is served.
    pub model: Option<String>,
    /// One image input.
    pub image: Option<Item>,
    /// Several image inputs.
    pub images: Option<List<Item>>,
    /// Candidate labels (`candidate_labels` also accepted).
    #[serde(alias = "candidate_labels")]
    pub labels: Option<List<String>>,
    /// Prompt template; `{}` becomes the label.
    pub hypothesis_template: Option<String>,
    /// Keep the k best labels per image.
    pub top_k: Option<usize>,
    /// NaFlex models: most patches per image (the processor's keyword). Anything but a whole
    /// number is kept as a description, so that the error names this field.
    pub max_num_patches: Option<WholeNumber>,
}

/// `POST /v1/embeddings` body (OpenAI-compatible).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct EmbeddingsRequest {
    /// Served model id; optional while one model is served.
    pub model: Option<String>,
    /// A string, an array of strings, or an array mixing strings, text parts and image parts.
    pub input: OneOrMany,
    /// `float` (default) or `base64`.
    pub encoding_format: Option<String>,
    /// Must equal the model's embedding size when given.
    pub dimensions: Option<usize>,
    /// `image` makes plain strings image inputs.
    pub modality: Option<String>,
    /// NaFlex models: most patches per image input (see [`ClassifyRequest`]).
    pub max_num_patches: Option<WholeNumber>,
}

/// `POST /v1/embeddings` response.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingsResponse {
    /// Always `"list"`.
    pub object: &'static str,
    /// One per input, in input order.
    pub data: Vec<EmbeddingData>,
    /// The served model id.
    pub model: String,
    /// Token positions the text tower read.
    pub usage: EmbeddingsUsage,
}

/// One embedding.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingData {
    /// Always `"embedding"`.
    pub object: &'static str,
    /// Position of the input.
    pub index: usize,
    /// Floats, or base64 of little-endian f32 bytes.
    pub embedding: EmbeddingValue,
}

/// An embedding as the client asked for it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum EmbeddingValue {
    /// `encoding_format: "float"`.
    Float(Vec<f32>),
    /// `encoding_format: "base64"`.
    Base64(String),
}

/// Usage of an embeddings request.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingsUsage {
    /// Token positions the text tower read (64 per text).
    pub prompt_tokens: usize,
    /// Same as `prompt_tokens`.
    pub total_tokens: usize,
}

/// `GET /v1/models` entry.
#[derive(Debug, Clone, Serialize)]
pub struct ModelCard {
    /// Served model id.
    pub id: String,
    /// Always `"model"`.
    pub object: &'static str,
    /// Always 0.
    pub created: u64,
    /// Always `"siglip-server"`.
    pub owned_by: &'static str,
    /// What the checkpoint is (family, architecture, input and embedding sizes, tokenizer);
    /// absent while it is still loading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub siglip: Option<siglip::checkpoint::Summary>,
}

/// `GET /v1/models` response.
#[derive(Debug, Clone, Serialize)]
pub struct ModelList {
    /// Always `"list"`.
    pub object: &'static str,
    /// The served models.
    pub data: Vec<ModelCard>,
}
