"""Model card of a converted folder: Hub metadata with the measured WER (model-index), usage, ranks, plots.

Built with huggingface_hub's ModelCard / ModelCardData / EvalResult from the template in `model_cards/`, so the Hub
parses the YAML and shows its evaluation widget. Inputs are what the folder holds (`config.json` with the per-layer
`low_rank_config`, `conversion.json` written by `lite-whisper convert`) and evaluation results from
`lite_whisper.evaluation.evaluate.evaluate_model` (the lite model and, for the comparison, the original).

`conversion.json` keys read (all optional): `base_model` (repo id or local path), `energy_kept` (one dict per
encoder layer, projection -> fraction of output energy kept); every other scalar entry (and scalar entries of
nested dicts, such as the options) is listed under "Compression settings".
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from lite_whisper import atomic
from lite_whisper.interop.onnx.layout import DECODER, ENCODER, REPORT, SUFFIXES
from lite_whisper.interop.web_packages import TRANSFORMERS_JS
from lite_whisper.whisper import is_english_only

TEMPLATE = Path(__file__).resolve().parents[3] / "model_cards" / "lite_whisper.md"
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
RESULTS_FILE = "evaluation_results.json"
WER_PLOT = "wer_vs_encoder_size.png"
RANK_PLOT = "ranks_per_layer.png"
# The functions of `lite-whisper serve-web`'s page that load a model and transcribe: the card's browser example.
BROWSER_CODE = Path(__file__).parents[1] / "interop" / "web" / "asr.js"
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


# --- what the folder holds -------------------------------------------------------------------------


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def projection_shapes(config: dict) -> dict[str, tuple[int, int]]:
    """(d_in, d_out) of each encoder projection, from a Whisper config."""
    d, ffn = config["d_model"], config["encoder_ffn_dim"]
    return {"q_proj": (d, d), "k_proj": (d, d), "v_proj": (d, d), "out_proj": (d, d), "fc1": (d, ffn), "fc2": (ffn, d)}


def layer_ranks(config: dict) -> list[dict[str, int | None]]:
    """Rank of every projection of every encoder layer; None where the projection is dense."""
    low_rank = config.get("low_rank_config") or [{} for _ in range(config["encoder_layers"])]
    return [{p: layer.get(p) for p in PROJECTIONS} for layer in low_rank]


def hub_base_model(conversion: dict) -> str | None:
    """The base model as a Hub repo id (what `base_model` in the card's YAML must be), or None if unknown.

    A local base folder names its origin through `_name_or_path` in its config, when that is a repo id."""
    base = conversion.get("base_model")
    if not isinstance(base, str):
        return None
    if Path(base).is_dir():
        base = _read_json(Path(base) / "config.json").get("_name_or_path", "")
    return base if _REPO_ID.match(base) and not Path(base).exists() else None


# --- ONNX files (lite-whisper export-onnx) ---------------------------------------------------------------

ONNX_TAGS = ["onnx", "transformers.js"]


def onnx_dtypes(model_dir: Path) -> list[str]:
    """transformers.js dtypes for which `model_dir/onnx/` holds both the encoder and the merged decoder."""
    onnx_dir = Path(model_dir) / "onnx"
    return [dtype for dtype, suffix in SUFFIXES.items()  # onnx.layout: plain names, no torch import
            if (onnx_dir / f"{ENCODER}{suffix}.onnx").is_file() and (onnx_dir / f"{DECODER}{suffix}.onnx").is_file()]


def browser_code() -> str:
    """asr.js, the page's transcription code, without its leading comment (the card says it in prose)."""
    lines = BROWSER_CODE.read_text().splitlines()
    while lines and lines[0].startswith("//"):
        lines.pop(0)
    return "\n".join(lines).strip()


def onnx_check_note(model_dir: Path) -> str:
    """One sentence per exported dtype from onnx/export_report.json: how close onnxruntime is to PyTorch."""
    report = _read_json(Path(model_dir) / "onnx" / REPORT)
    lines = []
    for check in report.get("checks", []):
        lines.append(f"- `{check['dtype']}`: encoder output max abs difference {check['encoder_max_abs_diff']:.1e}, "
                     f"decoder logits {check['logits_max_abs_diff']:.1e}, greedy token agreement "
                     f"{100 * check['argmax_agreement']:.1f}% ({check['decoded_positions']} positions, "
                     f"{check['clips']} clips)")
    return "\n".join(lines)


def _same_folder(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


# --- tables ----------------------------------------------------------------------------------------


def _markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def rank_table(config: dict, conversion: dict) -> str:
    """Markdown table: one row per encoder layer, one column per projection (rank, and energy kept if known)."""
    shapes = projection_shapes(config)
    energy = conversion.get("energy_kept") or conversion.get("energy") or []
    rows = []
    for i, ranks in enumerate(layer_ranks(config)):
        cells = []
        for p in PROJECTIONS:
            cell = "dense" if ranks[p] is None else str(ranks[p])
            kept = energy[i].get(p) if i < len(energy) and isinstance(energy[i], dict) else None
            if ranks[p] is not None and isinstance(kept, (int, float)):
                cell += f" ({100 * kept:.1f}%)"
            cells.append(cell)
        rows.append([i, *cells])
    header = ["layer", *(f"{p} ({min(shapes[p])})" for p in PROJECTIONS)]
    note = "\n\nIn parentheses: the share of the projection's output energy kept on the calibration audio." if energy else ""
    return _markdown_table(header, rows) + note


def _setting(value):
    """A value as the card shows it: floats to 4 significant digits, local paths by folder name (a published
    card must not carry the converting machine's paths)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and value.startswith(("/", "./", "../", "~")) and len(value) < 4096:
        return Path(value).name
    return value


def settings_table(conversion: dict) -> str:
    """Markdown table of the scalar compression settings and measurements in conversion.json."""
    rows = []
    for key, value in conversion.items():
        if isinstance(value, dict):
            rows += [[f"{key}.{k}", _setting(v)] for k, v in value.items() if isinstance(v, (str, int, float, bool))]
        elif isinstance(value, (str, int, float, bool)):
            rows.append([key, _setting(value)])
    return _markdown_table(["setting", "value"], rows) if rows else ""


def _label(result: dict) -> str:
    return result.get("label") or Path(str(result.get("model", "model"))).name


def _datasets(results: list[dict]) -> list[str]:
    return list(dict.fromkeys(str(r.get("dataset_name") or r.get("dataset", "")) for r in results))


def _speed(result: dict) -> tuple[str, str]:
    """(real-time factor, tokens per clip) of a result: from its warm, interleaved timing when it has one."""
    rtf = result.get("rtf")
    entry = (result.get("timing") or {}).get("model") or {}
    tokens = f"{entry['tokens_per_clip']:.1f}" if "tokens_per_clip" in entry else "n/a"
    return ("n/a" if rtf is None else f"{rtf:.3f}"), tokens


def _loops(result: dict) -> tuple[str, str]:
    """(WER without overlong clips, "overlong / looping" clip counts): a few clips that loop dominate corpus WER,
    so the card shows the rest of the set apart (evaluation.without_overlong, loops.py)."""
    clean = result.get("wer_without_overlong")
    counts = (f"{result['overlong_clips']} / {result['loops']}" if {"overlong_clips", "loops"} <= result.keys()
              else "n/a")
    return ("n/a" if clean is None else f"{clean:.2f}"), counts


def results_table(results: list[dict]) -> str:
    """Markdown table comparing the measured models: encoder parameters, WER (and without the overlong clips,
    with the overlong and looping clips counted), real-time factor with the text
    tokens decoded per clip beside it (a model that loops decodes more, and takes longer), size; with several
    evaluation sets, one row per model and set (the set and its language in the first columns)."""
    several = len(_datasets(results)) > 1
    original = next((r for r in results if not r.get("low_rank")), None)
    rows = []
    for r in sorted(results, key=lambda r: (str(r.get("dataset_name", "")), -r["encoder_params"])):
        share = f" ({100 * r['encoder_params'] / original['encoder_params']:.0f}%)" if original else ""
        row = [_label(r), f"{r['encoder_params'] / 1e6:.2f}M{share}", f"{r['wer']:.2f}", *_loops(r), *_speed(r),
               f"{r.get('weights_bytes', r['size_on_disk_bytes']) / 2**20:.1f} MiB"]
        rows.append([r.get("dataset_name", ""), r.get("language") or "", *row] if several else row)
    header = ["model", "encoder parameters", "WER (%)", "WER without overlong clips (%)", "overlong / looping clips",
              "real-time factor", "tokens per clip", "weights on disk"]
    return _markdown_table(["dataset", "language", *header] if several else header, rows)


def timing_note(results: list[dict]) -> str:
    """How the real-time factors of `results` were measured (timing.describe), as a sentence."""
    timings = [r["timing"] for r in results if r.get("timing")]
    if not timings:
        return "real-time factor = decoding time / audio duration"
    t = timings[0]
    together = any(x.get("baseline") or x.get("baseline_model") for x in timings)
    return (f"real-time factor = generate() seconds (features, encoder, decoder) / audio seconds on the first "
            f"{t['clips']} clips, warm, median of {t['repeats']} runs"
            + (", the original and the lite model alternating batch by batch" if together else "")
            + f", on {t['device']} with {t['threads']} threads (batch {t['batch_size']})")


def calibration_note(conversion: dict) -> str:
    """Which datasets and languages calibrated the model (conversion.json `calibration`), as a sentence."""
    parts = conversion.get("calibration") or []
    if not parts:
        return ""
    described = ", ".join(f"{p.get('language') or 'unknown language'} ({_pool_or_dataset(p)}, "
                          f"{p.get('clips')} clips)" for p in parts)
    languages = ", ".join(sorted({p.get("language") or "unknown" for p in parts}))
    return f"Calibrated on {languages} speech: {described}."


def _pool_or_dataset(part: dict) -> str:
    pool = part.get("pool")
    if not pool:
        return _setting(str(part.get("dataset")))
    held = "; ".join(f"{name}: {s['clips']} clips, {s['minutes']} min, {s['speakers']} speakers, {s['license']}"
                     for name, s in pool["sources"].items())
    return f"the lite-whisper calibration pool of seed {pool['seed']}, drawn from {held}"


def method_note(conversion: dict) -> str:
    """How the factors were made (conversion.json: pipeline, reconstruction, recovery), as a sentence."""
    pipeline = {"oneshot": "one-shot PCA of each projection's outputs (LiteASR)",
                "sequential": "sequential reduced-rank regressions", "iterative": "iterative rounds"}
    steps = [pipeline.get(conversion.get("pipeline"), str(conversion.get("pipeline")))]
    blocks = conversion.get("reconstruction")
    if blocks:
        steps.append(f"block-wise reconstruction of each layer against the original's ({blocks['train_windows']} "
                     f"windows, {blocks['speech_seconds'] / 60:.0f} min of speech)")
    recovery = conversion.get("recovery")
    if recovery:
        steps.append(f"decoder-aware recovery ({recovery.get('steps_run')} steps of distillation from the original)")
    return "Factors: " + ", then ".join(steps) + "."


def quality_note(conversion: dict) -> str:
    """The conversion's final quality check (conversion.json `quality_check`, quality.py), as a sentence."""
    q = conversion.get("quality_check")
    if not q:
        return ""
    wer = "n/a" if q.get("agreement_wer") is None else f"{q['agreement_wer']:.1f}%"
    bound = q.get("bounds", {}).get("max_agreement_wer", 50)
    verdict = "passed" if q.get("passed") else f"failed and was overridden with --allow-degraded ({q.get('failure', '')})"
    return (f"At conversion, this model and the original transcribed {q.get('clips')} {q.get('source')} greedily: "
            f"agreement WER (this model's transcripts against the original's) {wer}, "
            f"{q.get('looping_clips')} of {q.get('clips')} clips looping where the original does not "
            f"(loop rate {100 * q.get('loop_rate', 0):.0f}%). The check {verdict} (bounds: agreement WER at most "
            f"{bound:g}%, no such loop).")


# --- plots -----------------------------------------------------------------------------------------


def plot_wer_vs_size(results: list[dict], path: Path, highlight: dict | None = None) -> Path:
    """PNG: WER against encoder parameters, one point per measured model (original and lite variants)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    datasets = _datasets(results)
    for k, dataset in enumerate(datasets):  # one colour per evaluation set
        mine = [r for r in results if str(r.get("dataset_name") or r.get("dataset", "")) == dataset]
        colour = f"C{k}" if len(datasets) > 1 else "tab:blue"
        for r in sorted(mine, key=lambda r: r["encoder_params"]):
            original = not r.get("low_rank")
            ax.scatter(r["encoder_params"] / 1e6, r["wer"], s=80 if r is highlight else 40,
                       marker="s" if original else "o", color="tab:gray" if original and len(datasets) == 1 else colour,
                       edgecolors="black" if r is highlight else "none", zorder=3)
            ax.annotate(_label(r), (r["encoder_params"] / 1e6, r["wer"]), textcoords="offset points",
                        xytext=(5, 5), fontsize=8)
        lite = sorted((r for r in mine if r.get("low_rank")), key=lambda r: r["encoder_params"])
        if len(lite) > 1 or len(datasets) > 1:
            ax.plot([r["encoder_params"] / 1e6 for r in sorted(mine, key=lambda r: r["encoder_params"])],
                    [r["wer"] for r in sorted(mine, key=lambda r: r["encoder_params"])], color=colour, alpha=0.5,
                    label=dataset if len(datasets) > 1 else None)
    if len(datasets) > 1:
        ax.legend(fontsize=7)
    title = "WER against encoder size" + (f" ({datasets[0]})" if len(datasets) == 1 and datasets[0] else "")
    ax.set(xlabel="encoder parameters (millions)", ylabel="WER (%)", title=title)
    ax.margins(x=0.15, y=0.15)  # room for the labels
    ax.grid(alpha=0.3)
    return _save_figure(fig, path)


def plot_ranks(config: dict, path: Path) -> Path:
    """PNG: rank of each projection per encoder layer, as a share of its full rank (dense = 100%)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = projection_shapes(config)
    ranks = layer_ranks(config)
    x = np.arange(len(ranks))
    width = 0.8 / len(PROJECTIONS)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(ranks) + 2), 4), dpi=120)
    for j, p in enumerate(PROJECTIONS):
        full = min(shapes[p])
        share = [1.0 if layer[p] is None else layer[p] / full for layer in ranks]
        dense = [layer[p] is None for layer in ranks]
        bars = ax.bar(x + (j - len(PROJECTIONS) / 2 + 0.5) * width, share, width, label=p)
        for bar, is_dense in zip(bars, dense):
            if is_dense:
                bar.set_hatch("//")
                bar.set_alpha(0.4)
    ax.set(xlabel="encoder layer", ylabel="rank / full rank", ylim=(0, 1.05), xticks=x,
           title="Ranks per layer (hatched: dense)")
    from matplotlib.patches import Patch  # legend from plain patches: a bar's hatch must not leak into it

    handles = [Patch(color=f"C{j}", label=p) for j, p in enumerate(PROJECTIONS)]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="dense"))
    ax.legend(handles=handles, ncol=len(handles), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    ax.grid(axis="y", alpha=0.3)
    return _save_figure(fig, path)


def _save_figure(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


# --- the card --------------------------------------------------------------------------------------


def _eval_result(result: dict) -> EvalResult:
    dataset = str(result.get("dataset", ""))
    local = Path(dataset).exists() or not _REPO_ID.match(dataset)
    return EvalResult(
        task_type="automatic-speech-recognition",
        task_name="Automatic Speech Recognition",
        # the Hub groups results by dataset type: a local set goes by its folder name (real-speech-fr-test), so
        # that each evaluated set and language keeps its own entry in the model-index
        dataset_type=(result.get("dataset_name") or Path(dataset).name or "audiofolder") if local else dataset,
        dataset_name=result.get("dataset_name") or Path(dataset).name,
        dataset_split=result.get("split") or "test",
        # a Hub dataset's config; else the language: one result per language and dataset
        dataset_config=result.get("dataset_config") or result.get("language") or None,
        dataset_revision=result.get("revision") or None,  # the commit sha read
        dataset_args={"num_samples": result["num_samples"]} if result.get("num_samples") else None,
        metric_type="wer",
        metric_name="WER",
        metric_value=round(float(result["wer"]), 2),
    )


def own_result(model_dir: Path, results: list[dict]) -> dict | None:
    """The result measured on this very folder (same path), if any."""
    return next((r for r in results if _same_folder(r.get("model", ""), model_dir)), None)


def own_results(model_dir: Path, results: list[dict]) -> list[dict]:
    """Every result measured on this very folder: one per evaluation set (and language)."""
    return [r for r in results if _same_folder(r.get("model", ""), model_dir)]


def build_model_card(model_dir: str | Path, repo_id: str, results: list[dict] | None = None,
                     license: str = "apache-2.0", base_model: str | None = None,
                     template: Path = TEMPLATE) -> ModelCard:
    """The model card of `model_dir` as it will be published at `repo_id` (plots must be written separately).

    base_model: the Hub repo id of the base (default: from conversion.json, when it names one)."""
    model_dir = Path(model_dir)
    config = _read_json(model_dir / "config.json")
    if not config:
        raise FileNotFoundError(f"{model_dir} has no config.json: give the folder of a converted model")
    conversion = _read_json(model_dir / "conversion.json")
    results = list(results or [])
    mine = own_result(model_dir, results)
    language = "en" if is_english_only(config) else None
    if base_model is not None and not _REPO_ID.match(base_model):
        raise ValueError(f"base model {base_model!r} is not a Hub repo id (namespace/name)")
    base_model = base_model or hub_base_model(conversion)
    onnx = onnx_dtypes(model_dir)
    card_data = ModelCardData(
        license=license,
        base_model=base_model,
        pipeline_tag="automatic-speech-recognition",
        library_name="transformers",
        language=language,
        tags=["lite-whisper", "whisper", "low-rank", "audio", "speech-recognition"] + (ONNX_TAGS if onnx else []),
        metrics=["wer"],
        model_name=repo_id.split("/")[-1] if mine else None,  # model-index's name; the YAML has no other use
        eval_results=[_eval_result(r) for r in own_results(model_dir, results)] if mine else None,
    )
    is_lite = bool(config.get("low_rank_config"))
    base = conversion.get("base_model") or config.get("_name_or_path") or model_dir.name
    summary = f"[{base_model}](https://huggingface.co/{base_model}) " if base_model else f"`{Path(base).name}` "
    if is_lite:
        summary = "A LiteWhisper: " + summary + "with its encoder compressed by low-rank factorization"
        if mine and mine.get("encoder_params_original"):
            summary += f" to {100 * mine['encoder_params'] / mine['encoder_params_original']:.0f}% of its parameters"
        summary += "."
        if calibration_note(conversion):
            summary += " " + calibration_note(conversion)
        if conversion.get("pipeline"):
            summary += " " + method_note(conversion)
    else:
        summary = "The original Whisper " + summary + "(not compressed)."
    note = ""
    if results:
        normalizers = sorted({r.get("normalizer", "whisper-english") for r in results})
        text = ("Whisper's English normalizer" if normalizers == ["whisper-english"] else
                "Whisper's normalizers (" + ", ".join(normalizers) + "; for languages other than English, numbers "
                "written in words and accents removed)")
        counts = {str(r.get("dataset_name") or r.get("dataset", "")): r.get("num_samples") for r in results}
        measured_on = ", ".join(f"{name} ({n} utterances)" for name, n in counts.items())
        note = (f"Measured with `lite-whisper eval` on {measured_on}, greedy decoding; WER on text normalized "
                f"with {text}; {timing_note(results)}.")
    return ModelCard.from_template(
        card_data,
        template_path=str(template),
        repo_id=repo_id,
        title=repo_id.split("/")[-1],
        summary=summary,
        evaluation_note=note,
        results_table=results_table(results) if results else "",
        wer_plot=WER_PLOT if results else "",
        rank_table=rank_table(config, conversion) if is_lite else "",
        rank_plot=RANK_PLOT if is_lite else "",
        settings_table=settings_table(conversion),
        quality_note=quality_note(conversion),
        onnx_dtypes=onnx,
        onnx_default_dtype="q8" if "q8" in onnx else (onnx[0] if onnx else ""),
        onnx_check_note=onnx_check_note(model_dir) if onnx else "",
        browser_code=browser_code() if onnx else "",
        transformers_js=TRANSFORMERS_JS,
    )


def _merge_results(previous: list[dict], new: list[dict]) -> list[dict]:
    """New results replace earlier ones of the same model on the same dataset; per-utterance texts are dropped."""
    def key(r: dict) -> tuple:  # one result per model and dataset (config, split)
        return str(Path(r.get("model", "")).name), str(r.get("dataset")), r.get("dataset_config"), r.get("split")

    keep = {key(r): r for r in previous}
    for r in new:
        slim = {k: v for k, v in r.items() if k not in ("predictions", "references")}
        keep[key(slim)] = slim
    return list(keep.values())


def saved_results(model_dir: str | Path) -> list[dict]:
    """Results saved in the folder (`lite-whisper eval` writes them there), and those of its base model on the
    same datasets when conversion.json names a local base folder that holds some: the original for comparison."""
    model_dir = Path(model_dir)
    own = _read_json(model_dir / RESULTS_FILE).get("results", [])
    base = _read_json(model_dir / "conversion.json").get("base_model")
    if not own or not isinstance(base, str) or not Path(base).is_dir() or _same_folder(base, model_dir):
        return own
    datasets = {str(r.get("dataset")) for r in own}
    originals = [r for r in _read_json(Path(base) / RESULTS_FILE).get("results", [])
                 if not r.get("low_rank") and str(r.get("dataset")) in datasets]
    return _merge_results(originals, own)


def save_results(model_dir: str | Path, results: list[dict]) -> Path:
    """Merge `results` into the folder's evaluation_results.json (per-utterance texts dropped); return its path.

    The file is Trainer's eval_results.json for this tool: `lite-whisper push` builds the card from it."""
    model_dir = Path(model_dir)
    path = model_dir / RESULTS_FILE
    merged = _merge_results(_read_json(path).get("results", []), results)
    atomic.write_text(path, json.dumps({"results": merged}, indent=2) + "\n")
    return path


def write_model_card(model_dir: str | Path, repo_id: str, results: list[dict] | None = None,
                     license: str = "apache-2.0", base_model: str | None = None,
                     use_saved_results: bool = True) -> Path:
    """Write README.md (the card), the plots and `evaluation_results.json` into `model_dir`; return the card path.

    Results given are merged with those saved in the folder (`saved_results`: what `lite-whisper eval` saved
    there, and the base's on the same datasets), so the card can be rebuilt later (for another repo id, say) from
    the folder alone. use_saved_results=False: the card shows the given results only and the folder's
    evaluation_results.json is left as it is (`push` then does not upload it)."""
    model_dir = Path(model_dir)
    if not _REPO_ID.match(repo_id):
        raise ValueError(f"repo id {repo_id!r} is not of the form 'namespace/name'")
    saved = saved_results(model_dir) if use_saved_results else []
    results = _merge_results(saved, results or [])
    for r in results:  # the model that was measured in this folder keeps pointing here after a move
        if Path(str(r.get("model", ""))).name == model_dir.name and not Path(str(r.get("model", ""))).exists():
            r["model"] = str(model_dir)
    config = _read_json(model_dir / "config.json")
    card = build_model_card(model_dir, repo_id, results, license=license, base_model=base_model)
    if results:
        plot_wer_vs_size(results, model_dir / WER_PLOT, highlight=own_result(model_dir, results))
        if use_saved_results:
            atomic.write_text(model_dir / RESULTS_FILE, json.dumps({"results": results}, indent=2) + "\n")
    if config.get("low_rank_config"):
        plot_ranks(config, model_dir / RANK_PLOT)
    atomic.write_text(model_dir / "README.md", str(card))
    return model_dir / "README.md"


def save_eval_results(result: dict, model: str | Path, save_to: Path | None = None) -> str | None:
    """Save `eval`'s result into a model folder's evaluation_results.json (as Trainer writes eval_results.json:
    `push` reads it): `save_to`, else `model` when it is a local folder. Returns what was done, to print."""
    folder = save_to or (Path(model) if Path(model).is_dir() else None)
    if folder is None:
        return None
    if not (folder / "config.json").is_file():
        raise ValueError(f"--save-to {folder}: not a model folder (no config.json)")
    try:
        path = save_results(folder, [result])
    except OSError as err:  # a read-only folder (a Hub cache, a mounted model): the numbers were printed
        return f"results not saved into {folder} ({err}); use --output FILE and `push --results FILE`"
    return f"results saved to {path} (`lite-whisper push` puts them in the model card)"
