"""Classroom load: N simulated learners on the workshop JupyterHub (loopback) run chapter 02's first model cells and
one 64-token generation cell at the same moment; per-cell latency p50/p95/max against N, CPU and memory meanwhile.

Run: python -m llmlab bench classroom_load      (defaults below; or python benchmarks/bench_classroom_load.py ...)
     [--sizes 1 2 4 8 16 32] [--stop-p95 30] [--budget-s 720] [--threads 1] [--compare-at 4] [--out PATH]

Each learner logs in and gets their own JupyterLab and kernel first (not timed; the kernel answers one empty cell),
then every learner's thread waits at one barrier and runs the three cells in order, as "Run all" would. The sweep
stops once the slowest cell's p95 passes --stop-p95 seconds, when the next size would not fit the time budget or
the free memory, or after the last size. --compare-at N then runs N learners again on a hub that leaves torch's
default threads (all cores in every kernel), against --threads per kernel. Writes DATE-cpu-classroom-load.md and
its .json (every latency) to benchmarks/results/, or to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from common import machine_header, write_result

from llmlab.kit import classroom
from llmlab.results import jsonable

CELLS = {  # name → code; the first two are chapter 02's first model cells (as in classroom/tests)
    "load": ("from llmlab import models, tokens\nimport torch\nmodel, tokenizer = models.load()\n"
             "print('torch threads', torch.get_num_threads())"),
    "next token": ("probs = tokens.next_token_probs(model, tokenizer, 'The capital of France is', chat=False)\n"
                   "print('answer', repr(tokenizer.decode(int(probs.argmax()))))"),
    "generate 64": ("from llmlab import sampling\n"
                    "ids = tokens.encode_prompt(tokenizer, 'Write a short poem about the sea.')\n"
                    "greedy = sampling.SamplingSettings(temperature=0)\n"
                    "g = sampling.decode(model, ids, 64, greedy, eos_token_id=[])[0]\n"  # no EOS stop: 64 tokens
                    "print('generated', len(g.token_ids))"),
}
COMPARE_RESERVE_S = 150  # time kept for the --compare-at run
MB_PER_LEARNER = 600  # free memory a further learner needs (467 MB measured by bench_classroom, plus headroom)


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text(encoding="utf-8").split("\n")[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def mem_used_mb() -> tuple[float, float]:
    """(used, available) MB from /proc/meminfo (used = MemTotal - MemAvailable)."""
    lines = Path("/proc/meminfo").read_text(encoding="utf-8").splitlines()
    info = {line.split(":")[0]: int(line.split()[1]) for line in lines}
    return (info["MemTotal"] - info["MemAvailable"]) / 1024, info["MemAvailable"] / 1024


class Sampler(threading.Thread):
    """Samples CPU busy % and used memory every `every` seconds until stop()."""

    def __init__(self, every: float = 0.5):
        super().__init__(daemon=True)
        self.every, self.cpu, self.mem, self._done = every, [], [], threading.Event()

    def run(self) -> None:
        busy, total = cpu_times()
        while not self._done.wait(self.every):
            b, t = cpu_times()
            self.cpu.append(100 * (b - busy) / max(1, t - total))
            busy, total = b, t
            self.mem.append(mem_used_mb()[0])

    def stop(self) -> dict:
        """Stop sampling; the mean and max CPU busy % and the peak used memory."""
        self._done.set()
        self.join()
        return dict(cpu_mean=float(np.mean(self.cpu or [0])), cpu_max=float(max(self.cpu or [0])),
                    mem_peak_mb=float(max(self.mem or [mem_used_mb()[0]])))


def percentiles(values: list[float]) -> dict:
    """p50, p95 (linear interpolation) and max of a list of seconds."""
    return dict(p50=float(np.percentile(values, 50)), p95=float(np.percentile(values, 95)), max=float(max(values)))


def learner_cells(server: str, token: str, kernel: str, barrier: threading.Barrier, timeout: float) -> dict:
    """Wait for the others, then run CELLS in order; seconds and output per cell."""
    out = {}
    barrier.wait()
    for name, code in CELLS.items():
        start = time.perf_counter()
        printed = classroom.execute(server, token, kernel, code, timeout)
        out[name] = (time.perf_counter() - start, printed.strip())
    return out


def outputs_ok(cells: dict, threads: int) -> bool:
    """Whether a learner's cells printed the right things: the thread count asked for, ' Paris', 64 tokens."""
    lines = {name: text.splitlines() for name, (_, text) in cells.items()}
    return ((threads == 0 or f"torch threads {threads}" in lines["load"])
            and "answer ' Paris'" in lines["next token"] and "generated 64" in lines["generate 64"])


def run_round(learners: list[tuple[str, str, str]], timeout: float, threads: int) -> dict:
    """One round: every learner (name, server, token) gets a fresh kernel, then all run CELLS at once."""
    kernels = []
    for _, server, token in learners:
        kernel = classroom.start_kernel(server, token)
        classroom.execute(server, token, kernel, "pass", timeout)  # ready before the clock starts
        kernels.append(kernel)
    load_before, (mem_before, _) = os.getloadavg(), mem_used_mb()
    barrier, results = threading.Barrier(len(learners)), [None] * len(learners)

    def work(i: int) -> None:
        _, server, token = learners[i]
        try:
            results[i] = learner_cells(server, token, kernels[i], barrier, timeout)
        except Exception as exc:  # noqa: BLE001 - recorded and reported below
            results[i] = exc

    sampler, start = Sampler(), time.perf_counter()
    sampler.start()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(learners))]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    wall, usage = time.perf_counter() - start, sampler.stop()
    pids = classroom.kernel_pids()
    private = [sum(v for k, v in classroom.memory_kb(pids[k]).items() if k.startswith("Private")) / 1024
               for k in kernels if k in pids]
    for (_, server, token), kernel in zip(learners, kernels):
        classroom.shutdown_kernel(server, token, kernel)
    failed = [f"{name}: {r}" for (name, _, _), r in zip(learners, results) if isinstance(r, Exception)]
    failed += [f"{name}: {r}" for (name, _, _), r in zip(learners, results)
               if not isinstance(r, Exception) and not outputs_ok(r, threads)]
    if failed:
        raise RuntimeError(f"learners failed: {failed}")
    row = dict(n=len(learners), wall_s=wall, load_before=load_before, mem_before_mb=mem_before,
               kernel_private_mb=float(np.mean(private)) if private else None, **usage,
               seconds={c: [r[c][0] for r in results] for c in CELLS},
               printed=sorted({r[c][1] for r in results for c in CELLS}))
    row["stats"] = {c: percentiles(s) for c, s in row["seconds"].items()}
    row["stats"]["all cells"] = percentiles([sum(r[c][0] for c in CELLS) for r in results])
    return row


class Class:
    """A hub with `size` test learners; servers start on first use and stay up across rounds."""

    def __init__(self, size: int, threads: int):
        self.users = {f"learner{i:02d}": f"pw-{i}-{os.getpid()}" for i in range(1, size + 1)}
        self.hub = classroom.start_hub(Path(tempfile.mkdtemp(prefix="llmlab-load-")), self.users,
                                       kernel_threads=threads)
        self.ready: list[tuple[str, str, str]] = []

    def learners(self, n: int) -> list[tuple[str, str, str]]:
        """The first n learners, logged in with their servers running (name, server URL, token)."""
        for name in list(self.users)[len(self.ready):n]:
            token = classroom.login(self.hub, name, self.users[name])
            self.ready.append((name, classroom.start_server(self.hub, name, token), token))
        return self.ready[:n]


def sweep(args: argparse.Namespace, t0: float) -> tuple[list[dict], str]:
    """Rounds at each size until a stop rule fires; returns the rows and why it stopped."""
    budget = args.budget_s - (COMPARE_RESERVE_S if args.compare_at else 0)
    room, rows, why = Class(max(args.sizes), args.threads), [], f"last size ({max(args.sizes)}) done"
    try:
        _, server, token = room.learners(1)[0]
        kernel = classroom.start_kernel(server, token)
        classroom.execute(server, token, kernel, "\n".join(CELLS.values()), args.cell_timeout)  # warm caches
        classroom.shutdown_kernel(server, token, kernel)
        for n in sorted(args.sizes):
            if rows:
                # the last round scaled to n, new servers (~5 s each) and kernels (~3 s each) started first
                guess = rows[-1]["wall_s"] * n / rows[-1]["n"] * 1.3 + 5 * (n - rows[-1]["n"]) + 3 * n
                if time.perf_counter() - t0 + guess > budget:
                    why = f"stopped before N={n}: about {guess:.0f} s more would pass the {budget:.0f} s budget"
                    break
            if mem_used_mb()[1] < n * MB_PER_LEARNER + 1024:
                why = f"stopped before N={n}: {mem_used_mb()[1]:.0f} MB free < {n} × {MB_PER_LEARNER} MB + 1 GB"
                break
            rows.append(run_round(room.learners(n), args.cell_timeout, args.threads))
            worst = max(s["p95"] for c, s in rows[-1]["stats"].items() if c != "all cells")
            print(f"N={n}: worst cell p95 {worst:.1f} s, round {rows[-1]['wall_s']:.0f} s", file=sys.stderr, flush=True)
            if worst > args.stop_p95:
                why = f"stopped after N={n}: a cell's p95 passed {args.stop_p95:g} s"
                break
    finally:
        room.hub.stop()
    return rows, why


def compare(args: argparse.Namespace, rows: list[dict]) -> list[dict]:
    """The --compare-at size with torch's default threads, and with --threads (reused from the sweep if run)."""
    out = [r for r in rows if r["n"] == args.compare_at]
    for threads in ([] if out else [args.threads]) + [0]:
        room = Class(args.compare_at, threads)
        try:
            out.append(run_round(room.learners(args.compare_at), args.cell_timeout, threads))
        finally:
            room.hub.stop()
        out[-1]["threads"] = threads
    out[0]["threads"] = args.threads
    return out


def table(rows: list[dict], label: str) -> list[str]:
    """Markdown table: one line per round, p50 / p95 / max seconds per cell, CPU and memory."""
    cells = [*CELLS, "all cells"]
    lines = [f"| {label} | " + " | ".join(f"{c}: p50 / p95 / max s" for c in cells)
             + " | CPU mean / max % | memory used peak, MB (before) | kernel private, MB | load before |",
             "|---:|" + "---:|" * (len(cells) + 4)]
    for r in rows:
        stats = " | ".join("{p50:.1f} / {p95:.1f} / {max:.1f}".format(**r["stats"][c]) for c in cells)
        lines.append(f"| {r['threads'] if label == 'threads' else r['n']} | {stats} | {r['cpu_mean']:.0f} / "
                     f"{r['cpu_max']:.0f} | {r['mem_peak_mb']:.0f} ({r['mem_before_mb']:.0f}) | "
                     f"{r['kernel_private_mb'] or 0:.0f} | {r['load_before'][0]:.2f} |")
    return lines


def report(header: str, args: argparse.Namespace, rows: list[dict], why: str, versus: list[dict]) -> str:
    """The markdown report."""
    lines = [f"# Classroom load — {header}", "",
             f"Each learner: own JupyterLab and kernel on the workshop hub; all N start together and run {len(CELLS)} "
             f"cells in order: {', '.join(CELLS)} (chapter 02's first model cells, then 64 greedy tokens). Kernel "
             f"threads: LLMLAB_KERNEL_THREADS={args.threads} (0 = torch's default, one per core). Sweep: "
             f"{why}. Outputs seen: {sorted({p for r in rows + versus for p in r['printed']})}.", "",
             *table(rows, "learners")]
    if versus:
        lines += ["", f"## Threads per kernel at N={args.compare_at}", "", *table(versus, "threads")]
    lines += ["", "Latency: from the barrier (or the previous cell's end) until the kernel has replied and gone "
              "idle, as the learner waits for it. CPU: busy share of all cores, sampled every 0.5 s. Memory: "
              "MemTotal - MemAvailable over the whole machine."]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Sweep, compare, print and write the report and its JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--stop-p95", type=float, default=30.0)
    parser.add_argument("--budget-s", type=float, default=720.0, help="whole run, compare included")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per kernel in the sweep")
    parser.add_argument("--compare-at", type=int, default=4, help="N for threads vs torch's default; 0 skips")
    parser.add_argument("--cell-timeout", type=float, default=300.0)
    parser.add_argument("--out", type=Path, help="markdown path (default benchmarks/results/DATE-cpu-...)")
    args = parser.parse_args()
    if min(args.sizes) < 1 or args.compare_at < 0 or args.threads < 0:
        parser.error(f"sizes must be >= 1, compare-at and threads >= 0; got {args.sizes}, {args.compare_at}, "
                     f"{args.threads}")
    header, t0 = machine_header("cpu"), time.perf_counter()
    rows, why = sweep(args, t0)
    for r in rows:
        r["threads"] = args.threads
    versus = compare(args, rows) if args.compare_at else []
    text = report(header, args, rows, why, versus)
    print(text)
    data = dict(header=header, args={k: str(v) for k, v in vars(args).items()}, stopped=why, sweep=rows,
                compare=versus, total_s=time.perf_counter() - t0)
    if args.out:  # a scratch run outside benchmarks/results
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(jsonable(data), indent=1) + "\n", encoding="utf-8")
        path = args.out
    else:
        path = write_result("classroom-load", text, "cpu", data=data)
    print(f"wrote {path} and its .json ({data['total_s']:.0f} s in all)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
