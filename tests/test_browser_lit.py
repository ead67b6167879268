"""Browser end to end: `python -m llmlab lit` serves LIT on loopback and headless Chromium uses it.

The UI loads with no network, lists the shipped prompts, its icons render as glyphs (the Material Icons font is
served locally, not fetched from Google Fonts), and selecting an example and a target token shows a salience
map. Fails on any JavaScript error or 5xx response; saves a screenshot (tests/artifacts/lit.png when kept).
Uses the Chromium fixture of test_browser.py and the port helper of lab_server.py.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from lab_server import free_port
from test_browser import browser  # noqa: F401 - the shared headless Chromium fixture

from llmlab import lit_app

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def running_lit(timeout_s: float = 90) -> Iterator[str]:
    """Run `python -m llmlab lit` on a free loopback port; yields its URL once it answers."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "llmlab", "lit", "--port", str(port), "--max-new-tokens", "8"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/llmlab-fonts/icons.css", timeout=5).read()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"python -m llmlab lit exited: {proc.stderr.read()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"the LIT server did not answer within {timeout_s} s")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_lit_lists_prompts_renders_icons_and_shows_salience(browser, tmp_path):  # noqa: F811
    if lit_app.find_icon_font() is None:
        pytest.fail("the Material Icons font is missing: apt-get install fonts-material-design-icons-iconfont "
                    "(or set LLMLAB_ICON_FONT_DIR to a folder holding MaterialIcons-Regular.woff2)")
    screenshot = Path(os.environ.get("LLMLAB_LIT_SCREENSHOT", tmp_path / "lit.png"))
    errors: list[str] = []
    with running_lit() as url:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda exc: errors.append(f"JavaScript error: {exc}"))
        page.on("response", lambda r: errors.append(f"{r.status} from {r.url}") if r.status >= 500 else None)
        try:
            page.goto(url + "/")
            first = lit_app.load_prompts()[0]
            row = page.get_by_text(first["prompt"], exact=True).first
            row.wait_for(timeout=30_000)
            for prompt in lit_app.load_prompts():                  # the data table lists every shipped prompt
                assert page.get_by_text(prompt["prompt"].split("\n")[0], exact=False).count() >= 1, prompt["id"]

            icon = page.locator("mwc-icon").first                  # icons are glyphs, not words
            icon.wait_for(timeout=10_000)
            assert page.evaluate("async () => (await document.fonts.load('24px \"Material Icons\"')).length") > 0
            width, text = icon.evaluate("el => [el.getBoundingClientRect().width, el.textContent.trim()]")
            assert width < 40, f"icon {text!r} is {width:.0f} px wide: drawn as a word, the icon font is missing"

            row.click()
            option = page.locator(".interstitial-target-option", has_text=first["target"].strip()).first
            option.click(timeout=30_000)
            chips = page.locator("sequence-salience-chips .salient-token")
            chips.first.wait_for(timeout=30_000)
            chips.last.click()                                     # explain the last word: the target " Paris"
            page.wait_for_function(
                """() => { const all = [];
                     const walk = (root) => root.querySelectorAll('*').forEach(el => {
                       if (el.classList && el.classList.contains('salient-token')) all.push(el);
                       if (el.shadowRoot) walk(el.shadowRoot); });
                     walk(document);
                     return all.some(el => getComputedStyle(el).getPropertyValue('--token-bg-color').trim()
                                           && !/^(white|#fff|#ffffff|rgb\\(255, 255, 255\\))$/i.test(
                                                getComputedStyle(el).getPropertyValue('--token-bg-color').trim()));
                   }""", timeout=60_000)
            page.screenshot(path=str(screenshot))
        except Exception:
            page.screenshot(path=str(screenshot))
            raise
        finally:
            page.close()
    assert not errors, f"the LIT page had errors (screenshot: {screenshot}):\n" + "\n".join(errors)
