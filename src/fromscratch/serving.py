"""Talk to a trained model: `transformers serve` (an OpenAI-compatible /v1/chat/completions over local model
folders) with our start checks in front, the chat page beside it, and `transformers chat` as the terminal client.

    python -m fromscratch.serving serve --models outputs/04_sft [outputs/06_rlhf] --port 8000
    python -m fromscratch.serving chat --model outputs/04_sft --port 8000

The server is the library's, not ours: we only refuse at start, in one line, what it would accept and then fail
on (a folder that is not a chat model, a busy port), and serve one static page (resources/chat_page) that talks
to it from the browser. One model is preloaded (`transformers serve MODEL`); with two or more the server loads
each on its first request (a request names the model by its folder, as the page and `transformers chat` do).
The model's own chat template and generation_config.json (the SFT stage's end-of-turn token among its
eos_token_id) decide where a reply stops.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from fromscratch.artifacts import CHAT_STAGES, FINISHED_MARKER, KINDS, check_parent
from fromscratch.config import UserError

PAGE = Path(__file__).parent / "resources" / "chat_page"


def check_chat_model(path: str) -> str:
    """A local folder that holds a causal LM trained to chat (our SFT or RLHF output, or a foreign model with a
    chat template); else one line saying which stage makes one. Returns the folder as the server will name it."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UserError(f"MODEL: no such folder {path} (run `make sft` first, or name a model folder)")
    check_parent(path, "sft", key="MODEL")
    try:
        stage = json.loads((folder / FINISHED_MARKER).read_text()).get("stage")
    except (OSError, ValueError, AttributeError):
        stage = None  # a foreign folder (a Hub model saved locally): its chat template decides
    if stage in KINDS and stage not in CHAT_STAGES:
        raise UserError(f"MODEL: {path} is {KINDS[stage]}, not a chat model: its tokenizer carries the chat "
                        f"template but it was never trained on it (serve the output of `make sft` or `make rlhf`)")
    config = {}
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        pass
    if not (folder / "chat_template.jinja").is_file() and not config.get("chat_template"):
        raise UserError(f"MODEL: {path} has no chat template, so it is not a chat model (a pretrained model is "
                        f"not one: serve the output of `make sft` or `make rlhf`)")
    return path


def check_port(host: str, port: int, key: str = "PORT") -> None:
    """Refuse a port someone listens on, before the server loads anything."""
    if not 0 < port < 65536:
        raise UserError(f"{key}: {port} is not a TCP port (1-65535)")
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as err:
            raise UserError(f"{key}: {host}:{port} is busy ({err.strerror}): stop what listens there or pick "
                            f"another {key}") from None


def transformers_cli() -> str:
    """The `transformers` command of this interpreter's environment (a venv used by its path, never activated)."""
    here = Path(sys.executable).parent / "transformers"
    return str(here) if here.exists() else "transformers"


def server_command(models: list[str], host: str, port: int, device: str) -> list[str]:
    cmd = [transformers_cli(), "serve", "--host", host, "--port", str(port), "--device", device,
           "--enable-cors",  # the chat page is served from another port
           "--log-level", "warning", "--format", "quiet"]
    if len(models) == 1:
        cmd.insert(2, models[0])  # preloaded: the first reply needs no load
    else:
        cmd += ["--model-timeout", str(10 ** 9)]  # loaded on first use and kept: two models side by side
    return cmd


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError(f"the server stopped at start (exit {proc.returncode}); its output is above")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise UserError(f"the server did not answer {url}/health within {timeout:.0f} s")


class _Page(http.server.SimpleHTTPRequestHandler):
    """The static chat page, plus /config.json telling it where the API is and which models it serves."""

    def __init__(self, *a, settings: dict, **kw):
        self.settings = settings
        super().__init__(*a, directory=str(PAGE), **kw)

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path.split("?")[0] == "/config.json":
            body = json.dumps(self.settings).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            super().do_GET()

    def log_message(self, *args):  # quiet: the server's own log is the one to read
        pass


def start_page(host: str, port: int, api: str, models: list[str]) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_Page, settings={"api": api, "models": models})
    page = http.server.ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=page.serve_forever, daemon=True).start()
    return page


def serve(models: list[str], host: str, port: int, page_port: int | None, device: str) -> int:
    models = [check_chat_model(m) for m in models]
    check_port(host, port)
    if page_port:
        check_port(host, page_port, key="PAGE_PORT")
    api = f"http://{host}:{port}"
    proc = subprocess.Popen(server_command(models, host, port, device), env=os.environ | {"HF_HUB_OFFLINE": "1"})
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        wait_healthy(api, proc)
        page = start_page(host, page_port, api, models) if page_port else None
        print(f"[serve] {', '.join(models)} at {api}/v1/chat/completions (OpenAI-compatible)"
              + (f"; chat page http://{host}:{page_port}/" if page else ""), flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)


def chat(model: str, host: str, port: int, device: str) -> int:
    """`transformers chat` against the server at host:port, started here (and stopped after) if none answers."""
    api, proc = f"http://{host}:{port}", None
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=2):
            pass
    except OSError:
        check_chat_model(model)
        check_port(host, port)
        proc = subprocess.Popen(server_command([model], host, port, device),
                                env=os.environ | {"HF_HUB_OFFLINE": "1"})
        wait_healthy(api, proc)
    try:
        return subprocess.call([transformers_cli(), "chat", model, api])
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fromscratch.serving", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve model folders on an OpenAI-compatible API, with the chat page")
    s.add_argument("--models", nargs="+", required=True, help="model folders (two: the page compares them)")
    s.add_argument("--page_port", type=int, default=None, help="the chat page's port (default: PORT + 1; 0: none)")
    c = sub.add_parser("chat", help="a terminal chat (starts a server if none answers on the port)")
    c.add_argument("--model", required=True, help="a model folder")
    for p in (s, c):
        p.add_argument("--host", default="127.0.0.1", help="listen address (127.0.0.1: this machine only)")
        p.add_argument("--port", type=int, default=8000, help="the API's port")
        p.add_argument("--device", default="auto", help="cpu, cuda:0 or auto (a GPU where there is one)")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            page_port = args.port + 1 if args.page_port is None else args.page_port
            return serve(args.models, args.host, args.port, page_port, args.device)
        return chat(args.model, args.host, args.port, args.device)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
