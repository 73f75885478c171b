#!/usr/bin/env python3
"""Generate the test fixtures of siglip-server (tests/fixtures/, see tests/fixtures/README.md).

Usage, from the repository root, with the environment of tests/fixtures/README.md
(python3 -m venv .venv-fixtures && .venv-fixtures/bin/pip install -r scripts/requirements-fixtures.txt):

    .venv-fixtures/bin/python scripts/make_fixtures.py              # all small fixtures
    .venv-fixtures/bin/python scripts/make_fixtures.py --full base  # random full-size base-384 model
    .venv-fixtures/bin/python scripts/make_fixtures.py --full so400m [--out DIR]
    .venv-fixtures/bin/python scripts/make_fixtures.py --siglip2     # only tests/fixtures/siglip2/
    .venv-fixtures/bin/python scripts/make_fixtures.py --full naflex-base   # or naflex-so400m

--full writes to --out DIR, by default $SIGLIP_BIGMODELS/siglip-<kind>-384-random, where
SIGLIP_BIGMODELS defaults to target/bigmodels in the repository.

Everything is deterministic (fixed seeds, sorted inputs, single-threaded training) and idempotent
(the outputs are rewritten from scratch on every run).  The reference values come from transformers'
PIL image path (SiglipImageProcessorPil) and the slow SiglipTokenizer, i.e. what the
zero-shot-image-classification pipeline computes when torchvision is absent.

The code lives in the package scripts/fixtures/ (one module per concern); this file is its command line.
"""

from __future__ import annotations

import argparse
import os
import time

# The package sits beside this file (scripts/ is sys.path[0] when run as a script); fixtures.common
# comes first: it sets the environment before the heavy imports.
from fixtures.common import BIGMODELS, FIX, REF, fresh_dir, log
from fixtures.full_size import FULL, make_full
from fixtures.images import make_images
from fixtures.references import make_image_references, make_models, make_output_references, make_token_references
from fixtures.siglip2 import FULL_NAFLEX, make_full_naflex, make_siglip2
from fixtures.spm_text import make_spm
from fixtures.summary import summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", choices=sorted(FULL) + sorted(FULL_NAFLEX),
                    help="write a random full-size model instead")
    ap.add_argument("--siglip2", action="store_true",
                    help="only the SigLIP 2 fixtures (tests/fixtures/siglip2/models and their references)")
    ap.add_argument("--out", help="output directory for --full")
    ap.add_argument("--config-only", action="store_true", help="with --full: only check that the config builds")
    args = ap.parse_args()
    if args.full in FULL_NAFLEX:
        make_full_naflex(args.full, args.out or os.path.join(BIGMODELS, f"siglip2-{args.full}-random"))
        return
    if args.full:
        make_full(args.full, args.out or FULL[args.full]["out"], args.config_only)
        return
    if args.siglip2:
        make_siglip2()
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
