"""lite-whisper: low-rank compression of Whisper's encoder, published as a Transformers model on the Hub."""

__version__ = "0.1.0"
