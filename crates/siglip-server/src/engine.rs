//! `Engine`: the model behind two batching queues (one per tower) and the label cache.
//!
//! Request path: the handler decodes and preprocesses images on the blocking pool, then
//! submits each image to the image queue and each uncached prompt to the text queue; the
//! queues' model threads run batches; logits come from the two normalised embeddings.

use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use siglip::checkpoint::{Checkpoint, Embedding};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::batcher::{BatchError, BatchObserver, BatchStats, Batcher, BatcherConfig};
use crate::label_cache::LabelCache;
use crate::metrics::{Metrics, ModelLabels, TowerLabels};

pub use siglip::checkpoint::Pixels;

/// How the engine batches, admits and caches; the server derives it from its configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The served model name, for the metrics' `model` label.
    pub model: String,
    /// Entries per model call.
    pub max_batch_size: usize,
    /// How long a batch waits for company.
    pub max_wait: Duration,
    /// Requests admitted at once (waiting or running).
    pub max_requests: usize,
    /// Work admitted at once: images plus prompts not in the label cache.
    pub max_work: usize,
    /// Longest an entry may wait for its batch to finish.
    pub request_timeout: Duration,
    /// Prompts whose text embedding is kept.
    pub label_cache_capacity: usize,
}

/// Why the engine could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// As many requests as admitted are already in, or a queue is full.
    #[error("the server is at capacity; retry shortly")]
    AtCapacity,
    /// An entry waited longer than the request timeout.
    #[error("the request waited longer than the server's request timeout")]
    Timeout,
    /// The queues are shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The model failed on the batch holding this entry; the detail is for the log.
    #[error("the model failed: {0}")]
    Failed(String),
}

impl From<BatchError> for EngineError {
    fn from(error: BatchError) -> Self {
        match error {
            BatchError::QueueFull => Self::AtCapacity,
            BatchError::Timeout => Self::Timeout,
            BatchError::ShuttingDown => Self::ShuttingDown,
            BatchError::Failed(detail) => Self::Failed(detail),
        }
    }
}

/// The serving side of a loaded checkpoint.
pub struct Engine {
    /// The model, tokenizer and preprocessor; shared with the queues' model threads.
    pub checkpoint: Arc<Checkpoint>,
    images: Batcher<Pixels, Embedding>,
    /// Prompts in, embeddings out: tokenized on the text tower's thread, off the async workers.
    texts: Batcher<String, Embedding>,
    labels: LabelCache,
    metrics: Arc<Metrics>,
    model: ModelLabels,
    /// One permit per request admitted (waiting or running); none left means 429. Taken by
    /// [`Engine::admit`] and released when the request's handler returns.
    requests: Arc<Semaphore>,
    /// One permit per unit of work admitted (an image, or a prompt the cache lacks), so that
    /// 16 images with 256 new labels weigh what they cost; taken and released with the
    /// request's permit. A request never asks for more than all of them.
    work: Arc<Semaphore>,
    max_work: usize,
}

/// A request's admission: it holds its request and work permits until dropped.
#[derive(Debug)]
pub struct Admitted {
    _request: OwnedSemaphorePermit,
    _work: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("embedding_size", &self.checkpoint.model.embedding_size())
            .finish_non_exhaustive()
    }
}

/// Splits a tower's batch result back out, one answer per entry; a failure fails them all.
fn per_entry(result: siglip::Result<Vec<Embedding>>, n: usize) -> Vec<Result<Embedding, String>> {
    match result {
        Ok(rows) => rows.into_iter().map(Ok).collect(),
        Err(error) => {
            tracing::error!(%error, "model failure");
            vec![Err("the model failed on this batch".to_string()); n]
        }
    }
}

impl Engine {
    /// Starts both queues' model threads. Needs a tokio runtime.
    pub fn start(checkpoint: Checkpoint, config: &EngineConfig, metrics: Arc<Metrics>) -> Self {
        let checkpoint = Arc::new(checkpoint);
        // Each queue holds what admitted work sends (see `admit`).
        let max_work = config.max_work.max(1);
        let queue = |tower: &'static str| BatcherConfig {
            max_batch_size: config.max_batch_size,
            max_wait: config.max_wait,
            // Slack for prompts that were cached at admission and evicted before they ran.
            queue_capacity: max_work.saturating_mul(2),
            timeout: config.request_timeout,
            observer: Some(observer(metrics.clone(), &config.model, tower)),
        };
        let image_checkpoint = checkpoint.clone();
        let images = Batcher::spawn("image-tower", queue("image"), move |batch: Vec<Pixels>| {
            let n = batch.len();
            per_entry(image_checkpoint.embed_pixels(batch), n)
        });
        let text_checkpoint = checkpoint.clone();
        let texts = Batcher::spawn("text-tower", queue("text"), move |batch: Vec<String>| {
            let n = batch.len();
            per_entry(text_checkpoint.embed_prompts(&batch), n)
        });
        Self {
            checkpoint,
            images,
            texts,
            labels: LabelCache::new(config.label_cache_capacity),
            metrics,
            model: ModelLabels {
                model: config.model.clone(),
            },
            requests: Arc::new(Semaphore::new(config.max_requests)),
            work: Arc::new(Semaphore::new(max_work)),
            max_work,
        }
    }

    /// Admits one request of `images` images and `prompts` prompts, or refuses at once when
    /// `max_requests` requests, or `max_work` images and uncached prompts, are in.
    pub fn admit(&self, images: usize, prompts: &[String]) -> Result<Admitted, EngineError> {
        let uncached = prompts.iter().filter(|p| !self.labels.contains(p)).count();
        let work = (images + uncached).clamp(1, self.max_work);
        let request = self
            .requests
            .clone()
            .try_acquire_owned()
            .map_err(|_| EngineError::AtCapacity)?;
        let work = self
            .work
            .clone()
            .try_acquire_many_owned(u32::try_from(work).unwrap_or(u32::MAX))
            .map_err(|_| EngineError::AtCapacity)?;
        Ok(Admitted {
            _request: request,
            _work: work,
        })
    }

    /// Image embeddings of preprocessed images, batched with other requests' images.
    pub async fn embed_images(&self, pixels: Vec<Pixels>) -> Result<Vec<Embedding>, EngineError> {
        try_join_all(pixels.into_iter().map(|p| self.images.submit(p)))
            .await
            .map_err(EngineError::from)
    }

    /// Text embeddings of prompts; cached prompts skip the text tower, and a prompt repeated
    /// within the request runs once.
    pub async fn embed_prompts(&self, prompts: &[String]) -> Result<Vec<Embedding>, EngineError> {
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

    async fn embed_prompt(&self, prompt: &str) -> Result<Embedding, EngineError> {
        if let Some(hit) = self.labels.get(prompt) {
            self.metrics
                .label_cache_hits
                .get_or_create(&self.model)
                .inc();
            return Ok(hit);
        }
        self.metrics
            .label_cache_misses
            .get_or_create(&self.model)
            .inc();
        let embedding = self
            .texts
            .submit(prompt.to_string())
            .await
            .map_err(EngineError::from)?;
        self.labels.insert(prompt.to_string(), embedding.clone());
        Ok(embedding)
    }

    /// One image's logits against each text.
    pub fn logits(&self, image: &[f32], texts: &[Embedding]) -> Vec<f32> {
        self.checkpoint.logits(image, texts)
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

fn observer(metrics: Arc<Metrics>, model: &str, tower: &'static str) -> BatchObserver {
    let labels = TowerLabels {
        model: model.to_string(),
        tower,
    };
    Arc::new(move |stats: &BatchStats| {
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
