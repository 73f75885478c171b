//! The image tower: pixels `[batch, 3, H, W]` to image embeddings `[batch, hidden]`.
//!
//! Mirrors transformers' `SiglipVisionEmbeddings`, `SiglipVisionTransformer` and
//! `SiglipMultiheadAttentionPoolingHead`. The patch embedding (a "valid" conv with
//! stride = kernel) runs as one matrix product over unfolded patches.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{layer_norm, linear, LayerNorm, Linear, VarBuilder};

use super::config::VisionConfig;
use super::encoder::{attend, split_heads, Encoder, EncoderShape, Mlp};

/// `SiglipVisionEmbeddings`: patch embedding plus learned position embedding.
#[derive(Debug, Clone)]
struct PatchEmbeddings {
    /// Conv weight flattened to `[hidden, channels * ph * pw]`, transposed for `x · w`.
    weight_t: Tensor,
    bias: Tensor,
    /// `[num_patches, hidden]`.
    positions: Tensor,
    patch: (usize, usize),
    grid: (usize, usize),
}

impl PatchEmbeddings {
    fn new(config: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let (ph, pw) = config.patch_size.hw();
        let (c, h) = (config.num_channels, config.hidden_size);
        let conv = vb.pp("patch_embedding");
        let weight = conv.get((h, c, ph, pw), "weight")?;
        let positions = vb
            .pp("position_embedding")
            .get((config.num_patches(), h), "weight")?;
        Ok(Self {
            weight_t: weight.reshape((h, c * ph * pw))?.t()?.contiguous()?,
            bias: conv.get(h, "bias")?,
            positions,
            patch: (ph, pw),
            grid: config.grid(),
        })
    }

    /// `[batch, C, H, W]` to `[batch, patches, hidden]`.
    fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let (batch, channels, _, _) = pixels.dims4()?;
        let ((ph, pw), (gh, gw)) = (self.patch, self.grid);
        let patches = pixels
            .narrow(2, 0, gh * ph)?
            .narrow(3, 0, gw * pw)?
            .reshape((batch, channels, gh, ph, gw, pw))?
            .permute((0, 2, 4, 1, 3, 5))?
            .reshape((batch, gh * gw, channels * ph * pw))?;
        patches
            .broadcast_matmul(&self.weight_t)?
            .broadcast_add(&self.bias)?
            .broadcast_add(&self.positions)
    }
}

/// `SiglipMultiheadAttentionPoolingHead`: a learned probe attends over all patches.
#[derive(Debug, Clone)]
struct PoolingHead {
    /// `[1, 1, hidden]`.
    probe: Tensor,
    /// Packed q;k;v projection of `nn.MultiheadAttention`, `[3 * hidden, hidden]`.
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: Linear,
    layernorm: LayerNorm,
    mlp: Mlp,
    heads: usize,
}

impl PoolingHead {
    fn new(shape: &EncoderShape, vb: VarBuilder) -> Result<Self> {
        let h = shape.hidden;
        let attention = vb.pp("attention");
        Ok(Self {
            probe: vb.get((1, 1, h), "probe")?,
            in_proj_weight: attention.get((3 * h, h), "in_proj_weight")?,
            in_proj_bias: attention.get(3 * h, "in_proj_bias")?,
            out_proj: linear(h, h, attention.pp("out_proj"))?,
            layernorm: layer_norm(h, shape.eps, vb.pp("layernorm"))?,
            mlp: Mlp::new(shape, vb.pp("mlp"))?,
            heads: shape.heads,
        })
    }

    /// Projects `x` with rows `part * hidden ..` of the packed in-projection.
    fn in_proj(&self, x: &Tensor, part: usize) -> Result<Tensor> {
        let h = self.probe.dim(D::Minus1)?;
        let w = self.in_proj_weight.narrow(0, part * h, h)?;
        let b = self.in_proj_bias.narrow(0, part * h, h)?;
        x.broadcast_matmul(&w.t()?)?.broadcast_add(&b)
    }

    /// `[batch, patches, hidden]` to `[batch, hidden]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let batch = x.dim(0)?;
        let probe = self.probe.repeat((batch, 1, 1))?;
        let q = split_heads(&self.in_proj(&probe, 0)?, self.heads)?;
        let k = split_heads(&self.in_proj(x, 1)?, self.heads)?;
        let v = split_heads(&self.in_proj(x, 2)?, self.heads)?;
        let pooled = self.out_proj.forward(&attend(&q, &k, &v)?)?;
        let pooled = (&pooled + self.mlp.forward(&self.layernorm.forward(&pooled)?)?)?;
        pooled.squeeze(1)
    }
}

/// `SiglipVisionTransformer` with its head: `vision_model.*`.
#[derive(Debug, Clone)]
pub struct VisionTower {
    embeddings: PatchEmbeddings,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    head: PoolingHead,
}

impl VisionTower {
    /// Loads the tower from `vision_model.*`.
    pub fn new(config: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let shape = EncoderShape {
            hidden: config.hidden_size,
            intermediate: config.intermediate_size,
            heads: config.num_attention_heads,
            layers: config.num_hidden_layers,
            activation: config.hidden_act,
            eps: config.layer_norm_eps,
        };
        Ok(Self {
            embeddings: PatchEmbeddings::new(config, vb.pp("embeddings"))?,
            encoder: Encoder::new(&shape, vb.pp("encoder"))?,
            post_layernorm: layer_norm(shape.hidden, shape.eps, vb.pp("post_layernorm"))?,
            head: PoolingHead::new(&shape, vb.pp("head"))?,
        })
    }

    /// Unnormalised image features (`pooler_output`), `[batch, hidden]`.
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let x = self.embeddings.forward(pixels)?;
        let x = self.encoder.forward(&x)?;
        let x = self.post_layernorm.forward(&x)?;
        self.head.forward(&x)
    }
}
