"""Write ch06_tickets.jsonl: customer-support messages to route to one of four teams (deterministic, seed 6).

Run: python scripts/data/ch06_make_tickets.py. 400 distinct messages, 100 per team, split 100 train / 100 dev /
200 test. Each message comes from one of ten per-team templates with random fillers, an optional greeting and
sign-off; several templates carry no team keyword ("It says delivered but nothing is at my door"), so the routing
rule has to come from the instruction or the demos, not from matching one word.

Train, dev and test share the templates: a test message often has a training message from the same template (a
recurring kind of ticket). A fourth split, "unseen" (100 messages, 25 per team, seed 7), comes from five other
templates per team that no train/dev/test message uses: it measures what carries over to new phrasings. The first
400 rows do not depend on it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "llmlab" / "data"  # the package's data folder

LABELS = ["billing", "shipping", "account", "technical"]

FILL = {
    "amount": ["$12.99", "$49", "$120.50", "EUR 35", "$7.25", "$299"],
    "item": ["blender", "desk lamp", "phone case", "rain jacket", "coffee grinder", "yoga mat", "backpack",
             "headphones", "kettle", "monitor stand"],
    "days": ["three days", "a week", "ten days", "two weeks", "since Monday", "five days"],
    "order": ["#4512", "#77310", "#1209", "#90044", "#3318", "#56021"],
    "city": ["Leeds", "Austin", "Lyon", "Porto", "Osaka", "Denver", "Gdansk"],
    "app": ["the app", "the website", "the mobile app", "your web portal", "the Android app", "the iPhone app"],
}

TEMPLATES = {
    "billing": [
        "I was charged {amount} twice for the same order {order}.",
        "My card statement shows {amount} from you but I never bought anything.",
        "Can you send me an invoice with my company's VAT number for order {order}?",
        "Why did my subscription price go up to {amount} this month?",
        "The payment for my {item} was declined although my card works everywhere else.",
        "Please cancel the automatic renewal before you take another {amount}.",
        "I paid {amount} but the receipt says a different total.",
        "You took the money {days} ago and I still see it pending on my bank app.",
        "Is there a way to pay in instalments for the {item}?",
        "The coupon code did not reduce the price at checkout, I paid full {amount}.",
    ],
    "shipping": [
        "My {item} has not arrived and it has been {days}.",
        "The tracking number for order {order} has not updated in {days}.",
        "Can I change the delivery address to {city} for order {order}?",
        "The courier left my {item} at the wrong house.",
        "The box was crushed when it got here and the {item} inside is scratched.",
        "Do you deliver to {city}, and how long does it take?",
        "It says delivered but nothing is at my door.",
        "I need the {item} before Friday, can you send it faster?",
        "Only half of order {order} came, where is the rest?",
        "The parcel is stuck at customs in {city} for {days}.",
    ],
    "account": [
        "I forgot my password and the reset email never comes.",
        "How do I change the email address on my profile?",
        "Someone logged into my account from {city}, I did not do that.",
        "I want to delete my account and all my data.",
        "The two-factor code is not accepted when I sign in.",
        "I am locked out after too many attempts.",
        "Please merge my two profiles, I made a second one by mistake.",
        "How can I change my username?",
        "I no longer have access to the phone number linked to my login.",
        "Can you unsubscribe me from the marketing newsletters in my profile settings?",
    ],
    "technical": [
        "{app} crashes every time I open the order history.",
        "The {item} turns off after a few seconds even when charged.",
        "The page keeps loading forever when I click checkout on {app}.",
        "My {item} makes a loud buzzing noise since the last update.",
        "The firmware update failed and now the {item} will not start.",
        "Pictures do not load on {app} since yesterday.",
        "The {item} does not connect to my phone over Bluetooth.",
        "I get error 503 whenever I search on {app}.",
        "The buttons on the {item} stopped responding.",
        "Dark mode makes the text unreadable on {app}.",
    ],
}

UNSEEN_TEMPLATES = {  # no train/dev/test message comes from these
    "billing": [
        "Your shop billed my credit card for a {item} that I returned {days} ago.",
        "Where can I download the bill for my last purchase?",
        "The total I was asked to pay does not match the price shown on the product page.",
        "I would like my {amount} back, the refund was promised but never paid out.",
        "Does the yearly plan cost less than paying {amount} every month?",
    ],
    "shipping": [
        "Which carrier brings parcels to {city}, and can I pick mine up at a depot?",
        "The driver never rang the bell, he just left a note saying I was out.",
        "My order {order} went to my old flat in {city} instead of the new one.",
        "How much does express postage cost for a {item}?",
        "Half the items in the box were missing and the tape had been opened.",
    ],
    "account": [
        "I would like to rename the profile, my surname changed after my wedding.",
        "Your site keeps asking me to verify my identity every time I sign in.",
        "Please remove my saved addresses and birthday from my profile.",
        "I share the login with my partner, can we each get our own?",
        "I never created a profile with you but I get emails about one.",
    ],
    "technical": [
        "Since your latest release {app} freezes on a white screen.",
        "The {item} shows a red blinking light and does nothing else.",
        "Videos in {app} play without sound on my tablet.",
        "The search results on {app} are empty no matter what I type.",
        "The {item} overheats after ten minutes of use.",
    ],
}

GREETINGS = ["", "", "Hi, ", "Hello, ", "Hey there. ", "Good morning, "]
SIGNOFFS = ["", "", " Thanks.", " Please help.", " This is urgent.", " Regards, Sam.", " Thank you!"]


def fill(template: str, rng: random.Random) -> str:
    """A template with every {slot} replaced by a random filler."""
    return template.format(**{k: rng.choice(v) for k, v in FILL.items()})


def messages(templates: dict[str, list[str]], n_per_label: int, rng: random.Random) -> list[dict]:
    """n_per_label distinct messages per team from these templates, shuffled, each {'text', 'label'}."""
    rows, seen = [], set()
    for label in LABELS:
        count = 0
        while count < n_per_label:
            body = fill(rng.choice(templates[label]), rng)
            greeting = rng.choice(GREETINGS)
            text = greeting + (body[0].lower() + body[1:] if greeting.endswith(", ") else body) + rng.choice(SIGNOFFS)
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "label": label})
                count += 1
    rng.shuffle(rows)
    return rows


def make(n_per_label: int = 100, seed: int = 6, n_unseen: int = 25, unseen_seed: int = 7) -> list[dict]:
    """Train/dev/test (1/4, 1/4, 1/2) from TEMPLATES, then the 'unseen' split from UNSEEN_TEMPLATES."""
    rows = messages(TEMPLATES, n_per_label, random.Random(seed))
    n = len(rows)
    for i, row in enumerate(rows):
        row["split"] = "train" if i < n // 4 else "dev" if i < n // 2 else "test"
    unseen = messages(UNSEEN_TEMPLATES, n_unseen, random.Random(unseen_seed))
    return rows + [dict(row, split="unseen") for row in unseen]


def main() -> None:
    """Write the dataset into llmlab/data."""
    out = DATA / "ch06_tickets.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in make()), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
