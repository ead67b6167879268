"""One-off: give every results/*.md recorded before results-as-data a .json parsed from its header and tables.

Run once: python benchmarks/backfill_json.py. It never overwrites a .json; the JSON says it was parsed from the
report, so a reader knows its numbers are the report's rounded text, not the run's raw values.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SOURCE = "parsed from the .md report (run predates results-as-data)"


def cells(line: str) -> list[str]:
    """The stripped cells of one markdown table row."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_report(text: str) -> dict:
    """{"title", "header", "tables": [{"section", "columns", "rows"}], "source"} of one markdown report."""
    lines = text.splitlines()
    title = next((ln.lstrip("#").strip() for ln in lines if ln.strip()), "")
    header = next((ln.strip() for ln in lines if "load average" in ln or " · " in ln), title)
    tables, section, i = [], "", 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        is_table = line.startswith("|") and i + 1 < len(lines) and set(lines[i + 1].strip()) <= set("|-: ")
        if is_table and lines[i + 1].strip():
            rows, j = [], i + 2
            while j < len(lines) and lines[j].strip().startswith("|"):
                rows.append(cells(lines[j]))
                j += 1
            tables.append({"section": section, "columns": cells(line), "rows": rows})
            i = j
            continue
        i += 1
    return {"title": title, "header": header, "tables": tables, "source": SOURCE}


def main(root: Path = RESULTS) -> int:
    """Write the missing .json beside each report; print what was written."""
    for md in sorted(root.glob("*.md")):
        out = md.with_suffix(".json")
        if out.exists():
            continue
        out.write_text(json.dumps(parse_report(md.read_text(encoding="utf-8")), indent=1, ensure_ascii=False) + "\n",
                       encoding="utf-8")
        print(f"wrote {out.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS))
