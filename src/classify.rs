//! Zero-shot classification: prompts from labels, logits to ranked sigmoid scores.
//!
//! The same computation as transformers' `zero-shot-image-classification` pipeline for
//! SigLIP: `hypothesis_template.format(label)`, logits per image, `sigmoid`, sorted.

use crate::api::{Classification, ClassifyResponse, ClassifyUsage, LabelScore};

/// The pipeline's default template.
pub const DEFAULT_TEMPLATE: &str = "This is a photo of {}.";

/// `template` with every `{}` replaced by `label`.
pub fn prompt(template: &str, label: &str) -> String {
    template.replace("{}", label)
}

/// `1 / (1 + e^-x)`.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// One image's labels ranked by score, highest first (ties keep the request's order),
/// keeping the best `top_k` when given.
pub fn rank(
    index: usize,
    labels: &[String],
    logits: &[f32],
    top_k: Option<usize>,
) -> Classification {
    let mut scores: Vec<LabelScore> = labels
        .iter()
        .zip(logits)
        .map(|(label, &logit)| LabelScore {
            label: label.clone(),
            score: sigmoid(logit),
            logit,
        })
        .collect();
    scores.sort_by(|a, b| b.logit.total_cmp(&a.logit));
    if let Some(k) = top_k {
        scores.truncate(k);
    }
    Classification {
        object: "classification",
        index,
        scores,
    }
}

/// The `/v1/classify` response for a `[images, labels]` logits matrix.
pub fn response(
    model: &str,
    labels: &[String],
    logits: &[Vec<f32>],
    top_k: Option<usize>,
    tokens_per_label: usize,
) -> ClassifyResponse {
    let prompt_tokens = labels.len() * tokens_per_label;
    ClassifyResponse {
        object: "list",
        model: model.to_string(),
        data: logits
            .iter()
            .enumerate()
            .map(|(i, row)| rank(i, labels, row, top_k))
            .collect(),
        usage: ClassifyUsage {
            images: logits.len(),
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_score_and_keeps_top_k() {
        let labels = vec!["cat".to_string(), "dog".to_string(), "car".to_string()];
        let ranked = rank(0, &labels, &[-1.0, 2.0, 0.5], Some(2));
        let names: Vec<_> = ranked.scores.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(names, ["dog", "car"]);
        assert!((ranked.scores[0].score - 0.880_797).abs() < 1e-6);
    }

    #[test]
    fn template_takes_the_label() {
        assert_eq!(
            prompt(DEFAULT_TEMPLATE, "a cat"),
            "This is a photo of a cat."
        );
    }
}
