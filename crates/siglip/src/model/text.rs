//! The text tower: token ids `[batch, 64]` to text embeddings `[batch, projection]`.
//!
//! Mirrors transformers' `SiglipTextEmbeddings` and `SiglipTextTransformer`: no attention
//! mask, and the embedding is the LAST position (63) through `text_model.head`.

use candle_core::{Module, Result, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};

use super::dense::Dense;
use super::encoder::{Encoder, EncoderShape};
use crate::config::TextConfig;
use siglip_kernels::Dtype;

/// `SiglipTextTransformer` with its head: `text_model.*`.
#[derive(Debug, Clone)]
pub struct TextTower {
    token_embedding: Embedding,
    /// `[max_position_embeddings, hidden]`.
    positions: Tensor,
    encoder: Encoder,
    final_layer_norm: LayerNorm,
    head: Dense,
}

impl TextTower {
    /// Loads the tower from `text_model.*`.
    pub fn new(config: &TextConfig, dtype: Dtype, vb: VarBuilder) -> Result<Self> {
        let h = config.hidden_size;
        let shape = EncoderShape {
            hidden: h,
            intermediate: config.intermediate_size,
            heads: config.num_attention_heads,
            layers: config.num_hidden_layers,
            activation: config.hidden_act,
            eps: config.layer_norm_eps,
            dtype,
        };
        let embeddings = vb.pp("embeddings");
        Ok(Self {
            token_embedding: embedding(config.vocab_size, h, embeddings.pp("token_embedding"))?,
            positions: embeddings
                .pp("position_embedding")
                .get((config.max_position_embeddings, h), "weight")?,
            encoder: Encoder::new(&shape, vb.pp("encoder"))?,
            final_layer_norm: layer_norm(h, shape.eps, vb.pp("final_layer_norm"))?,
            head: Dense::load(h, config.embedding_size(), dtype, vb.pp("head"))?,
        })
    }

    /// Unnormalised text features (`pooler_output`) of `[batch, seq]` ids, `[batch, projection]`.
    pub fn forward(&self, input_ids: &Tensor) -> Result<Tensor> {
        let seq = input_ids.dim(1)?;
        let x = self
            .token_embedding
            .forward(input_ids)?
            .broadcast_add(&self.positions.narrow(0, 0, seq)?)?;
        let x = self.encoder.forward(&x)?;
        let x = self.final_layer_norm.forward(&x)?;
        let last = x.narrow(1, seq - 1, 1)?.squeeze(1)?;
        self.head.forward(&last)
    }
}
