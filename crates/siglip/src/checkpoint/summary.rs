//! What a loaded checkpoint is, in a few fields: what `/v1/models` lists and the start-up log
//! line says.

use serde::Serialize;

use super::Checkpoint;
use crate::config::ModelKind;
use crate::tokenizer::PromptTokenizer;

/// A loaded checkpoint's family, architecture, input and embedding sizes, and tokenizer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// `siglip` (SigLIP 1) or `siglip2` (a Gemma tokenizer, or NaFlex).
    pub family: &'static str,
    /// `fixed_resolution` or `naflex`.
    pub architecture: &'static str,
    /// Fixed resolution: the input's `[height, width]`.
    pub image_size: Option<[usize; 2]>,
    /// Side of one patch, pixels.
    pub patch_size: usize,
    /// NaFlex: patches per image when a request names none.
    pub max_num_patches: Option<usize>,
    /// Width of both embeddings.
    pub embedding_size: usize,
    /// `sentencepiece_unigram` or `gemma_bpe`.
    pub tokenizer: &'static str,
    /// Whether prompts are lowercased.
    pub text_lowercase: bool,
}

impl Checkpoint {
    /// This checkpoint in a few fields.
    pub fn summary(&self) -> Summary {
        let config = self.model.config();
        let naflex = config.kind() == ModelKind::Naflex;
        let gemma = matches!(self.tokenizer, PromptTokenizer::Gemma(_));
        let (height, width) = config.vision_config.image_size.hw();
        Summary {
            family: if naflex || gemma { "siglip2" } else { "siglip" },
            architecture: if naflex { "naflex" } else { "fixed_resolution" },
            image_size: (!naflex).then_some([height, width]),
            patch_size: config.vision_config.patch_size.hw().0,
            max_num_patches: self.default_max_num_patches(),
            embedding_size: self.model.embedding_size(),
            tokenizer: if gemma {
                "gemma_bpe"
            } else {
                "sentencepiece_unigram"
            },
            text_lowercase: self.tokenizer.lowercases(),
        }
    }
}

impl std::fmt::Display for Summary {
    /// One line, e.g. `siglip2 naflex, 256 patches of 16, 768-wide embeddings, gemma_bpe
    /// (lowercased)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}, ", self.family, self.architecture)?;
        match (self.image_size, self.max_num_patches) {
            (Some([h, w]), _) => write!(f, "{w}x{h} images in patches of {}", self.patch_size)?,
            (None, Some(n)) => write!(f, "{n} patches of {}", self.patch_size)?,
            (None, None) => write!(f, "patches of {}", self.patch_size)?,
        }
        let case = if self.text_lowercase {
            "lowercased"
        } else {
            "case kept"
        };
        write!(
            f,
            ", {}-wide embeddings, {} ({case})",
            self.embedding_size, self.tokenizer
        )
    }
}
