"""JupyterHub for an llmlab workshop on one machine: one JupyterLab per learner, the kit's Python environment as
the kernel, the model cache shared read-only, each learner's work in their own ~/workspace.

Instructor: `make classroom` (as root on the workshop machine) runs `jupyterhub -f classroom/jupyterhub_config.py`.
Learners log in with their system account (PAM); create accounts first (e.g. `useradd -m learner01`).
Environment knobs: LLMLAB_HUB_IP (default 127.0.0.1; set 0.0.0.0 to serve the room, behind TLS), LLMLAB_HUB_PORT
(8000), LLMLAB_HOME (the shared model cache, fetched once by the instructor), LLMLAB_KERNEL_THREADS (torch/OpenMP
threads in each learner's kernel, default 1; 0 keeps torch's default of one thread per core in every kernel, which
oversubscribes the machine as soon as several learners run a model at once: see benchmarks/bench_classroom_load.py).

Tests (`make classroom-test`) set LLMLAB_HUB_TEST_USERS: then users and passwords come from that JSON, every
learner's server runs as the current user with a home under LLMLAB_HUB_FOLDER, and LLMLAB_HUB_ADMIN_TOKEN is an
admin API token. Never set those on a real workshop machine.
"""

import json
import os
import sys
from pathlib import Path

from jupyterhub.auth import Authenticator

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CACHE = os.environ.get("LLMLAB_HOME", str(Path.home() / ".cache" / "llmlab"))
PROXY = ROOT / "classroom" / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"
THREADS = os.environ.get("LLMLAB_KERNEL_THREADS", "1")
if not THREADS.isdigit():
    raise ValueError(f"LLMLAB_KERNEL_THREADS must be a whole number >= 0 (0 = torch's default), got {THREADS!r}")
# torch reads OMP_NUM_THREADS when it starts; unset (0), it starts one thread per core in every kernel
KERNEL_THREADS = {} if THREADS == "0" else {"OMP_NUM_THREADS": THREADS, "MKL_NUM_THREADS": THREADS}

c.JupyterHub.ip = os.environ.get("LLMLAB_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("LLMLAB_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
if PROXY.exists():
    c.ConfigurableHTTPProxy.command = [str(PROXY)]

c.Spawner.cmd = [str(VENV_BIN / "jupyterhub-singleuser")]  # the kit's environment: its python3 kernel is llmlab's
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.environment = {
    "LLMLAB_HOME": CACHE,  # shared, read-only for learners: models load from it, nothing writes to it
    "LLMLAB_WORKSPACE": lambda spawner: str(learner_home(spawner) / "workspace"),
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    "LLMLAB_KERNEL_THREADS": THREADS,
    **KERNEL_THREADS,
}
c.Spawner.args = ["--ServerApp.terminals_enabled=False"]
c.LabApp.news_url = None


def learner_home(spawner) -> Path:
    """The folder a learner's JupyterLab opens in: notebook_dir (with {username} filled in), else their home."""
    if spawner.notebook_dir:
        return Path(spawner.format_string(spawner.notebook_dir)).expanduser()
    return Path(f"~{spawner.user.name}").expanduser()


def link_course(spawner) -> None:
    """Before a learner's server starts: ~/notebooks points at the kit's chapters (read-only), ~/workspace exists."""
    home = learner_home(spawner)
    home.mkdir(parents=True, exist_ok=True)
    (home / "workspace").mkdir(exist_ok=True)
    for name in ("notebooks", "exercises"):
        link = home / name
        if not link.exists():
            link.symlink_to(ROOT / name)


c.Spawner.pre_spawn_hook = link_course

TEST_USERS = os.environ.get("LLMLAB_HUB_TEST_USERS")
if TEST_USERS:
    users = json.loads(TEST_USERS)

    class TestPasswords(Authenticator):
        """Per-user passwords from LLMLAB_HUB_TEST_USERS (tests only)."""

        async def authenticate(self, handler, data):
            """The user name when its password matches, else None."""
            name = data.get("username", "")
            return name if name in users and data.get("password") == users[name] else None

    folder = Path(os.environ["LLMLAB_HUB_FOLDER"])
    c.JupyterHub.authenticator_class = TestPasswords
    c.Authenticator.allowed_users = set(users)
    c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
    if os.geteuid() == 0:  # test servers run as the current user, which is root on CI machines
        c.Spawner.args = [*c.Spawner.args, "--ServerApp.allow_root=True"]
    c.SimpleLocalProcessSpawner.home_dir_template = str(folder / "home" / "{username}")
    c.Spawner.notebook_dir = str(folder / "home" / "{username}")
    c.JupyterHub.services = [{"name": "llmlab-test", "api_token": os.environ["LLMLAB_HUB_ADMIN_TOKEN"],
                              "admin": True}]
    c.JupyterHub.load_roles = [{"name": "llmlab-test", "services": ["llmlab-test"],
                                "scopes": ["admin:users", "admin:servers", "tokens", "admin-ui", "list:users",
                                           "read:users", "servers", "access:servers"]}]
    c.JupyterHub.db_url = f"sqlite:///{folder / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(folder / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.pid_file = str(folder / "proxy.pid")
else:
    c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
