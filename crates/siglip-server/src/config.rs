//! `serve`'s configuration: one struct, filled from built-in defaults, then the TOML file,
//! then environment variables, then flags (flag > environment > file > default).
//! `config/default.toml` documents every key.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

use siglip::tokenizer::TextLowercase;
use siglip_kernels::blocking::BlockingRequest;
use siglip_kernels::{Dtype, IsaRequest};

use crate::connections::ConnectionsConfig;
use crate::engine::EngineConfig;

/// Everything the server reads at start-up.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Hub id or local directory: the first served model (the one requests that name none get).
    pub model: Option<String>,
    /// Hub revision of `model`.
    pub revision: Option<String>,
    /// Id clients use in `model`; defaults to the hub id or the directory's name.
    pub served_model_name: Option<String>,
    /// More models, each with its own queues and label cache (`[[models]]` tables).
    pub models: Vec<ModelConfig>,
    /// Listen address.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// What the matrix products multiply in: `f32`, or `bf16` (CPU with AVX512-BF16).
    #[serde(deserialize_with = "from_name")]
    pub dtype: Dtype,
    /// The CPU kernels' instruction-set level: `auto` (the best this CPU has), or `avx512`,
    /// `avx2` or `generic` (candle's products), at most what the CPU has.
    #[serde(deserialize_with = "from_name")]
    pub cpu_isa: IsaRequest,
    /// The CPU products' cache blocking: `auto` (the sizes measured on Zen 4 there, a
    /// calibration at start-up on other CPUs), `calibrate` (on any CPU), or sizes, e.g.
    /// `kc_f32=256,kc_bf16=768,nc_panels=16,row_strips=8` (keys left out keep Zen 4's).
    #[serde(deserialize_with = "from_name")]
    pub cpu_blocking: BlockingRequest,
    /// Accepted `Authorization: Bearer` keys; empty means no authentication.
    pub api_keys: Vec<String>,
    /// A file of keys, one per line, added to `api_keys` (a mounted Secret).
    pub api_keys_file: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` names the client in the log.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Default `hypothesis_template` of /v1/classify.
    pub hypothesis_template: String,
    /// Whether prompts are lowercased before tokenizing: `auto` follows the checkpoint's
    /// `do_lower_case` (what it was trained on), `true` or `false` force it.
    pub text_lowercase: TextLowercase,
    /// NaFlex models: patches per image when a request gives none; the checkpoint's
    /// `max_num_patches` when unset.
    pub max_num_patches: Option<usize>,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// The dynamic batching queues.
    pub batching: BatchingConfig,
    /// Per-request limits.
    pub limits: LimitsConfig,
    /// Text-embedding cache for labels.
    pub label_cache: LabelCacheConfig,
    /// Image inputs given as http(s) URLs.
    pub url_fetch: UrlFetchConfig,
    /// Open connections and how long a request head may take.
    pub connections: ConnectionsConfig,
}

/// One served model of `[[models]]`; what it leaves out comes from the top-level keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Hub id or local directory.
    pub model: String,
    /// Hub revision (default `main`).
    #[serde(default)]
    pub revision: Option<String>,
    /// Id clients use in `model`; defaults to the hub id or the directory's name.
    #[serde(default)]
    pub served_model_name: Option<String>,
    /// What its products multiply in; defaults to the top-level `dtype`.
    #[serde(default, deserialize_with = "optional_from_name")]
    pub dtype: Option<Dtype>,
    /// Its batching queues; defaults to the top-level `[batching]`.
    #[serde(default)]
    pub batching: Option<BatchingConfig>,
    /// Prompt lowercasing; defaults to the top-level `text_lowercase`.
    #[serde(default)]
    pub text_lowercase: Option<TextLowercase>,
    /// NaFlex patches per image; defaults to the top-level `max_num_patches`.
    #[serde(default)]
    pub max_num_patches: Option<usize>,
}

/// A served model with every setting resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedModelConfig {
    /// Hub id or local directory.
    pub model: String,
    /// Hub revision.
    pub revision: Option<String>,
    /// The id clients name it by.
    pub served_model_name: String,
    /// What its products multiply in.
    pub dtype: Dtype,
    /// Its batching queues.
    pub batching: BatchingConfig,
    /// Prompt lowercasing.
    pub text_lowercase: TextLowercase,
    /// NaFlex patches per image by default (`None`: the checkpoint's).
    pub max_num_patches: Option<usize>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// One batching queue's knobs (both towers use the same).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchingConfig {
    /// Most entries the model runs at once.
    pub max_batch_size: usize,
    /// How long a batch's first entry waits for company (Triton's max_queue_delay), ms.
    pub max_wait_ms: u64,
    /// Requests admitted at once (waiting or running); beyond that, 429.
    pub queue_capacity: usize,
    /// Work admitted at once: images plus prompts the label cache lacks; beyond that, 429.
    pub work_capacity: usize,
    /// Longest a request may wait for its answer, ms; beyond that, 504.
    pub request_timeout_ms: u64,
}

/// Limits on one request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Request body bytes.
    pub max_body_bytes: usize,
    /// Images in one request.
    pub max_images_per_request: usize,
    /// Labels (or texts) in one request.
    pub max_labels_per_request: usize,
    /// Decoded pixels (width x height) of one image.
    pub max_image_pixels: u64,
    /// Longest side of one image, pixels.
    pub max_image_side: u32,
    /// Longest pause while a request body arrives, ms; longer: 408 (slow-upload protection).
    pub body_idle_timeout_ms: u64,
    /// Bytes that the images being decoded at once may hold, by their headers; an image that
    /// alone needs more gets 413.
    pub max_decode_bytes: usize,
    /// Request body bytes being read or held at once, across requests; more: 429.
    pub max_inflight_body_bytes: usize,
    /// Bytes of all header names and values together; more: 431.
    pub max_header_bytes: usize,
    /// Header fields; more: 431.
    pub max_headers: usize,
    /// Largest `max_num_patches` a request (or the configuration) may ask of a NaFlex model:
    /// an image's attention grows with its square.
    pub max_num_patches: usize,
}

/// The label cache.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabelCacheConfig {
    /// Prompts kept (LRU); 0 turns the cache off.
    pub capacity: usize,
}

/// Fetching images from URLs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UrlFetchConfig {
    /// Off by default.
    pub enabled: bool,
    /// Connect timeout, ms.
    pub connect_timeout_ms: u64,
    /// Whole-fetch timeout, ms.
    pub total_timeout_ms: u64,
    /// Largest image body, bytes.
    pub max_bytes: u64,
    /// Redirects followed (each one re-checked).
    pub max_redirects: u32,
    /// Allow private, loopback and link-local addresses (off: such URLs are refused).
    pub allow_private_addresses: bool,
    /// Image URLs downloaded at once, across the server (downloads hold no decode slot).
    pub max_concurrent: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            model: None,
            revision: None,
            served_model_name: None,
            models: Vec::new(),
            host: "127.0.0.1".into(),
            port: 8080,
            device: "cpu".into(),
            dtype: Dtype::F32,
            cpu_isa: IsaRequest::Auto,
            cpu_blocking: BlockingRequest::Auto,
            api_keys: Vec::new(),
            api_keys_file: None,
            trusted_proxies: Vec::new(),
            hypothesis_template: siglip::zero_shot::DEFAULT_TEMPLATE.into(),
            text_lowercase: TextLowercase::Auto,
            max_num_patches: None,
            log_format: LogFormat::Text,
            batching: BatchingConfig::default(),
            limits: LimitsConfig::default(),
            label_cache: LabelCacheConfig::default(),
            url_fetch: UrlFetchConfig::default(),
            connections: ConnectionsConfig::default(),
        }
    }
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self {
            max_batch_size: 8,
            max_wait_ms: 5,
            queue_capacity: 64,
            work_capacity: 512,
            request_timeout_ms: 60_000,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 20 * 1024 * 1024,
            max_images_per_request: 16,
            max_labels_per_request: 256,
            max_image_pixels: 40_000_000,
            max_image_side: 16_384,
            body_idle_timeout_ms: 15_000,
            max_decode_bytes: 1 << 30,
            max_inflight_body_bytes: 256 << 20,
            max_header_bytes: 16_384,
            max_headers: 64,
            max_num_patches: 4_096,
        }
    }
}

impl Default for LabelCacheConfig {
    fn default() -> Self {
        Self { capacity: 4_096 }
    }
}

impl Default for UrlFetchConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            connect_timeout_ms: 2_000,
            total_timeout_ms: 10_000,
            max_bytes: 20 * 1024 * 1024,
            max_redirects: 3,
            allow_private_addresses: false,
            max_concurrent: 16,
        }
    }
}

impl BatchingConfig {
    /// `max_wait_ms` as a duration.
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }

    /// `request_timeout_ms` as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// `serve`'s flags; each also reads an environment variable (clap gives flag > environment).
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "SIGLIP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Hugging Face hub id or local directory in the hub's layout; repeatable, one per served
    /// model (comma-separated in the environment). The first answers requests that name none.
    #[arg(long, env = "SIGLIP_MODEL", value_delimiter = ',')]
    pub model: Vec<String>,
    /// Hub revision (branch, tag or commit).
    #[arg(long, env = "SIGLIP_REVISION")]
    pub revision: Option<String>,
    /// Id clients use in `model`; given once per --model, in the same order.
    #[arg(long, env = "SIGLIP_SERVED_MODEL_NAME", value_delimiter = ',')]
    pub served_model_name: Vec<String>,
    /// Listen address.
    #[arg(long, env = "SIGLIP_HOST")]
    pub host: Option<String>,
    /// Listen port.
    #[arg(long, env = "SIGLIP_PORT")]
    pub port: Option<u16>,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, env = "SIGLIP_DEVICE")]
    pub device: Option<String>,
    /// What the matrix products multiply in.
    #[arg(long, env = "SIGLIP_DTYPE")]
    pub dtype: Option<Dtype>,
    /// The CPU kernels' instruction set: `auto`, or a level at most the CPU's: `avx512`,
    /// `avx2`, `generic`.
    #[arg(long, env = "SIGLIP_CPU_ISA")]
    pub cpu_isa: Option<IsaRequest>,
    /// The CPU products' cache blocking: `auto`, `calibrate`, or sizes such as
    /// `kc_f32=256,kc_bf16=768,nc_panels=16,row_strips=8`.
    #[arg(long, env = "SIGLIP_CPU_BLOCKING")]
    pub cpu_blocking: Option<BlockingRequest>,
    /// Lowercase prompts: `auto` (the checkpoint's `do_lower_case`), `true` or `false`.
    #[arg(long, env = "SIGLIP_TEXT_LOWERCASE")]
    pub text_lowercase: Option<TextLowercase>,
    /// NaFlex models: patches per image when a request gives none.
    #[arg(long, env = "SIGLIP_MAX_NUM_PATCHES")]
    pub max_num_patches: Option<usize>,
    /// API key clients must send as `Authorization: Bearer KEY` (repeatable; comma-separated in the environment).
    #[arg(
        long = "api-key",
        env = "SIGLIP_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,
    /// File of API keys, one per line (a mounted Secret).
    #[arg(long, env = "SIGLIP_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Log line format.
    #[arg(long, env = "SIGLIP_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Most entries one model call takes.
    #[arg(long, env = "SIGLIP_MAX_BATCH_SIZE")]
    pub max_batch_size: Option<usize>,
    /// Milliseconds a batch's first entry waits for company.
    #[arg(long, env = "SIGLIP_MAX_WAIT_MS")]
    pub max_wait_ms: Option<u64>,
    /// Requests admitted at once (waiting or running) before 429.
    #[arg(long, env = "SIGLIP_QUEUE_CAPACITY")]
    pub queue_capacity: Option<usize>,
    /// Milliseconds a request may wait for its answer before 504.
    #[arg(long, env = "SIGLIP_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// Prompts kept in the label cache.
    #[arg(long, env = "SIGLIP_LABEL_CACHE_CAPACITY")]
    pub label_cache_capacity: Option<usize>,
    /// Accept http(s) image URLs (`--allow-url-images`, or `--allow-url-images=false`).
    #[arg(
        long,
        env = "SIGLIP_ALLOW_URL_IMAGES",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_url_images: Option<bool>,
}

impl ServeConfig {
    /// Defaults, overridden by the file named in `args` (if any), then by `args`.
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let mut config = match &args.config {
            Some(path) => Self::from_toml(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            )
            .with_context(|| format!("parsing {}", path.display()))?,
            None => Self::default(),
        };
        config.apply(args)?;
        config.load_api_keys()?;
        let models = config.served_models();
        anyhow::ensure!(
            !models.is_empty(),
            "no model: pass --model, set SIGLIP_MODEL, or set `model` in the config file"
        );
        for (i, model) in models.iter().enumerate() {
            anyhow::ensure!(
                models[..i]
                    .iter()
                    .all(|m| m.served_model_name != model.served_model_name),
                "two models are served as {:?}: give each its own --served-model-name",
                model.served_model_name
            );
            if let Some(n) = model.max_num_patches {
                let limit = config.limits.max_num_patches;
                anyhow::ensure!(
                    (1..=limit).contains(&n),
                    "{}: max_num_patches {n} is not from 1 to limits.max_num_patches ({limit})",
                    model.served_model_name
                );
            }
            anyhow::ensure!(
                model.batching.max_batch_size >= 1 && model.batching.queue_capacity >= 1,
                "{}: batching.max_batch_size and batching.queue_capacity must be at least 1",
                model.served_model_name
            );
        }
        anyhow::ensure!(
            config.batching.max_batch_size >= 1,
            "batching.max_batch_size must be at least 1"
        );
        anyhow::ensure!(
            config.batching.queue_capacity >= 1,
            "batching.queue_capacity must be at least 1"
        );
        Ok(config)
    }

    /// Parses a TOML configuration; missing keys keep their defaults, unknown keys are errors.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    fn apply(&mut self, args: &ServeArgs) -> anyhow::Result<()> {
        fn set<T: Clone>(slot: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *slot = v.clone();
            }
        }
        if !args.served_model_name.is_empty() {
            anyhow::ensure!(
                args.served_model_name.len() == args.model.len().max(1),
                "--served-model-name is given once per --model, in the same order \
                 ({} names for {} models)",
                args.served_model_name.len(),
                args.model.len()
            );
        }
        if !args.model.is_empty() {
            // Models on the command line replace the file's.
            self.model = Some(args.model[0].clone());
            self.served_model_name = args.served_model_name.first().cloned();
            self.models = args.model[1..]
                .iter()
                .enumerate()
                .map(|(i, model)| ModelConfig {
                    model: model.clone(),
                    revision: None,
                    served_model_name: args.served_model_name.get(i + 1).cloned(),
                    dtype: None,
                    batching: None,
                    text_lowercase: None,
                    max_num_patches: None,
                })
                .collect();
        } else if let Some(name) = args.served_model_name.first() {
            self.served_model_name = Some(name.clone());
        }
        if args.revision.is_some() {
            self.revision.clone_from(&args.revision);
        }
        set(&mut self.host, &args.host);
        set(&mut self.port, &args.port);
        set(&mut self.device, &args.device);
        set(&mut self.dtype, &args.dtype);
        set(&mut self.cpu_isa, &args.cpu_isa);
        set(&mut self.cpu_blocking, &args.cpu_blocking);
        set(&mut self.text_lowercase, &args.text_lowercase);
        if args.max_num_patches.is_some() {
            self.max_num_patches = args.max_num_patches;
        }
        set(&mut self.log_format, &args.log_format);
        if !args.api_keys.is_empty() {
            self.api_keys.clone_from(&args.api_keys);
        }
        if args.api_keys_file.is_some() {
            self.api_keys_file.clone_from(&args.api_keys_file);
        }
        set(&mut self.batching.max_batch_size, &args.max_batch_size);
        set(&mut self.batching.max_wait_ms, &args.max_wait_ms);
        set(&mut self.batching.queue_capacity, &args.queue_capacity);
        set(
            &mut self.batching.request_timeout_ms,
            &args.request_timeout_ms,
        );
        set(&mut self.label_cache.capacity, &args.label_cache_capacity);
        set(&mut self.url_fetch.enabled, &args.allow_url_images);
        Ok(())
    }
    /// Adds the keys file's keys, trims every key, and refuses keys given but all blank: a
    /// `SIGLIP_API_KEYS=" , "` must not turn authentication off.
    fn load_api_keys(&mut self) -> anyhow::Result<()> {
        if let Some(path) = &self.api_keys_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the API keys file {}", path.display()))?;
            let keys = text
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'));
            let before = self.api_keys.len();
            self.api_keys.extend(keys.map(str::to_string));
            anyhow::ensure!(
                self.api_keys.len() > before,
                "the API keys file {} holds no key",
                path.display()
            );
        }
        let given = !self.api_keys.is_empty();
        self.api_keys = self
            .api_keys
            .iter()
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect();
        anyhow::ensure!(
            !given || !self.api_keys.is_empty(),
            "API keys were given but every one is blank; refusing to serve without authentication"
        );
        Ok(())
    }
    /// What one model's engine needs: its queues, admission and label cache.
    pub fn engine(&self, model: &ServedModelConfig) -> EngineConfig {
        let batching = &model.batching;
        EngineConfig {
            model: model.served_model_name.clone(),
            max_batch_size: batching.max_batch_size,
            max_wait: batching.max_wait(),
            max_requests: batching.queue_capacity,
            max_work: batching.work_capacity,
            request_timeout: batching.request_timeout(),
            label_cache_capacity: self.label_cache.capacity,
        }
    }

    /// Every served model, the top-level `model` first, with what each leaves out filled in
    /// from the top-level keys.
    pub fn served_models(&self) -> Vec<ServedModelConfig> {
        let first = self.model.as_ref().map(|model| ModelConfig {
            model: model.clone(),
            revision: self.revision.clone(),
            served_model_name: self.served_model_name.clone(),
            dtype: None,
            batching: None,
            text_lowercase: None,
            max_num_patches: None,
        });
        first
            .iter()
            .chain(&self.models)
            .map(|m| ServedModelConfig {
                served_model_name: m
                    .served_model_name
                    .clone()
                    .unwrap_or_else(|| default_served_name(&m.model)),
                model: m.model.clone(),
                revision: m.revision.clone(),
                dtype: m.dtype.unwrap_or(self.dtype),
                batching: m.batching.clone().unwrap_or_else(|| self.batching.clone()),
                text_lowercase: m.text_lowercase.unwrap_or(self.text_lowercase),
                max_num_patches: m.max_num_patches.or(self.max_num_patches),
            })
            .collect()
    }
}

/// The id a model is served under by default: a local directory's last component, else the
/// hub id as given.
pub fn default_served_name(model: &str) -> String {
    let path = std::path::Path::new(model);
    match path.file_name().and_then(|n| n.to_str()) {
        Some(name) if path.is_dir() => name.to_string(),
        _ => model.to_string(),
    }
}

/// [`from_name`] for an optional value.
fn optional_from_name<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    from_name(deserializer).map(Some)
}

/// A value spelt as in the configuration (`"bf16"`), parsed by its `FromStr`.
fn from_name<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_default_toml_equals_the_built_in_defaults() {
        let text = include_str!("../../../config/default.toml");
        let mut parsed = ServeConfig::from_toml(text).unwrap();
        parsed.model = None;
        assert_eq!(parsed, ServeConfig::default());
    }

    #[test]
    fn flags_override_the_file() {
        let file = ServeConfig::from_toml(
            "port = 9000\nhost = \"0.0.0.0\"\n[batching]\nmax_batch_size = 4\n",
        )
        .unwrap();
        assert_eq!((file.port, file.batching.max_batch_size), (9000, 4));
        let mut config = file;
        let args = ServeArgs {
            port: Some(7000),
            model: vec!["m".into()],
            ..Default::default()
        };
        config.apply(&args).unwrap();
        assert_eq!(
            (
                config.port,
                config.host.as_str(),
                config.batching.max_batch_size
            ),
            (7000, "0.0.0.0", 4)
        );
        assert!(ServeConfig::from_toml("nonsense_key = 1").is_err());
    }

    #[test]
    fn blank_keys_refuse_to_start_and_files_add_keys() {
        let blank = ServeArgs {
            model: vec!["m".into()],
            api_keys: vec![" ".into(), "".into()],
            ..Default::default()
        };
        let error = ServeConfig::resolve(&blank).unwrap_err().to_string();
        assert!(error.contains("blank"), "{error}");

        let path = std::env::temp_dir().join(format!("siglip-keys-{}", std::process::id()));
        std::fs::write(&path, "# the gateway's key\n\n  k1  \nk2\n").unwrap();
        let with_file = ServeArgs {
            model: vec!["m".into()],
            api_keys: vec!["k0".into()],
            api_keys_file: Some(path.clone()),
            ..Default::default()
        };
        let config = ServeConfig::resolve(&with_file).unwrap();
        assert_eq!(config.api_keys, ["k0", "k1", "k2"]);

        std::fs::write(&path, "# nothing\n\n").unwrap();
        let empty_file = ServeArgs {
            model: vec!["m".into()],
            api_keys_file: Some(path.clone()),
            ..Default::default()
        };
        assert!(ServeConfig::resolve(&empty_file).is_err());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn several_models_from_flags_and_from_the_file() {
        let args = ServeArgs {
            model: vec!["a/one".into(), "b/two".into()],
            served_model_name: vec!["first".into(), "second".into()],
            ..Default::default()
        };
        let config = ServeConfig::resolve(&args).unwrap();
        let names: Vec<_> = config
            .served_models()
            .into_iter()
            .map(|m| (m.model, m.served_model_name))
            .collect();
        assert_eq!(
            names,
            [
                ("a/one".to_string(), "first".to_string()),
                ("b/two".to_string(), "second".to_string())
            ]
        );

        let unpaired = ServeArgs {
            model: vec!["a".into(), "b".into()],
            served_model_name: vec!["only-one".into()],
            ..Default::default()
        };
        assert!(ServeConfig::resolve(&unpaired).is_err());
        let clash = ServeArgs {
            model: vec!["same".into(), "same".into()],
            ..Default::default()
        };
        assert!(ServeConfig::resolve(&clash).is_err());

        let file = ServeConfig::from_toml(
            "model = \"a/one\"\ndtype = \"bf16\"\n[[models]]\nmodel = \"b/two\"\ndtype = \"f32\"\n\
             [models.batching]\nmax_batch_size = 2\nmax_wait_ms = 1\nqueue_capacity = 4\n\
             request_timeout_ms = 100\nwork_capacity = 8\n",
        )
        .unwrap();
        let models = file.served_models();
        assert_eq!(models.len(), 2);
        assert_eq!(
            (models[0].dtype, models[1].dtype),
            (Dtype::Bf16, Dtype::F32)
        );
        assert_eq!(models[0].batching, file.batching);
        assert_eq!(models[1].batching.max_batch_size, 2);
    }
}
