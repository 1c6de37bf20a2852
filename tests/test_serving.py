"""make serve / make chat (fromscratch.serving): the refusals at start, the OpenAI-compatible API over a model
folder the SFT stage wrote, and the chat page in a real headless browser."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import error_line, free_port, recipe_env
from fromscratch import serving
from fromscratch.config import UserError

CHROMIUM = Path("/usr/bin/chromium")


def serve_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "fromscratch.serving", "serve", *args]


def test_a_folder_that_is_not_a_chat_model_is_refused_at_start_in_one_line(pretrained_dir, reward_dir,
                                                                           tokenizer_dir, sft_dir, tmp_path):
    foreign = tmp_path / "foreign"  # a causal LM with no chat template and no run_info (a Hub model saved here)
    foreign.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        shutil.copy(sft_dir / name, foreign / name)
    config = json.loads((sft_dir / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (foreign / "tokenizer_config.json").write_text(json.dumps(config))
    cases = {pretrained_dir: "not a chat model", reward_dir: "a causal LM is needed", tokenizer_dir: "no model in",
             tmp_path / "nothing": "no such folder", foreign: "has no chat template"}
    for folder, expected in cases.items():
        port = free_port()
        proc = subprocess.run(serve_cmd("--models", str(folder), "--port", str(port)), env=recipe_env(),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and expected in error_line(proc), (folder, proc.stderr[-1000:])


def test_a_busy_port_is_refused_in_one_line(sft_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(serve_cmd("--models", str(sft_dir), "--port", str(port)), env=recipe_env(),
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and f"127.0.0.1:{port} is busy" in error_line(proc)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-2**20, max_value=2**20))
def test_any_port_number_is_taken_or_refused_in_one_line(port):
    try:
        serving.check_port("127.0.0.1", port)
    except UserError as err:
        assert "\n" not in str(err) and str(port) in str(err)
    else:
        assert 0 < port < 65536


@pytest.fixture(scope="module")
def server(sft_dir, tmp_path_factory):
    """The SFT fixture and a second copy of it served as `make serve MODEL="a b"` does: API and page ports."""
    second = tmp_path_factory.mktemp("second") / "04_sft_copy"
    shutil.copytree(sft_dir, second)
    api, page = free_port(), free_port()
    proc = subprocess.Popen(serve_cmd("--models", str(sft_dir), str(second), "--port", str(api),
                                      "--page_port", str(page), "--device", "cpu"),
                            env=recipe_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    for line in proc.stdout:  # the ready line comes after the server answered /health
        if line.startswith("[serve]") or time.monotonic() > deadline:
            break
    assert proc.poll() is None, "the server stopped at start"
    yield {"api": f"http://127.0.0.1:{api}", "page": f"http://127.0.0.1:{page}",
           "models": [str(sft_dir), str(second)], "proc": proc}
    proc.terminate()
    proc.wait(30)


def reference_reply(model_dir: Path, prompt: str, max_new_tokens: int) -> tuple[str, bool]:
    """Greedy generate with the folder's chat template and generation_config: (text, stopped at an eos id)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    out = model.generate(ids, do_sample=False, max_new_tokens=max_new_tokens)[0, ids.shape[1]:]
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    return tok.decode(out, skip_special_tokens=True), bool(len(out) and int(out[-1]) in eos)


def test_an_openai_client_gets_the_reply_generate_gives_and_it_stops_at_the_end_of_the_turn(server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server['api']}/v1", api_key="local")
    model = server["models"][0]
    prompt = "Tell me about the king."
    expected, stopped = reference_reply(Path(model), prompt, 48)
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                           max_tokens=48, temperature=0)
    text = reply.choices[0].message.content
    assert text.strip() and text == expected
    assert "<|im_end|>" not in text and "<|im_start|>" not in text  # the turn's markers are not in the reply
    assert reply.choices[0].finish_reason == ("stop" if stopped else "length")
    chunks = [c.choices[0].delta.content for c in client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=48, temperature=0, stream=True)
        if c.choices and c.choices[0].delta.content]
    assert len(chunks) > 1 and "".join(chunks) == expected  # streamed piece by piece, the same text
    with urllib.request.urlopen(f"{server['api']}/v1/models") as r:
        assert model in {m["id"] for m in json.load(r)["data"]}


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")
def test_browser_chat_page_streams_a_reply_from_two_models_side_by_side(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"])
        page = browser.new_page()
        page.goto(server["page"])
        page.wait_for_selector(".column")
        assert page.locator(".column").count() == 2  # two models: compared side by side by default
        # count the text updates of each reply as they arrive: more than one means it streamed
        page.evaluate("""() => { window.updates = 0;
            new MutationObserver(() => { window.updates += 1; }).observe(document.getElementById('columns'),
                {subtree: true, childList: true, characterData: true}); }""")
        page.fill("#prompt", "Tell me about the king.")
        page.click("#send")
        page.wait_for_selector(".column .assistant[data-done='true'] >> nth=1", timeout=120_000)
        replies = page.locator(".column .assistant").all_inner_texts()
        updates = page.evaluate("window.updates")
        page.screenshot(path=str(tmp_path / "chat_page.png"))  # kept with pytest's temporary folders, to look at
        browser.close()
    assert len(replies) == 2 and all(r.strip() for r in replies), replies
    assert updates > 4, updates  # two user turns, two empty replies, then the streamed pieces
