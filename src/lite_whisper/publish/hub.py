"""Publish a model folder to the Hugging Face Hub: check that it loads, write its card, upload it.

The upload goes through huggingface_hub's HfApi (create_repo, create_branch, upload_folder); the token is
whatever huggingface_hub finds (HF_TOKEN, or the one saved by `hf auth login`). A folder that does not load with
`trust_remote_code=True` in a fresh process, without this package (the way a Hub user loads it), is refused
before anything is sent.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import HfApi, get_token
from huggingface_hub.utils import filter_repo_objects

from lite_whisper.publish.card import RESULTS_FILE, WER_PLOT, write_model_card

# What a Hub user's process does with the folder: no lite_whisper, only transformers and the folder's own code.
# It fails on missing, unexpected or mismatched weights (transformers would only warn and initialize them at
# random), on a processor that does not load, and on a model that cannot generate.
_LOAD_CHECK = r"""
import sys
sys.modules["lite_whisper"] = None  # a Hub user does not have this package: only the folder's code may be used
import numpy as np, torch
from transformers import AutoConfig, AutoModelForSpeechSeq2Seq, AutoProcessor

folder = sys.argv[1]
AutoConfig.from_pretrained(folder, trust_remote_code=True)
model, info = AutoModelForSpeechSeq2Seq.from_pretrained(folder, trust_remote_code=True, output_loading_info=True)
bad = {k: sorted(v)[:5] for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
if bad:
    sys.exit(f"weights do not match the model: {bad}")
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
features = processor(np.zeros(16000, dtype=np.float32), sampling_rate=16000, return_tensors="pt").input_features
with torch.inference_mode():
    model.generate(features.to(model.dtype), max_new_tokens=2)
print("loads:", type(model).__name__)
"""

# Never published: git internals, caches, editor and OS litter, temporary files of interrupted writes.
IGNORE_PATTERNS = [".git", ".git/*", "*/.git", "*/.git/*", ".cache", ".cache/*", "*/.cache/*", ".DS_Store",
                   "__pycache__/*", "*/__pycache__/*", "*.pyc", ".*.tmp*", "*.tmp"]
# onnx/ (lite-whisper export-onnx) is uploaded as is; a folder an interrupted export-onnx left behind is not.
IGNORE_PATTERNS += [".*.old-*", ".*.old-*/*"]


class FolderDoesNotLoad(ValueError):
    """The folder fails to load the way a Hub user would load it."""


@dataclass
class PushResult:
    repo_id: str
    files: list[tuple[str, int]]  # (path in repo, bytes)
    dry_run: bool
    commit_url: str | None = None
    pr_url: str | None = None
    card: Path | None = None
    checks: list[str] = field(default_factory=list)


def files_to_upload(folder: str | Path, ignore_patterns: list[str] = IGNORE_PATTERNS) -> list[tuple[str, int]]:
    """(path in repo, size in bytes) of every file `push` would upload, sorted."""
    folder = Path(folder)
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    kept = filter_repo_objects(paths, ignore_patterns=ignore_patterns)
    return [(p, (folder / p).stat().st_size) for p in kept]


def check_folder_loads(folder: str | Path, timeout: float = 900) -> str:
    """Load `folder` in a fresh Python process as a Hub user would; raise FolderDoesNotLoad with the reason."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FolderDoesNotLoad(f"{folder} has no config.json: give the folder written by `lite-whisper convert`")
    try:
        proc = subprocess.run([sys.executable, "-c", _LOAD_CHECK, str(folder.resolve())], capture_output=True,
                              text=True, timeout=timeout, cwd=folder.resolve())
    except subprocess.TimeoutExpired as err:
        raise FolderDoesNotLoad(f"{folder} did not load within {timeout:.0f} s") from err
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {proc.returncode}"
        raise FolderDoesNotLoad(
            f"{folder} does not load with trust_remote_code=True, so it is not pushed: {reason}\n"
            f"(last lines of the loader's output:)\n" + "\n".join(lines[-8:]))
    return proc.stdout.strip()


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    dry_run: bool = False,
    results: list[dict] | None = None,
    write_card: bool = True,
    use_saved_results: bool = True,
    base_model: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """Check that `folder` loads, (re)write its model card for `repo_id`, and upload it.

    results: evaluation results (`lite_whisper.evaluation.evaluate.evaluate_model`) to put in the card, in addition to those
        saved in the folder by `lite-whisper eval` (and its local base's on the same datasets, for comparison).
        use_saved_results=False: the card shows `results` only, and the saved ones are not uploaded.
        write_card=False keeps the folder's README.md as it is. base_model: Hub id of the base model for the card
        (default: from conversion.json when it names one).
    dry_run: do everything but talk to the Hub; the result lists what would be uploaded.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: give the folder of a converted model")
    if create_pr and revision not in (None, "main"):
        raise ValueError("--create-pr opens a pull request against main: do not combine it with --revision")
    token = token or get_token()
    if not dry_run and not token:
        raise ValueError("no Hugging Face token found: run `hf auth login` or set HF_TOKEN, then push again")

    checks = [check_folder_loads(folder)]  # before anything is written or sent
    card = None
    if write_card:
        card = write_model_card(folder, repo_id, results, base_model=base_model, use_saved_results=use_saved_results)
    elif not (folder / "README.md").exists():
        raise ValueError(f"{folder} has no README.md: let push write the card (drop --keep-card)")
    ignore = list(IGNORE_PATTERNS)
    if not use_saved_results:  # numbers the card does not show are not published either

        ignore += [RESULTS_FILE] + ([] if results else [WER_PLOT])
    files = files_to_upload(folder, ignore)
    result = PushResult(repo_id, files, dry_run, card=card, checks=checks)
    if dry_run:
        return result

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        revision=None if create_pr else revision,
        create_pr=create_pr,
        commit_message=commit_message or f"Upload {folder.name} with lite-whisper",
        ignore_patterns=ignore,
    )
    result.commit_url, result.pr_url = info.commit_url, info.pr_url
    return result
