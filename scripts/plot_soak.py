#!/usr/bin/env python3
"""Plots scripts/soak.sh's JSON lines: resident memory, p50/p99 latency and throughput over time,
and prints the checks the soak must pass (RSS flat within 5% after warm-up, p99 not drifting,
no answer but 200 and the bad requests' 400).

    python scripts/plot_soak.py benches/soak.jsonl benches/soak.png [--title T]
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("jsonl")
    parser.add_argument("png")
    parser.add_argument("--title", default="siglip-server soak")
    args = parser.parse_args()
    lines = [json.loads(l) for l in open(args.jsonl) if l.strip()]
    t = [l["t_s"] / 60 for l in lines]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    axes[0].plot(t, [l["rss_mib"] for l in lines], color="tab:blue")
    axes[0].set_ylabel("RSS (MiB)")
    axes[1].plot(t, [l["p50_ms"] for l in lines], label="p50")
    axes[1].plot(t, [l["p99_ms"] for l in lines], label="p99")
    axes[1].set_ylabel("latency (ms)")
    axes[1].legend()
    axes[2].plot(t, [l["images_per_s"] for l in lines], color="tab:green")
    axes[2].set_ylabel("images/s (200s)")
    axes[2].set_xlabel("minutes")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.png, dpi=100)

    # The checks, over everything after the first interval (warm-up).
    steady = lines[1:] if len(lines) > 2 else lines
    rss = [l["rss_mib"] for l in steady]
    p99 = [l["p99_ms"] for l in steady]
    answers = {}
    for l in lines:
        for status, n in l["answers"].items():
            answers[status] = answers.get(status, 0) + n
    half = len(p99) // 2
    print(json.dumps({
        "intervals": len(lines),
        "rss_mib_min_max": [min(rss), max(rss)],
        "rss_spread_pct": round(100 * (max(rss) - min(rss)) / min(rss), 2),
        "p99_ms_first_half_mean": round(sum(p99[:half]) / max(half, 1), 1),
        "p99_ms_second_half_mean": round(sum(p99[half:]) / max(len(p99) - half, 1), 1),
        "answers": answers,
    }))


if __name__ == "__main__":
    main()
