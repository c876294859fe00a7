"""The default calibration pool (data/pool.py): real English recordings from packages and synthesized speech,
its sources and licenses recorded, 16 kHz mono, seeded, and none of the real-en test clips inside."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from lite_whisper.compression.recovery import split_heldout
from lite_whisper.data import assets
from lite_whisper.data.pool import PIECE_SECONDS, build_pool, real_rows
from lite_whisper.data.sources import SOURCES

from conftest import CACHE


def _rows(folder):
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return build_pool(tmp_path_factory.mktemp("pool") / "pool", CACHE, num_synthesized=6, seed=3,
                      exclude=assets.real_speech_set("real-en", CACHE), progress=False)


def test_pool_records_sources_speakers_and_licenses(pool):
    rows = _rows(pool)
    by_source = {source: [r for r in rows if r["source"] == source] for source in {r["source"] for r in rows}}
    assert set(by_source) == {"codec2", "silero", "hedgewars", "synthesized"}
    assert len(by_source["synthesized"]) == 6
    for source in ("codec2", "silero", "hedgewars"):
        assert all(r["license"] == SOURCES[source].license and r["text"] is None for r in by_source[source])
        assert len({r["speaker"] for r in by_source[source]}) >= 2
    assert all(r["speaker"] and r["license"] and r["language"] == "en" for r in rows)
    readme = (pool / "README.md").read_text(encoding="utf-8")
    assert all(f"| {source} | {len(part)} |" in readme for source, part in by_source.items())
    assert "GFDL-1.3" in readme and "LGPL-2.1" in readme


def test_pool_is_16khz_mono_pieces_of_a_window(pool):
    for row in _rows(pool)[::7]:
        info = sf.info(pool / row["file_name"])
        assert info.samplerate == 16_000 and info.channels == 1
        assert 0.3 <= info.duration <= PIECE_SECONDS + 1e-3 and abs(info.duration - row["seconds"]) < 0.01


def test_pool_is_seeded(pool, tmp_path):
    again = build_pool(tmp_path / "again", CACHE, num_synthesized=6, seed=3, progress=False)
    other = build_pool(tmp_path / "other", CACHE, num_synthesized=6, seed=4, progress=False)
    assert _rows(again) == _rows(pool)
    first = _rows(pool)[0]["file_name"]
    assert (again / first).read_bytes() == (pool / first).read_bytes()
    assert [r["origin"] for r in _rows(other)] != [r["origin"] for r in _rows(pool)]


def test_a_test_clip_inside_the_pool_is_refused(tmp_path):
    piece = real_rows(CACHE)[0]
    test_set = tmp_path / "test-set"
    test_set.mkdir()
    sf.write(test_set / "a.wav", piece["audio"], 16_000, subtype="PCM_16")
    (test_set / "metadata.jsonl").write_text(json.dumps({"file_name": "a.wav", "text": "x"}) + "\n")
    with pytest.raises(ValueError, match="must stay out"):
        build_pool(tmp_path / "pool", CACHE, num_synthesized=0, exclude=test_set, progress=False)
    assert not (tmp_path / "pool").exists()


def test_heldout_slice_takes_whole_speakers():
    speakers = [f"s{i % 10}" for i in range(200)]  # ten speakers, twenty clips each
    clips = [np.full(4, i, dtype=np.float32) for i in range(200)]
    train, held = split_heldout(clips, 0.15, seed=1, speakers=speakers)
    held_speakers = {speakers[int(c[0])] for c in held}
    assert len(held) >= 30 and len(train) + len(held) == 200
    assert all(sum(s == speaker for s in speakers) == sum(speakers[int(c[0])] == speaker for c in held)
               for speaker in held_speakers)  # every clip of a held-out speaker is held out
    assert not held_speakers & {speakers[int(c[0])] for c in train}
    _, again = split_heldout(clips, 0.15, seed=1, speakers=speakers)
    assert [int(c[0]) for c in again] == [int(c[0]) for c in held]
    _, unknown = split_heldout(clips, 0.15, seed=1, speakers=[None] * 200)  # no speakers: clip by clip
    assert len(unknown) == 30
