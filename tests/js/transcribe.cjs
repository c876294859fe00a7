// Transcribe 16 kHz float32 clips with transformers.js's automatic-speech-recognition pipeline, from a LOCAL
// model folder only (no remote models). Usage:
//   node transcribe.cjs INSTALL_DIR MODELS_ROOT MODEL_NAME DTYPE CLIP.f32 [CLIP.f32 ...]
// INSTALL_DIR holds node_modules/@huggingface/transformers; MODELS_ROOT/MODEL_NAME is the model folder
// (config.json, tokenizer and processor files, onnx/); each CLIP.f32 is raw little-endian float32 samples.
// DTYPE is one dtype for every file (fp32, fp16, q8) or a JSON object with one per module, as transformers.js
// takes it: '{"encoder_model": "fp32", "decoder_model_merged": "q8"}'.
// With TRANSCRIBE_REPEATS=N (timing), one untimed warm-up call on the first clip, then all clips N times, each
// pass timed (seconds, in "seconds"); TRANSCRIBE_THREADS=N sets onnxruntime's intra-op threads.
// Prints one JSON object: {"version", "dtype", "texts": [...], "seconds": [...]}.
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

async function main() {
    const [installDir, modelsRoot, modelName, dtypeArg, ...clips] = process.argv.slice(2);
    const dtype = dtypeArg.startsWith('{') ? JSON.parse(dtypeArg) : dtypeArg;
    const repeats = parseInt(process.env.TRANSCRIBE_REPEATS || '1', 10);
    if (!clips.length) throw new Error('usage: node transcribe.cjs INSTALL_DIR MODELS_ROOT MODEL_NAME DTYPE CLIP.f32...');
    const { pipeline, env } = createRequire(path.join(installDir, 'package.json'))('@huggingface/transformers');
    env.allowRemoteModels = false; // the local folder or nothing
    env.allowLocalModels = true;
    env.localModelPath = modelsRoot;
    env.useBrowserCache = false;
    env.useFSCache = false;
    const loadOptions = { dtype, device: 'cpu' };
    if (process.env.TRANSCRIBE_THREADS) { // onnxruntime-node's intra-op threads (default: its own choice)
        const threads = parseInt(process.env.TRANSCRIBE_THREADS, 10);
        loadOptions.session_options = { intraOpNumThreads: threads, interOpNumThreads: 1 };
    }
    const asr = await pipeline('automatic-speech-recognition', modelName, loadOptions);
    const audios = clips.map((clip) => {
        const bytes = fs.readFileSync(clip);
        return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    });
    const options = { num_beams: 1, do_sample: false };
    if (process.env.TRANSCRIBE_REPEATS) await asr(audios[0], options); // warm-up, untimed
    let texts = [];
    const seconds = [];
    for (let r = 0; r < repeats; r++) {
        texts = [];
        const tic = performance.now();
        for (const audio of audios) texts.push((await asr(audio, options)).text);
        seconds.push((performance.now() - tic) / 1000);
    }
    const version = require(path.join(installDir, 'node_modules/@huggingface/transformers/package.json')).version;
    process.stdout.write(JSON.stringify({ version, dtype, texts, seconds }) + '\n');
}

main().catch((error) => {
    console.error(error && error.stack ? error.stack : String(error));
    process.exit(1);
});
