#!/usr/bin/env python3
"""Side-by-side CPU speed of the NaFlex image tower: siglip-server against transformers'
Siglip2Model, and against our own fixed-resolution tower at the same token count.

Usage, from the repository root, with the environment of scripts/compare_runtimes.py
(python3 -m venv .venv-compare && .venv-compare/bin/pip install -r scripts/requirements-compare.txt)
and the random full-size models of the fixture script:

    .venv-fixtures/bin/python scripts/make_fixtures.py --full naflex-base
    .venv-fixtures/bin/python scripts/make_fixtures.py --full base-256
    cargo build --release -p siglip --example tower_speed
    .venv-compare/bin/python scripts/bench_naflex.py --batch 1 8 --markdown

Rows, each timed --rounds times per pass, --passes passes with the order rotated by one per pass:

    transformers-naflex   Siglip2Model.get_image_features, torch fp32, `--grid` patches per image
                          (pixel_attention_mask all ones), T intra-op threads
    siglip-naflex         target/release/examples/tower_speed on the NaFlex model, the same grid
    siglip-fixres         tower_speed on the fixed-resolution model whose image has as many patches
                          (base-256: 16x16 = 256)
    siglip-naflex-bf16, siglip-fixres-bf16   the same with --dtype bf16 (CPUs with AVX512-BF16)

images/s is batch / median of all timed rounds; GFLOP/s counts 2*m*k*n of every matmul of the tower
(patch embedding, projections, QK^T and PV, MLPs, the pooling head), the same formula for both kinds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIG = os.environ.get("SIGLIP_BIGMODELS") or os.path.join(REPO, "target", "bigmodels")


def cpu_name():
    family, model = "?", "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu family"):
                family = line.split(":")[1].strip()
            if line.startswith("model name"):
                model = line.split(":")[1].strip()
    zen = {"25": "Zen 4", "26": "Zen 5"}.get(family, f"family {family}")
    return f"{model} ({zen})"


def tower_gflop(hidden, inter, layers, patch, tokens):
    n, d, f = tokens, hidden, inter
    flops = 2 * n * 3 * patch * patch * d
    flops += layers * (3 * 2 * n * d * d + 2 * 2 * n * n * d + 2 * n * d * d + 2 * 2 * n * d * f)
    flops += 2 * d * d + 2 * 2 * n * d * d + 4 * n * d + 2 * d * d + 4 * d * f
    return flops / 1e9


def transformers_rounds(model_dir, batch, grid, rounds, threads):
    from transformers import Siglip2Model

    torch.set_num_threads(threads)
    model = Siglip2Model.from_pretrained(model_dir, dtype=torch.float32).eval()
    vc = model.config.vision_config
    n = grid[0] * grid[1]
    g = torch.Generator().manual_seed(0)
    pixels = torch.rand((batch, n, 3 * vc.patch_size ** 2), generator=g) * 2 - 1
    mask = torch.ones((batch, n), dtype=torch.int32)
    shapes = torch.tensor([grid] * batch)
    out = []
    with torch.inference_mode():
        model.get_image_features(pixel_values=pixels, pixel_attention_mask=mask, spatial_shapes=shapes)
        for _ in range(rounds):
            t0 = time.perf_counter()
            model.get_image_features(pixel_values=pixels, pixel_attention_mask=mask, spatial_shapes=shapes)
            out.append(time.perf_counter() - t0)
    return out


def tower_speed_rounds(binary, model_dir, batch, grid, rounds, threads, dtype):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    cmd = [binary, "--model", model_dir, "--batch", str(batch), "--rounds", str(rounds), "--warmup", "1",
           "--dtype", dtype, "--grid", f"{grid[0]}x{grid[1]}"]
    line = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    result = json.loads(line)
    assert result["dtype"] == dtype, result
    return result["rounds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--naflex", default=os.path.join(BIG, "siglip2-naflex-base-random"))
    ap.add_argument("--fixres", default=os.path.join(BIG, "siglip-base-256-random"))
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "examples", "tower_speed"))
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--grid", default="16x16", help="NaFlex patches per image, ROWSxCOLS")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="also our bf16 rows")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    grid = tuple(int(x) for x in args.grid.split("x"))
    with open(os.path.join(args.naflex, "config.json")) as f:
        vc = json.load(f)["vision_config"]
    gflop = tower_gflop(vc["hidden_size"], vc["intermediate_size"], vc["num_hidden_layers"], vc["patch_size"],
                        grid[0] * grid[1])
    rows = {
        "transformers-naflex": lambda b: transformers_rounds(args.naflex, b, grid, args.rounds, args.threads),
        "siglip-naflex": lambda b: tower_speed_rounds(args.binary, args.naflex, b, grid, args.rounds,
                                                      args.threads, "f32"),
        "siglip-fixres": lambda b: tower_speed_rounds(args.binary, args.fixres, b, grid, args.rounds,
                                                      args.threads, "f32"),
    }
    if args.bf16:
        rows["siglip-naflex-bf16"] = lambda b: tower_speed_rounds(args.binary, args.naflex, b, grid, args.rounds,
                                                                  args.threads, "bf16")
        rows["siglip-fixres-bf16"] = lambda b: tower_speed_rounds(args.binary, args.fixres, b, grid, args.rounds,
                                                                  args.threads, "bf16")
    names = list(rows)
    results = []
    for batch in args.batch:
        times = {name: [] for name in names}
        for p in range(args.passes):
            order = names[p % len(names):] + names[:p % len(names)]
            for name in order:
                times[name] += rows[name](batch)
        for name in names:
            t = sorted(times[name])[len(times[name]) // 2]
            results.append(dict(runtime=name, batch=batch, median_s=t, images_per_s=batch / t,
                                gflop_per_s=gflop * batch / t))
    print(f"# {cpu_name()}, {args.threads} threads, torch {torch.__version__}, {platform.python_version()}, "
          f"{grid[0]}x{grid[1]} patches, {gflop:.1f} GFLOP/image")
    if args.markdown:
        print("| runtime | batch | images/s | GFLOP/s |\n| --- | --- | --- | --- |")
        for r in results:
            print(f"| {r['runtime']} | {r['batch']} | {r['images_per_s']:.2f} | {r['gflop_per_s']:.0f} |")
    else:
        for r in results:
            print(json.dumps(r))


if __name__ == "__main__":
    main()
