"""Structured output on the real model: valid rate of 50 sampled generations, prompt-only vs constrained.

Run with `python -m llmlab bench sampling`. Prints a markdown table and writes
benchmarks/results/YYYY-MM-DD-<device>-sampling.md. Pass --n to change the number of samples (default 50).
"""

from __future__ import annotations

import argparse

from common import machine_header, timed, write_result

from llmlab import models, sampling, structured, tokens
from llmlab.sampling import SamplingSettings

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


def measure(n: int) -> tuple[list[tuple], str]:
    """Valid rates of free vs constrained sampling per task: rows (task, free, lenient, forced, seconds), device."""
    model, tokenizer = models.load()
    settings = SamplingSettings(temperature=1.0)
    rows = []
    for name, (prompt, constraint, budget) in TASKS.items():
        ids = tokens.encode_prompt(tokenizer, prompt)
        free = [tokenizer.decode(g.token_ids, skip_special_tokens=True).strip()
                for g in sampling.decode(model, ids, budget, settings, num_samples=n, seed=0)]
        lenient = [structured.first_json_object(f) if name == "JSON schema" else f.split()[0].strip(".,") if f
                   else f for f in free]
        forced, seconds = timed(structured.generate_constrained, model, tokenizer, ids, constraint, budget, settings,
                                num_samples=n, seed=0)
        if name == "JSON schema":
            assert all(structured.validate_json(o, SCHEMA) for o in forced)
        rows.append((name, structured.valid_rate(free, constraint), structured.valid_rate(lenient, constraint),
                     structured.valid_rate(forced, constraint), seconds))
    return rows, model.device


def report(rows: list[tuple], n: int, device) -> str:
    """The markdown table."""
    lines = [f"# Structured output — {machine_header(device)}", "",
             f"SmolLM2-135M-Instruct, {n} samples at T=1.0 per cell", "",
             "| task | prompt only: valid | prompt only: lenient | constrained: valid | constrained time |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {free:.0%} | {lenient:.0%} | {forced:.0%} | {seconds:.1f} s |"
              for name, free, lenient, forced, seconds in rows]
    lines += ["", "lenient: first word (choice, regex) or first {...} that parses as a JSON object (JSON) of the "
                  "free reply."]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Measure, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    rows, device = measure(args.n)
    text = report(rows, args.n, device)
    print(text)
    data = {'n': args.n, 'columns': ['task', 'free', 'lenient', 'forced', 'seconds'], 'rows': rows}
    print(f"wrote {write_result('sampling', text, device, data=data)}")


if __name__ == "__main__":
    main()
