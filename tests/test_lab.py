"""End to end: the JupyterLab that `make lab` starts serves the notebooks and has the widget extension."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "llmlab-test"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> object:
    """GET a JSON document from the local server."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def lab_url():
    """A JupyterLab server on loopback rooted at the checkout, as `make lab` starts it."""
    port = free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={ROOT}",
           "--ServerApp.open_browser=False", "--allow-root", "--LabApp.extension_manager=readonly", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
           "jupyterlab.NeverCheckForUpdate"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            get_json(f"{url}/api/status?token={TOKEN}")
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited: {proc.stderr.read()[-2000:]}")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("jupyter lab did not answer within 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


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
