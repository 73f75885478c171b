"""Starts target/debug/siglip-server on the tiny fixture model for the client checks
(openai_sdk_check.py, hf_client_check.py) and waits until it is ready."""
import os
import pathlib
import subprocess
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent


def start_server(api_key):
    """The running process and its base URL (http://127.0.0.1:PORT)."""
    binary = ROOT / "target" / "debug" / "siglip-server"
    command = [str(binary), "serve", "--port", "0", "--model", str(ROOT / "tests/fixtures/models/tiny-p16"),
               "--api-key", api_key]
    env = dict(os.environ, RUST_LOG="warn")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline().strip()
    assert line.startswith("listening on "), line
    base = line[len("listening on "):]
    for _ in range(600):
        try:
            if urllib.request.urlopen(base + "/ready").status == 200:
                break
        except Exception:
            time.sleep(0.05)
    return process, base
