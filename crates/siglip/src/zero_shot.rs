//! Zero-shot classification: prompts from labels, logits to ranked sigmoid scores.
//!
//! The same computation as transformers' `zero-shot-image-classification` pipeline for
//! SigLIP: `hypothesis_template.format(label)`, logits per image, `sigmoid`, sorted. The rules
//! for labels and templates live here, so that every caller (the server's routes, the command
//! line) refuses the same inputs.

/// The pipeline's default template.
pub const DEFAULT_TEMPLATE: &str = "This is a photo of {}.";

/// Labels or a template that the zero-shot rules refuse. Messages are safe to show to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No labels at all.
    #[error("labels must not be empty")]
    NoLabels,
    /// A label that is empty or only whitespace.
    #[error("every label must be a non-empty string")]
    EmptyLabel,
    /// Not exactly one `{}`, or other braces: Python's `str.format` would fail or misplace it.
    #[error("hypothesis_template must contain {{}} exactly once, and no other braces")]
    InvalidTemplate,
}

impl RequestError {
    /// The request field at fault.
    pub fn param(&self) -> &'static str {
        match self {
            Self::NoLabels | Self::EmptyLabel => "labels",
            Self::InvalidTemplate => "hypothesis_template",
        }
    }

    /// A machine-readable code for the fault.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoLabels => "empty_labels",
            Self::EmptyLabel => "empty_label",
            Self::InvalidTemplate => "invalid_template",
        }
    }
}

/// The prompts for `labels` under `template`, once both pass the rules.
pub fn prompts(labels: &[String], template: &str) -> Result<Vec<String>, RequestError> {
    if labels.is_empty() {
        return Err(RequestError::NoLabels);
    }
    if labels.iter().any(|l| l.trim().is_empty()) {
        return Err(RequestError::EmptyLabel);
    }
    // As Python's str.format with one argument: one `{}`, no other braces.
    if template.matches("{}").count() != 1 || template.replace("{}", "").contains(['{', '}']) {
        return Err(RequestError::InvalidTemplate);
    }
    Ok(labels.iter().map(|label| prompt(template, label)).collect())
}

/// `template` with every `{}` replaced by `label`.
pub fn prompt(template: &str, label: &str) -> String {
    template.replace("{}", label)
}

/// `1 / (1 + e^-x)`.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// One label's score for one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelScore {
    /// Index of the label in the request.
    pub label: usize,
    /// `sigmoid(logit)`: independent per label, never a softmax.
    pub score: f32,
    /// `exp(logit_scale) * cos(image, text) + logit_bias`.
    pub logit: f32,
}

/// One image's labels ranked by score, highest first (ties keep the labels' order), keeping
/// the best `top_k` when given.
pub fn rank(logits: &[f32], top_k: Option<usize>) -> Vec<LabelScore> {
    let mut scores: Vec<LabelScore> = logits
        .iter()
        .enumerate()
        .map(|(label, &logit)| LabelScore {
            label,
            score: sigmoid(logit),
            logit,
        })
        .collect();
    scores.sort_by(|a, b| b.logit.total_cmp(&a.logit));
    if let Some(k) = top_k {
        scores.truncate(k);
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_score_and_keeps_top_k() {
        let ranked = rank(&[-1.0, 2.0, 0.5], Some(2));
        let order: Vec<_> = ranked.iter().map(|s| s.label).collect();
        assert_eq!(order, [1, 2]);
        assert!((ranked[0].score - 0.880_797).abs() < 1e-6);
    }

    #[test]
    fn template_takes_the_label() {
        assert_eq!(
            prompt(DEFAULT_TEMPLATE, "a cat"),
            "This is a photo of a cat."
        );
    }

    #[test]
    fn refuses_what_the_pipeline_cannot_format() {
        let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: [(&[&str], &str, Option<RequestError>); 6] = [
            (&["cat"], DEFAULT_TEMPLATE, None),
            (&[], DEFAULT_TEMPLATE, Some(RequestError::NoLabels)),
            (
                &["cat", " "],
                DEFAULT_TEMPLATE,
                Some(RequestError::EmptyLabel),
            ),
            (&["cat"], "no slot", Some(RequestError::InvalidTemplate)),
            (&["cat"], "{} and {}", Some(RequestError::InvalidTemplate)),
            (&["cat"], "{} {0}", Some(RequestError::InvalidTemplate)),
        ];
        for (given, template, expected) in cases {
            assert_eq!(
                prompts(&labels(given), template).err(),
                expected,
                "{given:?} {template:?}"
            );
        }
    }
}
