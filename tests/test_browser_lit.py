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
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from lab_server import free_port, stop, wait_until_up
from test_browser import CHROMIUM, CHROMIUM_ARGS

from llmlab.kit import lit_app

ROOT = Path(__file__).resolve().parent.parent
# Width of an icon name drawn in the icon font: one glyph (24 px at 24px) if the font works, ~200 px as a word.
ICON_WIDTH_JS = """async () => { const s = document.createElement('span');
  s.className = 'material-icons'; s.textContent = 'arrow_drop_down'; document.body.appendChild(s);
  try { await document.fonts.load("24px 'Material Icons'"); } catch (e) {}
  await document.fonts.ready; const w = s.getBoundingClientRect().width; s.remove(); return w; }"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium (as test_browser.py's) that cannot see fonts installed on this machine for icons.

    A student's browser on another machine has no Material Icons font; hiding Debian's copy from Chromium's
    fontconfig makes the test pass only if the LIT server itself serves the font.
    """
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test: install Debian's chromium (see .ci/run)")
        pytest.skip("no Chromium on this machine (apt-get install chromium, or set LLMLAB_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    folder = tmp_path_factory.mktemp("fontconfig")
    dirs = [d for d in Path("/usr/share/fonts").glob("*/*") if d.is_dir() and "material" not in d.name.lower()]
    conf = folder / "fonts.conf"
    conf.write_text("<?xml version='1.0'?><!DOCTYPE fontconfig SYSTEM 'fonts.dtd'><fontconfig>"
                    + "".join(f"<dir>{d}</dir>" for d in dirs) + f"<cachedir>{folder}/cache</cachedir></fontconfig>",
                    encoding="utf-8")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     env=dict(os.environ, FONTCONFIG_FILE=str(conf)))
        yield chromium
        chromium.close()


@contextlib.contextmanager
def running_lit(timeout_s: float = 90) -> Iterator[str]:
    """Run `python -m llmlab lit` on a free loopback port; yields its URL once it answers."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "llmlab", "lit", "--port", str(port), "--max-new-tokens", "8"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, lambda: urllib.request.urlopen(url + "/llmlab-fonts/icons.css", timeout=5).read(),
                      "python -m llmlab lit", timeout_s)
        yield url
    finally:
        stop(proc)


def test_lit_lists_prompts_renders_icons_and_shows_salience(browser, tmp_path):
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
            width = page.evaluate(ICON_WIDTH_JS)
            assert width < 40, f"'arrow_drop_down' is {width:.0f} px wide: drawn as a word, the icon font is missing"
            box, inner, text = icon.evaluate(
                "el => [el.getBoundingClientRect().width, el.scrollWidth, el.textContent.trim()]")
            assert inner <= box + 4, f"LIT's icon {text!r} overflows ({inner} px in {box:.0f} px): drawn as a word"

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
