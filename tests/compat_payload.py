"""What a Hub user's process does with our folders, run by tests/test_compat.py under each transformers version.

Standalone (transformers, torch, numpy, safetensors; lite_whisper is made unimportable): `python compat_payload.py
ARGS.json OUT` loads every folder the way the model card says, generates, runs the ASR pipeline with timestamps
and on long-form audio (chunked: test_modeling_pipeline.py, which `make test-compat` runs in 4.57 too), loads and saves again (the fine-tune round trip), and writes what it saw to OUT.json and
the logits to OUT.safetensors.
"""

import json
import sys

sys.modules["lite_whisper"] = None  # a Hub user does not have the package: only the folders' own code may run

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModelForSpeechSeq2Seq,
    AutoProcessor,
    AutoTokenizer,
    WhisperFeatureExtractor,
    pipeline,
)

GREEDY = {"num_beams": 1}


def load_everything(folder):
    """The card's loading code, plus the stand-alone feature extractor; returns (model, processor, report)."""
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModelForSpeechSeq2Seq.from_pretrained(folder, trust_remote_code=True, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    features = WhisperFeatureExtractor.from_pretrained(folder)
    report = {
        "classes": [type(config).__name__, type(model).__name__, type(processor).__name__],
        "feature_extractor_matches": features.to_dict() == processor.feature_extractor.to_dict(),
        "special_tokens": len(processor.tokenizer.all_special_tokens),
    }
    return model, processor, report


def transcribe(folder, audio, long_audio):
    asr = pipeline("automatic-speech-recognition", model=folder, trust_remote_code=True)
    short = asr(audio, return_timestamps=True, generate_kwargs=GREEDY)
    long_form = asr(long_audio, return_timestamps=True, generate_kwargs=GREEDY)  # Whisper's sequential long-form
    return {
        "pipeline": type(asr).__name__,
        "short": short,
        "long_form": {"text": long_form["text"], "last_timestamp": long_form["chunks"][-1]["timestamp"]},
    }


def main(args, out):
    inputs = load_file(args["inputs"])
    audio, long_audio = inputs["audio"].numpy(), inputs["long_audio"].numpy()
    report, tensors = {"transformers": transformers.__version__}, {}
    for name, folder in args["folders"].items():
        model, processor, loaded = load_everything(folder)
        features = processor(audio, sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            tensors[name] = model(input_features=features, decoder_input_ids=inputs["decoder_ids"]).logits
            tokens = model.generate(features, **GREEDY)
        loaded["generate"] = processor.batch_decode(tokens, skip_special_tokens=True)[0]
        report[name] = loaded
    report["pipeline"] = transcribe(args["folders"]["lite"], audio, long_audio)

    # The fine-tune round trip in this version: load, save, pipeline on the saved folder.
    model, processor, _ = load_everything(args["folders"]["lite"])
    model.save_pretrained(args["resaved"])
    processor.save_pretrained(args["resaved"])
    asr = pipeline("automatic-speech-recognition", model=args["resaved"], trust_remote_code=True)
    report["round_trip"] = asr(audio, return_timestamps=True, generate_kwargs=GREEDY)

    # Tokenizer files that import-ct2 writes.
    tokenizer = AutoTokenizer.from_pretrained(args["imported_whisper"])
    ids = tokenizer("<|startoftranscript|><|notimestamps|> It's 5 o'clock.<|endoftext|>").input_ids
    report["import_ct2_tokenizer"] = {"ids": ids, "decoded": tokenizer.decode(ids, skip_special_tokens=True),
                                      "special_tokens": len(tokenizer.all_special_tokens)}
    save_file({k: v.contiguous() for k, v in tensors.items()}, out + ".safetensors")
    with open(out + ".json", "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        main(json.load(f), sys.argv[2])
