#!/usr/bin/env python3
"""Export a Whisper or LiteWhisper folder to ONNX for transformers.js: the same code as `lite-whisper export-onnx`.

    python conversion/export_onnx.py lite-base --dtype fp32 q8
"""

import sys

from lite_whisper.cli import main

if __name__ == "__main__":
    sys.exit(main(["export-onnx", *sys.argv[1:]]))
