// Speech to text in the browser with transformers.js: what lite-whisper's page (`lite-whisper serve-web`) runs,
// and the model card's browser example. `model` is a Hub id, or a folder name under env.localModelPath.
import { pipeline, read_audio } from "@huggingface/transformers";

// device: "wasm" (WebAssembly, any browser) or "webgpu" (where the browser has it); dtype: an exported one.
export async function loadModel(model, { dtype = "fp32", device = "wasm" } = {}) {
    return await pipeline("automatic-speech-recognition", model, { dtype, device });
}

// 16 kHz mono samples of an audio file, a recording (a Blob) or a URL, decoded by the browser.
export async function readAudio(source) {
    const url = source instanceof Blob ? URL.createObjectURL(source) : source;
    try {
        return await read_audio(url, 16000);
    } finally {
        if (url !== source) URL.revokeObjectURL(url);
    }
}

// Greedy decoding, as `lite-whisper eval` measures; audio longer than Whisper's 30 s window in overlapping
// 30 s chunks; `language` only for multilingual models (default English).
export async function transcribe(asr, audio, language) {
    const long = audio.length > 30 * 16000 && { chunk_length_s: 30, stride_length_s: 5 };
    const { text } = await asr(audio, { num_beams: 1, do_sample: false, ...long, ...(language && { language }) });
    return text.trim();
}
