//! The `siglip-server` command line: parse arguments, start logging, run a command.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use siglip::checkpoint::{parse_device, Checkpoint, LoadOptions};
use siglip::image_decode::{decode_rgb_with, DecodeLimits};
use siglip::tokenizer::TextLowercase;
use siglip::zero_shot::DEFAULT_TEMPLATE;
use siglip::Dtype;
use siglip_server::api::ClassifyResponse;
use siglip_server::bulk;
use siglip_server::config::{default_served_name, LogFormat, ServeArgs, ServeConfig};

#[derive(Parser)]
#[command(
    version,
    about = "SigLIP zero-shot image classification and embeddings"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OpenAI-compatible HTTP API.
    Serve(ServeArgs),
    /// Classify images once and print the /v1/classify response JSON.
    Classify(ClassifyArgs),
}

#[derive(Args)]
struct ModelArgs {
    /// Hugging Face hub id or local directory in the hub's layout.
    #[arg(long, env = "SIGLIP_MODEL")]
    model: String,
    /// Hub revision (branch, tag or commit).
    #[arg(long, env = "SIGLIP_REVISION")]
    revision: Option<String>,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, env = "SIGLIP_DEVICE", default_value = "cpu")]
    device: String,
    /// What the matrix products multiply in: `f32`, or `bf16` (CPU with AVX512-BF16).
    #[arg(long, env = "SIGLIP_DTYPE", default_value = "f32")]
    dtype: Dtype,
    /// Lowercase prompts: `auto` (the checkpoint's `do_lower_case`), `true` or `false`.
    #[arg(long, env = "SIGLIP_TEXT_LOWERCASE", default_value = "auto")]
    text_lowercase: TextLowercase,
    /// NaFlex models: patches per image (default: the checkpoint's `max_num_patches`).
    #[arg(long, env = "SIGLIP_MAX_NUM_PATCHES", value_parser = clap::value_parser!(u32).range(1..))]
    max_num_patches: Option<u32>,
}

impl ModelArgs {
    /// The checkpoint these arguments name, loaded.
    fn load(&self) -> anyhow::Result<Checkpoint> {
        let device = parse_device(&self.device)?;
        let files = siglip::files::resolve(&self.model, self.revision.as_deref())?;
        let options = LoadOptions {
            dtype: self.dtype,
            text_lowercase: self.text_lowercase,
            max_num_patches: self.max_num_patches.map(|n| n as usize),
        };
        Ok(Checkpoint::from_files_with(&files, &device, options)?)
    }
}

#[derive(Args)]
struct ClassifyArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Candidate labels, comma-separated.
    #[arg(long, value_delimiter = ',', required_unless_present = "label")]
    labels: Vec<String>,
    /// One candidate label, taken whole (commas and all); repeatable, after --labels.
    #[arg(long)]
    label: Vec<String>,
    /// Prompt template; `{}` becomes the label.
    #[arg(long, default_value = DEFAULT_TEMPLATE)]
    hypothesis_template: String,
    /// Keep only the k best labels per image.
    #[arg(long)]
    top_k: Option<usize>,
    /// Image files (JPEG, PNG, WebP, GIF, BMP), directories (walked for image files), or
    /// @LIST files of paths, one per line (@- reads them from stdin). A directory or a list
    /// makes a bulk run: one JSON line per image.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Write JSON Lines, one per image, to this file (a bulk run; stdout without it).
    #[arg(long)]
    output: Option<PathBuf>,
}

fn main() {
    let result = match Cli::parse().command {
        Command::Serve(args) => run_serve(args),
        Command::Classify(args) => {
            init_logging(LogFormat::Text, "warn");
            cpu_isa_from_env().and_then(|()| run_classify(args))
        }
    };
    if let Err(error) = result {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_level.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig::resolve(&args)?;
    init_logging(config.log_format, "info");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(siglip_server::server::run(config));
    // A model still loading on the blocking pool must not hold the exit back.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// `classify`'s instruction-set cap: `SIGLIP_CPU_ISA`, as `serve` reads it (without a flag).
fn cpu_isa_from_env() -> anyhow::Result<()> {
    if let Ok(text) = std::env::var("SIGLIP_CPU_ISA") {
        let request = text.parse().map_err(anyhow::Error::msg)?;
        siglip_kernels::isa::request(request).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// The same path as the server's: the library's checkpoint, prompts and scores.
fn run_classify(mut args: ClassifyArgs) -> anyhow::Result<()> {
    args.labels.append(&mut args.label);
    if args.output.is_some() || bulk::is_bulk(&args.images) {
        return run_bulk(args);
    }
    let checkpoint = args.model.load()?;
    siglip_kernels::memory::keep_freed_memory();
    let images = args
        .images
        .iter()
        .map(|path| {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            decode_rgb_with(&bytes, &DecodeLimits::default(), checkpoint.colour_key())
                .with_context(|| format!("decoding {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ranked =
        checkpoint.classify(&images, &args.labels, &args.hypothesis_template, args.top_k)?;
    let response = ClassifyResponse::new(
        &default_served_name(&args.model.model),
        &args.labels,
        ranked,
        checkpoint.tokenizer.max_length(),
    );
    println!("{}", serde_json::to_string_pretty(&response)?);
    Ok(())
}

/// A bulk run: JSON Lines through the server's batching, a progress bar on a terminal; exits
/// 130 after Ctrl-C with the lines written so far complete.
fn run_bulk(args: ClassifyArgs) -> anyhow::Result<()> {
    let images = bulk::expand_inputs(&args.images)?;
    let checkpoint = args.model.load()?;
    siglip_kernels::memory::keep_freed_memory();
    let output: Box<dyn std::io::Write + Send> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let job = bulk::BulkRun {
        images: &images,
        labels: &args.labels,
        template: &args.hypothesis_template,
        top_k: args.top_k,
        output,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (written, interrupted) = runtime.block_on(bulk::run(checkpoint, job))?;
    if interrupted {
        eprintln!("interrupted: {written} of {} images written", images.len());
        std::process::exit(130);
    }
    Ok(())
}
