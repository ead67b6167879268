"""Seeded generator of chapter 12's data: a small instruction corpus with planted defects, and preference pairs.

Run `python scripts/data/ch12_make_data.py` to rewrite (same seed, same files):

- ch12_corpus.jsonl: instruction/response rows for dataset engineering. Most are clean; some are planted defects
  (exact duplicates, near duplicates, too short, repetitive, not English, symbol noise, copies of test items);
  a copy always comes after the row it copies, so "keep the first" removes the planted one.
  Each row's "kind" names what was planted, so a filter's precision and recall can be measured; the filters
  never read it.
- ch12_test.jsonl: held-out instruction/response rows (the "benchmark" the corpus must not contain).
- ch12_prefs_train.jsonl, ch12_prefs_test.jsonl: preference pairs {prompt, chosen, rejected, gold, kind}. The
  chosen reply is short and correct; the rejected one is either correct but rambling ("verbose": the answer then
  filler, the failure SmolLM2-135M-Instruct shows) or short but wrong ("wrong"). gold is the answer's key word.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "llmlab" / "data"  # the package's data folder

SEED = 12
N_CLEAN = 480
N_TEST = 80
N_PREFS_TRAIN = 240
N_PREFS_TEST = 60

CAPITALS = {
    "France": "Paris", "Italy": "Rome", "Spain": "Madrid", "Germany": "Berlin", "Portugal": "Lisbon",
    "Japan": "Tokyo", "Egypt": "Cairo", "Kenya": "Nairobi", "Peru": "Lima", "Canada": "Ottawa",
    "Australia": "Canberra", "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki", "Poland": "Warsaw",
    "Greece": "Athens", "Turkey": "Ankara", "Ireland": "Dublin", "Austria": "Vienna", "Hungary": "Budapest",
    "Mexico": "Mexico City", "Chile": "Santiago", "Argentina": "Buenos Aires", "Cuba": "Havana",
    "Thailand": "Bangkok", "Vietnam": "Hanoi", "India": "New Delhi", "China": "Beijing", "Russia": "Moscow",
    "Denmark": "Copenhagen", "Belgium": "Brussels", "Netherlands": "Amsterdam", "Ghana": "Accra",
    "Nigeria": "Abuja", "Morocco": "Rabat", "Iran": "Tehran", "Iraq": "Baghdad", "Nepal": "Kathmandu",
    "Colombia": "Bogota", "Venezuela": "Caracas",
}
OPPOSITES = {
    "hot": "cold", "big": "small", "fast": "slow", "happy": "sad", "light": "dark", "early": "late",
    "open": "closed", "full": "empty", "high": "low", "strong": "weak", "rich": "poor", "young": "old",
    "hard": "soft", "wet": "dry", "loud": "quiet", "long": "short", "thick": "thin", "clean": "dirty",
    "heavy": "light", "first": "last", "near": "far", "cheap": "expensive", "true": "false", "win": "lose",
    "push": "pull", "up": "down", "inside": "outside", "begin": "end", "buy": "sell", "love": "hate",
}
PLURALS = {
    "mouse": "mice", "child": "children", "man": "men", "woman": "women", "tooth": "teeth", "foot": "feet",
    "goose": "geese", "person": "people", "leaf": "leaves", "knife": "knives", "wolf": "wolves", "cactus": "cacti",
    "box": "boxes", "city": "cities", "baby": "babies", "bus": "buses", "potato": "potatoes", "sheep": "sheep",
    "fish": "fish", "ox": "oxen", "wife": "wives", "half": "halves", "hero": "heroes", "party": "parties",
}
UNITS = [("hours", "minutes", 60), ("minutes", "seconds", 60), ("days", "hours", 24), ("weeks", "days", 7),
         ("meters", "centimeters", 100), ("kilograms", "grams", 1000), ("years", "months", 12),
         ("kilometers", "meters", 1000), ("dozens", "items", 12)]

TEMPLATES = {
    "capital": ["What is the capital of {x}?", "Name the capital city of {x}.", "Which city is the capital of {x}?",
                "Tell me the capital of {x}."],
    "sum": ["What is {a} plus {b}?", "Add {a} and {b}.", "Compute {a} + {b}.",
            "What do you get when you add {a} to {b}?"],
    "convert": ["How many {small} are in {n} {big}?", "Convert {n} {big} to {small}.",
                "How many {small} make {n} {big}?"],
    "opposite": ["What is the opposite of {x}?", "Give the opposite of the word {x}.",
                 "Name a word that means the opposite of {x}."],
    "plural": ["What is the plural of {x}?", "Write the plural form of {x}.", "How do you say more than one {x}?"],
}
FILLERS = {
    "capital": ["{y} is a large city with a long history and many famous buildings.",
                "Many people visit {y} every year to see its museums, parks and markets.",
                "The capital is usually where the government of a country meets."],
    "sum": ["Addition is one of the four basic operations of arithmetic.",
            "To add two numbers, you combine their values into a single total.",
            "You can check the result by counting up from the larger number."],
    "convert": ["Converting units is a common task in science and in everyday life.",
                "To convert, you multiply by the number of smaller units in one larger unit.",
                "It is important to keep track of the units when you do this kind of calculation."],
    "opposite": ["Opposites are words with contrary meanings, also called antonyms.",
                 "Learning opposites is a good way to build your vocabulary.",
                 "This is a fundamental concept in language and in everyday communication."],
    "plural": ["English has many irregular plurals that do not simply add an s.",
               "Plural forms are used when we talk about more than one thing.",
               "Irregular plurals often come from older forms of the English language."],
}
PREAMBLES = ["Great question! ", "Sure, I would be happy to help with that. ", "Let me think about this carefully. ",
             "That is an interesting question. ", ""]
CLOSINGS = ["I hope this helps!", "Let me know if you have any other questions.", "Feel free to ask me anything else.",
            ""]
FOREIGN = [
    ("Quelle est la capitale de la France ?", "La capitale de la France est Paris."),
    ("Quelle est la capitale de l'Italie ?", "La capitale de l'Italie est Rome."),
    ("¿Cuál es la capital de España?", "La capital de España es Madrid."),
    ("¿Cuánto es doce más siete?", "Doce más siete son diecinueve."),
    ("Was ist die Hauptstadt von Deutschland?", "Die Hauptstadt von Deutschland ist Berlin."),
    ("Wie viele Minuten hat eine Stunde?", "Eine Stunde hat sechzig Minuten."),
    ("Qual é a capital de Portugal?", "A capital de Portugal é Lisboa."),
    ("Quel est le contraire de chaud ?", "Le contraire de chaud est froid."),
    ("Wat is de hoofdstad van Nederland?", "De hoofdstad van Nederland is Amsterdam."),
    ("Qual è il plurale di uovo?", "Il plurale di uovo è uova."),
]
NEAR_EDITS = [lambda q, r: ("Please " + q[0].lower() + q[1:], r), lambda q, r: ("Quick question: " + q, r),
              lambda q, r: (q + " Thanks!", r), lambda q, r: (q, "Sure! " + r), lambda q, r: (q, r[:-1] + " indeed.")]


def item(family: str, key, rng: random.Random, template: int | None = None) -> dict:
    """One instruction/response row of a family for a key (country, word, (a, b) or (unit, n)); gold = answer word."""
    templates = TEMPLATES[family]
    q = templates[rng.randrange(len(templates)) if template is None else template % len(templates)]
    if family == "capital":
        y = CAPITALS[key]
        return {"instruction": q.format(x=key), "response": f"The capital of {key} is {y}.", "gold": y, "x": key,
                "family": family}
    if family == "sum":
        a, b = key
        return {"instruction": q.format(a=a, b=b), "response": f"{a} plus {b} is {a + b}.", "gold": str(a + b),
                "x": f"{a}+{b}", "family": family}
    if family == "convert":
        (big, small, k), n = key
        return {"instruction": q.format(n=n, big=big, small=small), "response": f"{n} {big} is {n * k} {small}.",
                "gold": str(n * k), "x": f"{n} {big}", "family": family}
    table = OPPOSITES if family == "opposite" else PLURALS
    phrase = "opposite" if family == "opposite" else "plural"
    return {"instruction": q.format(x=key), "response": f"The {phrase} of {key} is {table[key]}.", "gold": table[key],
            "x": key, "family": family}


def family_keys(rng: random.Random) -> dict[str, list]:
    """Every key the generator can draw from, per family, each list shuffled."""
    keys = {"capital": list(CAPITALS), "opposite": list(OPPOSITES), "plural": list(PLURALS),
            "convert": [(u, n) for u in UNITS for n in range(2, 20)],
            "sum": [(a, b) for a in range(2, 50) for b in range(2, 50) if (a + 2 * b) % 3 == 0]}
    for values in keys.values():
        rng.shuffle(values)
    return keys


def round_robin(keys: dict[str, list], n: int) -> list[tuple[str, object]]:
    """Take n (family, key) pairs cycling over the families (a family that runs out is skipped); removes them."""
    out: list[tuple[str, object]] = []
    while len(out) < n and any(keys.values()):
        for family, values in keys.items():
            if values and len(out) < n:
                out.append((family, values.pop()))
    return out


def wrong_answer(row: dict, rng: random.Random) -> str:
    """A short reply to the row's instruction with a wrong answer (same shape as the correct one)."""
    family, gold = row["family"], row["gold"]
    if family == "capital":
        other = rng.choice([c for c in CAPITALS.values() if c != gold])
        return row["response"].replace(gold, other)
    if family in ("sum", "convert"):
        value = int(gold) + rng.choice([-10, -2, -1, 1, 2, 10])
        return row["response"][::-1].replace(gold[::-1], str(value)[::-1], 1)[::-1]
    table = OPPOSITES if family == "opposite" else PLURALS
    if family == "plural":
        return row["response"].replace(f"is {gold}.", f"is {row['x']}s.") if gold != row["x"] + "s" else \
            row["response"].replace(gold, gold + "es")
    other = rng.choice([v for v in table.values() if v != gold])
    return row["response"].replace(f"is {gold}.", f"is {other}.")


def verbose_answer(row: dict, rng: random.Random) -> str:
    """The correct answer wrapped in a preamble, two filler sentences and a closing: correct but rambling."""
    y = row["gold"]
    fillers = rng.sample(FILLERS[row["family"]], 2)
    text = rng.choice(PREAMBLES) + row["response"] + " " + " ".join(f.format(y=y) for f in fillers)
    return (text + " " + rng.choice(CLOSINGS)).strip()


def planted_defects(clean: list[dict], test: list[dict], rng: random.Random) -> list[dict]:
    """Rows with planted defects (kind says which); "src" is the index of the clean row a defect was made from."""
    rows = []
    idx = range(len(clean))
    for i in rng.sample(idx, 60):
        q, a = clean[i]["instruction"], clean[i]["response"]
        if rng.random() < 0.5:
            q, a = "  " + q.upper(), a.lower() + " "
        rows.append({"instruction": q, "response": a, "kind": "exact_dup", "src": i})
    for e, i in enumerate(rng.sample(idx, 50)):
        q, a = NEAR_EDITS[e % len(NEAR_EDITS)](clean[i]["instruction"], clean[i]["response"])
        rows.append({"instruction": q, "response": a, "kind": "near_dup", "src": i})
    for i in rng.sample(idx, 20):
        rows.append({"instruction": clean[i]["instruction"], "kind": "too_short", "src": i,
                     "response": rng.choice(["Yes.", "Ok", "?", "No idea.", "Hmm"])})
    for i in rng.sample(idx, 20):
        a = clean[i]["response"]
        junk = " ".join([a] * rng.randint(5, 8)) if rng.random() < 0.5 else \
            a + " " + " ".join([a.split()[-1].strip(".")] * rng.randint(12, 20))
        rows.append({"instruction": clean[i]["instruction"], "response": junk, "kind": "repetitive", "src": i})
    for q, a in FOREIGN + FOREIGN[:5]:
        rows.append({"instruction": q, "response": a, "kind": "not_english"})
    symbols = "#@%&*{}[]<>|~^=+_0123456789"
    for _ in range(10):
        rows.append({"instruction": "".join(rng.choice(symbols) for _ in range(30)),
                     "response": "".join(rng.choice(symbols + "ab ") for _ in range(60)), "kind": "symbols"})
    for i, t in enumerate(rng.sample(test, 16)):
        q = t["instruction"] if i % 3 else "Answer this: " + t["instruction"].lower()
        rows.append({"instruction": q, "response": t["response"], "kind": "test_copy"})
    return rows


def interleave(clean: list[dict], defects: list[dict], rng: random.Random) -> list[dict]:
    """Clean rows in order, each defect placed at a random position after the clean row it was made from."""
    keyed = [(float(i), r) for i, r in enumerate(clean)]
    for r in defects:
        start = r.pop("src", -1) + 1
        keyed.append((start + rng.random() * (len(clean) - start), r))
    return [r for _, r in sorted(keyed, key=lambda kr: kr[0])]


def make_data(seed: int = SEED) -> dict[str, list[dict]]:
    """The four files' rows: corpus, test, prefs_train, prefs_test (test keys never appear in the clean corpus)."""
    rng = random.Random(seed)
    keys = family_keys(rng)
    test_keys = [(f, k) for f, values in keys.items() for k in values[:len(values) * N_TEST // 1000 + 2]]
    test_keys = rng.sample(test_keys, N_TEST)
    for f, k in test_keys:
        keys[f].remove(k)
    pool = [(f, k) for f, values in keys.items() for k in values]
    clean = [item(f, k, rng) for f, k in rng.sample(pool, N_CLEAN)]
    test = [item(f, k, rng) for f, k in test_keys]
    corpus = [{"instruction": r["instruction"], "response": r["response"], "kind": "clean"} for r in clean]
    corpus = interleave(corpus, planted_defects(clean, test, rng), rng)
    corpus = [{"id": i, **r} for i, r in enumerate(corpus)]
    pref_keys = round_robin(keys, N_PREFS_TRAIN + N_PREFS_TEST)
    rng.shuffle(pref_keys)
    prefs = []
    for i, (f, k) in enumerate(pref_keys):
        row = item(f, k, rng)
        kind = "wrong" if i % 5 in (1, 3) else "verbose"
        rejected = wrong_answer(row, rng) if kind == "wrong" else verbose_answer(row, rng)
        prefs.append({"prompt": row["instruction"], "chosen": row["response"], "rejected": rejected,
                      "gold": row["gold"], "family": f, "kind": kind})
    test_rows = [{"id": i, "instruction": r["instruction"], "response": r["response"]} for i, r in enumerate(test)]
    return {"corpus": corpus, "test": test_rows, "prefs_train": prefs[:N_PREFS_TRAIN],
            "prefs_test": prefs[N_PREFS_TRAIN:]}


def write(folder: Path = DATA, seed: int = SEED) -> None:
    """Write ch12_corpus.jsonl, ch12_test.jsonl, ch12_prefs_train.jsonl and ch12_prefs_test.jsonl."""
    for name, rows in make_data(seed).items():
        with open(folder / f"ch12_{name}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write()
