#!/usr/bin/env python3
"""Writes the named seed inputs of every fuzz target under fuzz/corpus/<target>/ (standard
library only). The committed corpora are these seeds plus what `scripts/fuzz.sh minimize` merged
in from longer runs (files named by their SHA-1); rerunning this rewrites only the named seeds.

Seeds: every image fixture (tests/fixtures/images, tests/fixtures/jpeg), hostile headers (each
format claiming 100000x100000 or its format's maximum, decompression bombs under and over the
fuzz limit of 4,000,000 pixels, truncated files), the request bodies of
crates/siglip-server/tests, and a sample of both tokenizers' reference texts.
"""

import base64
import json
import random
import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
FIXTURES = ROOT / "tests" / "fixtures"


def write(target, name, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (directory / name).write_bytes(data)


# ---------------------------------------------------------------------------------- images


def png_chunk(kind, payload):
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def png(width, height, color_type=2, bit_depth=8, rows=None, idat=None, interlace=0):
    """A PNG; `rows` of raw scanline bytes (filter byte included) or an `idat` payload."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    if idat is None:
        idat = zlib.compress(b"".join(rows), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def png_bomb(width, height):
    """Gray 8-bit, all zeros: a few KiB of zlib for `width * height` bytes."""
    z = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    out = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return png(width, height, color_type=0, idat=out)


def gif(width, height, frame_w=None, frame_h=None, lzw=b"\x02\x02\x44\x01\x00"):
    frame_w = width if frame_w is None else frame_w
    frame_h = height if frame_h is None else frame_h
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
        + b"\x00\x00\x00\xff\xff\xff"
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, frame_w, frame_h, 0)
        + lzw
        + b"\x3b"
    )


def gif_bomb(width, height):
    """One frame of `width * height` pixels of colour 0: LZW of a long run (clear codes kept
    out, so the code size grows to 12 bits, then stays)."""
    # Minimal code size 2: clear = 4, end = 5. Emit clear, then code 0 repeatedly; a real
    # encoder would emit growing runs, but a stream of 0s is valid and decodes to 0s.
    codes = [4] + [0] * (width * height // 64) + [5]
    bits, nbits, size, next_code = 0, 0, 3, 6
    out = bytearray()
    for i, code in enumerate(codes):
        bits |= code << nbits
        nbits += size
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
        if 0 < i < len(codes) - 1:
            next_code += 1
            if next_code == (1 << size) and size < 12:
                size += 1
    if nbits:
        out.append(bits & 0xFF)
    blocks = b"".join(
        bytes([len(out[i : i + 255])]) + bytes(out[i : i + 255]) for i in range(0, len(out), 255)
    )
    return gif(width, height, lzw=b"\x02" + blocks + b"\x00")


def bmp(width, height, bpp=24, pixels=b""):
    header_size = 14 + 40
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bpp, 0, len(pixels), 2835, 2835, 0, 0)
    size = header_size + len(pixels)
    return b"BM" + struct.pack("<IHHI", size, 0, 0, header_size) + info + pixels


def webp_vp8x(width, height):
    vp8x = struct.pack("<I", 0) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def webp_vp8l(width, height):
    bits = (width - 1) | ((height - 1) << 14) | (0 << 28)
    payload = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 8
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def jpeg_with_size(jpeg, width, height):
    """`jpeg` with its first SOFn's dimensions replaced."""
    data = bytearray(jpeg)
    i = 2
    while i + 4 <= len(data):
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC9, 0xCA):
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise ValueError("no SOF")


def image_seeds():
    fixtures = sorted((FIXTURES / "images").iterdir()) + sorted((FIXTURES / "jpeg").glob("*.jpg"))
    for path in fixtures:
        prefix = "jpeg_" if path.parent.name == "jpeg" else ""
        write("image_decode", prefix + path.name, path.read_bytes())
    for name in ["chelsea.png", "coffee.bmp", "anim.gif", "astronaut.webp", "coffee_progressive.jpg"]:
        data = (FIXTURES / "images" / name).read_bytes()
        write("image_decode", "truncated_half_" + name, data[: len(data) // 2])
        write("image_decode", "truncated_header_" + name, data[:40])

    big = 100_000
    tiny_row = [b"\x00\x00\x00\x00"]
    write("image_decode", "hostile_png_100000x100000.png", png(big, big, rows=tiny_row))
    write("image_decode", "hostile_png_1x100000.png", png(1, big, rows=tiny_row))
    write("image_decode", "hostile_png_zero_width.png", png(0, 10, rows=tiny_row))
    write("image_decode", "hostile_png_interlaced_16bit_rgba.png",
          png(7, 5, color_type=6, bit_depth=16, interlace=1, rows=[b"\x00" * 57] * 5))
    write("image_decode", "bomb_png_2000x2000_under_limit.png", png_bomb(2000, 2000))
    write("image_decode", "bomb_png_4096x4096_over_limit.png", png_bomb(4096, 4096))
    write("image_decode", "hostile_gif_65535x65535.gif", gif(65535, 65535))
    write("image_decode", "hostile_gif_frame_outside_screen.gif", gif(2, 2, 60000, 60000))
    write("image_decode", "bomb_gif_1000x1000.gif", gif_bomb(1000, 1000))
    write("image_decode", "hostile_bmp_100000x100000.bmp", bmp(big, big))
    write("image_decode", "hostile_bmp_top_down_100000.bmp", bmp(big, -big))
    write("image_decode", "hostile_bmp_2x2_8bit_no_palette.bmp", bmp(2, 2, bpp=8, pixels=b"\x00" * 8))
    write("image_decode", "hostile_webp_vp8x_16777216x16777216.webp", webp_vp8x(1 << 24, 1 << 24))
    write("image_decode", "hostile_webp_vp8l_16384x16384.webp", webp_vp8l(16384, 16384))
    jpeg = (FIXTURES / "jpeg" / "s420_64x48.jpg").read_bytes()
    write("image_decode", "hostile_jpeg_65535x65535.jpg", jpeg_with_size(jpeg, 65535, 65535))
    write("image_decode", "hostile_jpeg_4096x4096.jpg", jpeg_with_size(jpeg, 4096, 4096))
    write("image_decode", "hostile_jpeg_2000x2000_short_data.jpg", jpeg_with_size(jpeg, 2000, 2000))
    progressive = (FIXTURES / "jpeg" / "progressive_420_72x48.jpg").read_bytes()
    write("image_decode", "hostile_jpeg_progressive_2000x2000.jpg",
          jpeg_with_size(progressive, 2000, 2000))


# ------------------------------------------------------------------------ requests, inputs


def data_url(name, mime="image/png"):
    payload = base64.b64encode((FIXTURES / "images" / name).read_bytes()).decode()
    return f"data:{mime};base64,{payload}"


def input_seeds():
    small = data_url("rgb_1x1.png")
    payload = small.split(",", 1)[1]
    seeds = {
        "data_url_png.json": json.dumps(small),
        "data_url_jpeg_short.json": json.dumps("data:image/jpeg;base64,/9j/"),
        "bare_base64.json": json.dumps("/9j/"),
        "url_safe_base64.json": json.dumps("_9j_"),
        "whitespace_base64.json": json.dumps(" /9j/\n"),
        "url_object.json": json.dumps({"url": "/9j/"}),
        "image_url_part.json": json.dumps(
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/", "detail": "high"}}
        ),
        "image_url_string.json": json.dumps({"image_url": "s"}),
        "image_url_no_url.json": json.dumps({"image_url": {"uri": "d"}}),
        "https_url.json": json.dumps("https://x/y.png"),
        "not_base64.json": json.dumps("not base64!!"),
        "empty.json": json.dumps(""),
        "number.json": "5",
        "nope_object.json": json.dumps({"nope": 1}),
        "data_url_not_base64.json": json.dumps("data:image/png,abc"),
        "data_url_no_comma.json": json.dumps("data:image/png;base64"),
        "escaped_data_url.json": '"data:image\\/png;base64,\\u0041AAA"',
        "raw_data_url.txt": small,
        "raw_base64_wrapped.txt": "\r\n".join(payload[i : i + 16] for i in range(0, len(payload), 16)),
        "raw_base64_unpadded.txt": payload.rstrip("="),
        "raw_url_safe.txt": base64.urlsafe_b64encode(b"\xff\xfe\xfd\xfc\xfb").decode(),
        "raw_mixed_alphabets.txt": "ab+/cd-_",
        "raw_padding_inside.txt": "QQ==QQ==",
        "raw_http.txt": "  http://example.com/cat.png  ",
    }
    for name, data in seeds.items():
        write("image_input", name, data)


def request_seeds():
    image = data_url("rgb_1x1.png")
    classify = {
        "classify_one.json": {"image": image, "labels": ["cat", "dog"]},
        "classify_model.json": {"image": image, "labels": ["cat", "dog"], "model": "test-org/siglip-tiny"},
        "classify_many.json": {"images": [image, image, image], "labels": ["cat"]},
        "classify_five_labels.json": {"image": image, "labels": ["a", "b", "c", "d", "e"]},
        "classify_no_labels.json": {"image": image},
        "classify_empty_labels.json": {"image": image, "labels": []},
        "classify_empty_label.json": {"image": image, "labels": ["cat", ""]},
        "classify_labels_string.json": {"image": image, "labels": "cat"},
        "classify_no_image.json": {"labels": ["cat"]},
        "classify_both.json": {"image": image, "images": [image], "labels": ["cat"]},
        "classify_bad_png.json": {"image": "data:image/png;base64,AAAA", "labels": ["cat"]},
        "classify_not_image.json": {"image": "not an image at all!", "labels": ["cat"]},
        "classify_template.json": {"image": image, "labels": ["cat"], "hypothesis_template": "a photo of {}."},
        "classify_top_k.json": {"image": image, "labels": ["cat"], "top_k": 0},
        "classify_url.json": {"image": "https://example.com/cat.png", "labels": ["cat"]},
        "classify_url_object.json": {"image": {"url": image}, "labels": ["cat"]},
        "classify_candidate_labels.json": {"image": image, "candidate_labels": ["zebra", "zebra"]},
        "classify_mixed_items.json": {"images": [image, 5, None, [1, [2]], {"url": "u", "x": [1, 2]}], "labels": ["cat"]},
    }
    embeddings = {
        "embeddings_text.json": {"input": "cat"},
        "embeddings_dimensions.json": {"input": "cat", "dimensions": 7},
        "embeddings_format.json": {"input": "cat", "encoding_format": "int8"},
        "embeddings_empty.json": {"input": []},
        "embeddings_base64.json": {"input": ["a photo of a cat", "dog"], "encoding_format": "base64"},
        "embeddings_modality.json": {"input": [image], "modality": "image"},
        "embeddings_parts.json": {
            "input": ["a cat", {"type": "text", "text": "a dog"},
                      {"type": "image_url", "image_url": {"url": image}}],
            "model": "test-org/siglip-tiny",
        },
        "embeddings_object.json": {"input": {"type": "image_url", "image_url": image}},
    }
    for name, body in {**classify, **embeddings}.items():
        write("request_json", name, json.dumps(body))
    write("request_json", "not_json.json", "{not json")
    write("request_json", "long_list.json", '{"labels": [' + ",".join(['"x"'] * 50) + '], "images": [' + ",".join(["0"] * 50) + "]}")
    write("request_json", "duplicate_keys.json", '{"input": "a", "input": ["b"], "labels": [], "candidate_labels": []}')
    write("request_json", "deep.json", '{"input": [' + "[" * 100 + "]" * 100 + "]}")


def multipart_body(boundary, fields):
    out = b""
    for field in fields:
        name, value = field[0], field[1]
        disposition = f'form-data; name="{name}"'
        headers = ""
        if len(field) > 2:
            disposition += f'; filename="{field[2]}"'
            headers = "Content-Type: application/octet-stream\r\n"
        out += (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{headers}\r\n").encode()
        out += value if isinstance(value, bytes) else value.encode()
        out += b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def multipart_seeds():
    png_bytes = (FIXTURES / "images" / "rgb_1x1.png").read_bytes()
    header = "multipart/form-data; boundary={}\n"
    forms = {
        "image_and_labels": [("image", png_bytes, "x.png"), ("labels", '["cat", "dog"]')],
        "labels_plain": [("image", png_bytes, "x.png"), ("labels", "cat"), ("labels", "dog")],
        "candidate_labels": [("images", b"GIF89a garbage", "x.gif"), ("candidate_labels", "cat")],
        "everything": [("image", png_bytes, "x.png"), ("labels", '["a"]'), ("top_k", " 2 "),
                       ("hypothesis_template", "a photo of {}."), ("model", "m"), ("other", "x")],
        "bad_top_k": [("image", png_bytes, "x.png"), ("labels", "cat"), ("top_k", "-1")],
        "boundary_in_data": [("image", b"--XBOUNDAR\r\n--XBOUNDARY-", "x.bin"), ("labels", "c")],
    }
    for name, fields in forms.items():
        boundary = "XBOUNDARY" if name != "everything" else "----formdata-reqwest-0123abcd"
        write("multipart", name, header.format(boundary).encode() + multipart_body(boundary, fields))
    write("multipart", "quoted_boundary", b'multipart/form-data; boundary="a b"\n'
          + multipart_body("a b", [("labels", "cat")]))
    write("multipart", "no_header", b"\n" + multipart_body("XBOUNDARY", [("labels", "cat")]))
    write("multipart", "unterminated", header.format("XBOUNDARY").encode()
          + b'--XBOUNDARY\r\nContent-Disposition: form-data; name="image"\r\n\r\nabc')
    write("multipart", "charset", header.format("XBOUNDARY").encode()
          + b'--XBOUNDARY\r\nContent-Disposition: form-data; name="labels"\r\n'
          + b"Content-Type: text/plain; charset=latin1\r\n\r\ncaf\xe9\r\n--XBOUNDARY--\r\n")


def tokenizer_seeds():
    cases = json.loads((FIXTURES / "reference" / "tokens.json").read_text())["cases"]
    rng = random.Random(16)
    # The longest, the most non-ASCII, and a random sample of the rest.
    by_length = sorted(cases, key=lambda c: len(c["text"].encode()), reverse=True)[:20]
    by_unicode = sorted(cases, key=lambda c: sum(ord(ch) > 127 for ch in c["text"]), reverse=True)[:30]
    sample = rng.sample(cases, 100)
    picked = {c["text"]: None for c in by_length + by_unicode + sample}
    for i, text in enumerate(picked):
        write("tokenizer", f"reference_{i:03}", text)
    extra = {
        "specials": "a </s> b <unk>c</s>",
        "underline": "\u2581\u2581 x \u2581",
        "long_spaced": "a cat " * 400,
        "long_unspaced": "x" * 5000,
        "long_unspaced_then_spaced": "y" * 4500 + " a dog" * 50,
        "eos_at_63": "a " * 62 + "</s>",
        "whitespace": "\t\n\u3000\u00a0 \u200b",
    }
    for name, text in extra.items():
        write("tokenizer", name, text)


def gemma_tokenizer_seeds():
    cases = json.loads((FIXTURES / "siglip2" / "reference" / "gemma_tokens.json").read_text())["cases"]
    rng = random.Random(17)
    # The longest, the most non-ASCII, the truncated, and a random sample of the rest.
    by_length = sorted(cases, key=lambda c: len(c["text"].encode()), reverse=True)[:10]
    by_unicode = sorted(cases, key=lambda c: sum(ord(ch) > 127 for ch in c["text"]), reverse=True)[:20]
    truncated = [c for c in cases if len(c["ids"]) == 64][:10]
    sample = rng.sample(cases, 60)
    picked = {c["text"]: None for c in by_length + by_unicode + truncated + sample}
    for i, text in enumerate(picked):
        write("gemma_tokenizer", f"reference_{i:03}", text)
    extra = {
        "added_tokens": "<start_of_turn>user\nA cat<end_of_turn>\n<START_OF_TURN><eos><EOS><b>x</b>",
        "added_tokens_long": "<start_of_turn>" * 80 + "<EOS> " * 80,
        "final_sigma": "ΟΔΟΣ ΣΟΦΙΑΣ Σ ΑΣ. ΣΣΣ ΌΣΟΣ " * 10,
        "long_spaced": "A photo of a Cat " * 300,
        "long_unspaced": "ab" * 3000,
        "long_tabs_newlines": "cat\t\tdog\n\n" * 500,
        "long_unspaced_then_spaced": "猫象" * 800 + " a dog" * 100,
        "long_bytes": "🐱\u0301" * 700 + "<0x41>" * 100,
        "whitespace_only": " " * 3000,
        "cut_at_1024": "x" * 1023 + " <start_of_turn>" + " y" * 600,
    }
    for name, text in extra.items():
        write("gemma_tokenizer", name, text)


if __name__ == "__main__":
    image_seeds()
    input_seeds()
    request_seeds()
    multipart_seeds()
    tokenizer_seeds()
    gemma_tokenizer_seeds()
