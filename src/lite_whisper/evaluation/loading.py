"""Before a model folder or Hub id is loaded (eval, bench): whose code would run, and does the folder hold together.

- A Hub id whose config declares `auto_map` ships code that `trust_remote_code=True` runs on this machine:
  `eval` and `bench` ask for `--trust-remote-code` first, as transformers does. Local folders (the user's own
  files, e.g. what `lite-whisper convert` wrote) need no flag.
- A LiteWhisper folder must name its code (`auto_map`) and carry the files it names; its config's sizes must
  agree with its weights. Each gets an error saying so, before transformers' own (which, for a missing
  auto_map, is "does not recognize this architecture ... upgrade transformers").
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import hf_hub_download

from lite_whisper.compression import checkpoint_shapes, dimension_problems


def hub_config(repo_id: str) -> dict:
    """The config.json of a Hub model (one small file)."""
    try:
        return json.loads(Path(hf_hub_download(repo_id, "config.json")).read_text())
    except Exception as err:  # offline, not found, gated: huggingface_hub's message says which
        raise FileNotFoundError(f"cannot read the config of {repo_id!r} (neither a local folder nor reachable on "
                                f"the Hub): {err}") from err


def trust_for(model: str | Path, trust_remote_code: bool) -> bool:
    """The trust_remote_code to load `model` with: True for a local folder; for a Hub id whose config declares
    code (`auto_map`) only with the user's `--trust-remote-code` (else ValueError)."""
    if Path(model).expanduser().is_dir():
        check_model_folder(Path(model).expanduser())
        return True
    auto_map = hub_config(str(model)).get("auto_map")
    if auto_map and not trust_remote_code:
        files = sorted({str(v).split(".")[0] + ".py" for v in auto_map.values() if isinstance(v, str)})
        raise ValueError(f"{model} is a Hub model with its own code ({', '.join(files)}), which loading it would run "
                         "on this machine: pass --trust-remote-code if you trust its authors (or download it and "
                         "read the code first)")
    return trust_remote_code


def check_model_folder(folder: Path) -> None:
    """A local model folder that can load: config.json; for a LiteWhisper, an auto_map whose files are there; a
    config whose sizes agree with the safetensors weights."""
    path = folder / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: give a model folder (e.g. from lite-whisper convert)")
    config = json.loads(path.read_text())
    if config.get("model_type") == "lite-whisper":
        auto_map = config.get("auto_map") or {}
        if "AutoModelForSpeechSeq2Seq" not in auto_map:
            raise ValueError(f"{path} has no auto_map for AutoModelForSpeechSeq2Seq, so transformers cannot find the "
                             "LiteWhisper code in the folder (it then says it does not recognize the architecture): "
                             "restore the config.json that lite-whisper wrote, or re-save the model with lite-whisper")
        missing = sorted({str(v).split("--")[-1].split(".")[0] + ".py" for v in auto_map.values()
                          if isinstance(v, str)} - {p.name for p in folder.glob("*.py")})
        if missing:
            raise FileNotFoundError(f"{path}'s auto_map names {', '.join(missing)}, which {folder} lacks: copy the "
                                    "code files of lite-whisper's modeling/ into the folder (or convert it again)")
    if (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file():
        problems = dimension_problems(config, checkpoint_shapes(folder) or {})
        if problems:
            raise ValueError(f"{path} and the weights in {folder} disagree ({'; '.join(problems)}): the config was "
                             "edited or belongs to another checkpoint; use the config.json saved with these weights")


__all__ = ["check_model_folder", "hub_config", "trust_for"]
