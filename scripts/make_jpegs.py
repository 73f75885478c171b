"""Deterministic JPEG test set for the libjpeg-turbo-exact decoder, with Pillow's decode of each.

    .venv-fixtures/bin/python scripts/make_jpegs.py --images tests/fixtures/jpeg --bench target/jpeg-bench

Writes, with paths relative to the working directory unless given otherwise:

- `<images>/<name>.jpg`: small JPEGs covering every coding feature (see `CASES` below);
- `<reference>/<name>.jpg.png`: Pillow's decode of each file that Pillow decodes, as the
  zero-shot pipeline loads it (`ImageOps.exif_transpose(Image.open(f)).convert("RGB")`), the
  convention of tests/fixtures/reference/decoded/;
- `<images>/manifest.json`: for every file, what it exercises and what Pillow did with it
  (`"ok"` with the decoded size, or the exception Pillow raised: the Rust decoder must refuse
  exactly those);
- `<bench>/photo_1mp_q90.jpg`: a ~1 MP quality-90 4:2:0 photo for timing (not for committing),
  with its reference PNG beside it.

Needs Pillow 13.0.0, numpy, scikit-image (for `skimage.data` photos), Debian's
`libjpeg-turbo-progs` (`cjpeg`, `jpegtran`) and, for the YCCK file, a C compiler with the libjpeg
headers (`libjpeg62-turbo-dev`): `scripts/ycck_encode.c` is compiled into a temporary directory.
Running it twice gives byte-identical files.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import PIL
import skimage.data
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------
# Photo-like sources


def photo(name: str, width: int, height: int, *, box=None) -> Image.Image:
    """A `skimage.data` photo, optionally cropped to `box` (fractions), resized with LANCZOS."""
    img = Image.fromarray(getattr(skimage.data, name)())
    if img.mode != "RGB":
        img = img.convert("RGB")
    if box is not None:
        w, h = img.size
        img = img.crop((int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)))
    return img.resize((width, height), Image.LANCZOS)


def gradient_noise(width: int, height: int, seed: int) -> Image.Image:
    """Smooth colour gradients plus a little Gaussian noise (for the tiny sizes)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    fx, fy = x / max(width - 1, 1), y / max(height - 1, 1)
    rgb = np.stack(
        [
            40 + 180 * fx + 20 * np.sin(7 * fy),
            60 + 150 * fy * (1 - 0.5 * fx),
            200 - 160 * fx * fy,
        ],
        axis=-1,
    )
    rgb += rng.normal(0, 12, rgb.shape)
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")


def mosaic() -> Image.Image:
    """1152x896 (1.03 MP) of photos at their native resolution: denser detail than an upscale."""
    canvas = Image.new("RGB", (1152, 896))
    canvas.paste(Image.fromarray(skimage.data.astronaut()), (0, 0))  # 512x512
    canvas.paste(Image.fromarray(skimage.data.coffee()).crop((0, 0, 640, 400)).resize((640, 400)), (512, 0))
    canvas.paste(Image.fromarray(skimage.data.rocket()).crop((0, 0, 640, 384)), (0, 512))
    canvas.paste(Image.fromarray(skimage.data.chelsea()), (640, 400))  # 451x300
    canvas.paste(Image.fromarray(skimage.data.immunohistochemistry()).crop((0, 0, 512, 196)), (640, 700))
    return canvas


def cmyk_photo(width: int, height: int) -> Image.Image:
    """A CMYK image with real black (Pillow's RGB->CMYK conversion always gives K = 0)."""
    rgb = np.asarray(photo("coffee", width, height), dtype=np.float64) / 255.0
    k = 1.0 - rgb.max(axis=-1)
    k *= 0.8  # leave some of the darkness in C, M, Y
    denom = np.maximum(1.0 - k, 1e-6)[..., None]
    cmy = (1.0 - rgb - k[..., None]) / denom
    cmyk = np.concatenate([cmy, k[..., None]], axis=-1)
    return Image.fromarray(np.clip(np.rint(cmyk * 255), 0, 255).astype(np.uint8), "CMYK")


# --------------------------------------------------------------------------------------------
# Encoders


def pil_jpeg(img: Image.Image, **kw) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", **kw)
    return out.getvalue()


def ppm(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PPM")
    return out.getvalue()


def cjpeg(img: Image.Image, *args: str) -> bytes:
    """Debian's libjpeg-turbo `cjpeg` on the image as PPM/PGM (stdin -> stdout)."""
    return subprocess.run(
        ["cjpeg", *args], input=ppm(img), check=True, capture_output=True
    ).stdout


def jpegtran(data: bytes, *args: str) -> bytes:
    return subprocess.run(
        ["jpegtran", *args], input=data, check=True, capture_output=True
    ).stdout


class Ycck:
    """Compiles scripts/ycck_encode.c once (libjpeg writes YCCK; Pillow and cjpeg cannot)."""

    def __init__(self, tmp: Path):
        self.exe = tmp / "ycck_encode"
        subprocess.run(
            ["cc", "-O2", "-o", str(self.exe), str(HERE / "ycck_encode.c"), "-ljpeg"],
            check=True,
        )

    def encode(self, img: Image.Image, quality: int) -> bytes:
        # Pillow's CMYK values are the "normal" convention; libjpeg's CMYK is Adobe's (inverted),
        # which is what Pillow's decoder assumes ("CMYK;I"), so invert on the way in.
        raw = (255 - np.asarray(img, dtype=np.uint8)).tobytes()
        w, h = img.size
        return subprocess.run(
            [str(self.exe), str(w), str(h), str(quality)],
            input=raw,
            check=True,
            capture_output=True,
        ).stdout


def lossless_jpeg(pixels: np.ndarray, precision: int) -> bytes:
    """A minimal lossless JPEG (SOF3, predictor 1, one Huffman table), which neither Pillow nor
    Debian's cjpeg 2.1 writes. `pixels`: HxWxC (C = 1 or 3) integers below 2**precision."""
    h, w, c = pixels.shape
    # Canonical Huffman table for the 17 difference categories: 14 codes of 4 bits, 3 of 5.
    counts = [0, 0, 0, 14, 3] + [0] * 11
    codes, code, sym = {}, 0, 0
    for length, n in enumerate(counts, start=1):
        for _ in range(n):
            codes[sym] = (code, length)
            code, sym = code + 1, sym + 1
        code <<= 1
    bits: list[int] = []

    def put(value: int, length: int) -> None:
        bits.extend((value >> (length - 1 - i)) & 1 for i in range(length))

    x = pixels.astype(np.int64)
    for row in range(h):
        for col in range(w):
            for comp in range(c):
                if row == 0 and col == 0:
                    pred = 1 << (precision - 1)
                elif row == 0 or col > 0:
                    pred = x[row, col - 1, comp] if col > 0 else x[row - 1, col, comp]
                else:
                    pred = x[row - 1, col, comp]
                diff = int(x[row, col, comp] - pred)
                cat = abs(diff).bit_length()
                put(*codes[cat])
                if cat:
                    put(diff if diff > 0 else diff + (1 << cat) - 1, cat)
    bits.extend([1] * (-len(bits) % 8))
    entropy = bytearray()
    for i in range(0, len(bits), 8):
        byte = int("".join(map(str, bits[i : i + 8])), 2)
        entropy.append(byte)
        if byte == 0xFF:
            entropy.append(0)

    def segment(marker: int, payload: bytes) -> bytes:
        return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload

    sof = bytes([precision]) + h.to_bytes(2, "big") + w.to_bytes(2, "big") + bytes([c])
    sof += b"".join(bytes([i + 1, 0x11, 0]) for i in range(c))
    dht = bytes([0x00]) + bytes(counts) + bytes(range(17))
    sos = bytes([c]) + b"".join(bytes([i + 1, 0x00]) for i in range(c)) + bytes([1, 0, 0])
    return b"\xff\xd8" + segment(0xC3, sof) + segment(0xC4, dht) + segment(0xDA, sos) + bytes(entropy) + b"\xff\xd9"


def with_exif_orientation(img: Image.Image, orientation: int, **kw) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return pil_jpeg(img, exif=exif.tobytes(), **kw)


# --------------------------------------------------------------------------------------------
# Byte-level edits (for the files Pillow must refuse, or decode despite damage)


def segments(data: bytes):
    """Yields (offset, marker, length incl. marker) of the header segments up to SOS."""
    pos = 2
    while pos + 4 <= len(data):
        assert data[pos] == 0xFF, pos
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big") + 2
        yield pos, marker, length
        if marker == 0xDA:
            return
        pos += length


def find_segment(data: bytes, markers) -> tuple[int, int, int]:
    for pos, marker, length in segments(data):
        if marker in markers:
            return pos, marker, length
    raise ValueError(f"no marker {markers}")


def scan_start(data: bytes) -> int:
    pos, _, length = find_segment(data, {0xDA})
    return pos + length


SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def patch_sof(data: bytes, *, width=None, height=None, precision=None, marker=None) -> bytes:
    b = bytearray(data)
    pos, _, _ = find_segment(data, SOF_MARKERS)
    if marker is not None:
        b[pos + 1] = marker
    if precision is not None:
        b[pos + 4] = precision
    if height is not None:
        b[pos + 5 : pos + 7] = height.to_bytes(2, "big")
    if width is not None:
        b[pos + 7 : pos + 9] = width.to_bytes(2, "big")
    return bytes(b)


def drop_app14(data: bytes) -> bytes:
    pos, _, length = find_segment(data, {0xEE})
    return data[:pos] + data[pos + length :]


def corrupt_scan(data: bytes, seed: int, count: int) -> bytes:
    """Overwrites `count` entropy-coded bytes in the middle of the first scan (never with 0xFF,
    so no marker is made or broken): libjpeg warns (bad Huffman code) and carries on."""
    rng = np.random.default_rng(seed)
    b = bytearray(data)
    start = scan_start(data)
    end = len(data) - 2
    lo, hi = start + (end - start) // 3, start + 2 * (end - start) // 3
    for pos in sorted(rng.choice(np.arange(lo, hi), size=count, replace=False)):
        if b[pos] == 0xFF or b[pos - 1] == 0xFF:
            continue
        b[pos] = int(rng.integers(0, 0xFF))
    return bytes(b)


# --------------------------------------------------------------------------------------------
# The set


def astro_lossless_source() -> Image.Image:
    return photo("astronaut", 48, 40, box=(0.15, 0.05, 0.85, 0.65))


def cases(ycck: Ycck) -> list[tuple[str, str, bytes]]:
    """(file name, what it exercises, bytes). Sizes are small: the whole set, references
    included, stays under ~400 KB."""
    astro = lambda w, h: photo("astronaut", w, h, box=(0.15, 0.05, 0.85, 0.65))  # noqa: E731
    chelsea = lambda w, h: photo("chelsea", w, h)  # noqa: E731
    coffee = lambda w, h: photo("coffee", w, h)  # noqa: E731
    rocket = lambda w, h: photo("rocket", w, h, box=(0.2, 0.1, 0.8, 0.9))  # noqa: E731

    baseline = pil_jpeg(chelsea(64, 48), quality=90)
    progressive = pil_jpeg(coffee(72, 48), quality=90, progressive=True)
    out: list[tuple[str, str, bytes]] = [
        # Chroma subsampling (every upsampler libjpeg has: h2v1/h1v2/h2v2 fancy, generic int).
        ("s444_64x48.jpg", "4:4:4 (Pillow, q90)", pil_jpeg(astro(64, 48), quality=90, subsampling=0)),
        ("s422_65x49.jpg", "4:2:2, odd size (h2v1 fancy upsampling, edge columns)", pil_jpeg(astro(65, 49), quality=90, subsampling=1)),
        ("s420_64x48.jpg", "4:2:0 baseline (Pillow, q90)", baseline),
        ("s420_67x45.jpg", "4:2:0, odd size (h2v2 fancy upsampling, edge rows and columns)", pil_jpeg(rocket(67, 45), quality=90, subsampling=2)),
        ("s411_71x37.jpg", "4:1:1 (cjpeg -sample 4x1: generic integer upsampling)", cjpeg(coffee(71, 37), "-quality", "90", "-sample", "4x1")),
        ("s440_47x61.jpg", "4:4:0 (cjpeg -sample 1x2: h1v2 fancy upsampling)", cjpeg(chelsea(47, 61), "-quality", "90", "-sample", "1x2")),
        ("s410_70x42.jpg", "4:1:0 (cjpeg -sample 4x2)", cjpeg(astro(70, 42), "-quality", "90", "-sample", "4x2")),
        ("mixed_2x2_2x1_1x2_53x45.jpg", "per-component sampling 2x2 / 2x1 / 1x2 (different upsamplers per component)", cjpeg(rocket(53, 45), "-quality", "90", "-sample", "2x2,2x1,1x2")),
        # Coding modes.
        ("progressive_420_72x48.jpg", "progressive 4:2:0 (Pillow)", progressive),
        ("progressive_444_cjpeg_61x43.jpg", "progressive 4:4:4 (cjpeg)", cjpeg(astro(61, 43), "-quality", "90", "-sample", "1x1", "-progressive")),
        ("arith_420_64x48.jpg", "arithmetic-coded sequential (SOF9, cjpeg -arithmetic)", cjpeg(chelsea(64, 48), "-quality", "90", "-arithmetic")),
        ("arith_progressive_422_59x41.jpg", "arithmetic-coded progressive (SOF10)", cjpeg(coffee(59, 41), "-quality", "90", "-sample", "2x1", "-arithmetic", "-progressive")),
        ("restart_rows_75x53.jpg", "restart markers every MCU row (cjpeg -restart 1)", cjpeg(rocket(75, 53), "-quality", "90", "-restart", "1")),
        ("restart_blocks_422_57x39.jpg", "restart markers every 3 MCUs, 4:2:2 (cjpeg -restart 3B)", cjpeg(astro(57, 39), "-quality", "90", "-sample", "2x1", "-restart", "3B")),
        ("restart_progressive_66x46.jpg", "progressive with restart markers (jpegtran -progressive -restart 2B)", jpegtran(pil_jpeg(coffee(66, 46), quality=90), "-progressive", "-restart", "2B")),
        ("optimized_huffman_60x40.jpg", "optimised Huffman tables (Pillow optimize=True)", pil_jpeg(chelsea(60, 40), quality=90, optimize=True)),
        ("q10_420_64x48.jpg", "quality 10: large coefficients, IDCT range limiting", pil_jpeg(rocket(64, 48), quality=10)),
        ("q100_444_48x40.jpg", "quality 100, 4:4:4", pil_jpeg(astro(48, 40), quality=100, subsampling=0)),
        # Colour spaces.
        ("rgb_adobe_52x40.jpg", "RGB-coded JPEG, no colour transform (cjpeg -rgb, Adobe transform 0)", cjpeg(coffee(52, 40), "-quality", "90", "-rgb")),
        ("cmyk_adobe_48x40.jpg", "CMYK (Pillow writes Adobe APP14 transform 0, inverted)", pil_jpeg(cmyk_photo(48, 40), quality=90)),
        ("cmyk_no_adobe_48x40.jpg", "4-component JPEG without APP14 (Pillow still assumes inverted CMYK)", drop_app14(pil_jpeg(cmyk_photo(48, 40), quality=85))),
        ("ycck_adobe_50x38.jpg", "YCCK (Adobe APP14 transform 2, libjpeg jpeg_set_colorspace(JCS_YCCK); Y and K 2x2)", ycck.encode(cmyk_photo(50, 38), 90)),
        ("grey_45x37.jpg", "greyscale (Pillow mode L)", pil_jpeg(chelsea(45, 37).convert("L"), quality=90)),
        ("grey_progressive_39x27.jpg", "greyscale progressive (cjpeg -grayscale -progressive)", cjpeg(rocket(39, 27), "-quality", "90", "-grayscale", "-progressive")),
        # EXIF orientation.
        ("exif_orient6_40x24.jpg", "EXIF orientation 6 (rotate 270: displayed 24x40)", with_exif_orientation(chelsea(40, 24), 6, quality=90)),
        ("exif_orient8_40x24.jpg", "EXIF orientation 8 (rotate 90: displayed 24x40)", with_exif_orientation(coffee(40, 24), 8, quality=90)),
        ("exif_orient5_33x21.jpg", "EXIF orientation 5 (transpose), odd size", with_exif_orientation(astro(33, 21), 5, quality=90, subsampling=1)),
        # Odd sizes.
        ("tiny_1x1.jpg", "1x1, 4:2:0", pil_jpeg(gradient_noise(1, 1, 1), quality=90)),
        ("tiny_1x1_444.jpg", "1x1, 4:4:4", pil_jpeg(gradient_noise(1, 1, 2), quality=90, subsampling=0)),
        ("tiny_2x2.jpg", "2x2, 4:2:0", pil_jpeg(gradient_noise(2, 2, 3), quality=90)),
        ("odd_3x5.jpg", "3x5, 4:2:2", pil_jpeg(gradient_noise(3, 5, 4), quality=90, subsampling=1)),
        ("odd_9x1.jpg", "9x1, 4:2:0", pil_jpeg(gradient_noise(9, 1, 5), quality=90)),
        ("odd_1x13.jpg", "1x13, 4:2:0", pil_jpeg(gradient_noise(1, 13, 6), quality=90)),
        ("odd_17x9.jpg", "17x9, 4:2:0", pil_jpeg(gradient_noise(17, 9, 7), quality=90)),
        ("odd_33x31.jpg", "33x31, 4:1:1 (cjpeg)", cjpeg(gradient_noise(33, 31, 8), "-quality", "90", "-sample", "4x1")),
        ("odd_33x31_440_progressive.jpg", "33x31, 4:4:0 progressive (cjpeg)", cjpeg(gradient_noise(33, 31, 9), "-quality", "90", "-sample", "1x2", "-progressive")),
        # Damaged, but within what libjpeg decodes with a warning (Pillow ignores warnings).
        ("corrupt_scan_64x48.jpg", "entropy data overwritten mid-scan (libjpeg warns, Pillow decodes)", corrupt_scan(baseline, seed=11, count=6)),
        ("trailing_garbage_64x48.jpg", "garbage after EOI", baseline + b"not part of the image" * 4),
        # Files Pillow refuses (manifest records the exception); the Rust decoder must refuse too.
        ("truncated_half_64x48.jpg", "baseline cut in the middle of the scan", baseline[: len(baseline) // 2]),
        ("truncated_progressive_72x48.jpg", "progressive cut at 70%", progressive[: len(progressive) * 7 // 10]),
        ("no_eoi_64x48.jpg", "baseline without its final EOI marker", baseline[:-2]),
        ("no_eoi_progressive_72x48.jpg", "progressive without its final EOI marker", progressive[:-2]),
        ("truncated_then_eoi_64x48.jpg", "cut in the middle of the scan, then EOI: libjpeg pads with grey and only warns, Pillow decodes", baseline[: len(baseline) // 2] + b"\xff\xd9"),
        ("header_only_64x48.jpg", "headers up to SOS, no scan data", baseline[: scan_start(baseline)]),
        ("huge_header_9000x9000.jpg", "SOF says 9000x9000 (81 MP: below Pillow's bomb limit, above the server's)", patch_sof(baseline, width=9000, height=9000)),
        ("huge_header_30000x30000.jpg", "SOF says 30000x30000 (900 MP: Pillow's DecompressionBombError)", patch_sof(baseline, width=30000, height=30000)),
        ("precision12_64x48.jpg", "SOF1 declaring 12-bit samples (header patch: Pillow refuses any non-8-bit SOF)", patch_sof(baseline, precision=12, marker=0xC1)),
        ("real12_lossless_48x40.jpg", "real 12-bit samples (lossless SOF3, P=12): Pillow refuses non-8-bit SOFs", lossless_jpeg(np.asarray(astro(48, 40)).astype(np.int64) * 16 + 5, 12)),
        ("zero_width.jpg", "SOF width 0", patch_sof(baseline, width=0)),
        # Pillow 13's libjpeg-turbo 3.2 decodes this; the mozjpeg fork (libjpeg-turbo 2.x) does not.
        ("lossless_sof3_48x40.jpg", "lossless JPEG (SOF3, 8-bit, predictor 1): a KNOWN GAP of the mozjpeg crate", lossless_jpeg(np.asarray(astro_lossless_source()), 8)),
    ]
    return out


MAX_REFERENCE_PIXELS = 1_000_000


def pil_decode(data: bytes) -> Image.Image:
    """What transformers' `load_image` does with a JPEG file."""
    with Image.open(io.BytesIO(data)) as img:
        img = ImageOps.exif_transpose(img)
        return img.convert("RGB")


def pil_outcome(data: bytes):
    try:
        return pil_decode(data), "ok"
    except Exception as e:  # noqa: BLE001 - recorded, not handled
        message = re.sub(r" at 0x[0-9a-f]+", "", str(e))  # object addresses vary per run
        return None, f"{type(e).__name__}: {message}"


def save_png(img: Image.Image, path: Path) -> None:
    # PNG without a timestamp or other ancillary chunks: byte-identical on every run.
    img.save(path, "PNG", optimize=False, compress_level=9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="images", help="where the JPEGs and manifest.json go")
    ap.add_argument("--reference", default=None, help="Pillow's decodes (default: IMAGES/decoded)")
    ap.add_argument("--bench", default="bench", help="where the ~1 MP timing JPEG goes ('' to skip)")
    args = ap.parse_args()
    assert PIL.__version__ == "13.0.0", f"made with Pillow 13.0.0, this is {PIL.__version__}"
    images = Path(args.images)
    reference = Path(args.reference) if args.reference else images / "decoded"
    images.mkdir(parents=True, exist_ok=True)
    reference.mkdir(parents=True, exist_ok=True)

    manifest = {}
    with tempfile.TemporaryDirectory() as tmp:
        all_cases = cases(Ycck(Path(tmp)))
    names = [name for name, _, _ in all_cases]
    assert len(set(names)) == len(names)
    for name, what, data in all_cases:
        (images / name).write_bytes(data)
        decoded, outcome = pil_outcome(data)
        entry = {"exercises": what, "bytes": len(data), "pillow": outcome}
        ref = reference / f"{name}.png"
        ref.unlink(missing_ok=True)
        if decoded is not None:
            entry["size"] = list(decoded.size)
            # No reference for the 81 MP header: the server refuses it before decoding.
            entry["reference"] = decoded.width * decoded.height <= MAX_REFERENCE_PIXELS
            if entry["reference"]:
                save_png(decoded, ref)
        manifest[name] = entry
        print(f"{name:42} {len(data):6} B  {outcome if decoded is None else decoded.size}")
    (images / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")

    # Conventions the Rust tests rely on.
    assert manifest["exif_orient6_40x24.jpg"]["size"] == [24, 40]
    assert manifest["exif_orient8_40x24.jpg"]["size"] == [24, 40]
    for name in ["truncated_half_64x48.jpg", "precision12_64x48.jpg", "huge_header_30000x30000.jpg", "real12_lossless_48x40.jpg"]:
        assert manifest[name]["pillow"] != "ok", name
    lossless = np.asarray(Image.open(reference / "lossless_sof3_48x40.jpg.png"))
    assert (lossless == np.asarray(astro_lossless_source())).all(), "lossless JPEG must decode exactly"

    if args.bench:
        bench = Path(args.bench)
        bench.mkdir(parents=True, exist_ok=True)
        for name, big in [("photo_1mp_q90.jpg", photo("retina", 1152, 896)), ("mosaic_1mp_q90.jpg", mosaic())]:
            data = pil_jpeg(big, quality=90)  # 4:2:0, baseline
            (bench / name).write_bytes(data)
            save_png(pil_decode(data), bench / f"{name}.png")
            print(f"bench {name} {big.size} {len(data)} B")

    files = {p.resolve() for d in (images, reference) for p in d.rglob("*") if p.is_file()}
    total = sum(p.stat().st_size for p in files)
    print(f"{len(manifest)} files, {sum(e['pillow'] == 'ok' for e in manifest.values())} decoded by Pillow; "
          f"set with references: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
