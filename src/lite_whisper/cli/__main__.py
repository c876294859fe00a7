"""`python -m lite_whisper.cli`."""

import sys

from lite_whisper.cli import main

sys.exit(main())
