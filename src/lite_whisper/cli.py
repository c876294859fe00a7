"""`lite-whisper` command line: one sub-command per step, each a thin wrapper over a package function.

Each command lives in its own `_cmd_*` / `_add_*` pair below; imports are local so that `--help` is fast.
"""

from __future__ import annotations

import argparse
import sys


# --- import-ct2 ---------------------------------------------------------------------------------


def _add_import_ct2(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-ct2",
        help="rebuild a transformers Whisper folder from a CTranslate2 (faster-whisper) model",
        description="Import a CTranslate2 (faster-whisper) Whisper model as a standard transformers Whisper folder.",
    )
    p.set_defaults(func=lambda a: p.error("not implemented yet"))


# --- synthesize ---------------------------------------------------------------------------------


def _add_synthesize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synthesize",
        help="synthesize an offline English speech set (audiofolder: WAV + metadata.jsonl)",
        description="Synthesize an audiofolder-format speech dataset offline from the project's sentence list.",
    )
    p.set_defaults(func=lambda a: p.error("not implemented yet"))


# ------------------------------------------------------------------------------------------------

_COMMANDS = [_add_import_ct2, _add_synthesize]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lite-whisper",
        description="Compress Whisper's encoder by low-rank factorization and publish it to the Hugging Face Hub.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"lite-whisper {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
