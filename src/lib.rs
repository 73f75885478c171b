//! siglip-server: SigLIP zero-shot image classification and embeddings, served over an
//! OpenAI-compatible HTTP API.
//!
//! The crate in request order (one `/v1/classify` call, top to bottom):
//! - [`server`]: state, routes and layers (request id, auth, metrics, OpenAI errors), shutdown;
//! - [`routes`]: one handler per route; [`api`] holds the bodies, [`error`] the error object;
//! - [`image_input`] and [`url_fetch`]: image inputs to bytes; [`image_decode`]: bytes to RGB
//!   with PIL's semantics and a pixel limit; [`preprocess`]: Pillow-exact resize and normalise;
//! - [`tokenizer`]: prompt to 64 ids, exactly as transformers' `SiglipTokenizer`;
//! - [`engine`]: the two towers behind [`batcher`] queues, and the [`label_cache`];
//! - [`model`]: both SigLIP towers in candle (hot spots in [`kernels`]), with [`model::files`] finding a checkpoint's
//!   files (local directory or Hugging Face hub) and [`checkpoint`] loading them together;
//! - [`classify`]: logits to ranked sigmoid scores; [`metrics`]: Prometheus;
//!   [`config`]: every knob, from file, environment and flags; [`memory`]: heap tuning.

pub mod api;
pub mod batcher;
pub mod checkpoint;
pub mod classify;
pub mod config;
pub mod engine;
pub mod error;
pub mod image_decode;
pub mod image_input;
pub mod kernels;
pub mod label_cache;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod preprocess;
pub mod routes;
pub mod server;
pub mod tokenizer;
pub mod url_fetch;
