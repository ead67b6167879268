"""The workshop JupyterHub on loopback with simulated learners: each logs in with their password, gets their own
JupyterLab, runs chapter 02's first cells in their own kernel (one torch thread) and must get the right answer.
Run: make classroom-test.
"""

from __future__ import annotations

import os

import pytest

from llmlab.kit import classroom

LEARNERS = int(os.environ.get("LLMLAB_CLASS_SIZE", "4"))
FIRST_CELLS = """
from llmlab import models, tokens
model, tokenizer = models.load()
probs = tokens.next_token_probs(model, tokenizer, "The capital of France is", chat=False)
print("next token:", repr(tokenizer.decode(int(probs.argmax()))))
import os; print("workspace:", os.environ["LLMLAB_WORKSPACE"])
import torch; print("torch threads:", torch.get_num_threads())
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    users = {f"learner{i:02d}": f"pw-{i}-{os.getpid()}" for i in range(1, LEARNERS + 1)}
    hub = classroom.start_hub(tmp_path_factory.mktemp("hub"), users)
    yield hub, users
    hub.stop()


def test_every_learner_logs_in_runs_chapter_02_in_their_own_kernel_and_gets_paris(hub):
    hub, users = hub
    with pytest.raises(PermissionError):
        classroom.login(hub, "learner01", "wrong password")
    results = {}
    for name, password in users.items():
        token = classroom.login(hub, name, password)
        server = classroom.start_server(hub, name, token)
        results[name] = classroom.run_in_new_kernel(server, token, FIRST_CELLS)
    pids = classroom.kernel_pids()
    for name, (kernel_id, printed) in results.items():
        assert "next token: ' Paris'" in printed, f"{name} printed {printed!r}"
        assert f"/home/{name}/workspace" in printed, printed
        assert "torch threads: 1\n" in printed, printed  # LLMLAB_KERNEL_THREADS defaults to 1 thread per kernel
        assert kernel_id in pids, f"{name}'s kernel {kernel_id} is not a process here"
    assert len({pids[k] for k, _ in results.values()}) == LEARNERS  # one kernel process per learner
    memory = [classroom.memory_kb(pids[k]) for k, _ in results.values()]
    for m in memory:
        print(f"kernel RSS {m['Rss'] / 1024:.0f} MB, PSS {m['Pss'] / 1024:.0f} MB")
    assert all(m["Pss"] <= m["Rss"] for m in memory)
