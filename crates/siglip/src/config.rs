//! `config.json` of a Hugging Face SigLIP or SigLIP 2 checkpoint, with transformers' defaults.
//!
//! Hub files are sparse (google/siglip-base-patch16-384 sets little beyond the vision image
//! size), so every field takes the default of transformers' `SiglipTextConfig` /
//! `SiglipVisionConfig` (`Siglip2*Config` for NaFlex, the same values) when it is missing.
//! `model_type` "siglip" is the fixed-resolution architecture (SigLIP 1 and SigLIP 2 FixRes);
//! "siglip2" is NaFlex, whose images keep their aspect ratio ([`ModelKind`]).

use serde::Deserialize;

/// A size given either as one number (square) or as `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Square {
    /// The same size in both directions.
    One(usize),
    /// `[height, width]`.
    Two([usize; 2]),
}

impl Square {
    /// `(height, width)`.
    pub fn hw(self) -> (usize, usize) {
        match self {
            Square::One(n) => (n, n),
            Square::Two([h, w]) => (h, w),
        }
    }
}

/// The activation inside each MLP block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Activation {
    /// GELU with the tanh approximation: SigLIP's own.
    #[serde(rename = "gelu_pytorch_tanh", alias = "gelu_new", alias = "gelu_fast")]
    GeluTanh,
    /// Exact GELU (erf).
    #[serde(rename = "gelu")]
    GeluErf,
    /// `x * sigmoid(1.702 x)`.
    #[serde(rename = "quick_gelu")]
    QuickGelu,
}

/// The text tower (`text_config`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct TextConfig {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Sequence length: every prompt is padded or truncated to it.
    pub max_position_embeddings: usize,
    /// MLP activation.
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Output width of `text_model.head`; `hidden_size` when absent.
    pub projection_size: Option<usize>,
}

impl Default for TextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 32000,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            max_position_embeddings: 64,
            hidden_act: Activation::GeluTanh,
            layer_norm_eps: 1e-6,
            projection_size: None,
        }
    }
}

impl TextConfig {
    /// Width of the text embedding.
    pub fn embedding_size(&self) -> usize {
        self.projection_size.unwrap_or(self.hidden_size)
    }
}

/// The vision tower (`vision_config`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct VisionConfig {
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Input channels (3).
    pub num_channels: usize,
    /// Input image size the position embeddings were trained for.
    pub image_size: Square,
    /// Patch size of the (valid, stride = size) patch embedding.
    pub patch_size: Square,
    /// MLP activation.
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Whether the attention-pooling head exists (it does in every SigLIP checkpoint).
    pub vision_use_head: bool,
    /// NaFlex only: position embeddings, a square grid of this many (`num_patches`).
    pub num_patches: usize,
}

impl Default for VisionConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: Square::One(224),
            patch_size: Square::One(16),
            hidden_act: Activation::GeluTanh,
            layer_norm_eps: 1e-6,
            vision_use_head: true,
            num_patches: 256,
        }
    }
}

impl VisionConfig {
    /// Fixed resolution: patches per column and per row. The conv is "valid", so leftover
    /// pixels are ignored.
    pub fn grid(&self) -> (usize, usize) {
        let (h, w) = self.image_size.hw();
        let (ph, pw) = self.patch_size.hw();
        (h / ph, w / pw)
    }

    /// Fixed resolution: patches per image.
    pub fn fixed_patches(&self) -> usize {
        let (gh, gw) = self.grid();
        gh * gw
    }

    /// NaFlex: the side of the square grid of learned position embeddings, when
    /// `num_patches` is a square.
    pub fn position_grid_side(&self) -> Option<usize> {
        let side = (self.num_patches as f64).sqrt().round() as usize;
        (side > 0 && side * side == self.num_patches).then_some(side)
    }
}

/// Which vision architecture a checkpoint has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// `SiglipModel`: a square image of fixed size through a conv patch embedding. SigLIP 1
    /// and the SigLIP 2 FixRes checkpoints.
    FixedResolution,
    /// `Siglip2Model`: images keep their aspect ratio as up to `max_num_patches` patches,
    /// with the position grid resized to each (SigLIP 2 NaFlex).
    Naflex,
}

/// The whole `config.json`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct SiglipConfig {
    /// `text_config`.
    pub text_config: TextConfig,
    /// `vision_config`.
    pub vision_config: VisionConfig,
    /// `model_type`: "siglip" (fixed resolution) or "siglip2" (NaFlex).
    pub model_type: Option<String>,
}

impl SiglipConfig {
    /// Parses `config.json` and checks that the towers can be built from it.
    pub fn from_json(text: &str) -> crate::error::Result<Self> {
        let config: SiglipConfig = serde_json::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// The vision architecture, from `model_type` (absent means "siglip").
    pub fn kind(&self) -> ModelKind {
        match self.model_type.as_deref() {
            Some("siglip2") => ModelKind::Naflex,
            _ => ModelKind::FixedResolution,
        }
    }

    fn validate(&self) -> crate::error::Result<()> {
        if let Some(kind) = &self.model_type {
            crate::error::ensure!(
                kind == "siglip" || kind == "siglip2",
                "model_type is {kind:?}; only SigLIP checkpoints (\"siglip\": SigLIP 1 and \
                 SigLIP 2 FixRes, \"siglip2\": SigLIP 2 NaFlex) are supported"
            );
        }
        let (t, v) = (&self.text_config, &self.vision_config);
        for (tower, hidden, heads) in [
            ("text", t.hidden_size, t.num_attention_heads),
            ("vision", v.hidden_size, v.num_attention_heads),
        ] {
            crate::error::ensure!(
                heads > 0 && hidden % heads == 0,
                "{tower}_config: hidden_size {hidden} is not divisible by num_attention_heads {heads}"
            );
        }
        match self.kind() {
            ModelKind::FixedResolution => {
                let (gh, gw) = v.grid();
                crate::error::ensure!(
                    gh > 0 && gw > 0,
                    "vision_config: image_size is smaller than patch_size"
                );
            }
            ModelKind::Naflex => {
                let (ph, pw) = v.patch_size.hw();
                crate::error::ensure!(
                    ph == pw && ph > 0,
                    "vision_config: NaFlex needs a square patch_size, not {ph}x{pw}"
                );
                crate::error::ensure!(
                    v.position_grid_side().is_some(),
                    "vision_config: num_patches {} is not a square number of position embeddings",
                    v.num_patches
                );
            }
        }
        crate::error::ensure!(
            v.vision_use_head,
            "vision_config.vision_use_head = false is not supported: SigLIP scores need the pooling head"
        );
        crate::error::ensure!(
            t.embedding_size() == v.hidden_size,
            "text embedding size {} differs from the vision embedding size {}",
            t.embedding_size(),
            v.hidden_size
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_hub_config_takes_siglip_defaults() {
        let json = r#"{"model_type": "siglip", "architectures": ["SiglipModel"],
                       "vision_config": {"image_size": 384}, "text_config": {}}"#;
        let config = SiglipConfig::from_json(json).unwrap();
        assert_eq!(config.vision_config.image_size, Square::One(384));
        assert_eq!(config.vision_config.patch_size, Square::One(16));
        assert_eq!(config.vision_config.fixed_patches(), 576);
        assert_eq!(config.kind(), ModelKind::FixedResolution);
        assert_eq!(config.text_config, TextConfig::default());
        assert_eq!(config.text_config.embedding_size(), 768);
    }

    #[test]
    fn so400m_grid_ignores_leftover_pixels() {
        let json = r#"{"vision_config": {"image_size": 384, "patch_size": 14, "hidden_size": 1152},
                       "text_config": {"hidden_size": 1152}}"#;
        let config = SiglipConfig::from_json(json).unwrap();
        assert_eq!(config.vision_config.grid(), (27, 27));
    }

    #[test]
    fn naflex_config_has_a_square_position_grid() {
        let json = r#"{"model_type": "siglip2", "vision_config": {"num_patches": 256}}"#;
        let config = SiglipConfig::from_json(json).unwrap();
        assert_eq!(config.kind(), ModelKind::Naflex);
        assert_eq!(config.vision_config.position_grid_side(), Some(16));
        let json = r#"{"model_type": "siglip2", "vision_config": {"num_patches": 200}}"#;
        let error = SiglipConfig::from_json(json).unwrap_err().to_string();
        assert!(error.contains("num_patches 200"), "{error}");
    }

    #[test]
    fn rejects_other_architectures_and_bad_shapes() {
        assert!(SiglipConfig::from_json(r#"{"model_type": "clip"}"#).is_err());
        let bad = r#"{"vision_config": {"hidden_size": 770}, "text_config": {"hidden_size": 770}}"#;
        assert!(SiglipConfig::from_json(bad).is_err());
        assert!(SiglipConfig::from_json(r#"{"text_config": {"hidden_act": "relu"}}"#).is_err());
    }
}
