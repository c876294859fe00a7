"""serve-web without a browser (the page itself runs in `make test-web`): each bad model folder named with its fix,
the command's error when none is usable, models.json, and a server that serves the page, the packages and the
model folders and nothing else."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lite_folder_support import linked_copy
from lite_whisper import cli
from lite_whisper.interop.browser import PAGE_FILES, make_server, served_models
from lite_whisper.interop.web_packages import NPM_PACKAGES

FILES = ("config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json")


def _exported_stand_in(tiny_en_dir: Path, folder: Path) -> Path:
    """tiny.en's files and an onnx/ with (empty) fp32 files: what the checks and the server look at."""
    linked_copy(tiny_en_dir, folder)
    (folder / "onnx").mkdir()
    for name in ("encoder_model.onnx", "decoder_model_merged.onnx"):
        (folder / "onnx" / name).write_bytes(b"onnx" * 10)
    return folder


def test_each_bad_folder_is_named_with_its_fix(tiny_en_dir, tmp_path):
    good = _exported_stand_in(tiny_en_dir, tmp_path / "good")
    no_onnx = linked_copy(tiny_en_dir, tmp_path / "no-onnx")
    half = _exported_stand_in(tiny_en_dir, tmp_path / "half")
    (half / "onnx" / "decoder_model_merged.onnx").unlink()
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    models = served_models([good, no_onnx, half, bare, other, tmp_path / "missing", good])
    problems = {m.name: m.problem for m in models}
    assert problems["good"] is None and problems["good-2"] is None  # the same folder twice: two names
    assert problems["no-onnx"] == (f"{no_onnx}: has no onnx/ folder: export the model first with "
                                   f"`lite-whisper export-onnx {no_onnx}`")
    assert "no encoder_model*.onnx + decoder_model_merged*.onnx pair" in problems["half"]
    assert "--overwrite" in problems["half"]
    assert f"lacks {', '.join(FILES[1:])}" in problems["bare"]
    assert "'bert' is not a Whisper or LiteWhisper" in problems["bert"]
    assert problems["missing"].endswith("not a folder")

    (model,) = [m for m in models if m.name == "good"]
    assert model.kind == "Whisper" and model.english_only and model.encoder_params == model.encoder_params_dense
    assert model.dtypes == {"fp32": {"encoder_bytes": 40, "decoder_bytes": 40}}


def test_serve_web_refuses_when_no_folder_is_usable(tiny_en_dir, tmp_path, capsys):
    no_onnx = linked_copy(tiny_en_dir, tmp_path / "no-onnx")
    assert cli.main(["serve-web", str(no_onnx), "--packages", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"lite-whisper serve-web: error: {no_onnx}: has no onnx/ folder" in err
    assert "no model to serve" in err


@pytest.fixture
def server(tiny_en_dir, tmp_path):
    packages = tmp_path / "packages"
    for key, package in NPM_PACKAGES.items():
        (packages / key / package.serve_from).mkdir(parents=True)
    (packages / "transformers" / "dist" / "transformers.min.js").write_text("// stand-in\n")
    good = _exported_stand_in(tiny_en_dir, tmp_path / "tiny")
    (good / ".hidden").write_text("secret")
    models = served_models([good, linked_copy(tiny_en_dir, tmp_path / "no-onnx")])
    httpd = make_server(models, packages, port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", good
    httpd.shutdown()
    httpd.server_close()


def _get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, b"", {}


def test_the_server_serves_the_page_packages_and_models_only(server, tmp_path):
    url, folder = server
    status, body, headers = _get(url + "/")
    assert status == 200 and b'"@huggingface/transformers": "./vendor/transformers/transformers.min.js"' in body
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp" and headers["Cache-Control"] == "no-store"
    for name in PAGE_FILES:
        assert _get(f"{url}/{name}")[0] == 200
    assert _get(url + "/app.js")[2]["Content-Type"] == "text/javascript"
    models = json.loads(_get(url + "/models.json")[1])
    assert [(m["name"], m["ok"]) for m in models] == [("tiny", True), ("no-onnx", False)]
    assert _get(url + "/vendor/transformers/transformers.min.js")[1] == b"// stand-in\n"
    status, body, _ = _get(url + "/models/tiny/tokenizer.json")  # a symlink inside the folder is followed
    assert status == 200 and body == (folder / "tokenizer.json").read_bytes()
    assert _get(url + "/models/tiny/onnx/encoder_model.onnx")[1] == b"onnx" * 10
    shutil.copyfile(folder / "config.json", tmp_path / "outside.json")
    for path in ("/models/no-onnx/config.json", "/models/tiny/.hidden", "/models/tiny/../outside.json",
                 "/models/tiny/%2e%2e/outside.json", "/vendor/transformers/../../tiny/config.json", "/etc/passwd",
                 "/models/tiny/onnx"):
        assert _get(url + path)[0] == 404, path
