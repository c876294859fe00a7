"""The browser page (`lite-whisper serve-web`): exported model folders transcribing in the browser through
transformers.js, with everything served from this machine.

- The page (`web/`: index.html, app.js, style.css, and asr.js, which is also the model card's browser example)
  loads transformers.js and onnxruntime-web's WebAssembly files from /vendor/ and each model from /models/NAME/,
  with remote models off: no CDN, no Hub.
- transformers.js and onnxruntime-web are npm packages, pinned and fetched once into the cache (web_packages.py).
- Each model folder is checked before serving (`check_model_folder`): a Whisper or LiteWhisper config, the
  processor files, and onnx/ with an encoder and merged decoder pair (`lite-whisper export-onnx`). A bad folder
  is named with its fix on stderr and on the page; the good ones are served.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

from lite_whisper.compression import encoder_params
from lite_whisper.interop.onnx.layout import DECODER, ENCODER, SUFFIXES
from lite_whisper.interop.web_packages import NPM_PACKAGES
from lite_whisper.publish.card import onnx_dtypes
from lite_whisper.whisper import is_english_only

WEB_DIR = Path(__file__).parent / "web"
PAGE_FILES = ("index.html", "app.js", "asr.js", "style.css")


# --- the models ---------------------------------------------------------------------------------------------------

_PROCESSOR_FILES = ("generation_config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json")


@dataclass
class ServedModel:
    """One folder as the page sees it (models.json); `problem` says what is wrong and how to fix it."""

    name: str
    folder: str
    ok: bool = True
    problem: str | None = None
    kind: str = ""
    base: str | None = None
    english_only: bool = True
    encoder_params: int | None = None
    encoder_params_dense: int | None = None
    dtypes: dict = field(default_factory=dict)  # dtype -> {"encoder_bytes", "decoder_bytes"}


def check_model_folder(folder: str | Path, name: str) -> ServedModel:
    """What the page needs of `folder`, or the first thing missing (with the command that makes it)."""
    folder = Path(folder)
    model = ServedModel(name=name, folder=str(folder.resolve()))

    def bad(problem: str) -> ServedModel:
        model.ok, model.problem = False, f"{folder}: {problem}"
        return model

    if not folder.is_dir():
        return bad("not a folder")
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return bad("no readable config.json: give a Whisper or LiteWhisper model folder")
    if config.get("model_type") not in ("whisper", "lite-whisper"):
        return bad(f"model_type {config.get('model_type')!r} is not a Whisper or LiteWhisper")
    missing = [f for f in _PROCESSOR_FILES if not (folder / f).is_file()]
    if missing:
        return bad(f"lacks {', '.join(missing)}: give the folder written by `lite-whisper convert` or `import-ct2`")
    if not (folder / "onnx").is_dir():
        return bad(f"has no onnx/ folder: export the model first with `lite-whisper export-onnx {folder}`")
    dtypes = onnx_dtypes(folder)
    if not dtypes:
        return bad(f"onnx/ holds no {ENCODER}*.onnx + {DECODER}*.onnx pair: export again with "
                   f"`lite-whisper export-onnx {folder} --overwrite`")
    lite = bool(config.get("low_rank_config"))
    conversion = _read_json(folder / "conversion.json")
    model.kind = "LiteWhisper" if lite else "Whisper"
    model.base = Path(str(conversion.get("base_model"))).name if conversion.get("base_model") else None
    model.english_only = is_english_only(config)
    shapes = SimpleNamespace(**config)
    ranks = {(i, p): r for i, layer in enumerate(config.get("low_rank_config") or []) for p, r in layer.items()}
    model.encoder_params, model.encoder_params_dense = encoder_params(shapes, ranks), encoder_params(shapes)
    onnx = folder / "onnx"
    model.dtypes = {d: {"encoder_bytes": (onnx / f"{ENCODER}{SUFFIXES[d]}.onnx").stat().st_size,
                        "decoder_bytes": (onnx / f"{DECODER}{SUFFIXES[d]}.onnx").stat().st_size} for d in dtypes}
    return model


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def served_models(folders: list[str | Path]) -> list[ServedModel]:
    """Every folder checked, under a URL-safe name of its own (the folder's name, numbered when repeated)."""
    models, names = [], set()
    for folder in folders:
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(folder).resolve().name).strip("-.") or "model"
        unique, n = name, 2
        while unique in names:
            unique, n = f"{name}-{n}", n + 1
        names.add(unique)
        models.append(check_model_folder(folder, unique))
    return models


# --- the server ---------------------------------------------------------------------------------------------------

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
          ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm", ".txt": "text/plain"}


def _handler(models: list[ServedModel], packages: Path):
    folders = {m.name: Path(m.folder) for m in models if m.ok}
    manifest = json.dumps([asdict(m) for m in models]).encode()
    vendor = {key: packages / key / p.serve_from for key, p in NPM_PACKAGES.items()}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self._respond(body=True)

        def do_HEAD(self):  # noqa: N802
            self._respond(body=False)

        def _respond(self, body: bool) -> None:
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            if path == "/models.json":
                return self._send(200, manifest, ".json", body)
            file = self._resolve(path)
            if file is None:
                return self._send(404, f"not found: {path}\n".encode(), ".txt", body)
            self._send(200, file, file.suffix, body)

        def _resolve(self, path: str) -> Path | None:
            """The file behind a URL path, only inside the page, the packages or a served model folder."""
            parts = [p for p in path.split("/") if p]
            if not parts:
                parts = ["index.html"]
            if len(parts) == 1 and parts[0] in PAGE_FILES:
                return WEB_DIR / parts[0]
            roots = {"vendor": vendor, "models": folders}.get(parts[0])
            if roots is None or len(parts) < 3 or parts[1] not in roots:
                return None
            if any(p.startswith(".") for p in parts[2:]):  # no "..", no hidden files
                return None
            file = roots[parts[1]] / Path(*parts[2:])  # symlinks inside a folder (a Hub cache snapshot) are followed
            return file if file.is_file() else None

        def _send(self, status: int, content: bytes | Path, suffix: str, body: bool) -> None:
            size = content.stat().st_size if isinstance(content, Path) else len(content)
            self.send_response(status)
            self.send_header("Content-Type", _TYPES.get(suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(size))
            self.send_header("Cache-Control", "no-store")  # a folder exported again is fetched again
            # Cross-origin isolation: onnxruntime-web's WebAssembly may use threads (SharedArrayBuffer).
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.end_headers()
            if not body:
                return
            if isinstance(content, Path):
                with content.open("rb") as f:
                    shutil.copyfileobj(f, self.wfile, 1 << 20)
            else:
                self.wfile.write(content)

        def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
            if len(args) > 1 and str(args[1]).startswith(("4", "5")):  # errors only, not every model file
                super().log_message(format, *args)

    return Handler


def make_server(models: list[ServedModel], packages: Path, host: str = "127.0.0.1",
                port: int = 8000) -> http.server.ThreadingHTTPServer:
    """The page's HTTP server (not started: call serve_forever); port 0 picks a free one."""
    missing = [str(packages / key / p.serve_from) for key, p in NPM_PACKAGES.items()
               if not (packages / key / p.serve_from).is_dir()]
    if missing:
        raise FileNotFoundError(f"{packages} lacks {', '.join(missing)}: pass a folder made by browser_packages()")
    server = http.server.ThreadingHTTPServer((host, port), _handler(models, packages))
    server.daemon_threads = True
    return server


def problems(models: list[ServedModel]) -> list[str]:
    return [m.problem for m in models if not m.ok]


__all__ = ["PAGE_FILES", "WEB_DIR", "ServedModel", "check_model_folder", "make_server", "problems", "served_models"]
