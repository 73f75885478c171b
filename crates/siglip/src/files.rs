//! Where a model's files come from: a local directory in the hub's layout, or a hub id
//! fetched through hf-hub into the usual cache (`HF_HOME`, `HF_TOKEN`, `HF_HUB_OFFLINE`).

use std::path::{Path, PathBuf};

use crate::error::{bail, Context, Error};
use hf_hub::{api::sync::ApiBuilder, Cache, Repo, RepoType};

const CONFIG: &str = "config.json";
const WEIGHTS: &str = "model.safetensors";
const WEIGHTS_INDEX: &str = "model.safetensors.index.json";
const PREPROCESSOR: &str = "preprocessor_config.json";
const TOKENIZER_JSON: &str = "tokenizer.json";
const SPIECE: &str = "spiece.model";
const TOKENIZER_CONFIG: &str = "tokenizer_config.json";

/// The tokenizer file a checkpoint ships: `tokenizer.json` is preferred when both exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerFile {
    /// A Hugging Face fast-tokenizer file (Unigram model).
    Json(PathBuf),
    /// A SentencePiece model proto.
    SentencePiece(PathBuf),
}

/// The local paths of every file a SigLIP checkpoint needs.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// `config.json`.
    pub config: PathBuf,
    /// `model.safetensors`, or every shard named by the index.
    pub weights: Vec<PathBuf>,
    /// `preprocessor_config.json`.
    pub preprocessor: PathBuf,
    /// `tokenizer.json` or `spiece.model`.
    pub tokenizer: TokenizerFile,
    /// `tokenizer_config.json`, when present (read for `do_lower_case`).
    pub tokenizer_config: Option<PathBuf>,
}

/// Where to look for a file by name; `Ok(None)` means "this checkpoint has no such file".
trait FileSource {
    fn find(&self, name: &str) -> crate::error::Result<Option<PathBuf>>;
}

struct LocalDir<'a>(&'a Path);

impl FileSource for LocalDir<'_> {
    fn find(&self, name: &str) -> crate::error::Result<Option<PathBuf>> {
        let path = self.0.join(name);
        Ok(path.is_file().then_some(path))
    }
}

/// The hub cache only (`HF_HUB_OFFLINE=1`).
struct CacheOnly {
    cache: Cache,
    id: String,
    revision: String,
}

impl FileSource for CacheOnly {
    fn find(&self, name: &str) -> crate::error::Result<Option<PathBuf>> {
        let repo = Repo::with_revision(self.id.clone(), RepoType::Model, self.revision.clone());
        if let Some(path) = self.cache.repo(repo.clone()).get(name) {
            return Ok(Some(path));
        }
        // A revision given as a commit hash has a snapshot folder but no ref file.
        let snapshot = self
            .cache
            .path()
            .join(repo.folder_name())
            .join("snapshots")
            .join(&self.revision)
            .join(name);
        Ok(snapshot.is_file().then_some(snapshot))
    }
}

/// The hub, through the cache: lists the repo once, then downloads what it needs.
struct Hub {
    repo: hf_hub::api::sync::ApiRepo,
    /// The same repository in the local cache: files already there are not fetched again.
    cache: hf_hub::CacheRepo,
    siblings: Vec<String>,
}

impl FileSource for Hub {
    fn find(&self, name: &str) -> crate::error::Result<Option<PathBuf>> {
        if !self.siblings.iter().any(|s| s == name) {
            return Ok(None);
        }
        let path = match self.cache.get(name) {
            Some(path) => path,
            None => self
                .repo
                .download_with_progress(name, DownloadProgress::new())
                .with_context(|| format!("downloading {name}"))?,
        };
        Ok(Some(path))
    }
}

/// A download's progress: a bar on a terminal (stderr), otherwise a log line every
/// [`DownloadProgress::LOG_EVERY`] and one at the end, so that a long start (so400m is 3.5 GB)
/// shows signs of life wherever it runs.
struct DownloadProgress {
    file: String,
    total: u64,
    done: u64,
    started: std::time::Instant,
    last_log: std::time::Instant,
    bar: Option<indicatif::ProgressBar>,
}

impl DownloadProgress {
    const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    fn new() -> Self {
        let now = std::time::Instant::now();
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .expect("a valid template"),
            );
            bar
        });
        Self {
            file: String::new(),
            total: 0,
            done: 0,
            started: now,
            last_log: now,
            bar,
        }
    }

    fn log(&self, what: &str) {
        let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        tracing::info!(
            file = %self.file,
            "{what}: {:.0} of {:.0} MiB ({:.0}%), {:.1} MiB/s",
            mib(self.done),
            mib(self.total),
            100.0 * self.done as f64 / self.total.max(1) as f64,
            mib(self.done) / seconds
        );
    }
}

impl hf_hub::api::Progress for DownloadProgress {
    fn init(&mut self, size: usize, filename: &str) {
        self.file = filename.to_string();
        self.total = size as u64;
        if let Some(bar) = &self.bar {
            bar.set_length(self.total);
            bar.set_message(filename.to_string());
        } else {
            self.log("downloading");
        }
    }

    fn update(&mut self, size: usize) {
        self.done += size as u64;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
        } else if self.last_log.elapsed() >= Self::LOG_EVERY {
            self.last_log = std::time::Instant::now();
            self.log("downloading");
        }
    }

    fn finish(&mut self) {
        match &self.bar {
            Some(bar) => bar.finish(),
            None => self.log("downloaded"),
        }
    }
}

/// Finds the files of `model`: a local directory if one exists at that path, else a hub id.
pub fn resolve(model: &str, revision: Option<&str>) -> crate::error::Result<ModelFiles> {
    let path = Path::new(model);
    if path.is_dir() {
        return collect(&LocalDir(path))
            .with_context(|| format!("model directory {}", path.display()));
    }
    if looks_like_path(model) {
        bail!("model directory {model} does not exist");
    }
    let revision = revision.unwrap_or("main").to_string();
    let cache = CacheOnly {
        cache: Cache::from_env(),
        id: model.to_string(),
        revision: revision.clone(),
    };
    let cache_dir = cache.cache.path().display().to_string();
    if offline() {
        return collect(&cache).with_context(|| {
            format!(
                "model {model} (revision {revision}) is not in the Hugging Face cache at \
                 {cache_dir} and HF_HUB_OFFLINE is set; download it first, or pass \
                 --model /path/to/a/local/copy"
            )
        });
    }
    match connect(model, &revision) {
        Ok(hub) => collect(&hub).with_context(|| format!("model {model} (revision {revision})")),
        // Like huggingface_hub, fall back to a complete cached copy when the hub is unreachable.
        Err(error) => collect(&cache).map_err(|_| {
            Error::Checkpoint(format!(
                "cannot reach the Hugging Face hub for model {model} (revision {revision}) and \
                 the cache at {cache_dir} has no complete copy; pass --model \
                 /path/to/a/local/copy of the repository: {error}"
            ))
        }),
    }
}

/// True for strings that can only be meant as paths, never as `org/name` hub ids.
fn looks_like_path(model: &str) -> bool {
    model.starts_with(['/', '.', '~']) || model.matches('/').count() > 1 || model.contains('\\')
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

fn connect(model: &str, revision: &str) -> crate::error::Result<Hub> {
    let mut builder = ApiBuilder::from_env().with_progress(false);
    if let Ok(token) = std::env::var("HF_TOKEN") {
        builder = builder.with_token(Some(token));
    }
    let api = builder.build().context("setting up the hub client")?;
    let id = Repo::with_revision(model.to_string(), RepoType::Model, revision.to_string());
    let repo = api.repo(id.clone());
    let info = repo.info().context("asking the hub for the repository")?;
    let siblings = info.siblings.into_iter().map(|s| s.rfilename).collect();
    let cache = Cache::from_env().repo(id);
    Ok(Hub {
        repo,
        cache,
        siblings,
    })
}

fn require(source: &dyn FileSource, name: &str) -> crate::error::Result<PathBuf> {
    source
        .find(name)?
        .with_context(|| format!("{name} is missing"))
}

fn collect(source: &dyn FileSource) -> crate::error::Result<ModelFiles> {
    let config = require(source, CONFIG)?;
    let weights = match source.find(WEIGHTS)? {
        Some(path) => vec![path],
        None => {
            let index = source
                .find(WEIGHTS_INDEX)?
                .with_context(|| format!("neither {WEIGHTS} nor {WEIGHTS_INDEX} is there"))?;
            shard_names(&index)?
                .iter()
                .map(|name| require(source, name))
                .collect::<crate::error::Result<_>>()?
        }
    };
    let tokenizer = match source.find(TOKENIZER_JSON)? {
        Some(path) => TokenizerFile::Json(path),
        None => TokenizerFile::SentencePiece(
            source
                .find(SPIECE)?
                .with_context(|| format!("neither {TOKENIZER_JSON} nor {SPIECE} is there"))?,
        ),
    };
    Ok(ModelFiles {
        config,
        weights,
        preprocessor: require(source, PREPROCESSOR)?,
        tokenizer,
        tokenizer_config: source.find(TOKENIZER_CONFIG)?,
    })
}

/// The distinct shard file names of a `model.safetensors.index.json`, in first-seen order.
fn shard_names(index: &Path) -> crate::error::Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(index)?;
    let index: Index =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", index.display()))?;
    let mut names: Vec<String> = index.weight_map.into_values().collect();
    names.sort();
    names.dedup();
    if let Some(bad) = names
        .iter()
        .find(|n| n.contains(['/', '\\']) || n.starts_with('.'))
    {
        bail!("shard name {bad:?} in {WEIGHTS_INDEX} points outside the model directory");
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_and_paths_are_told_apart() {
        assert!(!looks_like_path("google/siglip-base-patch16-384"));
        assert!(!looks_like_path("siglip"));
        assert!(looks_like_path("./models/siglip"));
        assert!(looks_like_path("/models/siglip"));
        assert!(looks_like_path("a/b/c"));
    }
}
