"""Seeded generator of chapter 05's task: a short free-text shop order -> one fixed JSON object.

Run `python scripts/data/ch05_make_orders.py` to rewrite ch05_orders_train.jsonl and ch05_orders_test.jsonl
(same seed, same files). Each line is {"text": ..., "target": {"item", "qty", "color", "city", "shipping"}}.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "llmlab" / "data"  # the package's data folder

SEED = 5
N_TRAIN = 800
N_TEST = 120
ITEMS = ["mug", "t-shirt", "notebook", "backpack", "lamp", "umbrella", "water bottle", "scarf", "poster",
         "phone case", "candle", "desk chair", "hoodie", "pillow"]
COLORS = ["red", "blue", "green", "black", "white", "yellow", "grey", "pink", "orange", "purple"]
CITIES = ["Lyon", "Oslo", "Austin", "Porto", "Nairobi", "Osaka", "Lima", "Dublin", "Perth", "Quebec", "Gdansk",
          "Seville", "Denver", "Tallinn", "Accra", "Hanoi"]
NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
EXPRESS = ["asap please", "by express", "overnight if possible", "as fast as you can", "I need them tomorrow",
           "rush delivery"]
STANDARD = ["no rush", "standard shipping is fine", "whenever is fine", "regular delivery", "cheapest shipping",
            "no hurry at all"]
TEMPLATES = [
    "Hi! Please send {n} {color} {items} to {city}, {ship}.",
    "I need {n} {items} in {color}. Ship to {city}, {ship}.",
    "{Ship}: {d} x {item} ({color}), deliver to {city}.",
    "Could you ship {n} {color} {items} to my address in {city}? {Ship}.",
    "Order for {city}: {item}, colour {color}, quantity {d}, {ship}.",
    "{city} office wants {n} {items}, {color} ones, {ship}.",
    "Send {d} {color} {items} please. Address: {city}. {Ship}.",
]


def make_example(rng: random.Random) -> dict:
    """One random order description and its JSON target."""
    target = {"item": rng.choice(ITEMS), "qty": rng.randint(1, 9), "color": rng.choice(COLORS),
              "city": rng.choice(CITIES), "shipping": rng.choice(["standard", "express"])}
    ship = rng.choice(EXPRESS if target["shipping"] == "express" else STANDARD)
    qty, item = target["qty"], target["item"]
    text = rng.choice(TEMPLATES).format(
        n=NUMBER_WORDS[qty - 1] if rng.random() < 0.5 else str(qty), d=str(qty), item=item,
        items=item if qty == 1 else item + "s", color=target["color"], city=target["city"],
        ship=ship, Ship=ship[0].upper() + ship[1:])
    return {"text": text, "target": target}


def make_orders(seed: int = SEED, n_train: int = N_TRAIN, n_test: int = N_TEST) -> tuple[list[dict], list[dict]]:
    """Train and test splits with no text shared between them."""
    rng = random.Random(seed)
    seen: set[str] = set()
    rows: list[dict] = []
    while len(rows) < n_train + n_test:
        row = make_example(rng)
        if row["text"] not in seen:
            seen.add(row["text"])
            rows.append(row)
    return rows[:n_train], rows[n_train:]


def write(folder: Path = DATA) -> None:
    """Write the two jsonl files into llmlab/data."""
    train, test = make_orders()
    for name, rows in [("ch05_orders_train.jsonl", train), ("ch05_orders_test.jsonl", test)]:
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    write()
