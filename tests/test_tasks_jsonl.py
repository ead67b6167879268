"""read_jsonl: the one JSONL reader (paths, resources files, blank lines, bad lines)."""

from __future__ import annotations

from importlib import resources

import pytest

from llmlab.tasks.jsonl import read_jsonl


def test_reads_values_in_order_skipping_blank_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"a": "é"}\n[1, 2]\n', encoding="utf-8")
    assert read_jsonl(path) == [{"a": 1}, {"a": "é"}, [1, 2]]
    assert read_jsonl(str(path)) == read_jsonl(path)
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    assert read_jsonl(tmp_path / "empty.jsonl") == []


def test_reads_shipped_resources_files():
    rows = read_jsonl(resources.files("llmlab.data").joinpath("ch08_sentences.jsonl"))
    assert len(rows) == 96 and {"id", "text"} <= set(rows[0])


def test_bad_line_and_bad_path_type_are_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl line 2 must be one JSON value, got '\{\"a\": '"):
        read_jsonl(path)
    with pytest.raises(TypeError, match="path must be a str, a Path or a resources file, got int"):
        read_jsonl(3)
