#!/usr/bin/env python3
"""Side-by-side CPU speed of the SigLIP image tower: siglip-server against transformers, ONNX Runtime
and OpenVINO, with the same weights and the same thread count everywhere.

Usage, from the repository root.  The Python side needs torch, transformers, Pillow, onnx,
onnxruntime and openvino, pinned in scripts/requirements-compare.txt.  It gets an environment of its
own so that .venv-fixtures holds exactly scripts/requirements-fixtures.txt (make_fixtures.py trains
tests/fixtures/spiece.model partly on text from that environment's site-packages):

    python3 -m venv .venv-compare && .venv-compare/bin/pip install -r scripts/requirements-compare.txt

The full-size models are those of `scripts/make_fixtures.py --full base|so400m`, by default under
$SIGLIP_BIGMODELS, else target/bigmodels in the repository; the ONNX exports (--work-dir) and the
~1 MP photo (--photo) go there too by default.

    # Tower comparison (default mode): images/s of get_image_features, pixels [B,3,S,S] -> pooled features
    .venv-compare/bin/python scripts/compare_runtimes.py --batch 1 8 --markdown
    .venv-compare/bin/python scripts/compare_runtimes.py --model target/bigmodels/siglip-so400m-384-random \\
        --runtimes transformers-fp32,siglip-server-fp32 --batch 1 --rounds 3 --passes 3 --out so400m.json

    # The same with every runtime capped at AVX2 + FMA (a CPU without AVX-512): OpenVINO and torch's
    # oneDNN by ONEDNN_MAX_CPU_ISA, torch by ATEN_CPU_CAPABILITY, MKL by MKL_ENABLE_INSTRUCTIONS, ours
    # by SIGLIP_CPU_ISA
    .venv-compare/bin/python scripts/compare_runtimes.py --isa avx2 --batch 1 8 --markdown \\
        --runtimes transformers-fp32,onnxruntime-fp32,openvino-fp32,siglip-server-fp32

    # Quick check of every code path on the tiny fixture model
    .venv-compare/bin/python scripts/compare_runtimes.py --model tests/fixtures/models/tiny-p16 \\
        --rounds 1 --passes 1 --markdown

    # End-to-end transformers classification as a user writes it (PIL open of a ~1 MP JPEG, processor
    # with 8 labels, model(**inputs), sigmoid), with and without precomputed text embeddings
    .venv-compare/bin/python scripts/compare_runtimes.py --pipeline --markdown

    # Peak RSS and seconds/image, one fresh process per runtime
    .venv-compare/bin/python scripts/compare_runtimes.py --memory --model target/bigmodels/siglip-so400m-384-random --markdown

Runtimes (--runtimes a,b,c selects a subset, in that order):

    transformers-fp32    SiglipModel.get_image_features, torch fp32
    transformers-bf16    the same model cast with model.to(torch.bfloat16), bf16 input
    onnxruntime-fp32     the vision tower exported with torch.onnx.export (dynamic batch axis), ORT CPU EP
    openvino-fp32        OpenVINO CPU reading that ONNX file, INFERENCE_PRECISION_HINT f32
    openvino-bf16        the same with INFERENCE_PRECISION_HINT bf16
    siglip-server-fp32   target/release/examples/tower_speed in a subprocess (--warmup 1 --rounds R)
    siglip-server-bf16   the same with SIGLIP_DTYPE=bf16 in its environment; tower_speed echoes the
                         precision it used as "dtype" and the table flags a missing or different one

Threads: torch.set_num_threads(T) (+ 1 inter-op thread); ORT intra_op_num_threads=T, inter_op 1,
sequential; OpenVINO INFERENCE_NUM_THREADS=T, PERFORMANCE_HINT=LATENCY; tower_speed gets
RAYON_NUM_THREADS=T (it uses all cores by default).  T = --threads (default 2).

Method (tower mode): for every batch size, every selected runtime is set up once (model load, ONNX
export cached under --work-dir, OpenVINO compiled for a static batch), then --passes passes each run
every runtime once, the order rotated by one per pass, so slow drift of the machine hits all of them.
A runtime's turn is --warmup untimed calls and --rounds timed calls; siglip-server's turn is one
tower_speed process (its own load, --warmup, --rounds) and its per-round times are used.  images/s is
batch / median over all timed rounds of all passes.  GFLOP/image counts 2*m*k*n for every matmul of
the image tower (patch embedding, QKV / output projections, QK^T and PV, MLPs, the attention-pooling
head); elementwise work (norms, GELU, softmax) is not counted.

Fidelity: the input is a deterministic batch of the fixture photos (tests/fixtures/images) through the
model's processor; each in-process runtime's features are compared with transformers fp32 on the
same input: cosine (min over the batch; the headline figure for bf16 runtimes) and max abs diff (the
headline for fp32 runtimes).  tower_speed prints no features, so siglip-server rows have none.

Progress goes to stderr; results go to stdout (JSON, or the table with --markdown) and, with --out,
to a JSON file with every round, the versions and the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import glob
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

# --isa avx2 caps every runtime at AVX2 + FMA, as a CPU without AVX-512 would run them: oneDNN (OpenVINO,
# torch's oneDNN ops), torch's own kernels, MKL, and siglip-server's kernels. Set before torch is imported.
ISA_CAPS = {
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "SIGLIP_CPU_ISA": "avx2"},
}
if "--isa" in sys.argv[:-1]:
    os.environ.update(ISA_CAPS.get(sys.argv[sys.argv.index("--isa") + 1], {}))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

import transformers  # noqa: E402
from transformers import AutoProcessor, SiglipModel  # noqa: E402

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(REPO, "tests", "fixtures", "images")
# Full-size models, ONNX exports and the bench photo: $SIGLIP_BIGMODELS, else target/bigmodels (the
# default output of scripts/make_fixtures.py --full).
BIGMODELS = os.environ.get("SIGLIP_BIGMODELS") or os.path.join(REPO, "target", "bigmodels")
DEFAULT_MODEL = os.path.join(BIGMODELS, "siglip-base-384-random")
DEFAULT_WORK_DIR = os.path.join(BIGMODELS, "onnx")
DEFAULT_PHOTO = os.path.join(BIGMODELS, "bench", "photo-1mp.jpg")
DEFAULT_TOWER_SPEED = os.path.join(REPO, "target", "release", "examples", "tower_speed")

RUNTIMES = [
    "transformers-fp32",
    "transformers-bf16",
    "onnxruntime-fp32",
    "openvino-fp32",
    "openvino-bf16",
    "siglip-server-fp32",
    "siglip-server-bf16",
]
MEMORY_DEFAULT = ["transformers-fp32", "transformers-bf16", "siglip-server-fp32", "siglip-server-bf16"]
BASELINE = "transformers-fp32"

# Photos used for the deterministic input batch (mirrored copies fill batches larger than the list).
PHOTOS = ["chelsea.png", "astronaut.jpg", "coffee.jpg", "horse.jpg", "rocket.jpg"]
LABELS = ["cat", "dog", "bird", "car", "a cup of coffee", "astronaut", "rocket", "horse"]
TEMPLATE = "This is a photo of {}."


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# ---------------------------------------------------------------------------------------------
# Machine, versions, FLOPs
# ---------------------------------------------------------------------------------------------


def versions():
    out = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
           "numpy": np.__version__, "pillow": Image.__version__}
    for mod in ("onnx", "onnxruntime", "openvino", "onnxscript"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # not installed
            out[mod] = None
    return out


def machine():
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    flags = sorted(x for x in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma") if x in have)
                    break
    except OSError:
        pass
    git = None
    try:
        git = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip() or None
    except Exception:
        pass
    family = None
    try:
        with open("/proc/cpuinfo") as f:
            family = next((line.split(":", 1)[1].strip() for line in f if line.startswith("cpu family")), None)
    except OSError:
        pass
    caps = {name: os.environ[name] for cap in ISA_CAPS.values() for name in cap if name in os.environ}
    return {"cpu": cpu, "cpu_family": family, "cpu_flags": flags, "isa_caps": caps, "cores": os.cpu_count(),
            "loadavg": os.getloadavg(), "git": git, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def image_tower_flops(vc):
    """2*m*k*n for every matmul of one image through the vision tower (per image)."""
    p, c, d, f, layers = vc.patch_size, vc.num_channels, vc.hidden_size, vc.intermediate_size, vc.num_hidden_layers
    n = (vc.image_size // p) ** 2  # patch tokens
    parts = {
        "patch_embedding": 2 * n * (c * p * p) * d,
        "qkv_proj": layers * 3 * 2 * n * d * d,
        "attn_qk": layers * 2 * n * n * d,
        "attn_pv": layers * 2 * n * n * d,
        "out_proj": layers * 2 * n * d * d,
        "mlp": layers * 2 * 2 * n * d * f,
    }
    if getattr(vc, "vision_use_head", True):
        # Attention pooling: one probe query against n keys/values, then a 1-token MLP.
        parts["head"] = (2 * d * d + 2 * 2 * n * d * d + 2 * n * d + 2 * n * d + 2 * d * d + 2 * 2 * d * f)
    parts["total"] = sum(parts.values())
    return parts


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def fixture_images(batch):
    images = []
    for i in range(batch):
        img = Image.open(os.path.join(IMAGES, PHOTOS[i % len(PHOTOS)])).convert("RGB")
        if (i // len(PHOTOS)) % 2 == 1:
            img = ImageOps.mirror(img)
        images.append(img)
    return images


def pixel_batch(processor, batch):
    """Deterministic [B,3,S,S] float32 pixels: fixture photos through the model's processor."""
    pixels = processor(images=fixture_images(batch), return_tensors="pt")["pixel_values"]
    return np.ascontiguousarray(pixels.numpy().astype(np.float32))


def ensure_photo(path):
    """A ~1 MP JPEG (1200x900, quality 90) made from a fixture photo, created if missing."""
    if not os.path.isfile(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        src = Image.open(os.path.join(IMAGES, "chelsea.png")).convert("RGB")
        src = ImageOps.fit(src, (4 * src.height // 3, src.height))  # centre crop to 4:3
        img = src.resize((1200, 900), Image.Resampling.LANCZOS)
        tmp = path + ".tmp"
        img.save(tmp, format="JPEG", quality=90)
        os.replace(tmp, path)
        log(f"wrote {path}")
    return path


# ---------------------------------------------------------------------------------------------
# transformers
# ---------------------------------------------------------------------------------------------


def load_transformers(model_dir, dtype=torch.float32):
    model = SiglipModel.from_pretrained(model_dir, dtype=dtype)
    return model.eval()


def pooled(out):
    """get_image_features / get_text_features return a tensor in transformers 4 and a
    BaseModelOutputWithPooling in transformers 5."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def transformers_runner(model, dtype):
    """bind(pixels) -> call() -> float32 features, for a model already in `dtype`."""

    def bind(pixels):
        x = torch.from_numpy(pixels).to(dtype)

        def call():
            with torch.inference_mode():
                return pooled(model.get_image_features(pixel_values=x)).float().numpy()

        return call

    return bind


# ---------------------------------------------------------------------------------------------
# ONNX export, ONNX Runtime, OpenVINO
# ---------------------------------------------------------------------------------------------


class ImageTower(torch.nn.Module):
    """The part of SiglipModel that is exported: pixels -> pooled image features."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return pooled(self.model.get_image_features(pixel_values=pixel_values))


def onnx_path_for(model_dir, work_dir):
    return os.path.join(work_dir, os.path.basename(os.path.normpath(model_dir)) + "-image.onnx")


def export_onnx(model, model_dir, work_dir, opset=18):
    """Export the fp32 image tower once; reuse it while the checkpoint file is unchanged."""
    path = onnx_path_for(model_dir, work_dir)
    weights = os.path.join(model_dir, "model.safetensors")
    st = os.stat(weights)
    source = {"model_dir": os.path.abspath(model_dir), "size": st.st_size, "mtime": st.st_mtime}
    meta_path = path + ".json"
    if os.path.isfile(path) and os.path.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("source") == source:
            log(f"onnx: cached {path}")
            return path, meta
    os.makedirs(work_dir, exist_ok=True)
    image_size = model.config.vision_config.image_size
    example = torch.zeros(2, 3, image_size, image_size)
    wrapper = ImageTower(model).eval()
    t0 = time.perf_counter()
    log(f"onnx: exporting the image tower of {model_dir} (opset {opset}) ...")
    # The exporter prints progress on stdout, which carries the results: send it to stderr.
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp, contextlib.redirect_stdout(sys.stderr):
        tmp_path = os.path.join(tmp, os.path.basename(path))
        try:
            batch = torch.export.Dim("batch", min=1, max=4096)
            torch.onnx.export(wrapper, (example,), tmp_path, input_names=["pixel_values"],
                              output_names=["image_embeds"], opset_version=opset, dynamo=True,
                              dynamic_shapes={"pixel_values": {0: batch}}, external_data=True)
            exporter = "dynamo"
        except Exception as e:  # fall back to the TorchScript exporter
            log(f"onnx: dynamo export failed ({type(e).__name__}: {str(e)[:300]}); trying dynamo=False")
            for leftover in glob.glob(os.path.join(tmp, "*")):
                os.remove(leftover)
            torch.onnx.export(wrapper, (example,), tmp_path, input_names=["pixel_values"],
                              output_names=["image_embeds"], opset_version=opset, dynamo=False,
                              dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}})
            exporter = "torchscript"
        for old in glob.glob(path + "*"):
            os.remove(old)
        for produced in os.listdir(tmp):  # the .onnx file and its external data, same names
            os.replace(os.path.join(tmp, produced), os.path.join(work_dir, produced))
    meta = {"source": source, "opset": opset, "exporter": exporter, "export_s": round(time.perf_counter() - t0, 1),
            "torch": torch.__version__, "transformers": transformers.__version__}
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)
    log(f"onnx: wrote {path} in {meta['export_s']} s ({exporter} exporter)")
    return path, meta


def onnxruntime_runner(onnx_path, threads):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(onnx_path, sess_options=opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def bind(pixels):
        def call():
            return session.run(None, {name: pixels})[0]

        return call

    return bind


def openvino_runner(onnx_path, threads, precision):
    """precision 'f32' or 'bf16'.  Compiled per batch size with a static input shape."""
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": precision}
    compiled_by_shape = {}
    info = {}

    def bind(pixels):
        shape = tuple(pixels.shape)
        if shape not in compiled_by_shape:
            model = core.read_model(onnx_path)
            model.reshape(list(shape))
            compiled = core.compile_model(model, "CPU", config)
            compiled_by_shape[shape] = compiled
            for key in ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT"):
                try:
                    value = compiled.get_property(key)
                    info[key] = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
                except Exception:
                    pass
        request = compiled_by_shape[shape].create_infer_request()

        def call():
            request.infer({0: pixels})
            return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)

        return call

    bind.info = info
    return bind


# ---------------------------------------------------------------------------------------------
# siglip-server (tower_speed subprocess)
# ---------------------------------------------------------------------------------------------


def tower_speed_env(threads, dtype):
    env = dict(os.environ)
    env["RAYON_NUM_THREADS"] = str(threads)
    env.pop("SIGLIP_DTYPE", None)
    if dtype == "bf16":
        env["SIGLIP_DTYPE"] = "bf16"
    return env


def tower_speed_cmd(binary, model_dir, batch, rounds, warmup):
    return [binary, "--model", model_dir, "--tower", "image", "--batch", str(batch), "--rounds", str(rounds),
            "--warmup", str(warmup)]


def run_tower_speed(binary, model_dir, batch, rounds, warmup, threads, dtype):
    """One tower_speed process; returns its JSON (plus the raw line), or {'error': ...}."""
    cmd = tower_speed_cmd(binary, model_dir, batch, rounds, warmup)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=tower_speed_env(threads, dtype))
    wall = time.perf_counter() - t0
    lines = [line for line in proc.stdout.splitlines() if line.strip().startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-600:]}", "wall_s": wall}
    out = json.loads(lines[-1])
    out["raw"] = lines[-1]
    out["wall_s"] = round(wall, 3)
    return out


# ---------------------------------------------------------------------------------------------
# Tower comparison
# ---------------------------------------------------------------------------------------------


def fidelity(features, reference):
    a = features.astype(np.float64)
    b = reference.astype(np.float64)
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return {"cos_min": float(cos.min()), "max_abs_diff": float(np.abs(a - b).max()),
            "ref_max_abs": float(np.abs(b).max())}


def setup_in_process(names, args, model_fp32):
    """name -> bind(pixels) for the in-process runtimes; plus export metadata."""
    binders, notes = {}, {}
    onnx_file = None
    if any(n.startswith(("onnxruntime", "openvino")) for n in names):
        onnx_file, meta = export_onnx(model_fp32, args.model, args.work_dir)
        notes["onnx"] = {"path": onnx_file, **meta}
    for name in names:
        t0 = time.perf_counter()
        if name == "transformers-fp32":
            binders[name] = transformers_runner(model_fp32, torch.float32)
        elif name == "transformers-bf16":
            binders[name] = transformers_runner(copy.deepcopy(model_fp32).to(torch.bfloat16), torch.bfloat16)
        elif name == "onnxruntime-fp32":
            binders[name] = onnxruntime_runner(onnx_file, args.threads)
        elif name == "openvino-fp32":
            binders[name] = openvino_runner(onnx_file, args.threads, "f32")
        elif name == "openvino-bf16":
            binders[name] = openvino_runner(onnx_file, args.threads, "bf16")
        else:
            continue
        log(f"setup {name}: {time.perf_counter() - t0:.1f} s")
    return binders, notes


def compare_towers(args):
    names = args.runtimes
    log(f"loading {args.model} with transformers (fp32)")
    model_fp32 = load_transformers(args.model)
    processor = AutoProcessor.from_pretrained(args.model)
    vc = model_fp32.config.vision_config
    flops = image_tower_flops(vc)
    gflop = flops["total"] / 1e9
    log(f"image tower: {vc.num_hidden_layers} layers, d={vc.hidden_size}, mlp={vc.intermediate_size}, "
        f"{(vc.image_size // vc.patch_size) ** 2} patches -> {gflop:.4g} GFLOP per image")

    in_process = [n for n in names if not n.startswith("siglip-server")]
    external = [n for n in names if n.startswith("siglip-server")]
    if external and not os.path.isfile(args.tower_speed):
        sys.exit(f"{args.tower_speed} is missing: cargo build --release --example tower_speed "
                 f"(or leave siglip-server-* out of --runtimes)")
    binders, notes = setup_in_process(in_process, args, model_fp32)

    results = {"mode": "tower", "model": os.path.abspath(args.model), "threads": args.threads,
               "rounds_per_turn": args.rounds, "passes": args.passes, "warmup_per_turn": args.warmup,
               "gflop_per_image": gflop, "flops_per_image": flops,
               "attn_implementation": getattr(model_fp32.config, "_attn_implementation", None),
               "versions": versions(), "machine": machine(), "notes": notes, "rows": []}
    reference_binder = transformers_runner(model_fp32, torch.float32)

    for batch in args.batch:
        pixels = pixel_batch(processor, batch)
        reference = reference_binder(pixels)()
        calls, rows = {}, {}
        for name in names:
            rows[name] = {"runtime": name, "batch": batch, "seconds": [], "fidelity": None, "turns": []}
        for name in in_process:
            calls[name] = binders[name](pixels)
            t0 = time.perf_counter()
            features = calls[name]()  # first call: compiles / allocates, not timed
            rows[name]["first_call_s"] = round(time.perf_counter() - t0, 4)
            rows[name]["fidelity"] = fidelity(features, reference)
            info = getattr(binders[name], "info", None)
            if info:
                rows[name]["compiled"] = dict(info)
            log(f"batch {batch} {name}: first call {rows[name]['first_call_s']} s, "
                f"cos_min {rows[name]['fidelity']['cos_min']:.6f}, max|diff| {rows[name]['fidelity']['max_abs_diff']:.3g}")

        for p in range(args.passes):
            k = p % len(names)
            order = names[k:] + names[:k]
            for name in order:
                row = rows[name]
                if name in calls:
                    for _ in range(args.warmup):
                        calls[name]()
                    secs = []
                    for _ in range(args.rounds):
                        t0 = time.perf_counter()
                        calls[name]()
                        secs.append(time.perf_counter() - t0)
                    row["seconds"].extend(secs)
                    row["turns"].append({"pass": p})
                else:
                    dtype = "bf16" if name.endswith("bf16") else "fp32"
                    out = run_tower_speed(args.tower_speed, args.model, batch, args.rounds, max(1, args.warmup),
                                          args.threads, dtype)
                    row["turns"].append({"pass": p, **out})
                    if "error" in out:
                        log(f"batch {batch} pass {p} {name}: ERROR {out['error']}")
                        continue
                    secs = out.get("rounds") or []
                    if not secs or min(secs) <= 0:  # tower_speed rounds to 0.1 ms: tiny models
                        secs = [out["median_s"]] * max(1, len(secs))
                    row["seconds"].extend(secs)
                    row["dtype_reported"] = out.get("dtype")
                    row["cpu_isa_reported"] = out.get("cpu_isa")
                secs = row["seconds"][-args.rounds:] if row["seconds"] else []
                log(f"batch {batch} pass {p} {name}: " + " ".join(f"{s:.4g}" for s in secs) + " s")

        base = None
        for name in names:
            row = rows[name]
            med = median(row["seconds"])
            row["median_s"] = med
            row["images_per_s"] = batch / med if row["seconds"] else None
            row["gflop_per_s"] = row["images_per_s"] * gflop if row["images_per_s"] else None
            if name == BASELINE:
                base = row["images_per_s"]
        for name in names:
            row = rows[name]
            row["vs_" + BASELINE] = row["images_per_s"] / base if base and row["images_per_s"] else None
            results["rows"].append(row)
    results["machine"]["loadavg_end"] = os.getloadavg()
    return results


def fidelity_cell(row):
    fid = row.get("fidelity")
    if not fid:
        return "n/a"
    if "bf16" in row["runtime"]:
        return f"cos {fid['cos_min']:.5f}"
    return f"max\\|diff\\| {fid['max_abs_diff']:.2g}"


def fmt(x, spec):
    return format(x, spec) if isinstance(x, (int, float)) and not math.isnan(x) else "n/a"


def tower_markdown(res):
    lines = [f"Model {res['model']}, {res['threads']} threads, image tower {res['gflop_per_image']:.4g} GFLOP/image; "
             f"{res['passes']} passes x {res['rounds_per_turn']} rounds per runtime; "
             f"{res['machine']['cpu']} (cpu family {res['machine'].get('cpu_family')}); "
             f"ISA caps {res['machine'].get('isa_caps') or 'none'}; load average {res['machine']['loadavg'][0]:.2f} -> "
             f"{res['machine']['loadavg_end'][0]:.2f}", "",
             f"| runtime | batch | images/s | vs {BASELINE} | GFLOP/s | fidelity vs transformers-fp32 |",
             "|---|---:|---:|---:|---:|---|"]
    for row in res["rows"]:
        name = row["runtime"]
        if name.startswith("siglip-server"):
            errs = [t for t in row["turns"] if "error" in t]
            if errs:
                name += f" ({len(errs)} failed turns)"
            reported = row.get("dtype_reported")
            wanted = "bf16" if name.startswith("siglip-server-bf16") else "f32"
            if reported is None:
                name += " (dtype not reported)"
            elif reported.replace("fp32", "f32") != wanted:
                name += f" (ran as {reported}!)"
            if row.get("cpu_isa_reported"):
                name += f" [{row['cpu_isa_reported']}]"
        lines.append(f"| {name} | {row['batch']} | {fmt(row['images_per_s'], '.3f')} | "
                     f"{fmt(row['vs_' + BASELINE], '.2f')}x | {fmt(row['gflop_per_s'], '.1f')} | {fidelity_cell(row)} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Pipeline mode: transformers end to end, as a user writes it
# ---------------------------------------------------------------------------------------------


def compare_pipeline(args):
    photo = ensure_photo(args.photo)
    with Image.open(photo) as im:
        log(f"photo: {photo} ({im.size[0]}x{im.size[1]}, {os.path.getsize(photo)} bytes)")
    model = load_transformers(args.model)
    processor = AutoProcessor.from_pretrained(args.model)
    texts = [TEMPLATE.format(label) for label in LABELS]

    def full():
        image = Image.open(photo)
        inputs = processor(images=image, text=texts, padding="max_length", return_tensors="pt")
        with torch.inference_mode():
            out = model(**inputs)
        return torch.sigmoid(out.logits_per_image)

    with torch.inference_mode():
        text_inputs = processor(text=texts, padding="max_length", return_tensors="pt")
        text_embeds = pooled(model.get_text_features(**text_inputs))
        text_embeds = text_embeds / text_embeds.norm(p=2, dim=-1, keepdim=True)
        scale, bias = model.logit_scale.exp(), model.logit_bias

    def cached_text():
        image = Image.open(photo)
        inputs = processor(images=image, return_tensors="pt")
        with torch.inference_mode():
            image_embeds = pooled(model.get_image_features(**inputs))
            image_embeds = image_embeds / image_embeds.norm(p=2, dim=-1, keepdim=True)
            return torch.sigmoid(image_embeds @ text_embeds.t() * scale + bias)

    def preprocess_only():
        image = Image.open(photo)
        return processor(images=image, return_tensors="pt")["pixel_values"]

    variants = {"transformers-fp32 full (text tower every call)": full,
                "transformers-fp32 cached text embeddings": cached_text,
                "PIL open + processor(images) only": preprocess_only}
    diff = float((full() - cached_text()).abs().max())
    log(f"probabilities: full vs cached-text max |diff| {diff:.2e}")
    rows = {name: [] for name in variants}
    names = list(variants)
    for p in range(args.passes):
        k = p % len(names)
        for name in names[k:] + names[:k]:
            for _ in range(args.warmup):
                variants[name]()
            secs = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                variants[name]()
                secs.append(time.perf_counter() - t0)
            rows[name].extend(secs)
            log(f"pass {p} {name}: " + " ".join(f"{s:.4g}" for s in secs) + " s")
    out = {"mode": "pipeline", "model": os.path.abspath(args.model), "photo": photo, "labels": texts,
           "threads": args.threads, "probs_full_vs_cached_max_abs_diff": diff, "versions": versions(),
           "machine": machine(), "rows": []}
    for name in names:
        med = median(rows[name])
        out["rows"].append({"variant": name, "seconds": rows[name], "median_s": med, "requests_per_s": 1 / med})
    out["machine"]["loadavg_end"] = os.getloadavg()
    return out


def pipeline_markdown(res):
    lines = [f"Model {res['model']}, photo {res['photo']}, {len(res['labels'])} labels, {res['threads']} threads; "
             f"full vs cached probabilities max |diff| {res['probs_full_vs_cached_max_abs_diff']:.1e}", "",
             "| variant | median s | requests/s |", "|---|---:|---:|"]
    for row in res["rows"]:
        lines.append(f"| {row['variant']} | {row['median_s']:.4f} | {row['requests_per_s']:.3f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Memory mode: one fresh process per runtime, peak RSS from wait4
# ---------------------------------------------------------------------------------------------


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def memory_child(args):
    """Runs in the fresh process: load one runtime, one image, 1 warmup + 3 timed calls; prints JSON."""
    name = args.memory_child
    after_import = rss_mb()
    t0 = time.perf_counter()
    processor = AutoProcessor.from_pretrained(args.model)
    pixels = pixel_batch(processor, 1)
    if name == "transformers-fp32":
        call = transformers_runner(load_transformers(args.model), torch.float32)(pixels)
    elif name == "transformers-bf16":
        call = transformers_runner(load_transformers(args.model, torch.bfloat16), torch.bfloat16)(pixels)
    else:
        onnx_file = onnx_path_for(args.model, args.work_dir)
        if name == "onnxruntime-fp32":
            call = onnxruntime_runner(onnx_file, args.threads)(pixels)
        else:
            call = openvino_runner(onnx_file, args.threads, "bf16" if name.endswith("bf16") else "f32")(pixels)
    load_s = time.perf_counter() - t0
    call()
    secs = []
    for _ in range(3):
        t0 = time.perf_counter()
        call()
        secs.append(time.perf_counter() - t0)
    print(json.dumps({"runtime": name, "load_s": load_s, "seconds": secs, "rss_after_import_mb": after_import,
                      "rss_end_mb": rss_mb(),
                      "maxrss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
    sys.stderr.flush()
    os._exit(0)  # interpreter teardown of torch adds ~100 MiB to the peak RSS: not part of the measurement


# A small launcher between this (large) process and the measured one: Linux carries the RSS high-water
# mark of the forking process over exec into the child's ru_maxrss (with vfork it is this process's
# whole RSS, torch included), so the measured process is started by a fresh, small interpreter.
LAUNCHER = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}, f)
"""


def spawn_measured(cmd, env=None):
    """Run cmd; return (exit code, stdout, stderr, peak RSS in MiB of that process alone, wall seconds).
    The launcher's own RSS (~10 MiB) is a floor of the figure."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "rusage.json")
        proc = subprocess.run([sys.executable, "-I", "-S", "-c", LAUNCHER, report, *cmd], capture_output=True,
                              text=True, env=env)
        if not os.path.isfile(report):
            return proc.returncode, proc.stdout, proc.stderr, float("nan"), time.perf_counter() - t0
        with open(report) as f:
            usage = json.load(f)
    return usage["exit"], proc.stdout, proc.stderr, usage["maxrss_kb"] / 1024, time.perf_counter() - t0


def compare_memory(args):
    names = args.runtimes
    if any(n.startswith(("onnxruntime", "openvino")) for n in names):
        export_onnx(load_transformers(args.model), args.model, args.work_dir)  # before the measured children
    rows = []
    for name in names:
        log(f"memory: {name} ...")
        if name.startswith("siglip-server"):
            if not os.path.isfile(args.tower_speed):
                rows.append({"runtime": name, "error": f"{args.tower_speed} missing"})
                continue
            cmd = tower_speed_cmd(args.tower_speed, args.model, 1, 3, 1)
            env = tower_speed_env(args.threads, "bf16" if name.endswith("bf16") else "fp32")
        else:
            cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", name, "--model", args.model,
                   "--threads", str(args.threads), "--work-dir", args.work_dir]
            env = None
        code, stdout, stderr, peak_mb, wall = spawn_measured(cmd, env)
        lines = [line for line in stdout.splitlines() if line.strip().startswith("{")]
        if code != 0 or not lines:
            rows.append({"runtime": name, "error": f"exit {code}: {(stderr or stdout).strip()[-600:]}"})
            log(f"memory: {name} failed: {rows[-1]['error']}")
            continue
        out = json.loads(lines[-1])
        secs = out.get("seconds") or out.get("rounds") or [out.get("median_s")]
        row = {"runtime": name, "peak_rss_mb": peak_mb, "s_per_image": median(secs), "seconds": secs,
               "process_wall_s": wall, "raw": lines[-1]}
        for key in ("load_s", "rss_after_import_mb", "dtype"):
            if key in out:
                row[key] = out[key]
        rows.append(row)
        log(f"memory: {name}: peak RSS {peak_mb:.0f} MiB, {row['s_per_image']:.3f} s/image")
    return {"mode": "memory", "model": os.path.abspath(args.model), "threads": args.threads, "rows": rows,
            "versions": versions(), "machine": machine()}


def memory_markdown(res):
    lines = [f"Model {res['model']}, {res['threads']} threads, batch 1, one fresh process per runtime "
             "(peak RSS = ru_maxrss of that process)", "",
             "| runtime | peak RSS MiB | RSS after imports MiB | s/image (median of 3) |", "|---|---:|---:|---:|"]
    for row in res["rows"]:
        if "error" in row:
            lines.append(f"| {row['runtime']} | failed | | |")
            continue
        lines.append(f"| {row['runtime']} | {row['peak_rss_mb']:.0f} | {fmt(row.get('rss_after_import_mb'), '.0f')} | "
                     f"{row['s_per_image']:.4f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL, help="checkpoint directory (Hugging Face layout)")
    ap.add_argument("--batch", type=int, nargs="+", default=[1], help="batch sizes, e.g. --batch 1 8")
    ap.add_argument("--rounds", type=int, default=3, help="timed calls per runtime per pass")
    ap.add_argument("--passes", type=int, default=3, help="passes over all runtimes, order rotated each pass")
    ap.add_argument("--warmup", type=int, default=1, help="untimed calls at the start of every turn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--isa", choices=["auto", *ISA_CAPS], default="auto",
                    help="cap every runtime's instruction set (read before torch is imported)")
    ap.add_argument("--runtimes", help="comma-separated subset of: " + ",".join(RUNTIMES))
    ap.add_argument("--out", help="write the full results (every round) as JSON here")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table instead of JSON")
    ap.add_argument("--pipeline", action="store_true", help="transformers end-to-end classification timing")
    ap.add_argument("--memory", action="store_true", help="peak RSS and s/image, one process per runtime")
    ap.add_argument("--photo", default=DEFAULT_PHOTO, help="~1 MP JPEG for --pipeline (created if missing)")
    ap.add_argument("--work-dir", default=DEFAULT_WORK_DIR, help="where the exported ONNX files are cached")
    ap.add_argument("--tower-speed", default=DEFAULT_TOWER_SPEED, help="path of the tower_speed example binary")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    if args.memory_child:
        memory_child(args)
        return

    if args.runtimes:
        args.runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
        unknown = [r for r in args.runtimes if r not in RUNTIMES]
        if unknown:
            ap.error(f"unknown runtimes {unknown}; choose from {RUNTIMES}")
    else:
        args.runtimes = list(MEMORY_DEFAULT if args.memory else RUNTIMES)

    if args.pipeline:
        res, table = compare_pipeline(args), pipeline_markdown
    elif args.memory:
        res, table = compare_memory(args), memory_markdown
    else:
        res, table = compare_towers(args), tower_markdown
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
        log(f"wrote {args.out}")
    print(table(res) if args.markdown else json.dumps(res, indent=1), flush=True)


if __name__ == "__main__":
    main()
