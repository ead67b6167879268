"""End to end: the JupyterLab that `make lab` starts serves the notebooks and has the widget extension."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from lab_server import TOKEN, get_json, running_lab

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab_url():
    """A JupyterLab server on loopback rooted at the checkout, as `make lab` starts it."""
    with running_lab(ROOT) as url:
        yield url


def test_lab_serves_every_chapter_notebook(lab_url):
    listing = get_json(f"{lab_url}/api/contents/notebooks?token={TOKEN}")
    served = {item["name"] for item in listing["content"]}
    assert served == {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    nb = get_json(f"{lab_url}/api/contents/notebooks/00_setup_and_tour.ipynb?token={TOKEN}")
    assert nb["type"] == "notebook" and nb["content"]["cells"][0]["source"].startswith("# 00")


def test_lab_has_the_widget_extension(lab_url):
    with urllib.request.urlopen(f"{lab_url}/lab?token={TOKEN}", timeout=10) as response:
        page = response.read().decode()
    assert "@jupyter-widgets/jupyterlab-manager" in page


def test_lab_does_not_ask_about_jupyter_news(lab_url):
    """make setup disables the announcements plugin: an offline classroom gets no news prompt."""
    with urllib.request.urlopen(f"{lab_url}/lab?token={TOKEN}", timeout=10) as response:
        page = response.read().decode()
    config = json.loads(page.split('id="jupyter-config-data" type="application/json">', 1)[1].split("</script>", 1)[0])
    assert "@jupyterlab/apputils-extension:announcements" in config["disabledExtensions"]
