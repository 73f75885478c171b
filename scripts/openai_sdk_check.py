#!/usr/bin/env python3
"""The official `openai` Python SDK against a running siglip-server.

Usage (the SDK version is pinned in scripts/requirements-sdk.txt):
    python3 -m venv .venv-sdk && .venv-sdk/bin/pip install -r scripts/requirements-sdk.txt
    .venv-sdk/bin/python scripts/openai_sdk_check.py                      # starts target/debug/siglip-server on the tiny fixture
    .venv-sdk/bin/python scripts/openai_sdk_check.py --base-url http://127.0.0.1:8080/v1 --api-key KEY

Checks `client.embeddings.create` (its default encoding is base64, which the SDK decodes),
`encoding_format="float"`, `client.models.list()`, and `client.post("/classify", ...)`.
Exits non-zero on any mismatch.
"""
import argparse
import base64
import math
import sys

import openai

from local_server import ROOT, start_server


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url")
    parser.add_argument("--api-key", default="sdk-check-key")
    parser.add_argument("--expect-auth", action="store_true",
                        help="the server at --base-url requires --api-key: check that a wrong key gets 401")
    args = parser.parse_args()
    process = None
    base_url = args.base_url
    if base_url is None:
        process, base = start_server(args.api_key)
        base_url = base + "/v1"
    try:
        client = openai.OpenAI(base_url=base_url, api_key=args.api_key)
        model = client.models.list().data[0].id
        print("models.list ->", model)

        png = base64.b64encode((ROOT / "tests/fixtures/images/rgb_46x46.png").read_bytes()).decode()
        image_part = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}

        default = client.embeddings.create(model=model, input=["a photo of a cat", "a dog"])
        floats = client.embeddings.create(model=model, input=["a photo of a cat", "a dog"], encoding_format="float")
        for a, b in zip(default.data, floats.data):
            assert len(a.embedding) == len(b.embedding) > 0
            # JSON floats print the shortest f32 text; base64 carries the exact bits.
            assert max(abs(x - y) for x, y in zip(a.embedding, b.embedding)) < 1e-6
            assert abs(math.sqrt(sum(x * x for x in a.embedding)) - 1.0) < 1e-5
        print(f"embeddings.create (base64 default) -> {len(default.data)} x {len(default.data[0].embedding)}, "
              f"equal to encoding_format=float within 1e-6, L2 norm 1; usage {default.usage.prompt_tokens} tokens")

        mixed = client.embeddings.create(model=model, input=["a cat", image_part], encoding_format="float")
        print(f"embeddings.create (text + image part) -> {len(mixed.data)} embeddings")

        result = client.post("/classify", cast_to=object,
                             body={"model": model, "image": f"data:image/png;base64,{png}",
                                   "labels": ["cat", "dog", "a red car"], "top_k": 2})
        scores = result["data"][0]["scores"]
        assert len(scores) == 2 and scores[0]["score"] >= scores[1]["score"]
        print("post('/classify') ->", [(s["label"], round(s["score"], 4)) for s in scores])

        try:
            client.post("/classify", cast_to=object, body={"image": f"data:image/png;base64,{png}", "labels": []})
            raise AssertionError("empty labels were accepted")
        except openai.BadRequestError as error:
            print("empty labels -> BadRequestError:", error.body)
        if process is not None or args.expect_auth:
            bad = openai.OpenAI(base_url=base_url, api_key="wrong")
            try:
                bad.models.list()
                raise AssertionError("a wrong key was accepted")
            except openai.AuthenticationError as error:
                print("wrong key -> AuthenticationError:", error.status_code)
        print("openai SDK check: all passed")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
