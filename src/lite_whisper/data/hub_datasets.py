"""Datasets read through `datasets` (a Hub id, or a local folder of parquet files): checked, then streamed.

Streaming (`load_dataset(..., streaming=True)`) reads only the shards (and, for parquet, the byte ranges) that the
clips asked for need: 128 clips of LibriSpeech are a few MB, not its training split. Before anything is read, a
`DatasetSource` is resolved in seconds with the Hub's own API: the dataset exists and can be read (not gated
without a token, the machine is online), its revision (the commit sha, so that conversion.json pins what was
read), the config exists, and the split (by default the first of train, validation, test that exists). Each
failure is a one-line ValueError / FileNotFoundError naming the fix.

Corpora are ordered (LibriSpeech by speaker, Common Voice by upload): `shuffle_buffer` > 0 draws the clips through
`IterableDataset.shuffle(seed=, buffer_size=)` (which also shuffles the shard order); `skip` drops rows in
dataset order first (ESB-style evaluations read the first rows of each set).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from huggingface_hub import HfApi, constants, get_token
from huggingface_hub.errors import (
    GatedRepoError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

# `datasets` (and the HTTP client of huggingface_hub >= 1.0) are imported where used: datasets 5.x needs
# huggingface_hub >= 1.31, which a transformers 4.57 environment (`make test-compat`) does not have, and the
# payload tests run there with this package's data helpers.

SPLIT_ORDER = ("train", "validation", "test")
TOKEN_HINT = "log in with `hf auth login` or set HF_TOKEN"


@dataclass(frozen=True)
class DatasetSource:
    """One dataset to read through `datasets`: id or folder, config, split, rows skipped, pinned revision."""

    dataset: str
    config: str | None = None
    split: str | None = None
    skip: int = 0  # rows dropped in dataset order, before any shuffle
    revision: str | None = None  # the Hub commit sha once resolved (None for a local folder)


def is_local(dataset: str) -> bool:
    return Path(dataset).expanduser().exists()


def _offline_error(dataset: str, err: Exception | None = None) -> FileNotFoundError:
    why = "HF_HUB_OFFLINE=1 is set" if constants.HF_HUB_OFFLINE else f"the Hub ({constants.ENDPOINT}) cannot be reached"
    detail = f" ({type(err).__name__})" if err is not None else ""
    return FileNotFoundError(f"cannot read dataset {dataset!r}: {why}{detail}; connect to the Hub (unset "
                             "HF_HUB_OFFLINE), or give a local audiofolder or a folder of its parquet files")


def _gated_error(dataset: str) -> ValueError:
    return ValueError(f"dataset {dataset!r} is gated: accept its conditions on its Hub page, then {TOKEN_HINT}")


def hub_revision(dataset: str, revision: str | None = None) -> str | None:
    """The commit sha of a Hub dataset, after checking it can be read (exists, not gated without a token)."""
    if constants.HF_HUB_OFFLINE:
        raise _offline_error(dataset)
    try:
        info = HfApi().dataset_info(dataset, revision=revision)
    except (OfflineModeIsEnabled, LocalEntryNotFoundError, _transport_error()) as err:
        raise _offline_error(dataset, err) from err
    except GatedRepoError as err:
        raise _gated_error(dataset) from err
    except RevisionNotFoundError as err:
        raise ValueError(f"dataset {dataset!r} has no revision {revision!r}") from err
    except RepositoryNotFoundError as err:
        raise FileNotFoundError(f"dataset {dataset!r} is not on the Hub ({constants.ENDPOINT}) nor a local folder: "
                                f"check the id (a private dataset needs a token: {TOKEN_HINT})") from err
    if info.gated and get_token() is None:
        raise _gated_error(dataset)
    return info.sha


def _transport_error() -> type[Exception]:
    from huggingface_hub.utils import httpx  # the HTTP client huggingface_hub uses (httpx or its fork)

    return httpx.TransportError


def _names(lister, dataset: str, **kwargs) -> list[str]:
    """Config or split names through `datasets`, its Hub errors turned into ours."""
    from datasets.exceptions import DatasetNotFoundError

    try:
        return list(lister(dataset, **kwargs))
    except GatedRepoError as err:
        raise _gated_error(dataset) from err
    except DatasetNotFoundError as err:  # gated (datasets words it so) or gone
        raise (_gated_error(dataset) if "gated" in str(err) else FileNotFoundError(str(err))) from err
    except ConnectionError as err:  # datasets' "Couldn't reach ... on the Hub"
        raise _offline_error(dataset, err) from err


def pick_config(dataset: str, config: str | None, revision: str | None) -> str | None:
    from datasets import get_dataset_config_names

    configs = _names(get_dataset_config_names, dataset, revision=revision)
    if config is None:
        if len(configs) > 1 and "default" not in configs:
            raise ValueError(f"dataset {dataset!r} has several configs: choose one of {', '.join(configs)} "
                             "(--calibration-config for convert, --config for eval)")
        return None
    if config not in configs:
        raise ValueError(f"dataset {dataset!r} has no config {config!r}: its configs are {', '.join(configs)}")
    return config


def pick_split(dataset: str, config: str | None, split: str | None, revision: str | None) -> str:
    """`split` if the dataset has it; by default the first of SPLIT_ORDER that exists (said in a note)."""
    from datasets import get_dataset_split_names

    splits = _names(get_dataset_split_names, dataset, config_name=config, revision=revision)
    where = f"dataset {dataset!r}" + (f" (config {config!r})" if config else "")
    if split is not None:
        if split not in splits:
            raise ValueError(f"{where} has no split {split!r}: its splits are {', '.join(splits)}")
        return split
    chosen = next((s for s in SPLIT_ORDER if s in splits), None)
    if chosen is None:
        raise ValueError(f"{where} has none of the splits {', '.join(SPLIT_ORDER)}: choose one of "
                         f"{', '.join(splits)} (--calibration-split for convert, --split for eval)")
    print(f"note: {where}: split {chosen!r} (the first of {', '.join(SPLIT_ORDER)} it has; pick another with "
          "--calibration-split)")
    return chosen


def resolve_source(source: DatasetSource) -> DatasetSource:
    """The source checked, with its revision (Hub commit sha), config and split filled in; reads no data."""
    local = is_local(source.dataset)
    revision = source.revision if local else hub_revision(source.dataset, source.revision)
    config = pick_config(source.dataset, source.config, revision)
    split = pick_split(source.dataset, config, source.split, revision)
    return replace(source, config=config, split=split, revision=revision)

