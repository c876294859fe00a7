// Transcribe 16 kHz float32 clips with transformers.js's automatic-speech-recognition pipeline, from a LOCAL
// model folder only (no remote models). Usage:
//   node transcribe.cjs INSTALL_DIR MODELS_ROOT MODEL_NAME DTYPE CLIP.f32 [CLIP.f32 ...]
// INSTALL_DIR holds node_modules/@huggingface/transformers; MODELS_ROOT/MODEL_NAME is the model folder
// (config.json, tokenizer and processor files, onnx/); each CLIP.f32 is raw little-endian float32 samples.
// Prints one JSON object: {"version", "dtype", "texts": [...]}.
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

async function main() {
    const [installDir, modelsRoot, modelName, dtype, ...clips] = process.argv.slice(2);
    if (!clips.length) throw new Error('usage: node transcribe.cjs INSTALL_DIR MODELS_ROOT MODEL_NAME DTYPE CLIP.f32...');
    const { pipeline, env } = createRequire(path.join(installDir, 'package.json'))('@huggingface/transformers');
    env.allowRemoteModels = false; // the local folder or nothing
    env.allowLocalModels = true;
    env.localModelPath = modelsRoot;
    env.useBrowserCache = false;
    env.useFSCache = false;
    const asr = await pipeline('automatic-speech-recognition', modelName, { dtype, device: 'cpu' });
    const texts = [];
    for (const clip of clips) {
        const bytes = fs.readFileSync(clip);
        const audio = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
        const out = await asr(audio, { num_beams: 1, do_sample: false });
        texts.push(out.text);
    }
    const version = require(path.join(installDir, 'node_modules/@huggingface/transformers/package.json')).version;
    process.stdout.write(JSON.stringify({ version, dtype, texts }) + '\n');
}

main().catch((error) => {
    console.error(error && error.stack ? error.stack : String(error));
    process.exit(1);
});
