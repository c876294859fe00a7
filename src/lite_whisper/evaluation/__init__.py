"""Judging a model folder: `lite-whisper eval` (evaluate.py: transcripts, WER, real-time factor, sizes) and the
checks before a model is loaded (loading.py). WER (wer.py), loops (loops.py) and timing (timing.py) sit at the
package's top: the method's quality check uses them too."""
