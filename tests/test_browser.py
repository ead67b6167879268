"""Browser end to end: a chapter notebook runs in JupyterLab in headless Chromium and its widget responds.

Needs Chromium (Debian's `chromium`; `.ci/run` installs it) and the `playwright` package (a dev dependency).
Skipped on a machine without Chromium, except in CI, where a missing browser fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from lab_server import TOKEN, running_lab

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("LLMLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# The flags a closed network needs: no background fetches that would be refused at every start.
TRACEBACK = "Traceback (most recent call last)"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by Playwright."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test: install Debian's chromium (see .ci/run)")
        pytest.skip("no Chromium on this machine (apt-get install chromium, or set LLMLAB_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def run_all(page, url: str, screenshot: Path, timeout_s: float = 240) -> None:
    """Open a notebook, run every cell from the Run menu, wait until each code cell has run; fail on a traceback."""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=60_000)  # the kernel has started
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        errors = [t for t in page.locator(".jp-OutputArea-output").all_inner_texts() if TRACEBACK in t]
        if errors:
            page.screenshot(path=str(screenshot))
            pytest.fail(f"a cell raised (screenshot: {screenshot}):\n{errors[0][-2000:]}")
        if prompts and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts):
            return
        time.sleep(1)
    page.screenshot(path=str(screenshot))
    pytest.fail(f"the notebook did not finish within {timeout_s} s (screenshot: {screenshot}); prompts: {prompts}")


def test_chapter_03_runs_in_jupyterlab_and_its_attention_widget_redraws(browser, tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(ROOT / "notebooks" / "03_attention_and_kv_cache.ipynb", notebooks)  # never touch the checkout's copy
    with running_lab(notebooks, state=tmp_path / "lab") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        run_all(page, f"{url}/lab/tree/03_attention_and_kv_cache.ipynb?token={TOKEN}", tmp_path / "03.png")
        outputs = " ".join(page.locator(".jp-OutputArea-output").all_inner_texts())
        assert "next token: ' Paris'" in outputs

        widget = page.locator(".widget-interact").first
        image = widget.locator("img").first
        image.wait_for(timeout=30_000)
        before = image.get_attribute("src")
        widget.locator(".noUi-handle").first.click()
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([el, old]) => el.querySelector('img') && el.querySelector('img').src !== old",
            arg=[widget.element_handle(), before], timeout=30_000)
        assert widget.locator(".widget-readout").first.inner_text().strip() == "3"
        page.close()
