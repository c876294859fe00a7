#!/usr/bin/env python3
"""`make demo`: import tiny.en, synthesize speech, convert at a budget, evaluate, card, push dry-run (offline)."""

import sys

from lite_whisper.benchmarks.demo import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
