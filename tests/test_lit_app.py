"""Tests for llmlab.kit.lit_app on the tiny model: prompts, LIT wrappers, local fonts, the WSGI app, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from werkzeug.test import Client

from llmlab import interpret
from llmlab.kit import cli, lit_app


def test_shipped_prompts_have_stable_unique_ids():
    prompts = lit_app.load_prompts()
    ids = [p["id"] for p in prompts]
    assert len(prompts) >= 6 and len(set(ids)) == len(ids) and all(i.strip() for i in ids)
    assert all(p["prompt"].strip() for p in prompts)
    ds = lit_app.make_dataset()
    assert [ex["_id"] for ex in ds.examples] == ids


@pytest.mark.parametrize("rows, message", [
    ([{"id": "", "prompt": "hi"}], r"prompts\[0\] must have a non-empty str id"),
    ([{"id": "a", "prompt": "hi"}, {"id": "a", "prompt": "yo"}], "unique ids"),
    ([{"id": "a", "prompt": ""}], r"prompts\[0\]\['prompt'\] must be a non-empty str"),
    ([], "prompts must have at least one item"),
])
def test_make_dataset_rejects_bad_prompts(rows, message):
    with pytest.raises(ValueError, match=message):
        lit_app.make_dataset(rows)


def test_wrappers_agree_on_tokens_and_use_interpret_saliency(tiny):
    model, tok = tiny
    models = lit_app.make_models(model, tok, name="tiny", max_new_tokens=3)
    assert set(models) == {"tiny", "_tiny_salience", "_tiny_tokenizer"}
    ex = {"prompt": "The cat sat on", "target": " mat"}
    tokens = list(models["_tiny_tokenizer"].predict([ex]))[0]["tokens"]
    sal = list(models["_tiny_salience"].predict([ex]))[0]
    assert sal["tokens"] == tokens and len(sal["grad_l2"]) == len(sal["grad_dot_input"]) == len(tokens)
    expected = interpret.token_saliency(model, tok, ex["prompt"], ex["target"], method="grad_x_input")
    assert np.allclose(sal["grad_dot_input"], expected.scores.numpy(), atol=1e-5)
    n_target = len(tok(ex["target"], add_special_tokens=False)["input_ids"])
    mask = [0] * (len(tokens) - n_target) + [1] * n_target    # the UI's target mask: the same target here
    masked = list(models["_tiny_salience"].predict([ex | {"target_mask": mask}]))[0]
    assert np.allclose(masked["grad_dot_input"], sal["grad_dot_input"], atol=1e-6)
    response = list(models["tiny"].predict([{"prompt": "Hello", "target": ""}]))[0]["response"]
    assert isinstance(response, str)
    with pytest.raises(ValueError, match="target_mask must have one entry per token"):
        lit_app.token_salience(model, tok, ex | {"target_mask": [0, 1]})


def test_find_icon_font(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMLAB_ICON_FONT_DIR", raising=False)
    assert lit_app.find_icon_font([str(tmp_path)]) is None
    (tmp_path / "MaterialIcons-Regular.woff").write_bytes(b"wOFF")
    assert lit_app.find_icon_font([str(tmp_path)]) == (tmp_path / "MaterialIcons-Regular.woff", "woff")
    monkeypatch.setenv("LLMLAB_ICON_FONT_DIR", str(tmp_path))
    assert lit_app.find_icon_font([])[1] == "woff"
    css = lit_app.icon_css("/f.woff", "woff")
    assert "font-family:'Material Icons Outlined'" in css and "'liga'" in css


def _page(environ, start_response):
    body = (b'<html><head><link href="https://fonts.googleapis.com/css?family=Roboto" rel="stylesheet">\n'
            b"</head><body>hi</body></html>")
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def test_local_fonts_rewrites_the_page_and_serves_the_font(tmp_path):
    font = tmp_path / "MaterialIcons-Regular.woff2"
    font.write_bytes(b"wOF2fake")
    client = Client(lit_app.local_fonts(_page, (font, "woff2")))
    page = client.get("/")
    assert b"googleapis" not in page.data and b'href="/llmlab-fonts/icons.css"' in page.data
    assert int(page.headers["Content-Length"]) == len(page.data)
    css = client.get("/llmlab-fonts/icons.css")
    assert css.status_code == 200 and b"/llmlab-fonts/MaterialIcons-Regular.woff2" in css.data
    woff = client.get("/llmlab-fonts/MaterialIcons-Regular.woff2")
    assert woff.data == b"wOF2fake" and woff.headers["Content-Type"] == "font/woff2"
    assert client.get("/llmlab-fonts/other.ttf").status_code == 404
    no_font = Client(lit_app.local_fonts(_page, None))
    assert b"googleapis" not in no_font.get("/").data                # offline: no request that cannot succeed


def test_lit_app_answers_info_and_salience_for_an_edited_example(tiny):
    model, tok = tiny
    app, _ = lit_app.build_app(model, tok, name="tiny", max_new_tokens=2)
    client = Client(app)
    page = client.get("/")
    assert page.status_code == 200 and b"googleapis" not in page.data
    info = json.loads(client.get("/get_info").data)
    assert {"tiny", "_tiny_salience", "_tiny_tokenizer"} <= set(info["models"])
    example = {"id": "", "data": {"_id": "", "prompt": "ab", "target": "c", "target_mask": [0, 0, 1]}, "meta": {}}
    reply = client.post("/get_preds?model=_tiny_salience&dataset_name=prompts&requested_types=TokenScores",
                        data=json.dumps({"inputs": [example]}), content_type="application/json")
    assert reply.status_code == 200, reply.data[-500:]
    scores = json.loads(reply.data)[0]
    assert len(scores["grad_l2"]) == 3 and torch.isfinite(torch.tensor(scores["grad_dot_input"])).all()


def test_cli_has_a_lit_command():
    args = cli.build_parser().parse_args(["lit", "--port", "0"])
    assert args.func is cli.cmd_lit and args.port == 0 and args.host == "127.0.0.1"
