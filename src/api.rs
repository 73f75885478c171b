//! Request and response bodies of the HTTP API (../shared/API.md), serde only.

use serde::Serialize;

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
