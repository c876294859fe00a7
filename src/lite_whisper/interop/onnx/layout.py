"""The file layout transformers.js loads: MODEL_DIR/onnx/<name><dtype suffix>.onnx.

    onnx/encoder_model{suffix}.onnx            the encoder
    onnx/decoder_model_merged{suffix}.onnx     the merged decoder (an `If` on use_cache_branch)
    onnx/export_report.json                    what the export measured (onnxruntime vs PyTorch)

Plain names, no imports: shared by the export, its checks and the model card.
"""

from __future__ import annotations

ENCODER = "encoder_model"
DECODER = "decoder_model_merged"
# transformers.js file suffix of each dtype (DEFAULT_DTYPE_SUFFIX_MAPPING in its utils/dtypes.js)
SUFFIXES = {"fp32": "", "fp16": "_fp16", "q8": "_quantized"}
DTYPES = tuple(SUFFIXES)
REPORT = "export_report.json"


__all__ = ["DECODER", "DTYPES", "ENCODER", "REPORT", "SUFFIXES"]
