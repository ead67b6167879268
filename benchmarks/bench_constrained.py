"""JSON-schema constrained greedy decoding: the kit's from-scratch masks beside xgrammar, on three schemas.

Run with `python benchmarks/bench_constrained.py` (about 2 minutes on 2 idle cores). For each schema, one process
runs three ways in alternating rounds on the same engine (sampling.decode on the kit's forward pass): unconstrained,
the kit's constraint (llmlab.structured: a regex checked token by token) and xgrammar (a grammar compiled once
into per-state token masks, a persistent parser stack). Reports time per token, the constraint's own time per token
(mask time), the overhead over unconstrained decoding and whether the output follows the schema.
Writes benchmarks/results/DATE-DEVICE-constrained_xgrammar.md and .json.
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import machine_header, write_result

from llmlab import models, sampling, structured, tokens

SCHEMAS = {
    "flat object": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"},
        "city": {"enum": ["Paris", "London", "Tokyo"]}}},
    "nested with an enum": {"type": "object", "properties": {
        "title": {"type": "string", "maxLength": 30}, "author": {"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 20}, "country": {"enum": ["France", "Japan", "UK", "USA"]}}}}},
    "array of objects": {"type": "object", "properties": {"items": {"type": "array", "maxItems": 3, "items": {
        "type": "object", "properties": {"fruit": {"type": "string", "maxLength": 12},
                                         "count": {"type": "integer"}}}}}},
}
PROMPTS = {
    "flat object": "Describe a fictional person as a JSON object with name, age and city.",
    "nested with an enum": "Give a famous novel as JSON: its title and its author (name and country).",
    "array of objects": "List three fruits and how many of each are in a basket, as JSON.",
}


def xgrammar_schema(schema: dict) -> dict:
    """The same schema for xgrammar: every property required, array bounds explicit (the kit's defaults)."""
    out = dict(schema)
    if schema.get("type") == "object":
        out["properties"] = {k: xgrammar_schema(v) for k, v in schema["properties"].items()}
        out["required"] = list(schema["properties"])
        out["additionalProperties"] = False
    elif schema.get("type") == "array":
        out["items"] = xgrammar_schema(schema["items"])
        out["minItems"], out["maxItems"] = schema.get("minItems", 1), schema.get("maxItems", 3)
    elif schema.get("type") == "string":
        out["minLength"], out["maxLength"] = schema.get("minLength", 0), schema.get("maxLength", 20)
    return out


class Timer:
    """Seconds spent inside a choose function, and how many tokens it picked."""

    def __init__(self):
        self.seconds, self.calls = 0.0, 0

    def wrap(self, choose):
        """choose, timed."""
        def timed(*args):
            start = time.perf_counter()
            try:
                return choose(*args)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1
        return timed


def kit_choose(schema: dict, index: structured.TokenIndex):
    """The kit's greedy constrained pick (structured.choose_token) as a sampling.decode choose function."""
    constraint = structured.json_schema_constraint(schema)

    def choose(token_ids, logits, processed, gen):
        text = "".join(index.texts[i] or "" for i in token_ids if i not in index.eos_ids)
        return structured.choose_token(constraint, text, index, logits, processed, True, gen)
    return choose


def xgrammar_choose(compiled, vocab: int):
    """xgrammar's greedy pick: accept the last token, fill the next-token bitmask, argmax of the masked logits."""
    import xgrammar as xgr

    matcher = xgr.GrammarMatcher(compiled)
    bitmask = xgr.allocate_token_bitmask(1, vocab)

    def choose(token_ids, logits, processed, gen):
        if token_ids:
            matcher.accept_token(token_ids[-1])
        matcher.fill_next_token_bitmask(bitmask)
        masked = logits.clone()[None]
        xgr.apply_token_bitmask_inplace(masked, bitmask)
        return int(masked[0].argmax())
    return choose


def measure(rounds: int, max_new_tokens: int) -> dict:
    """Per schema: tokens/s, mask seconds per token, overhead and validity of the three ways."""
    import xgrammar as xgr

    model, tokenizer = models.load(device="cpu")
    vocab = model.get_output_embeddings().weight.shape[0]
    index = structured.token_index(tokenizer, vocab)
    eos = sorted(index.eos_ids)
    start = time.perf_counter()
    compiler = xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab))
    tokenizer_seconds = time.perf_counter() - start
    greedy = sampling.SamplingSettings(temperature=0)
    data = {"tokenizer_info_seconds": tokenizer_seconds, "schemas": {}}
    for name, schema in SCHEMAS.items():
        ids = tokens.encode_prompt(tokenizer, PROMPTS[name])
        start = time.perf_counter()
        compiled = compiler.compile_json_schema(xgrammar_schema(schema), any_whitespace=False,
                                                separators=(", ", ": "))
        compile_seconds = time.perf_counter() - start
        times = {"kit": [], "xgrammar": [], "unconstrained": []}
        mask = {"kit": [], "xgrammar": []}
        out = {}
        for _ in range(rounds):
            for way in ("kit", "xgrammar"):
                timer = Timer()
                choose = kit_choose(schema, index) if way == "kit" else xgrammar_choose(compiled, vocab)
                t0 = time.perf_counter()
                gen = sampling.decode(model, ids, max_new_tokens, greedy, eos_token_id=eos,
                                      choose=timer.wrap(choose))[0]
                times[way].append((time.perf_counter() - t0) / len(gen.token_ids))
                mask[way].append(timer.seconds / timer.calls)
                out[way] = gen.token_ids
            n = max(len(out["kit"]), len(out["xgrammar"]))  # the same number of tokens, unconstrained
            t0 = time.perf_counter()
            sampling.decode(model, ids, n, greedy, eos_token_id=[])
            times["unconstrained"].append((time.perf_counter() - t0) / n)
        base = statistics.median(times["unconstrained"])
        row = {"compile_seconds": compile_seconds, "unconstrained_s_per_token": base}
        for way in ("kit", "xgrammar"):
            text = tokenizer.decode([t for t in out[way] if t not in index.eos_ids], skip_special_tokens=True)
            per_token = statistics.median(times[way])
            row[way] = {"s_per_token": per_token, "mask_s_per_token": statistics.median(mask[way]),
                        "overhead": per_token / base - 1, "valid": structured.validate_json(text, schema),
                        "tokens": len(out[way]), "text": text}
        row["same_tokens"] = out["kit"] == out["xgrammar"]
        data["schemas"][name] = row
    return data


def format_report(data: dict, header: str) -> str:
    """Markdown table: one row per schema and way."""
    lines = ["# Constrained decoding: the kit's masks beside xgrammar\n", header + "\n",
             f"xgrammar tokenizer info built in {data['tokenizer_info_seconds']:.2f} s; greedy decoding on the kit's "
             "engine; overhead = time per token over unconstrained decoding of as many tokens, minus 1.\n",
             "| schema | way | ms/token | mask ms/token | overhead | valid | tokens | same tokens as the other |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in data["schemas"].items():
        for way in ("kit", "xgrammar"):
            r = row[way]
            lines.append(f"| {name} | {way} | {r['s_per_token'] * 1e3:.1f} | {r['mask_s_per_token'] * 1e3:.2f} | "
                         f"{r['overhead']:+.0%} | {'yes' if r['valid'] else 'no'} | {r['tokens']} | "
                         f"{'yes' if row['same_tokens'] else 'no'} |")
    lines.append("\nOutputs:\n")
    for name, row in data["schemas"].items():
        lines += [f"- {name}, kit: `{row['kit']['text']}`", f"- {name}, xgrammar: `{row['xgrammar']['text']}`"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=60)
    args = parser.parse_args()
    header = machine_header("cpu")
    data = measure(args.rounds, args.max_new_tokens)
    data["header"] = header
    report = format_report(data, header)
    print(report)
    print(write_result("constrained_xgrammar", report, "cpu", data=data))


if __name__ == "__main__":
    main()
