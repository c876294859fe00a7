"""What a conversion is asked to do: `ConversionOptions` and `RecoveryOptions`, their checks, their CLI flags.

Each field carries its help text and flag (as peft's `LoraConfig` fields carry `metadata={"help": ...}`), so
`lite-whisper convert`'s flags are built from the fields (`add_arguments` / `from_arguments`) and their defaults
and help are never listed twice. Fields without a flag are set by the few composite flags the CLI builds itself
(the mode, one-shot/sequential, recovery on/off and its loss weights).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields, replace

from lite_whisper.compression.ranks import parse_threshold

# `auto` reconstructs budgets below this share of the encoder's parameters (or the FLOP speedup that
# removes as much), where the layer-wise fits alone lose accuracy.
AUTO_RECONSTRUCTION_BELOW = 0.75
# `--pack-seconds auto` for one-shot budgets (resolved_pack_seconds).
AUTO_PACK_SECONDS = 15.0
AUTO = "auto"  # an option chosen by `ConversionOptions.resolved`, by the rule measured (AUTO_RECONSTRUCTION_BELOW)
SWITCHES = (AUTO, "on", "off")  # the words an optional step (reconstruction, recovery) takes besides its options
# Below this many calibration windows the sequential regressions were seen to overfit (8 clips, and 32 clips
# packed into 9 windows, both on tiny.en).
MIN_SEQUENTIAL_SAMPLES = 16


def seconds_or_auto(value: str, flag: str) -> float | str:
    """A flag's value: `auto`, or seconds (a float)."""
    if value == AUTO:
        return AUTO
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{flag} {value!r}: expected seconds (e.g. 15) or auto") from None


def option(default, help: str, flag: str | None = None, **argparse_kwargs):
    """A dataclass field with its CLI flag and help text (`flag=None`: no flag of its own)."""
    return field(default=default, metadata={"help": help, "flag": flag, **argparse_kwargs})


@dataclass
class RecoveryOptions:
    # Measured on whisper base at 50% (64 synthesized clips, packed 28 s windows): lr 5e-4 first pushes the
    # held-out loss up (0.96 -> 1.81) and early stopping keeps the start; 1e-4 lowers it steadily (0.96 -> 0.53
    # in 60 steps). 60 steps of 2 packed windows fit the 10-minute budget of a base conversion on 2 cores.
    steps: int = option(60, "at most this many steps (early stopping may end sooner)", "--recovery-steps")
    lr: float = option(1e-4, "peak learning rate", "--recovery-lr")
    batch_size: int = option(2, "windows per step", "--recovery-batch-size")
    temperature: float = option(2.0, "KL temperature", "--temperature")
    ce_weight: float = option(0.8, "cross-entropy weight (distil-whisper's 0.8 CE + 1.0 KL)")
    kl_weight: float = option(1.0, "KL weight")
    mse_weight: float = option(0.0, "encoder-output MSE weight (healing's loss) added to the decoder's")
    train_norms: bool = option(False, "also train the encoder's layer norms and biases", "--train-norms")
    warmup: int = option(5, "learning-rate warm-up steps")
    eval_every: int = option(10, "steps between held-out evaluations")
    patience: int = option(3, "evaluations without a better held-out loss before stopping")
    seed: int = option(0, "seed of the held-out split, augmentation and batch order")

    def validate(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.eval_every < 1 or self.patience < 1:
            raise ValueError("recovery steps must be >= 0, and batch size, eval interval and patience >= 1")
        if self.lr <= 0 or self.temperature <= 0:
            raise ValueError(f"recovery learning rate ({self.lr}) and temperature ({self.temperature}) must be > 0")
        if min(self.ce_weight, self.kl_weight, self.mse_weight) < 0 or not (
            self.ce_weight or self.kl_weight or self.mse_weight
        ):
            raise ValueError("recovery loss weights must be >= 0, at least one of them > 0")


@dataclass
class ReconstructionOptions:
    """Block-wise reconstruction (reconstruction.py): each compressed encoder layer fitted to the original's."""

    epochs: int = option(4, "passes over the calibration windows per layer", "--reconstruction-epochs")
    # Measured on tiny.en at 70% (real English without overlong clips, greedy): 3e-4 -> 27.1, 1e-3 -> 30.4.
    lr: float = option(3e-4, "peak learning rate (cosine decay to a tenth)", "--reconstruction-lr")
    batch_size: int = option(4, "windows per step", "--reconstruction-batch-size")
    padding_weight: float = option(0.1, "weight of a padding frame against a speech frame in the loss",
                                   "--padding-weight")
    refit: bool = option(False, "first re-solve each projection's first factor in closed form (ridge regression "
                         "from the compressed inputs to the original outputs on the PCA basis)", "--refit")
    ridge: float = option(1e-2, "the refit's ridge, relative to the mean input variance (towards the PCA factor)")
    pack_seconds: float = option(28.0, "windows pack clips up to S seconds", "--reconstruction-pack-seconds",
                                 metavar="S")
    seed: int = option(0, "seed of the batch order")

    def validate(self) -> None:
        if self.epochs < 0 or self.batch_size < 1:
            raise ValueError("reconstruction epochs must be >= 0 and its batch size >= 1")
        if self.lr <= 0 or self.ridge < 0 or not 0 <= self.padding_weight <= 1:
            raise ValueError(f"reconstruction lr ({self.lr}) must be > 0, ridge ({self.ridge}) >= 0 and padding "
                             f"weight ({self.padding_weight}) in [0, 1]")
        if not 0 <= self.pack_seconds <= 30:
            raise ValueError(f"--reconstruction-pack-seconds {self.pack_seconds}: expected 0 to 30")


@dataclass
class ConversionOptions:
    """How to compress. Exactly one of `threshold`, `target_params`, `target_speedup`."""

    threshold: str | None = option(None, "energy kept by attention:MLP projections, e.g. 0.99:0.999 (LiteASR)")
    target_params: float | None = option(None, "budget: fraction of the encoder's parameters to keep, e.g. 0.5")
    target_speedup: float | None = option(None, "budget: encoder FLOP speedup, e.g. 2.0")
    rank_multiple: int = option(16, "ranks are multiples of this", "--rank-multiple")
    sequential: bool | None = option(None, "fit each layer on the already-compressed ones (the `sequential` "
                                     "pipeline); False: LiteASR's one-shot PCA on the original model (`oneshot`); "
                                     "None: one-shot (see `resolved`)")
    num_samples: int = option(128, "calibration clips", "--num-samples")
    # Corpora are ordered (LibriSpeech by speaker): their first rows are a few voices.
    shuffle_buffer: int = option(1000, "Hub datasets (and parquet folders) are streamed and shuffled through a "
                                 "buffer of N rows (IterableDataset.shuffle); 0: dataset order. Local audiofolders "
                                 "are read in order", "--shuffle-buffer", metavar="N")
    seed: int = option(42, "seed of the Hub datasets' shuffle (LiteASR's) and of the held-out slice", "--seed")
    audio_column: str | None = option(None, "audio column of the calibration datasets; None: the Audio "
                                      "feature, or `audio`", "--audio-column", type=str)
    text_column: str | None = option(None, "transcript column; None: text, sentence, transcription, ... "
                                     "(calibration needs no text)", "--text-column", type=str)
    # `auto` (resolved_pack_seconds): 15 s windows for one-shot budgets, one clip per window otherwise. Measured on
    # tiny.en at 70% (docs/recovery.md): one clip per window, ~90% of the frames the statistics see are padding.
    pack_seconds: float | str = option(AUTO, "concatenate short clips into windows of at most S seconds (fuller 30 s "
                                       "windows: statistics on more speech, faster calibration; fewer windows for "
                                       "the sequential fits); 0: one clip per window; auto: 15 for one-shot budgets, "
                                       "0 for thresholds (LiteASR's) and --sequential", "--pack-seconds",
                                       metavar="S", type=lambda v: seconds_or_auto(v, "--pack-seconds"))
    batch_size: int = option(8, "calibration batch size", "--batch-size")
    allocation_samples: int = option(16, "calibration windows for the first, one-shot allocation (budget modes)",
                                     "--allocation-samples")
    probe_samples: int = option(4, "calibration windows for the sensitivity probes (budget modes)",
                                "--probe-samples")
    sensitivity_rounds: int = option(1, "re-measure sensitivity at the allocated ranks and re-allocate this many "
                                     "times", "--sensitivity-rounds")
    schedule: str | None = option(None, "iterative compression: the budgets of the rounds, comma-separated, in the "
                                  "unit of the target and ending at it (e.g. 0.85,0.7,0.6,0.5 with --target-params "
                                  "0.5); each round re-measures the current model, shrinks ranks to its budget and "
                                  "recovers from the original model", "--schedule", metavar="B1,B2,...", type=str)
    rounds: int = option(1, "iterative compression in N rounds towards the target (evenly spaced budgets); 1: in "
                         "one go", "--rounds", metavar="N")
    reconstruction: ReconstructionOptions | str | None = option(
        AUTO, "block-wise reconstruction after the fits (reconstruction.py); None: off; `auto`: see `resolved`")
    recovery: RecoveryOptions | str | None = option(AUTO, "distillation through the frozen decoder after the fits "
                                                    "(recovery.py); None: off; `auto`: see `resolved`")
    heldout: float = option(0.15, "share of the calibration clips held out of everything for early stopping",
                            "--heldout", metavar="F")
    augment_copies: int = option(2, "augmented copies of each clip (speed 0.9/1.1, gain, noise) for recovery",
                                 "--augment-copies", metavar="N")
    # A 3 s clip alone is 90% padding: packed, each step's encoder passes carry ~10x the speech.
    recovery_pack_seconds: float = option(28.0, "recovery windows pack clips of one language up to S seconds; 0: "
                                          "one clip per window", "--recovery-pack-seconds", metavar="S")
    augment_calibration: bool = option(False, "statistics on augmented clips (level, noise) instead of the clips "
                                       "as given (experiments)")
    skip_bad_clips: bool = option(False, "skip calibration clips that are empty, silent (below -60 dBFS), hold "
                                  "NaN/inf or do not decode, counted in conversion.json (default: such a clip stops "
                                  "the conversion, named)", "--skip-bad-clips")
    allow_degraded: bool = option(False, "keep the model even when the final quality check fails (agreement WER "
                                  "with the original above 50%%, or decoding loops the original does not make)",
                                  "--allow-degraded")
    allow_pickle: bool = option(False, "load a base that has only pytorch_model.bin (pickle: it can run code) "
                                "instead of refusing it", "--allow-pickle")
    device: str = option("cpu", "cpu or cuda", "--device")
    dtype: str = option("float32", "weights' dtype while converting", "--dtype",
                        choices=["float32", "float16", "bfloat16"])

    def resolved(self) -> ConversionOptions:
        """A copy with every `auto` choice made, as `convert` runs it (the CLI, the Python API, the demo and the
        benchmarks all go through here): the fits are one-shot unless `sequential=True` (the sequential
        regressions collapse on human speech: README); budgets below AUTO_RECONSTRUCTION_BELOW are reconstructed block
        by block (`reconstructs_by_default`); decoder-aware recovery runs by default only between iterative rounds
        (`recovers_by_default`); thresholds are LiteASR's method as published (neither)."""
        return replace(self, sequential=bool(self.sequential), pack_seconds=self.resolved_pack_seconds(),
                       reconstruction=switched(self.reconstruction, ReconstructionOptions(),
                                               self.reconstructs_by_default(), "reconstruction"),
                       recovery=switched(self.recovery, RecoveryOptions(), self.recovers_by_default(), "recovery"))

    @property
    def pipeline(self) -> str:
        """The name of the compression pipeline these options run (see pipelines.PIPELINES)."""
        if self.schedule is not None or self.rounds > 1:
            return "iterative"
        return "sequential" if self.sequential else "oneshot"

    def round_budgets(self) -> list[float]:
        """The budgets of the iterative rounds, in the target's unit (fraction of parameters, or FLOP speedup)."""
        target = self.target_params if self.target_params is not None else self.target_speedup
        if self.schedule is not None:
            try:
                return [float(x) for x in self.schedule.split(",") if x.strip()]
            except ValueError:
                raise ValueError(f"--schedule {self.schedule!r}: expected comma-separated budgets, e.g. "
                                 "0.85,0.7,0.6,0.5") from None
        start = 1.0  # the dense encoder: fraction 1, speedup 1
        return [round(start + (target - start) * (i + 1) / self.rounds, 6) for i in range(self.rounds)]

    def resolved_pack_seconds(self) -> float:
        """`--pack-seconds auto`: AUTO_PACK_SECONDS for one-shot budgets, 0 (one clip per window) for thresholds
        (LiteASR's method as published) and the sequential fits (their regressions need many windows).
        Measured on tiny.en at 70% (real English read / MFA, greedy, 3 calibration draws; docs/recovery.md): one
        clip per window, worst draw 21.5 / 39.9; packed 28 s 14.2 / 31.2, but some held-out one-word clips loop;
        packed 15 s (speech and padding both seen): see AUTO_PACK_SECONDS."""
        if self.pack_seconds != AUTO:
            return self.pack_seconds
        return AUTO_PACK_SECONDS if self.threshold is None and not self.sequential else 0.0

    def reconstructs_by_default(self) -> bool:
        """Whether `auto` reconstructs: budgets below AUTO_RECONSTRUCTION_BELOW (and iterative rounds), never thresholds.
        Measured on tiny.en at 70% (real English, greedy; docs/recovery.md): it brings the transcripts of the
        clips that do not loop closer to the original's (agreement 23.5 -> 20.1%, WER 30.2 -> 27.1)."""
        if self.threshold is not None:
            return False
        if self.pipeline == "iterative":
            return True
        if self.target_params is not None:
            return self.target_params < AUTO_RECONSTRUCTION_BELOW
        return self.target_speedup is not None and self.target_speedup > 1 / AUTO_RECONSTRUCTION_BELOW

    def recovers_by_default(self) -> bool:
        """Whether `auto` runs decoder-aware recovery: between iterative rounds only. Measured on tiny.en at 70%
        (docs/recovery.md): after one-shot PCA on 256 degraded clips its held-out loss rose from the first steps
        (0.84 -> 1.01) and early stopping kept the start, 25 minutes for nothing; after 60 or 240 steps on that
        pool real English was no better (issue 31)."""
        return self.threshold is None and self.pipeline == "iterative"

    def _validate_rounds(self) -> None:
        if self.threshold is not None:
            raise ValueError("iterative compression (--schedule / --rounds) needs a budget: --target-params or "
                             "--target-speedup, not --threshold")
        if self.recovery is None:
            raise ValueError("iterative compression recovers between rounds: drop --recovery off")
        target = self.target_params if self.target_params is not None else self.target_speedup
        _check_schedule(self.round_budgets(), target, shrinking=self.target_params is not None)

    def min_calibration_clips(self) -> int:
        """Usable calibration clips this conversion needs at least: 2 for the statistics (the sequential fits are
        warned about below MIN_SEQUENTIAL_SAMPLES windows); the budget modes' sensitivity probes use
        --probe-samples windows; recovery holds some out."""
        need = 2
        if self.threshold is None:
            need = max(need, self.probe_samples)
        if self.resolved().trains:
            need = max(need, 3)
        return need

    @property
    def trains(self) -> bool:
        """Whether the factors are trained after the fits (reconstruction or recovery: both stop early on a
        held-out slice of the calibration clips). Meaningful on resolved options."""
        return self.reconstruction not in (None, AUTO) or self.recovery not in (None, AUTO)

    def validate(self) -> None:
        modes = [self.threshold is not None, self.target_params is not None, self.target_speedup is not None]
        if sum(modes) != 1:
            raise ValueError("choose exactly one of --threshold, --target-params, --target-speedup")
        if self.threshold is not None:
            parse_threshold(self.threshold)
        if self.target_params is not None and not 0 < self.target_params <= 1:
            raise ValueError(f"--target-params {self.target_params}: expected a fraction of the encoder in (0, 1]")
        if self.target_speedup is not None and not self.target_speedup >= 1:
            raise ValueError(f"--target-speedup {self.target_speedup}: expected a FLOP speedup >= 1, e.g. 1.5")
        if self.rank_multiple < 1:
            raise ValueError(f"--rank-multiple {self.rank_multiple}: must be >= 1")
        if self.num_samples < 1:
            raise ValueError(f"--num-samples {self.num_samples}: must be >= 1")
        if self.shuffle_buffer < 0:
            raise ValueError(f"--shuffle-buffer {self.shuffle_buffer}: must be >= 0 (0: dataset order)")
        if self.pack_seconds != AUTO and not 0 <= self.pack_seconds <= 30:
            raise ValueError(f"--pack-seconds {self.pack_seconds}: expected 0 (one clip per window) to 30, or auto")
        if self.rounds < 1:
            raise ValueError(f"--rounds {self.rounds}: must be >= 1")
        if self.dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"--dtype {self.dtype}: expected float32, float16 or bfloat16")
        for name, value in (("reconstruction", self.reconstruction), ("recovery", self.recovery)):
            if not (value is None or value in SWITCHES or hasattr(value, "validate")):
                raise ValueError(f"{name}: expected {name.capitalize()}Options, None, or one of {', '.join(SWITCHES)}")
        resolved = self.resolved()
        if resolved.pipeline == "iterative":
            resolved._validate_rounds()
        if resolved.reconstruction is not None:
            resolved.reconstruction.validate()
        if resolved.recovery is not None:
            resolved.recovery.validate()
            if not 0 <= self.recovery_pack_seconds <= 30:
                raise ValueError(f"--recovery-pack-seconds {self.recovery_pack_seconds}: expected 0 (one clip per "
                                 "window) to 30")
        if resolved.trains:
            if not 0 < self.heldout < 1:
                raise ValueError(f"--heldout {self.heldout}: expected a share of the calibration clips in (0, 1)")
            if self.augment_copies < 0:
                raise ValueError(f"--augment-copies {self.augment_copies}: must be >= 0")


def switched(choice, settings, default_on: bool, name: str):
    """An optional step's options: `choice` itself when it is options or None (off); for `auto` (or `on`),
    `settings` when the rule (`default_on`) says so (always for `on`), else None. `name` names the step in the
    refusal of anything else."""
    if choice is None or hasattr(choice, "validate"):
        return choice
    if choice not in SWITCHES:
        raise ValueError(f"{name}: expected auto, on or off, got {choice!r}")
    return settings if choice == "on" or (choice == AUTO and default_on) else None


# --- flags from fields -------------------------------------------------------------------------------------


def _check_schedule(budgets: list[float], target: float, shrinking: bool) -> None:
    if not budgets or abs(budgets[-1] - target) > 1e-9:
        raise ValueError(f"--schedule {budgets}: must end at the target {target:g}")
    steps = list(zip([1.0, *budgets], budgets))
    if any((b >= a) if shrinking else (b <= a) for a, b in steps):
        raise ValueError(f"--schedule {budgets}: each round must compress more than the one before, starting from "
                         "the dense encoder (1.0)")


def _flagged(cls) -> list:
    return [f for f in fields(cls) if f.metadata.get("flag")]


def _dest(f) -> str:
    return f.metadata["flag"].lstrip("-").replace("-", "_")  # --recovery-batch-size: recovery_batch_size


def add_arguments(parser, cls) -> None:
    """One flag per field of `cls` that names one, with the field's default, type and help."""
    for f in _flagged(cls):
        extra = {"type": type(f.default), **{k: v for k, v in f.metadata.items() if k not in ("help", "flag")}}
        if isinstance(f.default, bool):
            parser.add_argument(f.metadata["flag"], dest=_dest(f), action="store_true", help=f.metadata["help"])
        else:  # a field defaulting to None names its type in the metadata
            help_text = f"{f.metadata['help']} (default: {f.default:g})" if isinstance(f.default, float) else \
                f"{f.metadata['help']} (default: {f.default})"
            parser.add_argument(f.metadata["flag"], dest=_dest(f), default=f.default,
                                help=help_text.replace("%", "%%"), **extra)


def from_arguments(cls, args: argparse.Namespace, **given):
    """An instance of `cls` from the parsed flags of `add_arguments` (and `given` fields)."""
    return cls(**{f.name: getattr(args, _dest(f)) for f in _flagged(cls)}, **given)
