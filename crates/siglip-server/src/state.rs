//! `AppState`: what every handler shares (configuration, the engine once loaded, metrics, the
//! URL fetcher and the decode slots), and the lookups handlers make on it.
//!
//! Lifecycle: made by `server::run` before binding; `engine` is set once, by the loading task,
//! when the model is loaded and warmed up; `shutting_down` is set once, by the shutdown signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use siglip::image_decode::DecodeLimits;

use crate::config::ServeConfig;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::url_fetch::UrlFetcher;

/// State shared by every handler.
pub struct AppState {
    /// The whole configuration.
    pub config: ServeConfig,
    /// The id clients name the model by.
    pub served_model_name: String,
    /// Set once, when the model is loaded and warmed up.
    pub engine: OnceLock<Engine>,
    /// Set by the shutdown signal; `/ready` answers 503 from then on.
    pub shutting_down: AtomicBool,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Fetches URL image inputs (when enabled).
    pub fetcher: UrlFetcher,
    /// One permit per image being fetched, decoded and preprocessed: as many as there are
    /// cores, so decoded images in memory are bounded whatever the number of requests.
    pub decode_slots: Arc<tokio::sync::Semaphore>,
    /// One permit per KiB of request bodies being read or held (`limits.max_inflight_body_bytes`).
    pub body_budget: Arc<tokio::sync::Semaphore>,
    /// One permit per KiB that the images being decoded hold at their peak, from their headers
    /// (`limits.max_decode_bytes` in all).
    pub decode_budget: Arc<tokio::sync::Semaphore>,
    /// One permit per image URL being downloaded (`url_fetch.max_concurrent`), apart from the
    /// decode slots so that slow downloads cannot starve other requests' decoding.
    pub fetch_slots: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// New state; the engine is set later by setting `engine`.
    pub fn new(config: ServeConfig, served_model_name: String) -> Self {
        Self {
            fetcher: UrlFetcher::new(&config.url_fetch),
            body_budget: Arc::new(tokio::sync::Semaphore::new(
                (config.limits.max_inflight_body_bytes / 1024).max(1),
            )),
            decode_budget: Arc::new(tokio::sync::Semaphore::new(
                config.limits.max_decode_bytes / 1024,
            )),
            fetch_slots: Arc::new(tokio::sync::Semaphore::new(
                config.url_fetch.max_concurrent.max(1),
            )),
            config,
            served_model_name,
            engine: OnceLock::new(),
            shutting_down: AtomicBool::new(false),
            decode_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// The engine, or 503 while loading or shutting down.
    pub fn engine(&self) -> Result<&Engine, ApiError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(ApiError::unavailable("the server is shutting down"));
        }
        self.engine
            .get()
            .ok_or_else(|| ApiError::unavailable("the model is still loading"))
    }

    /// Checks a request's optional `model` field.
    pub fn check_model(&self, model: Option<&str>) -> Result<(), ApiError> {
        match model {
            Some(id) if id != self.served_model_name => Err(ApiError::model_not_found(id)),
            _ => Ok(()),
        }
    }

    /// Decoder limits from the config.
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_pixels: self.config.limits.max_image_pixels,
            max_side: self.config.limits.max_image_side,
        }
    }
}
