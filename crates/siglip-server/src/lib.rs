//! siglip-server: SigLIP zero-shot image classification and embeddings, served over an
//! OpenAI-compatible HTTP API. The model itself is the `siglip` crate; this crate is the
//! serving around it.
//!
//! The crate in request order (one `/v1/classify` call, top to bottom):
//! - [`server`]: `app()` (routes and layers) and `run` (start-up, graceful shutdown);
//!   [`connections`]: the accept loop (connection cap, header-read timeout, drain);
//!   [`middleware`]: request id, metrics, authentication, OpenAI errors; [`state`]: what the
//!   handlers share;
//! - [`routes`]: one handler per route; [`api`] holds the bodies, [`error`] the error object
//!   and the one mapping of every other error onto HTTP;
//! - [`json_input`]: list and image fields parsed without building `Value`s;
//! - [`image_input`] and [`url_fetch`]: image inputs to bytes (decoding and preprocessing are
//!   the library's);
//! - [`engine`]: the two towers behind [`batcher`] queues, admission, and the [`label_cache`];
//! - [`metrics`]: Prometheus; [`config`]: every knob, from file, environment and flags;
//!   [`openapi`]: the document of the API, derived from the handlers and the bodies.
#![forbid(unsafe_code)]

pub mod api;
pub mod batcher;
pub mod bulk;
pub mod config;
pub mod connections;
pub mod engine;
pub mod error;
pub mod image_input;
pub mod json_input;
pub mod label_cache;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod state;
pub mod url_fetch;
