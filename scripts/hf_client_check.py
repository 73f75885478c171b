#!/usr/bin/env python3
"""The official `huggingface_hub.InferenceClient` against a running siglip-server.

Usage (the client's version is pinned in scripts/requirements-sdk.txt):
    python3 -m venv .venv-sdk && .venv-sdk/bin/pip install -r scripts/requirements-sdk.txt
    .venv-sdk/bin/python scripts/hf_client_check.py                       # starts target/debug/siglip-server on the tiny fixture
    .venv-sdk/bin/python scripts/hf_client_check.py --url http://127.0.0.1:8080 --api-key KEY

`InferenceClient(model=URL).zero_shot_image_classification(image, candidate_labels=...)` posts
the Inference API's body to the server's root; its scores must equal `/v1/classify`'s for the
same image and labels, highest first, and a bad request must raise the client's HTTP error with
the server's message. Exits non-zero on any mismatch.
"""
import argparse
import base64
import json
import sys
import urllib.request

import huggingface_hub

from local_server import ROOT, start_server


def classify_v1(url, api_key, image_bytes, labels, template):
    body = {"image": base64.b64encode(image_bytes).decode(), "labels": labels}
    if template is not None:
        body["hypothesis_template"] = template
    request = urllib.request.Request(url + "/v1/classify", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json",
                                              "authorization": f"Bearer {api_key}"})
    with urllib.request.urlopen(request) as response:
        return {s["label"]: s["score"] for s in json.load(response)["data"][0]["scores"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--api-key", default="hf-check-key")
    args = parser.parse_args()
    process = None
    url = args.url
    if url is None:
        process, url = start_server(args.api_key)
    try:
        client = huggingface_hub.InferenceClient(model=url, token=args.api_key)
        image = ROOT / "tests/fixtures/images/chelsea.jpg"
        labels = ["cat", "dog", "a cup of coffee"]
        for template in [None, "a picture of {}"]:
            result = client.zero_shot_image_classification(image, candidate_labels=labels,
                                                           hypothesis_template=template)
            scores = [(r.label, r.score) for r in result]
            assert [s for _, s in scores] == sorted((s for _, s in scores), reverse=True), scores
            expected = classify_v1(url, args.api_key, image.read_bytes(), labels, template)
            assert {label for label, _ in scores} == set(labels), scores
            for label, score in scores:
                assert abs(score - expected[label]) < 1e-6, (label, score, expected[label])
            print(f"zero_shot_image_classification (template {template!r}) ->",
                  [(label, round(score, 4)) for label, score in scores], "= /v1/classify")
        try:
            client.zero_shot_image_classification(image, candidate_labels=["cat", "  "])
            raise AssertionError("an empty label was accepted")
        except huggingface_hub.errors.HfHubHTTPError as error:
            assert error.response.status_code == 400, error
            assert "label" in str(error), error
            print("empty label -> HfHubHTTPError 400:", str(error).splitlines()[-1])
        print("huggingface_hub check: all passed")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
