"""LIT (the Learning Interpretability Tool, lit-nlp) on the local model: wrappers, shipped prompts, a local server.

Three wrappers share one loaded model, named as LIT's sequence-salience module expects (`NAME`,
`_NAME_salience`, `_NAME_tokenizer`): greedy generation, tokens, and token salience (gradient L2 norm and
gradient x input, computed by llmlab.interpret). The server runs on loopback and serves the Material Icons
font itself, so the UI looks right with no network (LIT's page loads its fonts from Google Fonts).
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import torch

from llmlab import sampling, validate
from llmlab.interpret._common import token_texts
from llmlab.interpret.saliency import gradient, sequence_score
from llmlab.tasks.jsonl import read_jsonl

PROMPTS_FILE = "ch08_lit_prompts.jsonl"
MODEL_NAME = "smollm2"
PROMPT, TARGET, RESPONSE, TOKENS, TARGET_MASK = "prompt", "target", "response", "tokens", "target_mask"
GRAD_L2, GRAD_DOT_INPUT = "grad_l2", "grad_dot_input"
FONT_ROUTE = "/llmlab-fonts/"
# Where the icon font is looked for: $LLMLAB_ICON_FONT_DIR, then Debian's fonts-material-design-icons-iconfont.
FONT_DIRS = ["/usr/share/fonts/woff/material-design-icons-iconfont",
             "/usr/share/fonts/truetype/material-design-icons-iconfont"]
FONT_FILES = [("MaterialIcons-Regular.woff2", "woff2"), ("MaterialIcons-Regular.woff", "woff"),
              ("MaterialIcons-Regular.ttf", "truetype")]


def load_prompts() -> list[dict]:
    """The shipped prompts: dicts with a stable non-empty id, source, prompt and target ("" = let the model answer)."""
    return read_jsonl(resources.files("llmlab.data").joinpath(PROMPTS_FILE))


def _tokenize(tokenizer, example: dict) -> torch.Tensor:
    """Ids (seq,) of prompt + target, as LIT's tokenizer and salience models must both see them."""
    text = validate.text("prompt", example.get(PROMPT)) + (example.get(TARGET) or "")
    return torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"])


def token_salience(model, tokenizer, example: dict) -> dict:
    """Tokens of prompt + target and, per token, the L2 norm and the dot with the input of the gradient of the
    target tokens' summed log-probability (target = target_mask's tokens, else the target string's tokens)."""
    ids = _tokenize(tokenizer, example)
    mask = torch.zeros(len(ids), dtype=torch.bool)
    given = example.get(TARGET_MASK)
    if given is not None and len(given) and any(given):
        if len(given) != len(ids):
            raise ValueError(f"target_mask must have one entry per token ({len(ids)}), got {len(given)}")
        mask = torch.as_tensor([bool(v) for v in given])
    else:
        prompt_len = len(tokenizer(example[PROMPT], add_special_tokens=False)["input_ids"])
        mask[prompt_len:] = True
    embed = model.get_input_embeddings()
    x = embed(ids.to(model.device)).detach().float()
    grad = gradient(lambda batch: sequence_score(model, batch.to(embed.weight.dtype), ids, mask), x)
    return {TOKENS: token_texts(tokenizer, ids), GRAD_L2: grad.norm(dim=-1).cpu().numpy(),
            GRAD_DOT_INPUT: (grad * x).sum(-1).cpu().numpy()}


def _lit():
    """Import lit_nlp's API lazily (it is heavy and only the LIT parts of the chapter need it)."""
    from lit_nlp.api import dataset as lit_dataset
    from lit_nlp.api import model as lit_model
    from lit_nlp.api import types as lit_types

    return lit_dataset, lit_model, lit_types


def make_dataset(prompts: Sequence[dict] | None = None):
    """A LIT Dataset of prompts; each example keeps its stable id as LIT's `_id` (never empty)."""
    lit_dataset, _, lit_types = _lit()
    rows = list(prompts) if prompts is not None else load_prompts()
    validate.non_empty("prompts", rows)
    examples = []
    for i, row in enumerate(rows):
        if not isinstance(row.get("id"), str) or not row["id"].strip():
            raise ValueError(f"prompts[{i}] must have a non-empty str id, got {row.get('id')!r}")
        validate.text(f"prompts[{i}]['prompt']", row.get(PROMPT))
        examples.append({"_id": row["id"], "source": row.get("source", ""), PROMPT: row[PROMPT],
                         TARGET: row.get(TARGET, "")})
    if len({e["_id"] for e in examples}) != len(examples):
        raise ValueError("prompts must have unique ids, got duplicates")

    class Prompts(lit_dataset.Dataset):
        """The chapter's prompts, with a source label."""

        def spec(self):
            return {"source": lit_types.CategoryLabel(), PROMPT: lit_types.TextSegment(),
                    TARGET: lit_types.TextSegment(required=False)}

    return Prompts(examples=examples)


def make_models(model, tokenizer, name: str = MODEL_NAME, max_new_tokens: int = 24) -> dict:
    """LIT's three models over one loaded model: {name: generation, _name_salience, _name_tokenizer}."""
    _, lit_model, lit_types = _lit()
    validate.text("name", name)
    validate.integer("max_new_tokens", max_new_tokens, 1)
    input_spec = {PROMPT: lit_types.TextSegment(), TARGET: lit_types.TextSegment(required=False)}

    class Generation(lit_model.BatchedModel):
        """Greedy continuation of the prompt (sampling.greedy), up to max_new_tokens."""

        def max_minibatch_size(self) -> int:
            return 1

        def input_spec(self):
            return input_spec

        def output_spec(self):
            return {RESPONSE: lit_types.GeneratedText(parent=TARGET)}

        def predict_minibatch(self, inputs: Iterable[dict]) -> list[dict]:
            out = []
            for ex in inputs:
                ids = _tokenize(tokenizer, {PROMPT: ex[PROMPT]})[None]
                gen = sampling.greedy(model, ids, max_new_tokens)
                out.append({RESPONSE: tokenizer.decode(gen.token_ids, skip_special_tokens=True)})
            return out

    class Tokenizer(lit_model.BatchedModel):
        """The tokens of prompt + target, exactly as the salience model sees them."""

        def input_spec(self):
            return input_spec

        def output_spec(self):
            return {TOKENS: lit_types.Tokens(parent="")}

        def predict_minibatch(self, inputs: Iterable[dict]) -> list[dict]:
            return [{TOKENS: token_texts(tokenizer, _tokenize(tokenizer, ex))} for ex in inputs]

    class Salience(lit_model.BatchedModel):
        """Gradient L2 norm and gradient x input of the target tokens' log-probability, per token."""

        def max_minibatch_size(self) -> int:
            return 1

        def input_spec(self):
            return input_spec | {TARGET_MASK: lit_types.TokenScores(align="", required=False)}

        def output_spec(self):
            return {TOKENS: lit_types.Tokens(parent=""), GRAD_DOT_INPUT: lit_types.TokenScores(align=TOKENS),
                    GRAD_L2: lit_types.TokenScores(align=TOKENS)}

        def predict_minibatch(self, inputs: Iterable[dict]) -> list[dict]:
            return [token_salience(model, tokenizer, ex) for ex in inputs]

    return {name: Generation(), f"_{name}_salience": Salience(), f"_{name}_tokenizer": Tokenizer()}


def find_icon_font(dirs: Sequence[str] | None = None) -> tuple[Path, str] | None:
    """The Material Icons font file and its CSS format, or None when no known place has it."""
    search = ([os.environ["LLMLAB_ICON_FONT_DIR"]] if os.environ.get("LLMLAB_ICON_FONT_DIR") else []) + \
        list(FONT_DIRS if dirs is None else dirs)
    for folder in search:
        for name, fmt in FONT_FILES:
            if (Path(folder) / name).is_file():
                return Path(folder) / name, fmt
    return None


def icon_css(font_url: str, fmt: str) -> str:
    """@font-face rules for LIT's three icon font names (one file) and Google's .material-icons classes."""
    faces = "".join(f"@font-face{{font-family:'{family}';font-style:normal;font-weight:400;font-display:block;"
                    f"src:url({font_url}) format('{fmt}');}}\n"
                    for family in ("Material Icons", "Material Icons Outlined", "Google Material Icons"))
    classes = ("{font-weight:normal;font-style:normal;font-size:24px;line-height:1;letter-spacing:normal;"
               "text-transform:none;display:inline-block;white-space:nowrap;word-wrap:normal;direction:ltr;"
               "font-feature-settings:'liga';-webkit-font-smoothing:antialiased;}\n")
    return (faces + ".material-icons{font-family:'Material Icons';}\n"
            ".material-icons-outlined{font-family:'Material Icons Outlined';}\n"
            ".material-icons,.material-icons-outlined" + classes)


_GOOGLE_FONTS = re.compile(rb'<link[^>]*fonts\.googleapis\.com[^>]*>\s*')


def local_fonts(app, font: tuple[Path, str] | None):
    """WSGI middleware: LIT's page without its Google Fonts links, and the icon font served from this machine."""
    css = icon_css(FONT_ROUTE + font[0].name, font[1]).encode() if font else b""
    font_bytes = font[0].read_bytes() if font else b""
    types = {"woff2": "font/woff2", "woff": "font/woff", "truetype": "font/ttf"}

    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(FONT_ROUTE):
            if path == FONT_ROUTE + "icons.css":
                body, kind = css, "text/css; charset=utf-8"
            elif font and path == FONT_ROUTE + font[0].name:
                body, kind = font_bytes, types[font[1]]
            else:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found"]
            start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(body))),
                                      ("Cache-Control", "max-age=3600")])
            return [body]
        captured = {}

        def capture(status, headers, exc_info=None):
            captured.update(status=status, headers=headers)
            return lambda data: None

        body = b"".join(app(environ, capture))
        headers = captured["headers"]
        if any(k.lower() == "content-type" and v.startswith("text/html") for k, v in headers):
            link = f'<link rel="stylesheet" href="{FONT_ROUTE}icons.css">\n'.encode()
            body = _GOOGLE_FONTS.sub(b"", body).replace(b"</head>", link + b"</head>", 1)
            headers = [(k, str(len(body)) if k.lower() == "content-length" else v) for k, v in headers]
        start_response(captured["status"], headers)
        return [body]

    return wrapped


def build_app(model, tokenizer, prompts: Sequence[dict] | None = None, name: str = MODEL_NAME,
              max_new_tokens: int = 24, font_dirs: Sequence[str] | None = None):
    """The LIT WSGI app for the local model and the prompts, with local fonts; returns (app, font or None)."""
    from lit_nlp import app as lit_app
    from lit_nlp import server_config
    from lit_nlp.examples.prompt_debugging import layouts

    flags = dict(server_config.get_flags())      # absl flags are not parsed outside an absl app: use the defaults
    for key in ("port", "host", "server_type", "data_dir", "warm_start", "default_layout", "page_title",
                "development_demo", "demo_mode"):
        flags.pop(key, None)
    app = lit_app.LitApp(make_models(model, tokenizer, name, max_new_tokens), {"prompts": make_dataset(prompts)},
                         layouts=layouts.PROMPT_DEBUGGING_LAYOUTS, default_layout=layouts.LEFT_RIGHT,
                         page_title="llmlab · LIT", development_demo=False, demo_mode=True, warm_start=0.0,
                         data_dir="", **flags)
    font = find_icon_font(font_dirs)
    return local_fonts(app, font), font


def make_server(app, host: str = "127.0.0.1", port: int = 0):
    """A threaded werkzeug server for a WSGI app on host:port (port 0: a free port); call .serve_forever()."""
    from werkzeug.serving import make_server as werkzeug_server

    validate.text("host", host)
    validate.integer("port", port, 0, 65535)
    return werkzeug_server(host, port, app, threaded=True)
