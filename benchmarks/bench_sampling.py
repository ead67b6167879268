"""Structured output on the real model: valid rate of 50 sampled generations, prompt-only vs constrained.

Run with `python -m llmlab bench sampling`. Prints a markdown table and writes
benchmarks/results/YYYY-MM-DD-<device>-sampling.md. Pass --n to change the number of samples (default 50).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from llmlab import models, sampling, structured, tokens
from llmlab.sampling import SamplingSettings

RESULTS = Path(__file__).parent / "results"
SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"},
                                           "city": {"enum": ["Paris", "London", "Tokyo"]}}}
TASKS = {
    "choice": ("Is this review positive or negative? 'A wonderful, moving film.' Answer with one word.",
               structured.Choice(["positive", "negative"]), 4),
    "regex (year)": ("In which year did the Berlin wall fall? Answer with the year only.",
                     structured.Regex(r"[12][0-9]{3}"), 6),
    "JSON schema": ('Reply with only a JSON object like {"name": "...", "age": 30, "city": "Paris"} '
                    "describing a fictional person.", structured.json_schema_constraint(SCHEMA), 40),
}


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    model, tokenizer = models.load()
    settings = SamplingSettings(temperature=1.0)
    lines = [f"Structured output, SmolLM2-135M-Instruct on {model.device}, {args.n} samples at T=1.0 per cell",
             "", "| task | prompt only: valid | prompt only: lenient | constrained: valid | constrained time |",
             "|---|---|---|---|---|"]
    for name, (prompt, constraint, budget) in TASKS.items():
        ids = tokens.encode_prompt(tokenizer, prompt)
        free = [tokenizer.decode(g.token_ids, skip_special_tokens=True).strip()
                for g in sampling.decode(model, ids, budget, settings, num_samples=args.n, seed=0)]
        lenient = [structured.first_json_object(f) if name == "JSON schema" else f.split()[0].strip(".,") if f
                   else f for f in free]
        start = time.perf_counter()
        forced = structured.generate_constrained(model, tokenizer, ids, constraint, budget, settings,
                                                 num_samples=args.n, seed=0)
        seconds = time.perf_counter() - start
        if name == "JSON schema":
            assert all(structured.validate_json(o, SCHEMA) for o in forced)
        lines.append(f"| {name} | {structured.valid_rate(free, constraint):.0%} | "
                     f"{structured.valid_rate(lenient, constraint):.0%} | "
                     f"{structured.valid_rate(forced, constraint):.0%} | {seconds:.1f} s |")
    lines += ["", "lenient: first word (choice, regex) or first {...} that parses as a JSON object (JSON) of the "
                  "free reply."]
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{dt.date.today().isoformat()}-{model.device.type}-sampling.md"
    out.write_text(table + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
