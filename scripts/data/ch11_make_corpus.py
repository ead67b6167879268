"""Seeded generator of chapter 11's data: documents of a fictional outdoor-gear company, questions, orders, agent tasks.

Run `python scripts/data/ch11_make_corpus.py` to rewrite (same seed, same files):
- ch11_docs.jsonl: {"id", "title", "text"}: product sheets, policies and buyer's guides of "Tallowbrook Outfitters"
  (invented, so the model cannot know the answers);
- ch11_questions.jsonl: {"id", "split", "question", "answers" (accepted strings), "doc_ids" (gold support)};
- ch11_orders.json: {order id: {...}}, the small key-value orders database;
- ch11_agent_tasks.jsonl: {"id", "task", "answer", "tools" (the tool calls a plan needs, in order)}.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 11
HERE = Path(__file__).resolve().parents[2] / "llmlab" / "data"  # the package's data folder
WORDS = ["Korvid", "Amsel", "Brimlo", "Cestra", "Dunvar", "Elkrin", "Fennow", "Galdur", "Hesper", "Ilvane",
         "Jorrik", "Kestel", "Lumra", "Morvath", "Nessak", "Ovrin", "Pellam", "Quorra", "Rasken", "Sovik",
         "Tamsin", "Ulmer", "Vexo", "Wyndra", "Yselt", "Zentra", "Arvik", "Bolden", "Corrin", "Drevna"]
SERIES = ["Ridge", "Trail", "Summit", "Drift", "Ember", "Crest", "Fjord", "Pike"]
TYPES = {  # type: (spec name, spec values, weight range kg, price range)
    "tent": ("capacity", ["one person", "two people", "three people", "four people"], (1.1, 4.5), (120, 690)),
    "backpack": ("volume", ["28 litres", "35 litres", "45 litres", "60 litres", "70 litres"], (0.7, 2.4), (60, 320)),
    "sleeping bag": ("comfort rating", ["minus 2 degrees", "minus 7 degrees", "plus 4 degrees", "minus 15 degrees"],
                     (0.6, 2.2), (80, 540)),
    "headlamp": ("brightness", ["200 lumens", "350 lumens", "500 lumens", "900 lumens"], (0.05, 0.2), (25, 120)),
    "camping stove": ("boil time", ["3 minutes", "4 minutes", "5 minutes"], (0.1, 0.9), (35, 210)),
    "water filter": ("filter life", ["1000 litres", "2000 litres", "4000 litres"], (0.05, 0.4), (30, 150)),
    "rain jacket": ("waterproof rating", ["10000 mm", "20000 mm", "28000 mm"], (0.2, 0.6), (90, 420)),
    "hiking boot": ("sole", ["Vibram Megagrip", "Tallowgrip XT", "Contagrip MA"], (0.9, 1.6), (110, 310)),
}
COLORS = ["slate grey", "forest green", "ember orange", "glacier blue", "sand beige", "midnight black",
          "moss olive", "berry red"]
FACTORIES = ["Tartu", "Braga", "Da Nang", "Poznan", "Izmir", "Chiang Mai"]
N_PRODUCTS = 140
TEMPLATES = [
    "The {name} is a {type} from Tallowbrook Outfitters, launched in {year}. It weighs {weight} kg and comes in "
    "{color}. The {name} costs {price} euros and its warranty covers {warranty} months. Product code: {sku}. "
    "Its {spec_name} is {spec}. It is made in our partner factory in {factory}.",
    "{name} ({type}). Product code {sku}. Colour: {color}. Weight: {weight} kg. Price: {price} euros. "
    "Warranty: {warranty} months from the date of purchase. {spec_name_cap}: {spec}. First sold in {year}; "
    "assembled in {factory}.",
    "Meet the {name}, our {type} for long days outside. Since its launch in {year} the {name} has been assembled "
    "in {factory}.\n\nSpecifications: {spec_name} {spec}; weight {weight} kg; colour {color}; product code {sku}. "
    "It sells for {price} euros, with a {warranty}-month warranty.",
]


def _products(rng: random.Random) -> list[dict]:
    """Unique product records with every fact a question can ask about."""
    names = rng.sample([f"{w} {s}" for w in WORDS for s in SERIES], N_PRODUCTS)
    skus = rng.sample(range(1000, 9999), N_PRODUCTS)
    products = []
    for i, name in enumerate(names):
        kind = list(TYPES)[i % len(TYPES)]
        spec_name, specs, (w_lo, w_hi), (p_lo, p_hi) = TYPES[kind]
        products.append({
            "name": name, "type": kind, "year": rng.randint(2017, 2025), "weight": f"{rng.uniform(w_lo, w_hi):.2f}",
            "color": rng.choice(COLORS), "price": f"{rng.randint(p_lo, p_hi)}.{rng.choice(['00', '50', '90'])}",
            "warranty": rng.choice([12, 18, 24, 36, 60]), "sku": f"TB-{skus[i]}", "spec_name": spec_name,
            "spec": rng.choice(specs), "factory": rng.choice(FACTORIES), "template": i % len(TEMPLATES)})
    return products


def _product_doc(i: int, p: dict) -> dict:
    """One product sheet."""
    text = TEMPLATES[p["template"]].format(spec_name_cap=p["spec_name"].capitalize(), **p)
    return {"id": f"P{i:03d}", "title": p["name"], "text": text}


POLICIES = [  # (title, text, [(question, answers)])
    ("Returns: tents and shelters",
     "Tents and shelters can be returned within 45 days of delivery if they have not been pitched outdoors. "
     "A pitched tent can only be exchanged, not refunded.",
     [("Within how many days can an unpitched tent be returned?", ["45 days", "45"])]),
    ("Returns: footwear",
     "Hiking boots may be returned within 60 days, even after indoor try-on. Boots worn on trails are covered by "
     "the Trail Promise instead, which allows one exchange within 120 days.",
     [("Within how many days can hiking boots be returned?", ["60 days", "60"]),
      ("How many days does the Trail Promise give for exchanging boots worn on trails?", ["120 days", "120"])]),
    ("Returns: electronics",
     "Headlamps and other electronics can be returned within 30 days in their original packaging. Batteries are "
     "not refundable once opened.", [("Within how many days can a headlamp be returned?", ["30 days", "30"])]),
    ("Returns: clothing",
     "Rain jackets and other clothing can be returned within 90 days if the tags are still attached.",
     [("Within how many days can a rain jacket with tags be returned?", ["90 days", "90"])]),
    ("Refund timing",
     "Once a return reaches our warehouse in Tartu, the refund is sent within 6 business days to the original "
     "payment method. Store credit is issued the same day.",
     [("Within how many business days is a refund sent after the return arrives?", ["6 business days", "6"]),
      ("In which city is the returns warehouse?", ["Tartu"])]),
    ("Shipping to Estonia, Latvia and Lithuania",
     "Orders to the Baltic states arrive in 2 to 3 business days. Shipping costs 3.90 euros and is free above "
     "79 euros.", [("How much does shipping to the Baltic states cost?", ["3.90 euros", "3.90"]),
                   ("Above which order value is Baltic shipping free?", ["79 euros", "79"])]),
    ("Shipping to the Nordic countries",
     "Orders to Finland, Sweden, Norway and Denmark arrive in 3 to 5 business days. Shipping costs 6.50 euros; "
     "Norway adds a customs handling fee of 4 euros.",
     [("How much does shipping to the Nordic countries cost?", ["6.50 euros", "6.50"]),
      ("What customs handling fee is added for Norway?", ["4 euros"])]),
    ("Shipping to the rest of the European Union",
     "Orders to other EU countries arrive in 4 to 7 business days. Shipping costs 8.90 euros and is free above "
     "149 euros.", [("Above which order value is shipping to other EU countries free?", ["149 euros", "149"])]),
    ("Shipping outside the European Union",
     "We ship to the United Kingdom, Switzerland and Iceland only. Delivery takes 6 to 10 business days and costs "
     "19 euros; import duties are paid by the customer.",
     [("How much does shipping to Switzerland cost?", ["19 euros"])]),
    ("Express delivery",
     "Express delivery is available in Estonia and Finland for 12.50 euros. Orders placed before 13:00 arrive the "
     "next business day.", [("What is the cut-off time for next-day express orders?", ["13:00"]),
                            ("How much does express delivery cost?", ["12.50 euros", "12.50"])]),
    ("Trailhead loyalty programme",
     "Trailhead members collect 1 point per euro spent. The Ridge tier starts at 500 points and gives a 5% "
     "discount; the Summit tier starts at 2000 points and gives a 10% discount and free express delivery.",
     [("How many points does the Summit tier of the Trailhead programme require?", ["2000 points", "2000"]),
      ("What discount does the Ridge tier give?", ["5%", "5 percent"])]),
    ("Repair service",
     "The Tallowbrook repair workshop fixes zips, seams and poles. A standard repair costs 25 euros and takes "
     "about 14 days; repairs within the warranty period are free.",
     [("How much does a standard repair cost outside the warranty?", ["25 euros"]),
      ("About how many days does a standard repair take?", ["14 days", "14"])]),
    ("Gift cards",
     "Tallowbrook gift cards are sold from 20 to 500 euros and are valid for 3 years. They cannot be exchanged "
     "for cash.", [("For how many years is a Tallowbrook gift card valid?", ["3 years", "three years"])]),
    ("Price match",
     "If you find the same product cheaper at an authorised retailer within 14 days of purchase, we refund the "
     "difference plus 10% of it. Marketplace sellers are excluded.",
     [("What extra share of the difference does the price match add?", ["10%", "10 percent"])]),
    ("Store in Tartu",
     "Our flagship store is at Riia 42 in Tartu. It is open Monday to Saturday from 10:00 to 19:00 and has a "
     "climbing wall for testing harnesses.",
     [("What is the address of the flagship store?", ["Riia 42"]),
      ("When does the Tartu store close?", ["19:00"])]),
    ("Store in Helsinki",
     "The Helsinki store is at Mannerheimintie 118. It is open every day from 9:00 to 21:00 and rents tents for "
     "18 euros per night.", [("How much does renting a tent in Helsinki cost per night?", ["18 euros"]),
                             ("What is the address of the Helsinki store?", ["Mannerheimintie 118"])]),
    ("Store in Riga",
     "The Riga store at Brivibas 77 opens from 11:00 to 20:00, Tuesday to Sunday. It is closed on Mondays.",
     [("On which day is the Riga store closed?", ["Monday", "Mondays"])]),
    ("Rental programme",
     "Tents, sleeping bags and stoves can be rented for up to 21 nights. A deposit of 100 euros is held on the "
     "customer's card and released within 2 days of return.",
     [("For how many nights at most can gear be rented?", ["21 nights", "21"]),
      ("How large is the rental deposit?", ["100 euros"])]),
    ("Student discount",
     "Students with a valid ISIC card get 12% off full-price items, once per calendar month.",
     [("How large is the student discount?", ["12%", "12 percent"])]),
    ("Customer service",
     "Customer service answers by chat from 8:00 to 22:00 and by phone at +372 555 0199 from 9:00 to 17:00. The "
     "average first reply by email takes 9 hours.",
     [("What is the customer service phone number?", ["+372 555 0199", "555 0199"]),
      ("How long does the average first email reply take?", ["9 hours"])]),
    ("Recycling programme",
     "Bring any used outdoor gear to a Tallowbrook store and receive a 15 euro voucher per item, up to 3 items per "
     "visit. The gear is repaired and donated to scouting groups.",
     [("How much is the voucher for recycling one item?", ["15 euro", "15 euros"]),
      ("How many items can be recycled per visit?", ["3 items", "3", "three"])]),
    ("Tent pole replacement",
     "Broken tent poles are replaced for 9 euros per section under the Pole Pledge, for the lifetime of the tent.",
     [("How much does a replacement tent pole section cost under the Pole Pledge?", ["9 euros"])]),
    ("Sleeping bag cleaning",
     "Down sleeping bags can be sent for professional cleaning for 35 euros. Cleaning takes 10 business days.",
     [("How much does cleaning a down sleeping bag cost?", ["35 euros"])]),
    ("Water filter cartridges",
     "Replacement cartridges for all Tallowbrook water filters cost 19.90 euros. We recommend replacing them "
     "every 6 months of regular use.",
     [("How often should a water filter cartridge be replaced with regular use?", ["6 months", "every 6 months"])]),
    ("Payment methods",
     "We accept cards, bank links and invoices. Invoices are available for orders up to 800 euros and must be paid "
     "within 14 days.", [("Up to which order value is invoice payment available?", ["800 euros", "800"])]),
    ("Company history",
     "Tallowbrook Outfitters was founded in 2009 by Maret Kask and Jonas Lind in Tartu. It started as a tent repair "
     "shop and now employs 230 people.",
     [("In which year was Tallowbrook Outfitters founded?", ["2009"]),
      ("How many people does Tallowbrook employ?", ["230"])]),
    ("Sustainability report",
     "In 2025 Tallowbrook used 68% recycled fabrics across its range and cut shipping emissions by 21% by moving "
     "Baltic deliveries to electric vans.",
     [("What share of fabrics was recycled in 2025?", ["68%", "68 percent"])]),
    ("Warranty claims",
     "To claim the warranty, send a photo of the fault and the order number to claims@tallowbrook.example. Claims "
     "are answered within 5 business days.",
     [("Within how many business days are warranty claims answered?", ["5 business days", "5"])]),
    ("Guided hikes",
     "Tallowbrook runs guided weekend hikes in Soomaa National Park from May to September. A place costs 65 euros "
     "including a rented tent.", [("How much does a place on a guided weekend hike cost?", ["65 euros"])]),
    ("Bulk orders",
     "Schools and clubs ordering 10 or more items of the same product get a 15% bulk discount. Ask for a quote "
     "at bulk@tallowbrook.example.", [("How many items of one product qualify for the bulk discount?",
                                       ["10 or more", "10"])]),
]


def _guides(rng: random.Random, products: list[dict]) -> list[dict]:
    """Buyer's guides that mention several products by name but state none of the facts asked about."""
    docs = []
    by_type: dict[str, list[dict]] = {}
    for p in products:
        by_type.setdefault(p["type"], []).append(p)
    for kind, items in by_type.items():
        for g in range(2):
            picks = rng.sample(items, 3)
            names = ", ".join(p["name"] for p in picks[:2]) + f" and {picks[2]['name']}"
            docs.append({"title": f"Choosing a {kind} ({g + 1})",
                         "text": f"Choosing a {kind} depends on the trip. Our staff often compare the {names}. "
                                 f"Try them in a store, read the product sheets, and ask about rental before you buy."})
    return docs


def _orders(rng: random.Random, products: list[dict]) -> dict[str, dict]:
    """Forty orders keyed by id."""
    customers = ["Liis Tamm", "Mikko Virtanen", "Anna Berzina", "Jonas Petrauskas", "Sara Lind", "Karl Ots",
                 "Eva Kalnina", "Oskar Nieminen"]
    orders = {}
    for i in range(40):
        p = rng.choice(products)
        orders[f"Q-{1040 + i}"] = {"customer": rng.choice(customers), "product": p["name"],
                                   "quantity": rng.randint(1, 6), "unit_price": float(p["price"]),
                                   "status": rng.choice(["processing", "shipped", "delivered", "returned"])}
    return orders


def _fmt(x: float) -> str:
    """A money amount as the agent should write it: 2 decimals, no trailing zeros beyond them."""
    return f"{x:.2f}"


def _agent_tasks(rng: random.Random, products: list[dict], orders: dict[str, dict]) -> list[dict]:
    """Sixty tasks needing one to three tool calls, with gold final answers."""
    tasks = []
    ids = list(orders)
    for oid in rng.sample(ids, 12):
        tasks.append({"task": f"What is the status of order {oid}?", "answer": orders[oid]["status"],
                      "tools": ["orders"]})
    for oid in rng.sample(ids, 8):
        tasks.append({"task": f"Which product was bought in order {oid}?", "answer": orders[oid]["product"],
                      "tools": ["orders"]})
    for _ in range(10):
        a, b, c = rng.randint(2, 60), rng.randint(2, 30), rng.randint(1, 99)
        op = rng.choice(["*", "+"])
        expr = f"{a} {op} {b} + {c}"
        value = (a * b if op == "*" else a + b) + c
        tasks.append({"task": f"What is {expr}?", "answer": str(value), "tools": ["calculator"]})
    for p in rng.sample(products, 10):
        tasks.append({"task": f"What is the warranty of the {p['name']} in months?", "answer": str(p["warranty"]),
                      "tools": ["search"]})
    for oid in rng.sample(ids, 10):
        o = orders[oid]
        total = o["quantity"] * o["unit_price"]
        tasks.append({"task": f"What is the total price of order {oid} (quantity times unit price)?",
                      "answer": _fmt(total), "tools": ["orders", "calculator"]})
    for oid in rng.sample(ids, 5):
        p = next(p for p in products if p["name"] == orders[oid]["product"])
        tasks.append({"task": f"What is the product code of the product in order {oid}?", "answer": p["sku"],
                      "tools": ["orders", "search"]})
    for a, b in [rng.sample(ids, 2) for _ in range(5)]:
        qty = orders[a]["quantity"] + orders[b]["quantity"]
        tasks.append({"task": f"How many items were ordered in orders {a} and {b} together?", "answer": str(qty),
                      "tools": ["orders", "orders", "calculator"]})
    for i, t in enumerate(tasks):
        t["id"] = f"T{i:02d}"
    return [{"id": t["id"], "task": t["task"], "answer": t["answer"], "tools": t["tools"]} for t in tasks]


def build() -> tuple[list[dict], list[dict], dict[str, dict], list[dict]]:
    """Documents, questions, orders and agent tasks, all from one seed."""
    rng = random.Random(SEED)
    products = _products(rng)
    docs = [_product_doc(i, p) for i, p in enumerate(products)]
    questions = []
    kinds = [("warranty", "How long is the warranty of the {name}?", lambda p: [f"{p['warranty']} months"]),
             ("weight", "How much does the {name} weigh?", lambda p: [f"{p['weight']} kg", p["weight"]]),
             ("sku", "What is the product code of the {name}?", lambda p: [p["sku"]]),
             ("color", "What colour is the {name}?", lambda p: [p["color"]]),
             ("price", "How much does the {name} cost?", lambda p: [f"{p['price']} euros", p["price"]]),
             ("factory", "Where is the {name} made?", lambda p: [p["factory"]]),
             ("year", "In which year was the {name} launched?", lambda p: [str(p["year"])])]
    for i, p in enumerate(products):
        if i % 4 == 3:
            continue
        _, template, answers = kinds[rng.randrange(len(kinds))]
        questions.append({"question": template.format(name=p["name"]), "answers": answers(p),
                          "doc_ids": [f"P{i:03d}"]})
    for j, (title, text, qas) in enumerate(POLICIES):
        docs.append({"id": f"D{j:03d}", "title": title, "text": text})
        for q, answers in qas:
            questions.append({"question": q, "answers": answers, "doc_ids": [f"D{j:03d}"]})
    for j, g in enumerate(_guides(rng, products)):
        docs.append({"id": f"G{j:03d}", **g})
    rng.shuffle(questions)
    for i, q in enumerate(questions):
        q["id"] = f"Q{i:03d}"
        q["split"] = "dev" if i < 60 else "test"
    questions = [{k: q[k] for k in ("id", "split", "question", "answers", "doc_ids")} for q in questions]
    orders = _orders(rng, products)
    return docs, questions, orders, _agent_tasks(rng, products, orders)


def main() -> None:
    """Write the four data files next to this script."""
    docs, questions, orders, tasks = build()
    (HERE / "ch11_docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    (HERE / "ch11_questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    (HERE / "ch11_orders.json").write_text(json.dumps(orders, indent=1) + "\n", encoding="utf-8")
    (HERE / "ch11_agent_tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks), encoding="utf-8")
    print(f"{len(docs)} documents, {len(questions)} questions, {len(orders)} orders, {len(tasks)} agent tasks")


if __name__ == "__main__":
    main()
