//! `Engine`: the model behind two batching queues (one per tower) and the label cache.
//!
//! Request path: the handler decodes and preprocesses images on the blocking pool, then
//! submits each image to the image queue and each uncached prompt to the text queue; the
//! queues' model threads run batches; logits come from the two normalised embeddings.

use std::sync::Arc;

use candle_core::Tensor;
use futures::future::try_join_all;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::batcher::{BatchError, BatchStats, Batcher, BatcherConfig};
use crate::checkpoint::Checkpoint;
use crate::config::ServeConfig;
use crate::error::ApiError;
use crate::label_cache::LabelCache;
use crate::metrics::{Metrics, TowerLabels};
use crate::model::SiglipModel;
use crate::preprocess::Preprocessor;
use crate::tokenizer::SiglipTokenizer;

/// Pixel values of one image, CHW.
pub type Pixels = Vec<f32>;

/// An L2-normalised embedding.
pub type Embedding = Arc<[f32]>;

/// The serving side of a loaded checkpoint.
pub struct Engine {
    /// Prompt to ids.
    pub tokenizer: Arc<SiglipTokenizer>,
    /// Decoded image to pixels.
    pub preprocessor: Preprocessor,
    /// Width of the embeddings.
    pub embedding_size: usize,
    logit_scale: f32,
    logit_bias: f32,
    images: Batcher<Pixels, Embedding>,
    /// Prompts in, embeddings out: tokenized on the text tower's thread, off the async workers.
    texts: Batcher<String, Embedding>,
    labels: LabelCache,
    metrics: Arc<Metrics>,
    /// One permit per request admitted (waiting or running); none left means 429. A permit
    /// is taken by [`Engine::admit`] and released when the request's handler returns.
    admission: Arc<Semaphore>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("embedding_size", &self.embedding_size)
            .finish_non_exhaustive()
    }
}

/// Runs one tower on a batch of inputs and splits the embeddings back out, one per input.
fn run_tower(
    model: &SiglipModel,
    rows: candle_core::Result<Vec<Tensor>>,
    n: usize,
    tower: fn(&SiglipModel, &Tensor) -> candle_core::Result<Tensor>,
) -> Vec<Result<Embedding, String>> {
    let result = rows
        .and_then(|rows| Tensor::stack(&rows, 0))
        .and_then(|batch| tower(model, &batch))
        .and_then(|out| out.to_vec2::<f32>());
    match result {
        Ok(rows) => rows.into_iter().map(|r| Ok(Arc::from(r))).collect(),
        Err(error) => {
            tracing::error!(%error, "model failure");
            vec![Err("the model failed on this batch".to_string()); n]
        }
    }
}

impl Engine {
    /// Starts both queues' model threads. Needs a tokio runtime.
    pub fn start(checkpoint: Checkpoint, config: &ServeConfig, metrics: Arc<Metrics>) -> Self {
        let Checkpoint {
            model,
            tokenizer,
            preprocessor,
            ..
        } = checkpoint;
        let tokenizer = Arc::new(tokenizer);
        let model = Arc::new(model);
        // Admission is per request (see `admit`); each queue holds what admitted requests send.
        let limits = &config.limits;
        let per_request = limits
            .max_images_per_request
            .max(limits.max_labels_per_request);
        let queue = |tower: &'static str| BatcherConfig {
            max_batch_size: config.batching.max_batch_size,
            max_wait: config.batching.max_wait(),
            queue_capacity: config.batching.queue_capacity.saturating_mul(per_request),
            timeout: config.batching.request_timeout(),
            observer: Some(observer(metrics.clone(), tower)),
        };
        let (h, w) = model.image_size();
        let device = model.device().clone();
        let image_model = model.clone();
        let images = Batcher::spawn("image-tower", queue("image"), move |batch: Vec<Pixels>| {
            let n = batch.len();
            let rows = batch
                .into_iter()
                .map(|p| Tensor::from_vec(p, (3, h, w), &device))
                .collect();
            run_tower(&image_model, rows, n, SiglipModel::image_embeddings)
        });
        let text_model = model.clone();
        let text_device = model.device().clone();
        let text_tokenizer = tokenizer.clone();
        let texts = Batcher::spawn("text-tower", queue("text"), move |batch: Vec<String>| {
            let n = batch.len();
            let rows = batch
                .iter()
                .map(|prompt| Tensor::new(text_tokenizer.encode(prompt), &text_device))
                .collect();
            run_tower(&text_model, rows, n, SiglipModel::text_embeddings)
        });
        Self {
            embedding_size: model.embedding_size(),
            logit_scale: model.logit_scale(),
            logit_bias: model.logit_bias(),
            tokenizer,
            preprocessor,
            images,
            texts,
            labels: LabelCache::new(config.label_cache.capacity),
            metrics,
            admission: Arc::new(Semaphore::new(config.batching.queue_capacity)),
        }
    }

    /// Admits one request, or answers 429 at once when `queue_capacity` requests are in.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::queue_full(1))
    }

    /// Image embeddings of preprocessed images, batched with other requests' images.
    pub async fn embed_images(&self, pixels: Vec<Pixels>) -> Result<Vec<Embedding>, ApiError> {
        try_join_all(pixels.into_iter().map(|p| self.images.submit(p)))
            .await
            .map_err(queue_error)
    }

    /// Text embeddings of prompts; cached prompts skip the text tower, and a prompt repeated
    /// within the request runs once.
    pub async fn embed_prompts(&self, prompts: &[String]) -> Result<Vec<Embedding>, ApiError> {
        let mut unique: Vec<&str> = Vec::new();
        let mut slot_of = std::collections::HashMap::new();
        for prompt in prompts {
            slot_of.entry(prompt.as_str()).or_insert_with(|| {
                unique.push(prompt);
                unique.len() - 1
            });
        }
        let embeddings =
            try_join_all(unique.iter().map(|prompt| self.embed_prompt(prompt))).await?;
        Ok(prompts
            .iter()
            .map(|p| embeddings[slot_of[p.as_str()]].clone())
            .collect())
    }

    async fn embed_prompt(&self, prompt: &str) -> Result<Embedding, ApiError> {
        if let Some(hit) = self.labels.get(prompt) {
            self.metrics.label_cache_hits.inc();
            return Ok(hit);
        }
        self.metrics.label_cache_misses.inc();
        let embedding = self
            .texts
            .submit(prompt.to_string())
            .await
            .map_err(queue_error)?;
        self.labels.insert(prompt.to_string(), embedding.clone());
        Ok(embedding)
    }

    /// `exp(logit_scale) * image · text + logit_bias`.
    pub fn logit(&self, image: &[f32], text: &[f32]) -> f32 {
        let cosine: f32 = image.iter().zip(text).map(|(a, b)| a * b).sum();
        cosine * self.logit_scale + self.logit_bias
    }

    /// Entries waiting in the image and text queues.
    pub fn queue_depths(&self) -> (usize, usize) {
        (self.images.queue_depth(), self.texts.queue_depth())
    }

    /// Stops both queues after their accepted entries finish.
    pub async fn shutdown(&self) {
        self.images.shutdown().await;
        self.texts.shutdown().await;
    }
}

fn observer(metrics: Arc<Metrics>, tower: &'static str) -> crate::batcher::BatchObserver {
    Arc::new(move |stats: &BatchStats| {
        let labels = TowerLabels { tower };
        metrics
            .batch_size
            .get_or_create(&labels)
            .observe(stats.size as f64);
        metrics
            .queue_seconds
            .get_or_create(&labels)
            .observe(stats.queue_wait_oldest.as_secs_f64());
        metrics
            .inference_seconds
            .get_or_create(&labels)
            .observe(stats.compute.as_secs_f64());
    })
}

fn queue_error(error: BatchError) -> ApiError {
    match error {
        BatchError::QueueFull => ApiError::queue_full(1),
        BatchError::Timeout => ApiError::timeout(),
        BatchError::ShuttingDown => ApiError::unavailable("the server is shutting down"),
        BatchError::Failed(detail) => ApiError::internal(detail),
    }
}
