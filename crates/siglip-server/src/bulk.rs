//! `classify` over many images (`DIR`, `@LIST`, `--output`): the server's engine and batching
//! queues without HTTP, one JSON line per image, in input order.
//!
//! Images are read, decoded and preprocessed on the blocking pool, a few batches' worth at a
//! time, and go through the image queue as the server's requests do; the prompts are embedded
//! once. Each line is written whole and flushed in input order, so an interrupted run (Ctrl-C)
//! leaves a complete prefix of the output. An image that cannot be read or decoded is one error
//! line; the run goes on.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use serde::Serialize;
use siglip::checkpoint::Embedding;
use siglip::image_decode::{decode_rgb_with, DecodeLimits};
use siglip::zero_shot;
use siglip::Checkpoint;

use crate::api::LabelScore;
use crate::config::ServeConfig;
use crate::engine::Engine;
use crate::metrics::Metrics;

/// File name extensions taken from a directory.
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "gif", "bmp"];

/// The images named on the command line: files as given, directories walked (image files,
/// sorted), and `@LIST` files read (one path per line; `@-` reads standard input).
pub fn expand_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut images = Vec::new();
    for input in inputs {
        let text = input.to_string_lossy();
        if let Some(list) = text.strip_prefix('@') {
            let paths = if list == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading paths from stdin")?
            } else {
                std::fs::read_to_string(list).with_context(|| format!("reading {list}"))?
            };
            images.extend(
                paths
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(PathBuf::from),
            );
        } else if input.is_dir() {
            walk(input, &mut images)?;
        } else {
            images.push(input.clone());
        }
    }
    Ok(images)
}

/// Whether the inputs ask for a bulk run: a directory or a list.
pub fn is_bulk(inputs: &[PathBuf]) -> bool {
    inputs
        .iter()
        .any(|i| i.is_dir() || i.to_string_lossy().starts_with('@'))
}

fn walk(dir: &Path, images: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, images)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            images.push(path);
        }
    }
    Ok(())
}

/// One output line.
#[derive(Serialize)]
struct Line<'a> {
    index: usize,
    image: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scores: Option<Vec<LabelScore>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// What a bulk run needs besides the checkpoint.
pub struct BulkRun<'a> {
    /// The images, in output order.
    pub images: &'a [PathBuf],
    /// Candidate labels.
    pub labels: &'a [String],
    /// Prompt template.
    pub template: &'a str,
    /// Keep the k best labels per image.
    pub top_k: Option<usize>,
    /// JSON Lines go here.
    pub output: Box<dyn Write + Send>,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

/// Classifies every image; returns how many lines were written and whether Ctrl-C cut it short.
pub async fn run(checkpoint: Checkpoint, mut job: BulkRun<'_>) -> anyhow::Result<(usize, bool)> {
    let prompts = zero_shot::prompts(job.labels, job.template)?;
    let config = ServeConfig::default();
    let model = crate::config::ServedModelConfig {
        model: String::new(),
        revision: None,
        served_model_name: "classify".into(),
        dtype: siglip::Dtype::F32,
        batching: config.batching.clone(),
        text_lowercase: config.text_lowercase,
        max_num_patches: None,
    };
    let engine = Arc::new(Engine::start(
        checkpoint,
        &config.engine(&model),
        Arc::new(Metrics::default()),
    ));
    let texts: Arc<[Embedding]> = engine
        .embed_prompts(&prompts)
        .await
        .context("embedding the labels")?
        .into();
    let bar = progress_bar(job.images.len() as u64, job.progress);
    // Enough images in flight to fill a batch while the previous one runs.
    let in_flight = 2 * config.batching.max_batch_size;
    let mut lines = futures::stream::iter(job.images.iter().enumerate())
        .map(|(index, path)| {
            let (engine, texts) = (engine.clone(), texts.clone());
            async move { (index, path, score(&engine, &texts, path, job.top_k).await) }
        })
        .buffered(in_flight);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut written = 0;
    loop {
        let next = tokio::select! {
            next = lines.next() => next,
            _ = &mut interrupted => {
                bar.abandon_with_message("interrupted");
                engine.shutdown().await;
                return Ok((written, true));
            }
        };
        let Some((index, path, result)) = next else {
            break;
        };
        let image = path.to_string_lossy();
        let (scores, error) = match result {
            Ok(ranked) => {
                let scores = ranked
                    .into_iter()
                    .map(|s| LabelScore {
                        label: job.labels[s.label].clone(),
                        score: s.score,
                        logit: s.logit,
                    })
                    .collect();
                (Some(scores), None)
            }
            Err(error) => (None, Some(format!("{error:#}"))),
        };
        let line = Line {
            index,
            image: &image,
            scores,
            error,
        };
        let mut text = serde_json::to_string(&line)?;
        text.push('\n');
        job.output.write_all(text.as_bytes())?;
        job.output.flush()?;
        written += 1;
        bar.inc(1);
    }
    bar.finish();
    engine.shutdown().await;
    Ok((written, false))
}

/// One image's ranked scores.
async fn score(
    engine: &Engine,
    texts: &[Embedding],
    path: &Path,
    top_k: Option<usize>,
) -> anyhow::Result<Vec<zero_shot::LabelScore>> {
    let checkpoint = engine.checkpoint.clone();
    let owned = path.to_path_buf();
    let pixels = tokio::task::spawn_blocking(move || {
        let bytes =
            std::fs::read(&owned).with_context(|| format!("reading {}", owned.display()))?;
        let image = decode_rgb_with(&bytes, &DecodeLimits::default(), checkpoint.colour_key())?;
        anyhow::Ok(checkpoint.pixels(&image, None)?)
    })
    .await??;
    let image = engine.embed_images(vec![pixels]).await?;
    Ok(zero_shot::rank(&engine.logits(&image[0], texts), top_k))
}

fn progress_bar(total: u64, visible: bool) -> indicatif::ProgressBar {
    if !visible {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} images  {per_sec}  ETA {eta}  {msg}",
        )
        .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}
