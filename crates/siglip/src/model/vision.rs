//! The image tower: pixels `[batch, 3, H, W]` to image embeddings `[batch, hidden]`.
//!
//! Mirrors transformers' `SiglipVisionEmbeddings`, `SiglipVisionTransformer` and
//! `SiglipMultiheadAttentionPoolingHead`. The patch embedding (a "valid" conv with
//! stride = kernel) runs as one matrix product over unfolded patches.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::dense::Dense;
use super::encoder::{Encoder, EncoderShape, Mlp};
use super::norm::Norm;
use super::ops::{self, HeadsAt};
use crate::config::VisionConfig;
use siglip_kernels::Dtype;

/// `SiglipVisionEmbeddings`: patch embedding plus learned position embedding.
#[derive(Debug, Clone)]
struct PatchEmbeddings {
    /// The conv as a linear layer over flattened `[channels, ph, pw]` patches.
    projection: Dense,
    /// `[num_patches, hidden]`.
    positions: Tensor,
    patch: (usize, usize),
    grid: (usize, usize),
}

impl PatchEmbeddings {
    fn new(config: &VisionConfig, dtype: Dtype, vb: VarBuilder) -> Result<Self> {
        let (ph, pw) = config.patch_size.hw();
        let (c, h) = (config.num_channels, config.hidden_size);
        let conv = vb.pp("patch_embedding");
        let weight = conv.get((h, c, ph, pw), "weight")?;
        let positions = vb
            .pp("position_embedding")
            .get((config.num_patches(), h), "weight")?;
        Ok(Self {
            projection: Dense::new(
                weight.reshape((h, c * ph * pw))?,
                conv.get(h, "bias")?,
                dtype,
            )?,
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
        self.projection
            .forward(&patches)?
            .broadcast_add(&self.positions)
    }
}

/// `SiglipMultiheadAttentionPoolingHead`: a learned probe attends over all patches.
#[derive(Debug, Clone)]
struct PoolingHead {
    /// The probe through the query projection, `[1, 1, hidden]`: it depends on no input.
    query: Tensor,
    /// Key and value rows of `nn.MultiheadAttention`'s packed in-projection, side by side.
    kv_proj: Dense,
    out_proj: Dense,
    layernorm: Norm,
    mlp: Mlp,
    heads: usize,
    dtype: Dtype,
}

impl PoolingHead {
    fn new(shape: &EncoderShape, vb: VarBuilder) -> Result<Self> {
        let h = shape.hidden;
        let attention = vb.pp("attention");
        let weight = attention.get((3 * h, h), "in_proj_weight")?;
        let bias = attention.get(3 * h, "in_proj_bias")?;
        let part = |i: usize| -> Result<(Tensor, Tensor)> {
            Ok((weight.narrow(0, i * h, h)?, bias.narrow(0, i * h, h)?))
        };
        let (q_weight, q_bias) = part(0)?;
        let query = vb
            .get((1, 1, h), "probe")?
            .broadcast_matmul(&q_weight.t()?)?
            .broadcast_add(&q_bias)?;
        Ok(Self {
            query,
            kv_proj: Dense::fused(&[part(1)?, part(2)?], shape.dtype)?,
            out_proj: Dense::load(h, h, shape.dtype, attention.pp("out_proj"))?,
            layernorm: Norm::load(h, shape.eps, vb.pp("layernorm"))?,
            mlp: Mlp::new(shape, vb.pp("mlp"))?,
            heads: shape.heads,
            dtype: shape.dtype,
        })
    }

    /// `[batch, patches, hidden]` to `[batch, hidden]`, reading `norm(x)`.
    fn forward(&self, x: &Tensor, norm: &Norm) -> Result<Tensor> {
        let (batch, _, h) = x.dims3()?;
        let query = self.query.repeat((batch, 1, 1))?;
        let kv = self.kv_proj.forward_with(x, Some(norm), None)?;
        let attended = ops::attention(
            HeadsAt {
                tensor: &query,
                column: 0,
            },
            HeadsAt {
                tensor: &kv,
                column: 0,
            },
            HeadsAt {
                tensor: &kv,
                column: h,
            },
            self.heads,
            h / self.heads,
            self.dtype,
        )?;
        let pooled = self.out_proj.forward(&attended)?;
        let pooled = self.mlp.forward(&pooled, &self.layernorm)?;
        pooled.squeeze(1)
    }
}

/// `SiglipVisionTransformer` with its head: `vision_model.*`.
#[derive(Debug, Clone)]
pub struct VisionTower {
    embeddings: PatchEmbeddings,
    encoder: Encoder,
    /// Applied by the pooling head's key and value product.
    post_layernorm: Norm,
    head: PoolingHead,
}

impl VisionTower {
    /// Loads the tower from `vision_model.*`.
    pub fn new(config: &VisionConfig, dtype: Dtype, vb: VarBuilder) -> Result<Self> {
        let shape = EncoderShape {
            hidden: config.hidden_size,
            intermediate: config.intermediate_size,
            heads: config.num_attention_heads,
            layers: config.num_hidden_layers,
            activation: config.hidden_act,
            eps: config.layer_norm_eps,
            dtype,
        };
        Ok(Self {
            embeddings: PatchEmbeddings::new(config, dtype, vb.pp("embeddings"))?,
            encoder: Encoder::new(&shape, vb.pp("encoder"))?,
            post_layernorm: Norm::load(shape.hidden, shape.eps, vb.pp("post_layernorm"))?,
            head: PoolingHead::new(&shape, vb.pp("head"))?,
        })
    }

    /// Unnormalised image features (`pooler_output`), `[batch, hidden]`.
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let x = self.embeddings.forward(pixels)?;
        let x = self.encoder.forward(&x)?;
        self.head.forward(&x, &self.post_layernorm)
    }
}
