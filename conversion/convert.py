#!/usr/bin/env python3
"""Convert a Whisper checkpoint into a LiteWhisper folder: the same code as `lite-whisper convert`.

    python conversion/convert.py openai/whisper-base --output lite-base --calibration calib/ --target-params 0.5
"""

import sys

from lite_whisper.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
