"""The browser page (`lite-whisper serve-web`): exported model folders transcribing in the browser through
transformers.js, with everything served from this machine.

- The page (`web/`: index.html, app.js, style.css, and asr.js, which is also the model card's browser example)
  loads transformers.js and onnxruntime-web's WebAssembly files from /vendor/ and each model from /models/NAME/,
  with remote models off: no CDN, no Hub.
- transformers.js and onnxruntime-web are npm packages pinned by version and by the registry's sha512
  integrity, fetched once with `npm pack` into the cache, checked, and only the files the page loads unpacked
  (`browser_packages`).
- Each model folder is checked before serving (`check_model_folder`): a Whisper or LiteWhisper config, the
  processor files, and onnx/ with an encoder and merged decoder pair (`lite-whisper export-onnx`). A bad folder
  is named with its fix on stderr and on the page; the good ones are served.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import shutil
import subprocess
import tarfile
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

from . import atomic
from .budget import encoder_params
from .card import onnx_dtypes
from .data.assets import cache_dir
from .onnx.layout import DECODER, ENCODER, SUFFIXES
from .whisper import is_english_only

WEB_DIR = Path(__file__).parent / "web"
PAGE_FILES = ("index.html", "app.js", "asr.js", "style.css")


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity (sha512 of the tarball)
    files: str  # regex of the tarball paths (under package/) the page needs
    serve_from: str  # the folder of those files, served at /vendor/<short name>/


TRANSFORMERS_JS = "4.3.1"
NPM_PACKAGES = {
    "transformers": NpmPackage(
        "@huggingface/transformers", TRANSFORMERS_JS,
        "sha512-5+voSeUCFK6PCKlY15dPhNOKq3/zOTxDN7oC+Wy9dFb1QZ0TSQomZRRy7URRK8YRuUoE9fGMQTTPC5d/pWBJhA==",
        r"(dist/transformers\.min\.js|LICENSE|package\.json)", "dist"),
    # The version transformers.js 4.3.1 depends on (and bundles the JavaScript of); the WebAssembly comes from here.
    "onnxruntime-web": NpmPackage(
        "onnxruntime-web", "1.31.0-dev.20260914-8d85527a0",
        "sha512-Iy7rtadoBgxS/LLvDr3QW38DB1PNXRnr0GJMcL0TAt7c9qjgVQl83UlGCVyeAnK2InpmW8Uc3PL8XIuqtDeF6g==",
        r"(dist/ort-wasm-simd-threaded\.asyncify\.(mjs|wasm)|LICENSE|package\.json)", "dist"),
}


# --- the npm packages ---------------------------------------------------------------------------------------------


def browser_packages(root: Path | None = None) -> Path:
    """A folder with the page's npm files (one sub-folder per NPM_PACKAGES key), fetched once into the cache."""
    versions = "+".join(f"{key}-{p.version}" for key, p in NPM_PACKAGES.items())
    target = (root or cache_dir()) / "npm" / versions
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic.staged_folder(target) as staging:
            for key, package in NPM_PACKAGES.items():
                _unpack(_npm_pack(package, staging), package, staging / key)
    return target


def _npm_pack(package: NpmPackage, folder: Path) -> Path:
    if shutil.which("npm") is None:
        raise FileNotFoundError("`npm` is not installed: the page's transformers.js and onnxruntime-web come from "
                                "npm (apt-get install npm), or pass --packages with a folder made on another machine")
    spec = f"{package.name}@{package.version}"
    proc = subprocess.run(["npm", "pack", spec, "--json", "--ignore-scripts", "--pack-destination", str(folder)],
                          capture_output=True, text=True, timeout=900, cwd=folder)
    if proc.returncode != 0:
        raise ValueError(f"npm pack {spec} failed (is the npm registry reachable?):\n{proc.stderr.strip()[-2000:]}")
    tarball = folder / json.loads(proc.stdout)[0]["filename"]
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != package.integrity:
        raise ValueError(f"{spec} from npm is not the pinned package: integrity {digest}, pinned {package.integrity}")
    return tarball


def _unpack(tarball: Path, package: NpmPackage, out: Path) -> None:
    """The wanted regular files of an npm tarball (paths under package/), nothing else."""
    wanted = re.compile(rf"package/{package.files}")
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and wanted.fullmatch(member.name) and ".." not in Path(member.name).parts:
                path = out / Path(member.name).relative_to("package")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(tar.extractfile(member).read())
    tarball.unlink()


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


__all__ = ["NPM_PACKAGES", "PAGE_FILES", "TRANSFORMERS_JS", "WEB_DIR", "NpmPackage", "ServedModel",
           "browser_packages", "check_model_folder", "make_server", "problems", "served_models"]
