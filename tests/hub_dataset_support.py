"""Hub-style speech datasets for the local Hub server (tests/hub_server.py): parquet shards with an `audio` struct
column of encoded WAV bytes and the `huggingface` features metadata, configs and splits declared in the README's
YAML, as dataset repositories on the Hub are laid out (written with pyarrow: `datasets` would need torchcodec to
encode audio)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

FEATURES = {"audio": {"_type": "Audio", "sampling_rate": 16000}, "text": {"dtype": "string", "_type": "Value"},
            "id": {"dtype": "string", "_type": "Value"}}


def audiofolder_rows(folder: Path, prefix: str = "", text_column: str = "text") -> list[dict]:
    """The clips of an audiofolder as dataset rows (audio bytes, transcript, id)."""
    rows = [json.loads(line) for line in (Path(folder) / "metadata.jsonl").read_text().splitlines() if line.strip()]
    return [{"audio": {"bytes": (Path(folder) / r["file_name"]).read_bytes(), "path": r["file_name"]},
             text_column: r["text"], "id": prefix + Path(r["file_name"]).stem} for r in rows]


def write_shards(rows: list[dict], folder: Path, split: str, rows_per_shard: int, features: dict = FEATURES) -> int:
    """`folder/{split}-0000i-of-0000n.parquet`, `rows_per_shard` rows each (one row group per shard)."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = [rows[i:i + rows_per_shard] for i in range(0, len(rows), rows_per_shard)]
    metadata = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    for i, shard in enumerate(shards):
        table = pa.Table.from_pylist(shard).replace_schema_metadata(metadata)
        pq.write_table(table, folder / f"{split}-{i:05d}-of-{len(shards):05d}.parquet")
    return len(shards)


def write_dataset(root: Path, parts: dict[str, dict[str, list[dict]]], rows_per_shard: int = 4,
                  features: dict = FEATURES) -> Path:
    """A dataset repository folder: `parts` is {config: {split: rows}}; the README declares the configs."""
    lines = ["---", "configs:"]
    for config, splits in parts.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split, rows in splits.items():
            write_shards(rows, root / config, split, rows_per_shard, features)
            lines += [f"  - split: {split}", f"    path: {config}/{split}-*.parquet"]
    (root / "README.md").write_text("\n".join(lines + ["---", "", "A test speech dataset.", ""]))
    return root
