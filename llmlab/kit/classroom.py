"""Classroom tooling: start the workshop JupyterHub on loopback, drive simulated learners through its REST API
and their own kernels, measure each learner kernel's memory (RSS and PSS from /proc/PID/smaps_rollup), and check
the Zero to JupyterHub values file against the chart's schema.

Used by classroom/tests (`make classroom-test`), tests/test_classroom_values.py and benchmarks/bench_classroom*.py;
an instructor runs the hub itself with `make classroom` (classroom/jupyterhub_config.py).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from llmlab import validate as V
from llmlab.kit.exercises import project_root

CONFIG = "classroom/jupyterhub_config.py"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Hub:
    """A running JupyterHub: its process, URL, admin token and working folder."""

    process: subprocess.Popen
    url: str
    token: str
    folder: Path

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None,
            timeout: float = 60) -> dict | list | None:
        """Call the hub's REST API (path after /hub/api); returns the decoded JSON (None for an empty reply)."""
        return http_json(method, f"{self.url}/hub/api{path}", token or self.token, body, timeout)

    def stop(self) -> None:
        """Stop the hub and, with it, the learners' servers it spawned."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def http_json(method: str, url: str, token: str, body: dict | None = None, timeout: float = 60):
    """One authenticated JSON request on loopback; raises RuntimeError with the reply on an HTTP error."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            text = reply.read().decode()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {url} -> {exc.code}: {exc.read().decode()[:300]}") from exc
    return json.loads(text) if text.strip() else None


def start_hub(folder: Path, users: dict[str, str], timeout: float = 120, kernel_threads: int = 1) -> Hub:
    """Start the workshop hub on 127.0.0.1 with test users (name → password) and an admin token; wait until up.

    kernel_threads: torch/OpenMP threads in each learner's kernel (LLMLAB_KERNEL_THREADS; 0 = torch's default, all
    cores)."""
    V.non_empty("users", list(users))
    V.integer("kernel_threads", kernel_threads, low=0)
    folder.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "LLMLAB_HUB_TEST_USERS": json.dumps(users), "LLMLAB_HUB_ADMIN_TOKEN": token,
           "LLMLAB_HUB_IP": "127.0.0.1", "LLMLAB_HUB_PORT": str(port), "LLMLAB_HUB_FOLDER": str(folder),
           "LLMLAB_KERNEL_THREADS": str(kernel_threads),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = open(folder / "hub.log", "w", encoding="utf-8")  # noqa: SIM115 - kept open for the hub's lifetime
    process = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f",
                                str(project_root() / CONFIG)], cwd=folder, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    hub = Hub(process, f"http://127.0.0.1:{port}", token, folder)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyterhub exited with {process.returncode}; see {folder / 'hub.log'}")
        try:
            hub.api("GET", "/", timeout=5)
            return hub
        except (OSError, RuntimeError):
            time.sleep(0.5)
    hub.stop()
    raise TimeoutError(f"jupyterhub did not answer within {timeout} s; see {folder / 'hub.log'}")


def login(hub: Hub, name: str, password: str) -> str:
    """Log a learner in with their password (the login form) and return an API token made for them."""
    import http.cookiejar

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{hub.url}/hub/login", timeout=30).read().decode()
    found = re.search(r'name="_xsrf" value="([^"]+)"', page)
    xsrf = found.group(1) if found else ""
    form = urllib.parse.urlencode({"username": name, "password": password, "_xsrf": xsrf}).encode()
    try:
        opener.open(urllib.request.Request(f"{hub.url}/hub/login?next=", data=form), timeout=60).read()
    except urllib.error.HTTPError as exc:
        if exc.code != 403:
            raise
    if not any(c.name.startswith("jupyterhub-hub-login") for c in jar):
        raise PermissionError(f"login failed for {name!r}")
    return hub.api("POST", f"/users/{name}/tokens", {"note": "llmlab simulated learner", "expires_in": 3600},
                   )["token"]


def start_server(hub: Hub, name: str, token: str, timeout: float = 120) -> str:
    """Start a learner's JupyterLab server and wait for it; returns its base URL."""
    try:
        hub.api("POST", f"/users/{name}/server", token=token)
    except RuntimeError as exc:
        if "400" not in str(exc):  # 400: already running
            raise
    deadline = time.time() + timeout
    while time.time() < deadline:
        user = hub.api("GET", f"/users/{name}", token=token)
        if user.get("server") and not user.get("pending"):
            return f"{hub.url}{user['server'].rstrip('/')}"
        time.sleep(0.5)
    raise TimeoutError(f"{name}'s server did not start within {timeout} s")


def start_kernel(server: str, token: str) -> str:
    """Start a python3 kernel on a learner's server; returns its id."""
    return http_json("POST", f"{server}/api/kernels", token, {"name": "python3"})["id"]


def shutdown_kernel(server: str, token: str, kernel_id: str) -> None:
    """Shut a learner's kernel down (frees its memory)."""
    http_json("DELETE", f"{server}/api/kernels/{kernel_id}", token)


def execute(server: str, token: str, kernel_id: str, code: str, timeout: float = 180) -> str:
    """Run one cell in a running kernel over its websocket; returns everything it printed (errors as 'Name: value')
    once the kernel has replied and gone idle."""
    import websocket

    ws = websocket.create_connection(server.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels",
                                     header=[f"Authorization: token {token}"], timeout=timeout)
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({"header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "learner",
                                   "session": uuid.uuid4().hex, "version": "5.3"},
                        "parent_header": {}, "metadata": {}, "channel": "shell",
                        "content": {"code": code, "silent": False, "store_history": False,
                                    "user_expressions": {}, "allow_stdin": False}}))
    printed, deadline, replied, idle = [], time.time() + timeout, False, False
    try:
        while time.time() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                printed.append(content["text"])
            elif kind == "error":
                printed.append(f"{content['ename']}: {content['evalue']}")
            replied = replied or kind == "execute_reply"
            idle = idle or (kind == "status" and content.get("execution_state") == "idle")
            if replied and idle:  # outputs (iopub) may arrive after the reply (shell); idle comes after the last
                return "".join(printed)
    finally:
        ws.close()
    raise TimeoutError(f"the kernel did not finish within {timeout} s; printed so far: {''.join(printed)!r}")


def run_in_new_kernel(server: str, token: str, code: str, timeout: float = 180) -> tuple[str, str]:
    """Start a kernel on a learner's server, run `code`, return (its kernel id, everything it printed)."""
    kernel_id = start_kernel(server, token)
    return kernel_id, execute(server, token, kernel_id, code, timeout)


def memory_kb(pid: int) -> dict[str, int]:
    """Rss, Pss, shared and private kB of one process (/proc/PID/smaps_rollup; Pss splits shared pages among sharers,
    Private_* is what only this process holds)."""
    out = {}
    for line in Path("/proc", str(pid), "smaps_rollup").read_text(encoding="utf-8").splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty"):
            out[key] = int(rest.split()[0])
    return out


def kernel_pids() -> dict[str, int]:
    """Kernel id → PID for every ipykernel on this machine (read from the processes' command lines)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in cmd]
        if any("ipykernel" in a for a in args):
            conn = next((a for a in args if a.endswith(".json") and "kernel-" in a), "")
            if conn:
                found[Path(conn).stem.removeprefix("kernel-")] = int(proc.name)
    return found


def helm_merge(defaults: dict, overrides: dict) -> dict:
    """Helm's merge of a values file over a chart's defaults: maps merge recursively, lists and scalars replace,
    a null deletes the key. Returns a new dict; neither input changes."""
    merged = dict(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def z2jh_errors(values: dict, chart: Path) -> list[str]:
    """Schema errors ('path: message') of `values` merged over the Zero to JupyterHub chart's defaults, as `helm
    install` checks them; chart is the folder holding the chart's values.yaml and values.schema.yaml."""
    import jsonschema
    import yaml

    if not isinstance(values, dict):
        raise TypeError(f"values must be a dict (a parsed values file), got {type(values).__name__}")
    defaults = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
    schema = yaml.safe_load((chart / "values.schema.yaml").read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return sorted(f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                  for e in validator.iter_errors(helm_merge(defaults, values)))
