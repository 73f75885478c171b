#!/usr/bin/env python3
"""Generate the test fixtures of siglip-server (tests/fixtures/, see tests/fixtures/README.md).

Usage, from the repository root:

    /work/pyenv/venv/bin/python scripts/make_fixtures.py              # all small fixtures
    /work/pyenv/venv/bin/python scripts/make_fixtures.py --full base  # random full-size base-384 model
    /work/pyenv/venv/bin/python scripts/make_fixtures.py --full so400m [--out DIR]

Everything is deterministic (fixed seeds, sorted inputs, single-threaded training) and idempotent
(the outputs are rewritten from scratch on every run).  The reference values come from transformers'
PIL image path (SiglipImageProcessorPil) and the slow SiglipTokenizer, i.e. what the
zero-shot-image-classification pipeline computes when torchvision is absent.
"""

from __future__ import annotations

import argparse
import ast
import glob
import io
import json
import os
import random
import re
import shutil
import string
import sys
import time
import unicodedata
import warnings

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import sentencepiece as spm  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
from safetensors.numpy import save_file as np_save_file  # noqa: E402

import transformers  # noqa: E402
from transformers import SiglipConfig, SiglipModel, SiglipTokenizer  # noqa: E402
from transformers.image_utils import load_image  # noqa: E402
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil  # noqa: E402

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(REPO, "tests", "fixtures")
MODELS = os.path.join(FIX, "models")
IMAGES = os.path.join(FIX, "images")
REF = os.path.join(FIX, "reference")
SPM_PATH = os.path.join(FIX, "spiece.model")
SITE = os.path.dirname(os.path.dirname(os.path.abspath(spm.__file__)))

MAX_LENGTH = 64
TEMPLATE = "This is a photo of {}."


def log(*a):
    print(*a, flush=True)


def write_json(path, obj, indent=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
        f.write("\n")


def fresh_dir(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


# ---------------------------------------------------------------------------------------------
# 1. SentencePiece model
# ---------------------------------------------------------------------------------------------

# CJK characters that appear (often) in the training text: they end up in the vocabulary.
CJK_IN = "猫狗鸟鱼马牛羊车飞机船花树山水火日月人大小中国的是一个照片这那我你他好美丽东京北海道"
CJK_IN += "ねこいぬとりさかなくるまやましゃしんこんにちはありがとうタワーカメラ"
CJK_IN += "고양이개자동차사진한국어안녕하세요"


def training_lines():
    """English text from the venv's site-packages (docstrings, licences, package metadata) plus
    generated lines with accented Latin, Greek, Cyrillic, CJK and emoji.  Sorted inputs, capped."""
    lines = []
    # Docstrings of transformers' modeling files: lots of plain English.
    files = sorted(glob.glob(os.path.join(SITE, "transformers", "models", "*", "modeling_*.py")))
    seen = set()
    n_chars = 0
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
        except Exception:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if not doc or doc in seen:
                    continue
                seen.add(doc)
                for line in doc.splitlines():
                    line = line.strip()
                    if len(line) > 3:
                        lines.append(line)
                        n_chars += len(line)
        if n_chars > 2_500_000:
            break
    # Licences and package metadata.
    meta = sorted(glob.glob(os.path.join(SITE, "*.dist-info", "LICENSE*")))
    meta += sorted(glob.glob(os.path.join(SITE, "*.dist-info", "licenses", "*")))
    meta += sorted(glob.glob(os.path.join(SITE, "*.dist-info", "METADATA")))
    for path in meta:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f.read().splitlines()[:2000]:
                line = line.strip()
                if len(line) > 3:
                    lines.append(line)
    # Generated lines: labels, prompts and non-ASCII text.
    rng = random.Random(20240601)
    words = [
        "cat", "dog", "bird", "car", "plane", "tree", "flower", "house", "mountain", "river", "beach",
        "city", "street", "person", "woman", "man", "child", "horse", "astronaut", "rocket", "coffee",
        "cup", "table", "chair", "window", "photo", "picture", "drawing", "painting", "sky", "night",
        "red", "blue", "green", "yellow", "black", "white", "small", "large", "old", "new", "happy",
    ]
    accented = [
        "café", "crème", "brûlée", "jalapeño", "über", "Ångström", "naïve", "façade", "São", "Paulo",
        "Zürich", "smörgåsbord", "piñata", "résumé", "niño", "fiancée", "déjà", "vu", "Ærø", "Øresund",
        "Łódź", "Kraków", "čeština", "Dvořák", "Ελλάδα", "γάτα", "σκύλος", "Москва", "кошка", "собака",
        "İstanbul", "ığdır", "Straße", "Fußball", "garçon", "où", "forêt", "élève", "Ñandú",
    ]
    cjk_sentences = [
        "一个猫的照片", "这是一个狗的照片", "东京的山和水", "北海道的花和树", "中国的大山",
        "ねこのしゃしん", "こんにちは", "ありがとう", "東京タワーのしゃしん", "カメラとくるま",
        "고양이 사진", "한국어 안녕하세요", "자동차 사진", "美丽的月和日", "我好你好他好",
    ]
    emoji = ["🐱", "🐶", "🚗", "✈️", "🌸", "🌳", "🏔️", "❤️", "👍", "😀", "🎉", "🇫🇷", "🇯🇵"]
    templates = [
        "this is a photo of a {}", "a photo of the {}", "a blurry photo of a {}", "a drawing of a {}",
        "itap of a {}", "a photo of my {}", "a {} in the {}", "the {} and the {}",
    ]
    for _ in range(40000):
        kind = rng.random()
        if kind < 0.45:
            t = rng.choice(templates)
            line = t.format(*[rng.choice(words) for _ in range(t.count("{}"))])
        elif kind < 0.75:
            line = " ".join(rng.choice(accented + words) for _ in range(rng.randint(2, 8)))
        elif kind < 0.92:
            line = rng.choice(cjk_sentences) + rng.choice(["", " ", "。", "、"]) + rng.choice(cjk_sentences)
        else:
            line = " ".join(rng.choice(words + emoji) for _ in range(rng.randint(2, 6)))
        lines.append(line)
    return lines


def make_spm():
    lines = training_lines()
    log(f"spm: training on {len(lines)} lines, {sum(map(len, lines))} chars")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=2000,
        model_type="unigram",
        normalization_rule_name="nmt_nfkc",
        pad_id=0,
        pad_piece="<pad>",
        eos_id=1,
        eos_piece="</s>",
        unk_id=2,
        unk_piece="<unk>",
        bos_id=-1,
        add_dummy_prefix=True,
        character_coverage=0.9995,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        num_threads=1,
        max_sentence_length=8192,
        minloglevel=2,
    )
    os.makedirs(FIX, exist_ok=True)
    with open(SPM_PATH, "wb") as f:
        f.write(model.getvalue())
    sp = spm.SentencePieceProcessor(model_file=SPM_PATH)
    assert sp.get_piece_size() == 2000
    assert [sp.id_to_piece(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
    # '<', 'u', 'n', 'k', '>' must be ordinary pieces: SiglipTokenizer encodes "<unk>" + text and
    # drops the first len(encode("<unk>")) pieces.
    for ch in "<unk>":
        assert sp.piece_to_id(ch) != sp.unk_id() or sp.piece_to_id("▁" + ch) != sp.unk_id(), ch
    in_vocab = [c for c in CJK_IN if sp.piece_to_id(c) != sp.unk_id()]
    log(f"spm: {len(in_vocab)} of {len(CJK_IN)} seeded CJK/kana/hangul chars are pieces; 象 in vocab: "
        f"{sp.piece_to_id('象') != sp.unk_id()}")
    return sp


# ---------------------------------------------------------------------------------------------
# Text cases for tokens.json
# ---------------------------------------------------------------------------------------------

LABELS = [
    "cat", "dog", "a cat", "two cats", "a dog", "bird", "horse", "astronaut", "rocket", "coffee",
    "a cup of coffee", "car", "red car", "sports car", "airplane", "ship", "truck", "bicycle",
    "motorcycle", "train", "bus", "traffic light", "fire hydrant", "stop sign", "bench", "sheep",
    "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie",
    "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "skateboard",
    "surfboard", "tennis racket", "bottle", "wine glass", "fork", "knife", "spoon", "bowl", "banana",
    "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock",
    "vase", "scissors", "teddy bear", "hair drier", "toothbrush", "tabby cat", "Egyptian cat",
    "golden retriever", "German shepherd", "space shuttle", "espresso", "cappuccino", "latte art",
    "the Eiffel Tower", "Mount Fuji", "a photo of a person", "nothing", "an empty room",
]

PROMPT_TEMPLATES = [
    "This is a photo of {}.", "a photo of a {}.", "a blurry photo of the {}.", "itap of a {}.",
    "a bad photo of the {}.", "a sculpture of a {}.", "a photo of the large {}.",
    "art of the {}.", "a drawing of a {}.", "A PHOTO OF A {}!", "{}",
]

SPECIAL_CASES = [
    # empty / whitespace only / punctuation only
    "", " ", "  ", "\t", "\n", "\r\n", " \t \n ", "\u3000", "\u00a0", "\u2028", "\x1c", "\x1f",
    "\x0b\x0c", "\u2009\u200a", "\u200b", "\ufeff", "\u0085",
    ".", "!!!", "...", "?!", "-", "---", "()", "[]{}", "'\"", "#", "@#$%", string.punctuation,
    "!\"#$%&'()*+,-./", ":;<=>?@[\\]^_`{|}~", ". , ; : ! ?", "¡¿", "«»", "“”‘’", "„“", "—–", "…",
    "·•", "§¶", "†‡", "※", "¿Qué?", "¡Hola!",
    # special-token literals
    "</s>", "<unk>", "<pad>", "<s>", "▁", "▁▁", "▁ ▁", "a </s> b", "a</s>b", "</s></s>", "cat</s>",
    "cat </s>", "</s>cat", "</s> cat", "<unk>cat", "cat<unk>", "a <unk> b", "a <pad> b", "<pad>cat",
    "▁cat", "cat▁", "a ▁ b", "a▁b", "▁▁cat▁▁", "This is a photo of </s>.", "This is a photo of <unk>.",
    "This is a photo of ▁.", "</S>", "< /s>", "</s >", "<UNK>", "<Unk>", "<<unk>>", "<</s>>",
    "This is a photo of </s></s>.", "</s> " * 3, "x" * 62 + " </s>", "</s>" * 70,
    # whitespace runs, tabs, newlines, exotic spaces
    "a  b", "a   b", "a\tb", "a\nb", "a\r\nb", "\ta cat\n", "a\u3000cat", "a\u00a0cat", "a\u2028cat",
    "a\u2029cat", "a\x1ccat", "a\x1dcat", "a\x1ecat", "a\x1fcat", "a\u200bcat", "a\u2009cat",
    "a\u202fcat", "a\u205fcat", "a\u180ecat", "a\u0085cat", "a\x0bcat", "a\x0ccat", "a\ufeffcat",
    "a\u2060cat", "a\u00adcat", "  leading", "trailing  ", "  both  ", "\n\nnewlines\n\n",
    "This   is   a   photo   of   a   cat.", "This\tis\ta\tphoto\tof\ta\tcat.", " This is a photo of cat. ",
    "This is a photo of  cat.", "This is a photo of \u3000cat\u3000.", "- x", "-- leading dash",
    "'quoted'", "\"double\"", "(parenthesised)", "[bracketed] text", "...dots first",
    # capitals
    "CAT", "Cat", "cAT", "THE EIFFEL TOWER", "McDonald's", "iPhone", "İstanbul", "ISTANBUL", "ǅemal",
    "ǈ ǋ ǲ", "ẞ", "STRASSE", "ΣΊΣΥΦΟΣ", "ΟΔΟΣ ΣΟΦΙΑΣ", "ΌΣΟΣ", "Σ", "ΑΣ Σ", "ǅ", "ﬀ FF", "ÀÉÎÕÜ",
    "ĲSSELMEER", "Ⅻ ⅻ", "Ⓐⓑ", "ＡＢＣ", "𝐀𝐁𝐂", "ΚΑΛΗΜΕΡΑ", "ПРИВЕТ МИР", "ÅNGSTRÖM", "KELVIN K",
    # accents (precomposed)
    "café", "crème brûlée", "jalapeño", "über", "Ångström", "naïve", "façade", "São Paulo", "Zürich",
    "Øresund", "Łódź", "smörgåsbord", "piñata", "résumé", "El Niño", "Dvořák", "Ærø", "Straße",
    "Fußball", "garçon", "forêt", "élève", "Ñandú", "Tiếng Việt", "Nguyễn", "Đà Nẵng", "ğış",
    "a photo of é", "ñ", "ü", "Å", "å", "é", "ÿ", "ǖ", "ș ț", "ł", "ø",
    # combining characters (decomposed)
    "cafe\u0301", "n\u0303", "a\u0308", "A\u030a", "e\u0301\u0301", "o\u0302\u0323",
    "Z\u0335a\u0336l\u0337g\u0338o\u0334", "\u0301", "\u0301cat", "cat\u0301", "i\u0307", "s\u0323\u0307",
    "\u1100\u1161\u11a8", "ㄱㅏ", "\u0915\u093c", "e\u20dd", "1\ufe0f\u20e3",
    # NFKC-affected compatibility characters
    "ｆｕｌｌ ｗｉｄｔｈ", "ＦＵＬＬ　ＷＩＤＴＨ", "ﬁsh", "ﬂower", "ﬃ ﬄ ﬆ", "①②③", "⑩ ⑳", "㎏ ㎞ ㎡",
    "™", "℠", "½ ¼ ¾", "x² y³", "H₂O", "Ⅻ", "ｶﾀｶﾅ", "ｺﾞｼﾞﾗ", "ℌ ℑ ℜ", "𝐛𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐", "ſ", "µ", "Å",
    "Ω", "K", "…", "‥", "！？（）", "＂＃＄％", "＿", "〜", "﹏", "¨", "´", "¸", "˜", "ﾟ", "㍿", "㈱",
    "㋀", "⁉", "‼", "⅓", "ℕ ℤ ℚ", "ǆ", "ŉ", "ﷺ", "ﷲ", "ﬡ", "ﬠ", "＜／ｓ＞", "＜ｕｎｋ＞", "⁄", "∕",
    "\u2024", "\u2025", "\u2002\u2003", "a\u2002b", "a\u3000b",
    # CJK
    "猫", "狗", "象", "一只猫的照片", "这是一个狗的照片", "東京タワー", "こんにちは世界", "한국어 텍스트",
    "中文和English混合", "这是一张大象的照片。", "汉字", "漢字", "日本語のテキスト", "ひらがな", "カタカナ",
    "猫猫猫猫", "象象象", "龍", "𠀋", "𪚥", "This is a photo of 猫.", "This is a photo of 象.", "鳥と犬",
    "안녕하세요 세계", "고양이", "「引用」", "【括弧】", "、。", "中，文。", "一 二 三",
    # emoji
    "🐱", "cat 🐱", "🐱🐶", "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🇯🇵", "🇺🇸 flag", "🇫🇷🇩🇪", "👍🏽", "❤️", "❤",
    "©", "®", "1️⃣", "#️⃣", "🐈‍⬛", "This is a photo of 🐱.", "😀😃😄", "🎉 party 🎉", "☕", "✈️", "⚽",
    "🧑‍🚀", "🚀", "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    # underscores, digits, URLs
    "snake_case_name", "__init__", "_", "a_b_c", "https://example.com/path?q=1&r=2",
    "http://www.example.org/index.html", "user@example.com", "2024-01-01", "3.14159", "1,000,000",
    "R2-D2", "COVID-19", "x86_64", "v1.2.3", "#hashtag", "@mention", "file.txt", "C++ & C#",
    "50% off!", "$100", "€20", "£5", "¥1000", "100°C", "5'11\"", "A/B testing", "rock'n'roll", "it's",
    "don't", "o'clock", "e.g. (this) [that] {other}", "1st 2nd 3rd 4th", "0", "007", "12345678901234567890",
    "9:30 am", "10/10", "1e-6", "-1", "+1", "~/path/to/file", "C:\\Windows\\System32", "<b>bold</b>",
    "<div class=\"x\">", "&amp;", "a|b", "a\\b", "`code`", "**bold**", "# heading", "> quote",
    # mixed scripts
    "Кошка сидит на окне", "Η γάτα κάθεται στο παράθυρο", "ΟΔΟΣ", "Σίσυφος", "λόγος λόγοσ",
    "قطة على النافذة", "مرحبا بالعالم", "חתול על החלון", "बिल्ली खिड़की पर", "नमस्ते दुनिया",
    "แมวนั่งอยู่บนหน้าต่าง", "สวัสดีชาวโลก", "Բարև աշխարհ", "გამარჯობა", "ሰላም", "வணக்கம்",
    "Привет, мир!", "Ελληνικά και English", "cat кот γάτα 猫 قطة", "Tiếng Việt có dấu",
    "Türkçe ı İ i I", "Ελλάς", "ß ẞ", "ﬁ ﬂ", "Ǆ ǅ ǆ",
]

LONG_CASES = [
    "cat " * 100,
    "a photo of a cat and a dog " * 12,
    "This is a photo of " + ", ".join(LABELS[:40]) + ".",
    "x" * 500,
    "1234567890" * 20,
    "supercalifragilisticexpialidocious " * 8,
    " ".join(f"word{i}" for i in range(80)),
    "The quick brown fox jumps over the lazy dog. " * 20,
    "猫" * 100,
    "象" * 100,
    "🐱" * 80,
    "é" * 200,
    "a " * 63,
    "a " * 64,
    "a " * 65,
    "ab " * 62,
    ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
     "labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco "
     "laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in "
     "voluptate velit esse cillum dolore eu fugiat nulla pariatur."),
    "A " + "very " * 70 + "long label",
    "Кошка " * 40,
    "γάτα " * 40,
    "a\u0301" * 100,
    "!" * 1000 + "cat",
    " " * 1000 + "cat",
    "cat" + "\n" * 300,
    "This is a photo of " + "big " * 59 + "cat.",
    "This is a photo of " + "big " * 60 + "cat.",
    "This is a photo of " + "big " * 61 + "cat.",
    "word " * 2000,
]

RANDOM_RANGES = [
    (0x20, 0x7E),  # Basic Latin
    (0xA0, 0xFF),  # Latin-1
    (0x100, 0x17F),  # Latin Extended-A
    (0x300, 0x36F),  # combining diacritics
    (0x370, 0x3FF),  # Greek
    (0x400, 0x4FF),  # Cyrillic
    (0x600, 0x6FF),  # Arabic
    (0x900, 0x97F),  # Devanagari
    (0xE00, 0xE7F),  # Thai
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2000, 0x206F),  # General punctuation (incl. spaces, ZWJ, bidi controls)
    (0x2100, 0x218F),  # letterlike, number forms
    (0x2460, 0x24FF),  # enclosed alphanumerics
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x4E00, 0x9FFF),  # CJK unified
    (0xAC00, 0xD7A3),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFB00, 0xFB4F),  # alphabetic presentation forms
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # half/full width forms
    (0x1D400, 0x1D7FF),  # mathematical alphanumerics
    (0x1F300, 0x1F64F),  # emoji
    (0x1F900, 0x1F9FF),  # supplemental symbols
    (0x20000, 0x2A6DF),  # CJK extension B
]


def random_strings(n, seed=12345):
    rng = random.Random(seed)
    out = []
    frequent = list(CJK_IN) + list("abcdefghijklmnopqrstuvwxyz") + [" "] * 6
    while len(out) < n:
        k = rng.randint(1, 24)
        ranges = rng.sample(RANDOM_RANGES, rng.randint(1, 3))
        chars = []
        for _ in range(k):
            r = rng.random()
            if r < 0.15:
                chars.append(rng.choice(frequent))
            else:
                lo, hi = rng.choice(ranges)
                c = rng.randint(lo, hi)
                if 0xD800 <= c <= 0xDFFF or unicodedata.category(chr(c)) in ("Cs", "Cn"):
                    continue
                chars.append(chr(c))
        s = "".join(chars)
        if s:
            out.append(s)
    return out


def text_cases():
    cases = []
    cases += LABELS
    cases += [TEMPLATE.format(l) for l in LABELS]
    rng = random.Random(777)
    for t in PROMPT_TEMPLATES[1:]:
        for l in rng.sample(LABELS, 6):
            cases.append(t.format(l))
    cases += SPECIAL_CASES
    cases += [TEMPLATE.format(s) for s in SPECIAL_CASES if len(s) < 30][::3]
    cases += LONG_CASES
    cases += random_strings(200)
    # de-duplicate, keep order
    seen, out = set(), []
    for c in cases:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def canonicalize(text):
    """SiglipTokenizer.canonicalize_text (do_lower_case=True)."""
    text = text.lower()
    text = text.translate(str.maketrans("", "", string.punctuation))
    text = re.sub(r"\s+", " ", text)
    return text.strip()


# ---------------------------------------------------------------------------------------------
# 2. Tokenizer files
# ---------------------------------------------------------------------------------------------


def build_tokenizer_json(slow_tok):
    """A fast-tokenizer file for the SentencePiece vocabulary, built the way transformers converts a
    T5-style SentencePiece tokenizer (convert_slow_tokenizer.SpmConverter): Unigram model with the
    spm pieces and scores, Precompiled (nmt_nfkc charsmap) normalizer + right strip + space runs,
    Metaspace pre-tokenizer, and a TemplateProcessing post-processor appending "</s>".
    It does NOT contain SigLIP's canonicalisation (lower-case, punctuation removal, whitespace
    collapse): apply that first (transformers has no fast SigLIP tokenizer)."""
    from tokenizers import processors
    from transformers.convert_slow_tokenizer import SpmConverter

    tk = SpmConverter(slow_tok).converted()
    tk.post_processor = processors.TemplateProcessing(
        single="$A </s>",
        pair="$A </s> $B </s>",
        special_tokens=[("</s>", slow_tok.eos_token_id)],
    )
    return tk


def save_tokenizer_files(model_dir, with_tokenizer_json):
    # Like the hub's tokenizer_config.json: only input_ids (no attention_mask, which the model must
    # not get: SigLIP attends to the padding).
    tok = SiglipTokenizer(SPM_PATH, model_input_names=["input_ids"])
    tok.save_pretrained(model_dir)
    # transformers 5 does not write special_tokens_map.json any more; the hub repos have one.
    stm = os.path.join(model_dir, "special_tokens_map.json")
    if not os.path.exists(stm):
        entry = lambda c: {"content": c, "lstrip": True, "normalized": False, "rstrip": True, "single_word": False}
        write_json(stm, {"eos_token": entry("</s>"), "pad_token": entry("</s>"), "unk_token": entry("<unk>")},
                   indent=2)
    tj = os.path.join(model_dir, "tokenizer.json")
    if with_tokenizer_json:
        build_tokenizer_json(tok).save(tj)
    elif os.path.exists(tj):
        os.remove(tj)
    for extra in ("added_tokens.json", "chat_template.jinja"):
        if os.path.exists(os.path.join(model_dir, extra)):
            os.remove(os.path.join(model_dir, extra))


# ---------------------------------------------------------------------------------------------
# 3. Models
# ---------------------------------------------------------------------------------------------

TINY = {
    "tiny-p16": dict(
        text=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=64),
        vision=dict(image_size=48, patch_size=16, hidden_size=32, intermediate_size=37,
                    num_hidden_layers=2, num_attention_heads=4),
        seed=16, tokenizer_json=True, sharded=False, sparse=False,
    ),
    "tiny-p14": dict(
        text=dict(hidden_size=48, intermediate_size=53, num_hidden_layers=2, num_attention_heads=3),
        vision=dict(image_size=46, patch_size=14, hidden_size=48, intermediate_size=61,
                    num_hidden_layers=2, num_attention_heads=3),
        seed=14, tokenizer_json=False, sharded=True, sparse=True,
    ),
}


def perturb(model, seed):
    """LayerNorms away from identity, zero biases away from zero, fixed logit scale and bias."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        ln_params = set()
        for _, mod in model.named_modules():
            if isinstance(mod, torch.nn.LayerNorm):
                mod.weight.copy_(1.0 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
                ln_params.update([id(mod.weight), id(mod.bias)])
        for name, p in model.named_parameters():
            if id(p) in ln_params or name == "logit_bias" or not name.endswith("bias"):
                continue
            if float(p.abs().max()) < 1e-4:  # zero-initialised (or 1e-6-std MLP) biases
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
        model.logit_scale.fill_(2.3)
        model.logit_bias.fill_(-3.0)


def sparse_config_dict(full: SiglipConfig):
    """Only the keys that differ from SiglipConfig's defaults, like the hub's config.json files."""
    default = SiglipConfig()
    out = {"architectures": ["SiglipModel"], "model_type": "siglip"}
    for sub in ("text_config", "vision_config"):
        d, f = getattr(default, sub).to_dict(), getattr(full, sub).to_dict()
        diff = {k: v for k, v in sorted(f.items()) if k in d and d[k] != v and k not in ("dtype", "torch_dtype")}
        if sub == "text_config" and diff.get("projection_size") == f["hidden_size"]:
            del diff["projection_size"]  # defaults to hidden_size; absent from hub configs
        diff["model_type"] = f["model_type"]
        out[sub] = dict(sorted(diff.items()))
    out["torch_dtype"] = "float32"
    out["transformers_version"] = "4.37.0.dev0"
    return out


def check_sparse_config(model_dir, full: SiglipConfig):
    loaded = SiglipConfig.from_pretrained(model_dir)
    for sub in ("text_config", "vision_config"):
        a, b = getattr(loaded, sub).to_dict(), getattr(full, sub).to_dict()
        for k in set(a) | set(b):
            if k in ("transformers_version", "dtype", "torch_dtype", "architectures"):
                continue
            assert a.get(k) == b.get(k), (sub, k, a.get(k), b.get(k))
    assert loaded.initializer_factor == full.initializer_factor


def save_model(model, model_dir, spec_sharded, sparse):
    if spec_sharded:
        total = sum(p.numel() * p.element_size() for p in model.state_dict().values())
        # largest tensor must fit; aim for two shards
        for frac in (0.55, 0.6, 0.7, 0.8, 0.9):
            for f in glob.glob(os.path.join(model_dir, "model*.safetensors*")):
                os.remove(f)
            model.save_pretrained(model_dir, max_shard_size=int(total * frac))
            shards = sorted(glob.glob(os.path.join(model_dir, "model-*-of-*.safetensors")))
            if len(shards) == 2:
                break
        assert [os.path.basename(s) for s in shards] == [
            "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], shards
        assert os.path.exists(os.path.join(model_dir, "model.safetensors.index.json"))
    else:
        model.save_pretrained(model_dir)
        assert os.path.exists(os.path.join(model_dir, "model.safetensors"))
    for f in os.listdir(model_dir):
        if f in ("generation_config.json",):
            os.remove(os.path.join(model_dir, f))
    if sparse:
        write_json(os.path.join(model_dir, "config.json"), sparse_config_dict(model.config), indent=2)
        check_sparse_config(model_dir, model.config)


def save_image_processor(model_dir, size):
    ip = SiglipImageProcessorPil(
        size={"height": size, "width": size}, resample=3, rescale_factor=1 / 255,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
        do_resize=True, do_rescale=True, do_normalize=True,
    )
    ip.save_pretrained(model_dir)
    path = os.path.join(model_dir, "preprocessor_config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg.setdefault("processor_class", "SiglipProcessor")
    write_json(path, dict(sorted(cfg.items())), indent=2)
    return load_image_processor(model_dir)


def load_image_processor(model_dir):
    ip = SiglipImageProcessorPil.from_pretrained(model_dir)
    assert type(ip) is SiglipImageProcessorPil and ip.backend == "pil", type(ip)
    return ip


def build_model(name, vocab_size, out_dir):
    spec = TINY[name]
    config = SiglipConfig(
        text_config=dict(vocab_size=vocab_size, **spec["text"]),
        vision_config=dict(**spec["vision"]),
    )
    torch.manual_seed(spec["seed"])
    model = SiglipModel(config).eval().float()
    perturb(model, spec["seed"] + 1000)
    # With default init, 2 random layers leave the last text position (a pad "</s>") nearly the
    # same for every label (cosine > 0.99 between labels) because attention is almost uniform
    # over the ~60 identical pad tokens.  Sharper attention (q, k x4: logits x16) and a stronger
    # attention branch (v, out x3) let the content reach the pooled positions.
    with torch.no_grad():
        for tower in (model.text_model, model.vision_model):
            for layer in tower.encoder.layers:
                att = layer.self_attn
                att.q_proj.weight.mul_(4.0)
                att.k_proj.weight.mul_(4.0)
                att.v_proj.weight.mul_(3.0)
                att.out_proj.weight.mul_(3.0)
    return model


def write_model_dir(name, model, model_dir):
    spec = TINY[name]
    fresh_dir(model_dir)
    save_model(model, model_dir, spec["sharded"], spec["sparse"])
    save_image_processor(model_dir, spec["vision"]["image_size"])
    save_tokenizer_files(model_dir, spec["tokenizer_json"])


# ---------------------------------------------------------------------------------------------
# 4. Images
# ---------------------------------------------------------------------------------------------


def synth_rgb(w, h, seed):
    """Deterministic content with gradients, stripes, a disc and noise (so resizing matters)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    xs, ys = x / max(w - 1, 1), y / max(h - 1, 1)
    r = 255 * xs
    g = 255 * ys
    b = 127.5 + 127.5 * np.sin(2 * np.pi * (x / 5.0 + y / 7.0))
    cx, cy, rad = 0.6 * w, 0.4 * h, 0.3 * min(w, h) + 0.5
    disc = (x - cx) ** 2 + (y - cy) ** 2 < rad ** 2
    img = np.stack([r, g, b], -1)
    img[disc] = [250, 20, 60]
    img += rng.normal(0, 8, img.shape)
    img[(x.astype(int) // 3 + y.astype(int) // 3) % 11 == 0] = [0, 0, 0]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def synth_alpha(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = (255 * x / max(w - 1, 1)).astype(np.int64)
    a[(y % 4) == 0] = 0
    a[(x + y) % 9 == 0] = 255
    a = np.clip(a + rng.integers(-20, 21, a.shape), 0, 255)
    a[: max(1, h // 5), : max(1, w // 5)] = 0  # fully transparent corner (colour underneath is kept)
    return a.astype(np.uint8)


PNG_SPECS = [
    # name, mode, (w, h)
    ("rgb_1x1.png", "RGB", (1, 1)),
    ("rgb_7x513.png", "RGB", (7, 513)),
    ("rgb_1000x10.png", "RGB", (1000, 10)),
    ("rgb_48x48.png", "RGB", (48, 48)),
    ("rgb_46x46.png", "RGB", (46, 46)),
    ("rgba_31x29.png", "RGBA", (31, 29)),
    ("rgba_200x150.png", "RGBA", (200, 150)),
    ("l_31x29.png", "L", (31, 29)),
    ("l_200x150.png", "L", (200, 150)),
    ("la_1x1.png", "LA", (1, 1)),
    ("la_200x150.png", "LA", (200, 150)),
    ("p_31x29.png", "P", (31, 29)),
    ("p_200x150.png", "P", (200, 150)),
    ("gray16_200x150.png", "I;16", (200, 150)),
    # noiseless test pattern (zone plate, stripes, checkerboard): the 384x384 downscale case
    ("rgb_pattern_640x480.png", "RGB-pattern", (640, 480)),
    # tRNS transparency without an alpha channel: transformers composites it onto white (see README)
    ("rgb_trns_61x43.png", "RGB+tRNS", (61, 43)),
    ("l_trns_40x30.png", "L+tRNS", (40, 30)),
    # palette with per-entry alpha (tRNS with several values): PIL drops it in convert("RGB")
    ("p_alpha_31x29.png", "P+alpha", (31, 29)),
]

TRNS_RGB = (10, 200, 30)
TRNS_GRAY = 77

PHOTOS = ["chelsea", "astronaut", "coffee", "rocket", "horse"]
PHOTO_MAX_SIDE = 256


def photo_array(name):
    import skimage.data

    a = getattr(skimage.data, name)()
    if a.dtype == bool:  # horse: binary silhouette -> 8-bit grayscale
        a = np.where(a, 235, 25).astype(np.uint8)
    return a


def photo_image(name, max_side=PHOTO_MAX_SIDE):
    im = Image.fromarray(photo_array(name))
    w, h = im.size
    s = min(1.0, max_side / max(w, h))
    if s < 1.0:
        im = im.resize((round(w * s), round(h * s)), Image.LANCZOS)
    return im


def make_images():
    fresh_dir(IMAGES)
    made = []
    for i, (name, mode, (w, h)) in enumerate(PNG_SPECS):
        rgb = synth_rgb(w, h, seed=100 + i)
        if mode == "RGB":
            im = Image.fromarray(rgb, "RGB")
        elif mode == "RGB-pattern":
            # x-only chirp, y-only bands, checkerboard and a disc: sharp, high-frequency, compressible
            y, x = np.mgrid[0:h, 0:w].astype(np.float64)
            chirp = 127.5 + 127.5 * np.cos(np.pi * x * x / (1.0 * w))
            bands = np.where((y.astype(int) // (1 + y.astype(int) // 60)) % 2 == 0, 235.0, 15.0)
            checker = np.where(((x.astype(int) // 8) + (y.astype(int) // 8)) % 2 == 0, 255.0, 0.0)
            img = np.stack([chirp, bands, checker], -1)
            img[(x - 0.3 * w) ** 2 + (y - 0.6 * h) ** 2 < (0.2 * h) ** 2] = [255, 255, 0]
            im = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")
        elif mode == "RGBA":
            im = Image.fromarray(np.dstack([rgb, synth_alpha(w, h, 200 + i)]), "RGBA")
        elif mode == "L":
            im = Image.fromarray(rgb, "RGB").convert("L")
        elif mode == "LA":
            gray = np.asarray(Image.fromarray(rgb, "RGB").convert("L"))
            im = Image.fromarray(np.dstack([gray, synth_alpha(w, h, 200 + i)]), "LA")
        elif mode in ("P", "P+alpha"):
            im = Image.fromarray(rgb, "RGB").quantize(colors=37, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        elif mode == "RGB+tRNS":
            rgb[h // 4: h // 2, w // 5: w // 2] = TRNS_RGB
            rgb[-3:, -3:] = TRNS_RGB
            im = Image.fromarray(rgb, "RGB")
        elif mode == "L+tRNS":
            gray = np.asarray(Image.fromarray(rgb, "RGB").convert("L")).copy()
            gray[h // 3: h // 2 + 3, 2: w // 2] = TRNS_GRAY
            im = Image.fromarray(gray, "L")
        elif mode == "I;16":
            # values 0..~1023 plus a few 65535s: PIL's convert("RGB") CLIPS 16-bit gray at 255 (it does
            # not scale by 1/257), so about three quarters of this image becomes white.
            y, x = np.mgrid[0:h, 0:w]
            v = (1023 * x / (w - 1)).astype(np.int64) + (y % 16) * 3
            v[(x // 10 + y // 10) % 7 == 0] = 65535
            v[y < 20] = (255 * x[y < 20] // (w - 1))
            im = Image.fromarray(v.astype(np.uint16))  # -> mode I;16
        else:
            raise ValueError(mode)
        path = os.path.join(IMAGES, name)
        if mode == "P":
            im.save(path, transparency=5, optimize=False)  # palette index 5 transparent (tRNS)
        elif mode == "P+alpha":
            alpha = bytes([(i * 53) % 256 for i in range(37)])  # several partial alphas, incl. 0
            im.save(path, transparency=alpha, optimize=False)
        elif mode == "RGB+tRNS":
            im.save(path, transparency=TRNS_RGB, optimize=False)
        elif mode == "L+tRNS":
            im.save(path, transparency=TRNS_GRAY, optimize=False)
        else:
            im.save(path, optimize=False)
        check = Image.open(path)
        assert check.mode == mode.split("+")[0].split("-")[0] and check.size == (w, h), (name, check.mode, check.size)
        if "P" in mode or "tRNS" in mode:
            assert "transparency" in check.info, name
        made.append(name)
    # Photos from scikit-image.
    for name in PHOTOS:
        im = photo_image(name)
        im.save(os.path.join(IMAGES, f"{name}.jpg"), quality=90)
        made.append(f"{name}.jpg")
    im = photo_image("chelsea", 225)
    im.save(os.path.join(IMAGES, "chelsea.png"), optimize=False)
    made.append("chelsea.png")
    # JPEG with EXIF orientation 6 (display = stored rotated 90 degrees clockwise).
    im = photo_image("rocket", 160)
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(os.path.join(IMAGES, "exif_orient6.jpg"), quality=90, exif=exif.tobytes())
    made.append("exif_orient6.jpg")
    # Progressive JPEG, 4:4:4, and a CMYK JPEG.
    photo_image("coffee", 200).save(os.path.join(IMAGES, "coffee_progressive.jpg"), quality=85,
                                    progressive=True, subsampling=0)
    made.append("coffee_progressive.jpg")
    photo_image("chelsea", 120).convert("CMYK").save(os.path.join(IMAGES, "cmyk.jpg"), quality=90)
    made.append("cmyk.jpg")
    # Lossless WebP.
    photo_image("astronaut", 160).save(os.path.join(IMAGES, "astronaut.webp"), lossless=True, method=4)
    made.append("astronaut.webp")
    # 2-frame animated GIF (palette); readers use the first frame.
    # The first frame has a transparent palette index covering a rectangle: transformers turns every
    # pixel of that index's colour white.
    f1 = photo_image("chelsea", 120).quantize(colors=63, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal = f1.getpalette()[: 63 * 3] + [0, 255, 0]
    f1.putpalette(pal)
    a = np.asarray(f1).copy()
    a[20:45, 30:70] = 63
    f1 = Image.fromarray(a, "P")
    f1.putpalette(pal)
    f2 = ImageOps.mirror(photo_image("chelsea", 120)).quantize(colors=64, method=Image.Quantize.MEDIANCUT,
                                                               dither=Image.Dither.NONE)
    f1.save(os.path.join(IMAGES, "anim.gif"), save_all=True, append_images=[f2], duration=100, loop=0,
            transparency=63, disposal=2)
    made.append("anim.gif")
    # 24-bit BMP.
    photo_image("coffee", 100).save(os.path.join(IMAGES, "coffee.bmp"))
    made.append("coffee.bmp")
    # A ~1 MP camera-sized JPEG for the benchmarks (benches/, examples/loadgen.rs); no reference.
    retina = Image.fromarray(photo_array("retina"))
    top = (retina.height - 1058) // 2
    retina.crop((0, top, 1411, top + 1058)).resize((1155, 866), Image.LANCZOS).save(
        os.path.join(IMAGES, "retina_1mp.jpg"), quality=90)
    exif_check = Image.open(os.path.join(IMAGES, "exif_orient6.jpg"))
    assert exif_check.getexif().get(0x0112) == 6
    assert load_image(os.path.join(IMAGES, "exif_orient6.jpg")).size == exif_check.size[::-1]
    gif = Image.open(os.path.join(IMAGES, "anim.gif"))
    assert gif.n_frames == 2 and gif.mode == "P" and gif.info.get("transparency") is not None, gif.info
    assert Image.open(os.path.join(IMAGES, "cmyk.jpg")).mode == "CMYK"
    return sorted(made)


# ---------------------------------------------------------------------------------------------
# 5. Reference outputs
# ---------------------------------------------------------------------------------------------

FULL_IMAGES = ["chelsea.jpg", "astronaut.jpg", "coffee.jpg"]  # used by --full reference.json
BIG_RESIZE = set(FULL_IMAGES + ["rgb_7x513.png", "rgb_1000x10.png", "rgb_1x1.png", "rgb_pattern_640x480.png"])

OUTPUT_LABELS = [
    "cat",
    "dog",
    "a cup of coffee",
    "crème brûlée",
    "rocket",
    "an astronaut in a white space suit floating far above the blue Earth, holding a small American "
    "flag, with the black sky, the sun, a space station, many distant stars and a long, long "
    "description that keeps going well past sixty four tokens so that truncation is needed",
]
OUTPUT_IMAGES = ["chelsea.jpg", "rgba_200x150.png", "rgb_7x513.png", "l_200x150.png", "p_31x29.png"]
FULL_LABELS = ["cat", "dog", "an astronaut", "a cup of coffee", "rocket", "crème brûlée", "猫", "a photo of nothing"]


def features(out):
    """transformers 5: get_*_features return a BaseModelOutputWithPooling; the embedding is pooler_output."""
    if isinstance(out, torch.Tensor):
        return out
    return out.pooler_output


def tokenize_for_model(tok, texts):
    enc = tok(texts, padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt")
    assert "attention_mask" not in enc, "tokenizer_config.json must set model_input_names=['input_ids']"
    return enc["input_ids"]


def model_outputs(model, tok, ip, image_paths, labels, template=TEMPLATE):
    texts = [template.format(l) for l in labels]
    input_ids = tokenize_for_model(tok, texts)
    pv = torch.cat([ip(images=[load_image(p)], return_tensors="pt")["pixel_values"] for p in image_paths])
    assert pv.dtype == torch.float32
    with torch.no_grad():
        out = model(input_ids=input_ids, pixel_values=pv)
        img = features(model.get_image_features(pixel_values=pv))
        txt = features(model.get_text_features(input_ids=input_ids))
    img_n = img / img.norm(p=2, dim=-1, keepdim=True)
    txt_n = txt / txt.norm(p=2, dim=-1, keepdim=True)
    logits = out.logits_per_image
    assert torch.allclose(img_n, out.image_embeds, atol=1e-6, rtol=0)
    assert torch.allclose(txt_n, out.text_embeds, atol=1e-6, rtol=0)
    manual = img_n @ txt_n.t() * model.logit_scale.exp() + model.logit_bias
    assert torch.allclose(manual, logits, atol=1e-5, rtol=0), (manual - logits).abs().max()
    tolist = lambda t: [[float(v) for v in row] for row in t.detach().float().numpy()]
    return {
        "template": template,
        "labels": labels,
        "images": [os.path.basename(p) for p in image_paths],
        "input_ids": input_ids.tolist(),
        "logits_per_image": tolist(logits),
        "scores": tolist(torch.sigmoid(logits)),
        "image_embeds": tolist(img_n),
        "text_embeds": tolist(txt_n),
        "unnormalized_image_embeds": tolist(img),
        "unnormalized_text_embeds": tolist(txt),
        "logit_scale": float(model.logit_scale),
        "logit_bias": float(model.logit_bias),
    }


def check_pipeline(model, tok, ip, image_path, labels, ref_scores):
    pipe = transformers.pipeline("zero-shot-image-classification", model=model, tokenizer=tok,
                                 image_processor=ip, device="cpu")
    res = pipe(image_path, candidate_labels=labels)
    got = {r["label"]: r["score"] for r in res}
    diff = max(abs(got[l] - s) for l, s in zip(labels, ref_scores))
    assert diff < 1e-6, diff
    return diff


def processor_input(path):
    """The uint8 RGB image that SiglipImageProcessorPil resizes: load_image (exif_transpose +
    convert("RGB")), then transformers' convert_to_rgb, which composites onto white when the image
    still carries info["transparency"] (PNG tRNS on RGB/L/single-index P, GIF transparency index)."""
    from transformers.image_transforms import convert_to_rgb

    img = load_image(path)
    has_trns = img.info.get("transparency") is not None
    out = Image.fromarray(convert_to_rgb(img, return_numpy=True), "RGB")
    return img, out, has_trns


def resized_name(img_name, w, h):
    return f"{img_name}@{w}x{h}.png"


def make_image_references(images, model_dirs):
    for sub in ("resized", "decoded"):
        fresh_dir(os.path.join(REF, sub))
    tensors = {}
    for name in images:
        loaded, img, has_trns = processor_input(os.path.join(IMAGES, name))
        assert img.mode == "RGB"
        if not name.endswith(".png") or has_trns:
            img.save(os.path.join(REF, "decoded", name + ".png"), compress_level=9)
        if has_trns:
            changed = int((np.asarray(loaded) != np.asarray(img)).any(-1).sum())
            log(f"  {name}: tRNS colour {loaded.info['transparency']} -> white on {changed} pixels")
            assert changed > 0
        sizes = [(48, 48), (46, 46)] + ([(384, 384)] if name in BIG_RESIZE else [])
        resized = {}
        for w, h in sizes:
            r = img.resize((w, h), Image.BICUBIC)
            r.save(os.path.join(REF, "resized", resized_name(name, w, h)), compress_level=9)
            resized[(w, h)] = np.asarray(r)
        for mname, mdir in model_dirs.items():
            ip = load_image_processor(mdir)
            W, H = ip.size["width"], ip.size["height"]
            pv = ip(images=[loaded], return_tensors="pt")["pixel_values"][0].numpy()
            assert pv.dtype == np.float32 and pv.shape == (3, H, W), (pv.dtype, pv.shape)
            # The convention: f32(u8 * rescale_factor computed in f64), then (x - 0.5) / 0.5 in f32.
            x = (resized[(W, H)].astype(np.float64) * ip.rescale_factor).astype(np.float32)
            expect = ((x - np.float32(0.5)) / np.float32(0.5)).transpose(2, 0, 1)
            assert np.array_equal(pv, expect), (name, mname, np.abs(pv - expect).max())
            if img.size == (W, H):  # no filter applied at the target size
                raw = ((np.asarray(img).astype(np.float64) / 255).astype(np.float32) - np.float32(0.5)) / np.float32(0.5)
                assert np.array_equal(pv, raw.transpose(2, 0, 1)), name
            tensors[f"{name}@{mname}"] = np.ascontiguousarray(pv)
    np_save_file(dict(sorted(tensors.items())), os.path.join(REF, "pixel_values.safetensors"),
                 metadata={"format": "np"})  # one key only: the header's map order is not stable
    return tensors


def reference_tokenize(text, sp):
    """What SiglipTokenizer(text, padding="max_length", max_length=64, truncation=True) does, spelled
    out with the raw SentencePieceProcessor (checked against the real thing on every case):
      1. text = "▁" + text.replace("▁", " ")
      2. split out the literal special tokens "</s>" and "<unk>" (no stripping around them)
      3. each other chunk: canonicalise (lower, drop ASCII punctuation, \s+ -> " ", strip; the leading
         "▁" survives), then sp.encode("<unk>" + chunk)[len(sp.encode("<unk>")):] (the "<unk>" prefix
         stops SentencePiece from adding its dummy "▁" to chunks after a special token; a leading "▁"
         is whitespace to SentencePiece, so the first chunk gets exactly one "▁")
      4. drop a leading "▁" piece if a special token follows it
      5. truncate to 63, append </s> (1) unless the last id already is 1, pad with 1 to 64."""
    unk_len = len(sp.encode("<unk>"))
    pieces = []
    for part in re.split("(</s>|<unk>)", "▁" + text.replace("▁", " ")):
        if part in ("</s>", "<unk>"):
            pieces.append(part)
        elif part:
            enc = sp.encode("<unk>" + canonicalize(part), out_type=str)
            pieces += enc[unk_len:] if len(enc) >= unk_len else enc
    if len(pieces) > 1 and pieces[0] == "▁" and pieces[1] in ("</s>", "<unk>"):
        pieces = pieces[1:]
    ids = [sp.piece_to_id(p) for p in pieces][: MAX_LENGTH - 1]
    if not ids or ids[-1] != 1:
        ids.append(1)
    return ids + [1] * (MAX_LENGTH - len(ids))


def make_token_references(model_dirs):
    import tokenizers

    tok = SiglipTokenizer.from_pretrained(model_dirs["tiny-p14"])
    tok16 = SiglipTokenizer.from_pretrained(model_dirs["tiny-p16"])
    fast = tokenizers.Tokenizer.from_file(os.path.join(model_dirs["tiny-p16"], "tokenizer.json"))
    cases = text_cases()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids = tok(cases, padding="max_length", max_length=MAX_LENGTH, truncation=True)["input_ids"]
        ids16 = tok16(cases, padding="max_length", max_length=MAX_LENGTH, truncation=True)["input_ids"]
    assert ids == ids16, "SiglipTokenizer from tiny-p16 (with tokenizer.json) differs from tiny-p14's"
    sp = spm.SentencePieceProcessor(model_file=SPM_PATH)
    out, n_fast_diff = [], 0
    for text, row in zip(cases, ids):
        assert len(row) == MAX_LENGTH
        assert reference_tokenize(text, sp) == row, text
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pieces = tok.tokenize(text)
        case = {"text": text, "ids": row, "canonical": canonicalize(text.replace("▁", " ")),
                "n_pieces": len(pieces), "pieces": pieces[:80]}
        # What tokenizer.json (tokenizers library) gives on the canonicalised text, where different.
        if "</s>" not in text and "<unk>" not in text:
            f = fast.encode(case["canonical"]).ids[: MAX_LENGTH - 1]
            if f[-1:] != [1]:
                f = f + [1]
            f = f + [1] * (MAX_LENGTH - len(f))
            if f != row:
                case["tokenizer_json_ids"] = f
                n_fast_diff += 1
        out.append(case)
    doc = {
        "max_length": MAX_LENGTH,
        "tokenizer": "transformers SiglipTokenizer (slow, sentencepiece) from models/tiny-p14, called as "
                     "tokenizer(texts, padding='max_length', max_length=64, truncation=True)",
        "notes": {
            "pieces": "tokenizer.tokenize(text), first 80 (n_pieces is the full count)",
            "canonical": "SiglipTokenizer.canonicalize_text(text.replace('▁', ' '))",
            "tokenizer_json_ids": "only where different from ids: tokenizers.Tokenizer(models/tiny-p16/"
                                  "tokenizer.json).encode(canonical), truncated to 63, '</s>' appended, "
                                  "padded with 1; cases containing '</s>'/'<unk>' literals are not compared",
        },
        "cases": out,
    }
    write_json(os.path.join(REF, "tokens.json"), doc)
    return out, n_fast_diff


def logit_spread(model, tok, ip, model_dir=None):
    o = model_outputs(model, tok, ip, [os.path.join(IMAGES, n) for n in OUTPUT_IMAGES], OUTPUT_LABELS)
    lg = np.array(o["logits_per_image"])
    return float(lg.max() - lg.min()), o


def make_models(vocab_size):
    dirs, models = {}, {}
    for name in TINY:
        mdir = os.path.join(MODELS, name)
        model = build_model(name, vocab_size, mdir)
        write_model_dir(name, model, mdir)
        tok = SiglipTokenizer.from_pretrained(mdir)
        ip = load_image_processor(mdir)
        spread, _ = logit_spread(model, tok, ip)
        assert spread >= 3.5, (name, spread)
        # reload from disk: the references come from the saved files
        reloaded = SiglipModel.from_pretrained(mdir, dtype=torch.float32).eval()
        sd1, sd2 = model.state_dict(), reloaded.state_dict()
        assert sd1.keys() == sd2.keys() and all(torch.equal(sd1[k], sd2[k]) for k in sd1)
        dirs[name], models[name] = mdir, reloaded
    return dirs, models


def make_output_references(dirs, models):
    entries = []
    for name, mdir in dirs.items():
        model = models[name]
        tok = SiglipTokenizer.from_pretrained(mdir)
        ip = load_image_processor(mdir)
        paths = [os.path.join(IMAGES, n) for n in OUTPUT_IMAGES]
        o = model_outputs(model, tok, ip, paths, OUTPUT_LABELS)
        diff = check_pipeline(model, tok, ip, paths[0], OUTPUT_LABELS, o["scores"][0])
        log(f"{name}: pipeline vs direct max |score diff| = {diff:.3g}")
        entries.append({"model": name, **o})
    write_json(os.path.join(REF, "outputs.json"), entries, indent=1)
    return entries


# ---------------------------------------------------------------------------------------------
# 6. Full-size random models (not committed)
# ---------------------------------------------------------------------------------------------

FULL = {
    "base": dict(
        config=dict(vision_config=dict(image_size=384)),
        out="/work/bigmodels/siglip-base-384-random",
    ),
    "so400m": dict(
        config=dict(
            text_config=dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                             num_attention_heads=16, projection_size=1152),
            vision_config=dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                               num_attention_heads=16, patch_size=14, image_size=384),
        ),
        out="/work/bigmodels/siglip-so400m-384-random",
    ),
}


def make_full(kind, out_dir, config_only=False):
    t0 = time.time()
    spec = FULL[kind]
    config = SiglipConfig(**spec["config"])
    if config_only:
        with torch.device("meta"):
            model = SiglipModel(config)
        n = sum(p.numel() for p in model.parameters())
        log(f"{kind}: config builds, {n / 1e6:.1f} M parameters, {len(model.state_dict())} tensors")
        return
    if not os.path.exists(SPM_PATH):
        raise SystemExit(f"{SPM_PATH} missing: run without --full first")
    torch.manual_seed({"base": 384, "so400m": 400}[kind])
    model = SiglipModel(config).eval().float()
    perturb(model, 4242)
    n = sum(p.numel() for p in model.parameters())
    log(f"{kind}: {n / 1e6:.1f} M parameters, {len(model.state_dict())} tensors, init {time.time() - t0:.0f}s")
    fresh_dir(out_dir)
    model.save_pretrained(out_dir)
    for f in ("generation_config.json",):
        if os.path.exists(os.path.join(out_dir, f)):
            os.remove(os.path.join(out_dir, f))
    write_json(os.path.join(out_dir, "config.json"), sparse_config_dict(config), indent=2)
    check_sparse_config(out_dir, config)
    save_image_processor(out_dir, config.vision_config.image_size)
    save_tokenizer_files(out_dir, with_tokenizer_json=False)
    log(f"{kind}: saved to {out_dir} ({time.time() - t0:.0f}s)")
    tok = SiglipTokenizer.from_pretrained(out_dir)
    ip = load_image_processor(out_dir)
    model = SiglipModel.from_pretrained(out_dir, dtype=torch.float32).eval()
    o = model_outputs(model, tok, ip, [os.path.join(IMAGES, n) for n in FULL_IMAGES], FULL_LABELS)
    write_json(os.path.join(out_dir, "reference.json"), {"model": os.path.basename(out_dir), **o}, indent=1)
    lg = np.array(o["logits_per_image"])
    log(f"{kind}: logits range [{lg.min():.3f}, {lg.max():.3f}]; total {time.time() - t0:.0f}s")


# ---------------------------------------------------------------------------------------------


def dir_size(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def summary(entries, tok_cases, n_fast_diff):
    log("\n== files")
    for root, _, files in sorted(os.walk(FIX)):
        for f in sorted(files):
            p = os.path.join(root, f)
            if "/reference/resized" in p or "/reference/decoded" in p:
                continue
            log(f"  {os.path.relpath(p, REPO):70s} {os.path.getsize(p):>9,d}")
    for sub in ("images", "reference/resized", "reference/decoded", "models"):
        log(f"  {sub + '/ (total)':70s} {dir_size(os.path.join(FIX, sub)):>9,d}")
    log(f"  {'TOTAL tests/fixtures':70s} {dir_size(FIX):>9,d}")
    log("\n== tokens")
    n_long = sum(1 for c in tok_cases if c["n_pieces"] + 1 > MAX_LENGTH)
    n_eos_only = sum(1 for c in tok_cases if c["ids"] == [1] * MAX_LENGTH)
    n_one = sum(1 for c in tok_cases if c["ids"][0] != 1 and c["ids"][1:] == [1] * (MAX_LENGTH - 1))
    log(f"  {len(tok_cases)} cases, {n_long} longer than 63 pieces, {n_eos_only} only '</s>' (all 1), "
        f"{n_one} with a single piece before '</s>'; tokenizer.json differs on {n_fast_diff}")
    log("\n== logits")
    for e in entries:
        lg = np.array(e["logits_per_image"])
        log(f"  {e['model']}: logits in [{lg.min():.3f}, {lg.max():.3f}], scores in "
            f"[{np.min(e['scores']):.4f}, {np.max(e['scores']):.4f}]")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", choices=sorted(FULL), help="write a random full-size model instead")
    ap.add_argument("--out", help="output directory for --full")
    ap.add_argument("--config-only", action="store_true", help="with --full: only check that the config builds")
    args = ap.parse_args()
    if args.full:
        make_full(args.full, args.out or FULL[args.full]["out"], args.config_only)
        return
    t0 = time.time()
    os.makedirs(FIX, exist_ok=True)
    sp = make_spm()
    images = make_images()
    log(f"images: {len(images)} files")
    dirs, models = make_models(sp.get_piece_size())
    fresh_dir(REF)
    make_image_references(images, dirs)
    tok_cases, n_fast_diff = make_token_references(dirs)
    entries = make_output_references(dirs, models)
    summary(entries, tok_cases, n_fast_diff)
    log(f"\ndone in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
