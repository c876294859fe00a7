#!/usr/bin/env python
"""Synthesize an offline English speech set (audiofolder: 16 kHz WAV + metadata.jsonl) for calibration or WER.

    python conversion/synthesize_speech.py --output data/speech-test --num 200 --split test
    python conversion/synthesize_speech.py --output data/speech-calib --num 128 --split calibration --seed 1

Same as `lite-whisper synthesize`; see `lite_whisper.data.synthesis.synthesize_dataset`.
"""

from __future__ import annotations

import argparse
import sys

from lite_whisper.data.synthesis import ENGINES, SPLITS, MissingEngineError, synthesize_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="new folder to create")
    parser.add_argument("--num", type=int, default=100, help="number of utterances (default: 100)")
    parser.add_argument("--split", default="test", choices=SPLITS, help="sentence pool (default: test)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sentence order, voices, rates and noise")
    parser.add_argument("--engines", default="piper,flite", help=f"comma-separated, among {', '.join(ENGINES)}")
    parser.add_argument("--noise-snr", type=float, default=None, metavar="DB", help="add white noise at this SNR")
    args = parser.parse_args(argv)
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    try:
        out = synthesize_dataset(args.output, args.num, args.split, args.seed, engines, args.noise_snr)
    except (ValueError, FileExistsError, MissingEngineError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(f"wrote {args.num} utterances to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
