//! `AppState`: what every handler shares (configuration, the served models and their engines
//! once loaded, metrics, the URL fetcher and the decode slots), and the lookups handlers make
//! on it.
//!
//! Lifecycle: made by `server::run` before binding; each model's `engine` is set once, by the
//! loading task, when that model is loaded and warmed up; `shutting_down` is set once, by the
//! shutdown signal.

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
    /// The served models, in configuration order: the first answers requests that name none.
    pub models: Vec<ServedModel>,
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

/// One served model: the id clients name it by and, once loaded and warmed up, its engine.
#[derive(Debug)]
pub struct ServedModel {
    /// The id clients name it by.
    pub name: String,
    /// Set once, when the model is loaded and warmed up.
    pub engine: OnceLock<Engine>,
}

impl AppState {
    /// New state for models served under `names`; their engines are set as they load.
    pub fn new(config: ServeConfig, names: Vec<String>) -> Self {
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
            models: names
                .into_iter()
                .map(|name| ServedModel {
                    name,
                    engine: OnceLock::new(),
                })
                .collect(),
            shutting_down: AtomicBool::new(false),
            decode_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// The model a request's `model` field names (the first one when it names none): its
    /// served name and its engine. 404 for a name nobody serves; 503 while it loads and while
    /// the server shuts down.
    pub fn model(&self, name: Option<&str>) -> Result<(&str, &Engine), ApiError> {
        let served = self.served_model(name)?;
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(ApiError::unavailable("the server is shutting down"));
        }
        let engine = served
            .engine
            .get()
            .ok_or_else(|| ApiError::unavailable("the model is still loading"))?;
        Ok((&served.name, engine))
    }

    /// The served model named `name` (the first when `None`), loaded or not; 404 if none is.
    pub fn served_model(&self, name: Option<&str>) -> Result<&ServedModel, ApiError> {
        match name {
            None => Ok(&self.models[0]),
            Some(id) => self
                .models
                .iter()
                .find(|m| m.name == id)
                .ok_or_else(|| ApiError::model_not_found(id)),
        }
    }

    /// Whether every model is loaded and warmed up, and the server is not shutting down.
    pub fn ready(&self) -> bool {
        !self.shutting_down.load(Ordering::SeqCst)
            && self.models.iter().all(|m| m.engine.get().is_some())
    }

    /// Decoder limits from the config.
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_pixels: self.config.limits.max_image_pixels,
            max_side: self.config.limits.max_image_side,
        }
    }
}
