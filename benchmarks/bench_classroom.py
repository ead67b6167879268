"""Classroom memory: N simulated learners on the workshop JupyterHub (loopback), each with a kernel that loaded the
model; RSS and PSS per kernel and per JupyterLab server, for N = 1, 4, 8, and the largest class that fits.

Run: python -m llmlab bench classroom   [--sizes 1 4 8] [--memory-gb 24]
PSS (proportional set size) divides pages shared by k processes by k: safetensors memory-maps the weights, so
every kernel reads the same page-cache pages and the per-learner cost is far below RSS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import machine_header, write_result

from llmlab.kit import classroom

CODE = ("from llmlab import models, tokens\nmodel, tokenizer = models.load()\n"
        "probs = tokens.next_token_probs(model, tokenizer, 'The capital of France is', chat=False)\n"
        "print(repr(tokenizer.decode(int(probs.argmax()))))")


def server_pids() -> list[int]:
    """PIDs of running jupyterhub-singleuser servers."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"jupyterhub-singleuser" in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def measure_class(n: int) -> dict:
    """Start a hub with n learners, run the first cells in each learner's kernel, measure memory (kB)."""
    users = {f"learner{i:02d}": f"pw{i}" for i in range(1, n + 1)}
    hub = classroom.start_hub(Path(tempfile.mkdtemp(prefix="llmlab-class-")), users)
    try:
        kernels, answers = [], []
        for name, password in users.items():
            token = classroom.login(hub, name, password)
            kernel_id, printed = classroom.run_in_new_kernel(classroom.start_server(hub, name, token), token, CODE)
            kernels.append(kernel_id)
            answers.append(printed.strip())
        pids = classroom.kernel_pids()
        k_mem = [classroom.memory_kb(pids[k]) for k in kernels]
        s_mem = [classroom.memory_kb(p) for p in server_pids()]
    finally:
        hub.stop()
    def private(m):
        return m["Private_Clean"] + m["Private_Dirty"]

    return dict(n=n, answers=answers, kernel_rss=sum(m["Rss"] for m in k_mem) / n,
                kernel_pss=sum(m["Pss"] for m in k_mem) / n, server_pss=sum(m["Pss"] for m in s_mem) / max(1, n),
                kernel_private=sum(private(m) for m in k_mem) / n,
                server_private=sum(private(m) for m in s_mem) / max(1, n))


def report(rows: list[dict], memory_gb: float) -> str:
    """The markdown table and the largest class that fits."""
    last = rows[-1]
    per_learner_mb = (last["kernel_private"] + last["server_private"]) / 1024
    weights_mb = 538
    fits = int((memory_gb * 1000 * 0.85 - weights_mb) // per_learner_mb)
    lines = [f"# Classroom memory — {machine_header('cpu')}", "",
             "Each learner: own JupyterLab (jupyterhub-singleuser) and own kernel that ran models.load() and one "
             "next-token prediction (every answer checked: ' Paris').", "",
             "| learners | kernel RSS, MB | kernel PSS, MB | kernel private, MB | server PSS, MB | server private, MB "
             "| answers |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ok = all(a == "' Paris'" for a in r["answers"])
        lines.append(f"| {r['n']} | {r['kernel_rss'] / 1024:.0f} | {r['kernel_pss'] / 1024:.0f} | "
                     f"{r['kernel_private'] / 1024:.0f} | {r['server_pss'] / 1024:.0f} | "
                     f"{r['server_private'] / 1024:.0f} | {'all Paris' if ok else r['answers']} |")
    lines += ["", "Means over the class. PSS divides each shared page among every process that maps it, including any "
              "other program on the machine that has the same weights file mapped; private memory is what only that "
              "process holds, so it is the cost of one more learner.",
              "", f"Per learner at N={last['n']}: {per_learner_mb:.0f} MB private (kernel + server). Keeping 15% of "
              f"{memory_gb:g} GB for the system and one shared copy of the {weights_mb} MB of weights in the page "
              f"cache, the largest class that fits is about **{fits} learners** (memory only; on 2 cores, CPU is "
              "the limit long before that when many learners generate at once)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Measure each class size, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--memory-gb", type=float, default=24)
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        rows.append(measure_class(n))
        print(f"N={n}: kernel PSS {rows[-1]['kernel_pss'] / 1024:.0f} MB", file=sys.stderr, flush=True)
    text = report(rows, args.memory_gb)
    print(text)
    print(f"wrote {write_result('classroom', text, 'cpu', data={'memory_gb': args.memory_gb, 'rows': rows})}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
