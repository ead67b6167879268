"""A JupyterLab server on loopback, started as `make lab` starts it, for the end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

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


@contextlib.contextmanager
def running_lab(root: Path, state: Path | None = None) -> Iterator[str]:
    """Run JupyterLab rooted at `root` on a free loopback port; yields its base URL.

    With `state`, the user settings and workspaces live there (every notebook cell rendered, no windowing),
    so the test neither reads nor writes the user's own JupyterLab state.
    """
    port = free_port()
    env = dict(os.environ)
    if state is not None:
        tracker = state / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
        tracker.parent.mkdir(parents=True, exist_ok=True)
        tracker.write_text(json.dumps({"windowingMode": "none"}), encoding="utf-8")
        env.update(JUPYTERLAB_SETTINGS_DIR=str(state / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
           "--ServerApp.open_browser=False", "--allow-root", "--LabApp.extension_manager=readonly",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, lambda: get_json(f"{url}/api/status?token={TOKEN}"), "jupyter lab", 60)
        yield url
    finally:
        stop(proc)


def wait_until_up(proc: subprocess.Popen, probe, name: str, timeout_s: float) -> None:
    """Call probe() every 0.5 s until it stops raising OSError; fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            probe()
            return
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited: {proc.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not answer within {timeout_s} s")
            time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server process, killing it if it does not exit within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
