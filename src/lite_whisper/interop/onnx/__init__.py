"""ONNX for transformers.js and onnxruntime: a Whisper or LiteWhisper folder exported in the layout
transformers.js loads (`layout`: MODEL_DIR/onnx/encoder_model*.onnx and decoder_model_merged*.onnx, one file per
dtype suffix). `export` runs torch.onnx (dynamo) on the encoder and the decoder's two steps (the low-rank
projections kept as two MatMuls each) and makes the q8/fp16 variants; `graph` merges the two decoder steps into
one file under an `If` on use_cache_branch (the merged decoder); `check` compares onnxruntime with PyTorch on real
audio before anything is moved into place; `bench` times the ONNX encoder (lite vs dense) in onnxruntime.

Inside this package `import onnx` is the top-level onnx package (absolute imports); the optional onnx, onnxscript
and onnxruntime packages are imported only where used, behind `export.require_onnx_packages`'s clear error.
"""
