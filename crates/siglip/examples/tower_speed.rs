//! Times one SigLIP tower on a local checkpoint and prints one JSON line per run.
//!
//! The side-by-side comparison (`scripts/compare_runtimes.py`) calls this between the
//! Python runtimes' rounds, so every figure comes from the same machine state.
//!
//! ```text
//! cargo run --release --example tower_speed -- --model DIR [--tower image|text]
//!     [--batch 1] [--rounds 5] [--warmup 1] [--dtype f32|bf16] [--grid 16x16]
//! ```
//!
//! `--dtype` defaults to `SIGLIP_DTYPE`, else f32. On a NaFlex checkpoint the image tower
//! reads `--batch` images of `--grid` patches (rows x columns, default 16x16: 256 patches).

use std::time::Instant;

use anyhow::Context;
use candle_core::{Device, Tensor};
use siglip::checkpoint::Checkpoint;
use siglip::model::{Dtype, ModelKind};

struct Args {
    model: String,
    tower: String,
    batch: usize,
    rounds: usize,
    warmup: usize,
    dtype: Dtype,
    grid: (usize, usize),
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        model: String::new(),
        tower: "image".into(),
        batch: 1,
        rounds: 5,
        warmup: 1,
        dtype: parse_dtype(&std::env::var("SIGLIP_DTYPE").unwrap_or_else(|_| "f32".into()))?,
        grid: (16, 16),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => args.model = value,
            "--tower" => args.tower = value,
            "--batch" => args.batch = value.parse()?,
            "--rounds" => args.rounds = value.parse()?,
            "--warmup" => args.warmup = value.parse()?,
            "--dtype" => args.dtype = parse_dtype(&value)?,
            "--grid" => {
                let (rows, cols) = value.split_once('x').context("--grid is ROWSxCOLS")?;
                args.grid = (rows.parse()?, cols.parse()?);
            }
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    anyhow::ensure!(!args.model.is_empty(), "--model DIR is required");
    Ok(args)
}

/// `f32` or `bf16`, as the server's `--dtype` reads it.
fn parse_dtype(value: &str) -> anyhow::Result<Dtype> {
    value.parse::<Dtype>().map_err(anyhow::Error::msg)
}

/// Deterministic values in [-1, 1).
fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

/// A deterministic input batch for the chosen tower.
fn input(checkpoint: &Checkpoint, args: &Args) -> anyhow::Result<Tensor> {
    let batch = args.batch;
    match args.tower.as_str() {
        "image" if checkpoint.model.kind() == ModelKind::Naflex => {
            let (patch, _) = checkpoint.model.config().vision_config.patch_size.hw();
            let rows = batch * args.grid.0 * args.grid.1;
            let width = 3 * patch * patch;
            Ok(Tensor::from_vec(
                values(rows * width),
                (rows, width),
                &Device::Cpu,
            )?)
        }
        "image" => {
            let (h, w) = checkpoint.model.image_size();
            Ok(Tensor::from_vec(
                values(batch * 3 * h * w),
                (batch, 3, h, w),
                &Device::Cpu,
            )?)
        }
        "text" => {
            // Long labels: every prompt fills all 64 positions before padding matters.
            let prompts: Vec<String> = (0..batch)
                .map(|i| {
                    format!("a photo of label number {i} in a long descriptive caption ").repeat(4)
                })
                .collect();
            Ok(checkpoint.id_batch(&prompts)?)
        }
        other => anyhow::bail!("--tower must be image or text, not {other}"),
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let checkpoint = Checkpoint::load(&args.model, None, &Device::Cpu, args.dtype)?;
    siglip_kernels::memory::keep_freed_memory();
    let x = input(&checkpoint, &args)?;
    let naflex = checkpoint.model.kind() == ModelKind::Naflex;
    let grids = vec![args.grid; args.batch];
    let run = || -> anyhow::Result<()> {
        let out = match args.tower.as_str() {
            "image" if naflex => checkpoint.model.patch_features(&x, &grids)?,
            "image" => checkpoint.model.image_features(&x)?,
            _ => checkpoint.model.text_features(&x)?,
        };
        out.to_vec2::<f32>()?;
        Ok(())
    };
    for _ in 0..args.warmup {
        run()?;
    }
    let mut seconds = Vec::with_capacity(args.rounds);
    for _ in 0..args.rounds {
        let start = Instant::now();
        run()?;
        seconds.push(start.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    println!(
        "{{\"runtime\":\"siglip-server\",\"dtype\":\"{}\",\"cpu_isa\":\"{}\",\"tower\":\"{}\",\"batch\":{},\"median_s\":{:.5},\"items_per_s\":{:.4},\"rounds\":{:?}}}",
        args.dtype,
        siglip_kernels::isa::active(),
        args.tower,
        args.batch,
        median,
        args.batch as f64 / median,
        seconds.iter().map(|s| (s * 1e4).round() / 1e4).collect::<Vec<_>>()
    );
    Ok(())
}
