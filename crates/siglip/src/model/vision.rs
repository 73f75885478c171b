//! The image tower: pixels `[batch, 3, H, W]` (or NaFlex patches) to image embeddings
//! `[batch, hidden]`.
//!
//! Mirrors transformers' `SiglipVisionEmbeddings`, `SiglipVisionTransformer` and
//! `SiglipMultiheadAttentionPoolingHead`. The patch embedding (a "valid" conv with
//! stride = kernel) runs as one matrix product over unfolded patches. NaFlex images
//! (`Siglip2VisionTransformer`) take the embeddings of [`naflex`] and run packed, each image's
//! rows after the last one's, with attention and pooling kept within each image.

mod naflex;

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::dense::Dense;
use super::encoder::{Encoder, EncoderShape, Mlp};
use super::norm::Norm;
use super::ops::{self, HeadsAt};
use crate::config::{ModelKind, VisionConfig};
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
            .get((config.fixed_patches(), h), "weight")?;
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

/// How patches become the encoder's input rows.
#[derive(Debug, Clone)]
enum Embeddings {
    /// Fixed resolution: a conv over the square image.
    Conv(PatchEmbeddings),
    /// NaFlex: a linear layer over flattened patches, positions resized per image.
    Naflex(naflex::NaflexEmbeddings),
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
        let batch = x.dim(0)?;
        let query = self.query.repeat((batch, 1, 1))?;
        let kv = self.kv_proj.forward_with(x, Some(norm), None)?;
        self.finish(&self.attend(&query, &kv)?)
    }

    /// Packed images `[1, total, hidden]` of `lengths` rows each to `[images, hidden]`: the
    /// probe attends to each image's own rows (the pooling mask of `Siglip2`'s head).
    fn forward_within(&self, x: &Tensor, norm: &Norm, lengths: &[usize]) -> Result<Tensor> {
        let kv = self.kv_proj.forward_with(x, Some(norm), None)?;
        let mut start = 0;
        let mut attended = Vec::with_capacity(lengths.len());
        for &len in lengths {
            attended.push(self.attend(&self.query, &kv.narrow(1, start, len)?)?);
            start += len;
        }
        self.finish(&Tensor::cat(&attended, 0)?)
    }

    /// The probe's attention over the keys and values side by side in `kv`.
    fn attend(&self, query: &Tensor, kv: &Tensor) -> Result<Tensor> {
        let h = query.dim(2)?;
        let at = |tensor, column| HeadsAt { tensor, column };
        let (heads, dim) = (self.heads, h / self.heads);
        ops::attention(at(query, 0), at(kv, 0), at(kv, h), heads, dim, self.dtype)
    }

    /// Output projection and MLP of the attended probes `[batch, 1, hidden]`.
    fn finish(&self, attended: &Tensor) -> Result<Tensor> {
        let pooled = self.out_proj.forward(attended)?;
        let pooled = self.mlp.forward(&pooled, &self.layernorm)?;
        pooled.squeeze(1)
    }
}

/// `SiglipVisionTransformer` with its head: `vision_model.*`.
#[derive(Debug, Clone)]
pub struct VisionTower {
    embeddings: Embeddings,
    encoder: Encoder,
    /// Applied by the pooling head's key and value product.
    post_layernorm: Norm,
    head: PoolingHead,
}

impl VisionTower {
    /// Loads the tower of a `kind` checkpoint from `vision_model.*`.
    pub fn new(
        config: &VisionConfig,
        kind: ModelKind,
        dtype: Dtype,
        vb: VarBuilder,
    ) -> Result<Self> {
        let shape = EncoderShape {
            hidden: config.hidden_size,
            intermediate: config.intermediate_size,
            heads: config.num_attention_heads,
            layers: config.num_hidden_layers,
            activation: config.hidden_act,
            eps: config.layer_norm_eps,
            dtype,
        };
        let embeddings = match kind {
            ModelKind::FixedResolution => {
                Embeddings::Conv(PatchEmbeddings::new(config, dtype, vb.pp("embeddings"))?)
            }
            ModelKind::Naflex => Embeddings::Naflex(naflex::NaflexEmbeddings::new(
                config,
                dtype,
                vb.pp("embeddings"),
            )?),
        };
        Ok(Self {
            embeddings,
            encoder: Encoder::new(&shape, vb.pp("encoder"))?,
            post_layernorm: Norm::load(shape.hidden, shape.eps, vb.pp("post_layernorm"))?,
            head: PoolingHead::new(&shape, vb.pp("head"))?,
        })
    }

    /// Unnormalised image features (`pooler_output`) of fixed-size pixels, `[batch, hidden]`.
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let Embeddings::Conv(embeddings) = &self.embeddings else {
            candle_core::bail!("a NaFlex tower reads patches, not a pixel grid");
        };
        let x = embeddings.forward(pixels)?;
        let x = self.encoder.forward(&x)?;
        self.head.forward(&x, &self.post_layernorm)
    }

    /// Unnormalised image features of NaFlex images, `[images, hidden]`: `patches` holds
    /// each image's `rows * cols` flattened patches (`[total, channels * patch * patch]`),
    /// one image after another, and `grids` each image's `(rows, cols)`.
    pub fn forward_patches(&self, patches: &Tensor, grids: &[(usize, usize)]) -> Result<Tensor> {
        let Embeddings::Naflex(embeddings) = &self.embeddings else {
            candle_core::bail!("a fixed-resolution tower reads a pixel grid, not patches");
        };
        let lengths: Vec<usize> = grids.iter().map(|(rows, cols)| rows * cols).collect();
        let x = embeddings.forward(patches, grids)?;
        let x = self.encoder.forward_within(&x, &lengths)?;
        self.head.forward_within(&x, &self.post_layernorm, &lengths)
    }
}
