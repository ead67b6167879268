"""Write ch07_prompts.json: 20 evaluation prompts and the distillation prompts (topics x templates), disjoint.

Run: python scripts/data/ch07_make_prompts.py (deterministic; the output is shipped).
"""

from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "llmlab" / "data"  # the package's data folder

EVAL = [
    "Explain why the sky is blue in a few sentences.",
    "Write a short poem about the sea.",
    "What are three tips for staying focused while studying?",
    "Describe how a bicycle works.",
    "Give me a simple recipe for pancakes.",
    "What is the difference between weather and climate?",
    "Write a friendly email inviting a colleague to lunch.",
    "Why do leaves change colour in autumn?",
    "List five fruits and one fact about each.",
    "How does a refrigerator keep food cold?",
    ("Summarise this in one sentence: The city council met on Monday and agreed to build a new library "
     "next to the park. The library will open in two years and will have a children's room and a cafe."),
    "Rewrite this sentence in a more formal tone: hey, the meeting got moved to friday, can u still come?",
    "Translate into simple English: The photosynthetic process converts luminous energy into chemical energy.",
    "Correct the grammar: She don't like apples and she have two cat.",
    "Write a Python function that returns the square of a number.",
    "Explain what a neural network is to a ten-year-old.",
    "What should I pack for a weekend camping trip?",
    "Tell me a short story about a robot who learns to paint.",
    "What are the benefits of drinking water?",
    "Describe the water cycle step by step.",
]

TOPICS = [
    "the moon", "volcanoes", "honey bees", "the internet", "electric cars", "the Roman Empire", "coffee",
    "sleep", "rainbows", "chess", "the human heart", "recycling", "dinosaurs", "the piano", "solar panels",
    "earthquakes", "bread", "the ocean tides", "vaccines", "trains", "friendship", "penguins", "the stock market",
    "gravity", "tea", "mountains", "computers", "birds migrating", "the Olympic games", "deserts", "soap",
    "clouds", "libraries", "rivers", "cats", "airplanes", "the brain", "forests", "money", "music",
]

TEMPLATES = [
    "Tell me about {t}.",
    "Explain {t} in simple terms.",
    "Write a short paragraph about {t}.",
    "What are three interesting facts about {t}?",
    "Why is {t} important?",
    "Write a short poem about {t}.",
    "Give me a brief history of {t}.",
    "Describe {t} to a child.",
]


def prompts() -> dict[str, list[str]]:
    """The evaluation prompts and the distillation prompts (every template for every topic)."""
    train = [tpl.format(t=t) for t in TOPICS for tpl in TEMPLATES]
    assert not set(train) & set(EVAL)
    return {"eval": EVAL, "train": train}


if __name__ == "__main__":
    out = DATA / "ch07_prompts.json"
    out.write_text(json.dumps(prompts(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
