// The page of `lite-whisper serve-web`: the served models side by side on dropped, chosen or recorded clips.
// Everything comes from this server: the models (models.json lists them), transformers.js and onnxruntime-web's
// WebAssembly files (vendor/, from npm). Transcription itself is asr.js, the model card's browser example.
import { env } from "@huggingface/transformers";
import { loadModel, readAudio, transcribe } from "./asr.js";

env.allowRemoteModels = false; // the folders served here, never the Hub
env.allowLocalModels = true;
env.localModelPath = new URL("models/", location.href).pathname;
env.useBrowserCache = false; // a folder exported again under the same name is fetched again
const ORT = new URL("vendor/onnxruntime-web/", location.href).href;
env.backends.onnx.wasm.wasmPaths = {
    mjs: ORT + "ort-wasm-simd-threaded.asyncify.mjs",
    wasm: ORT + "ort-wasm-simd-threaded.asyncify.wasm",
};

const $ = (selector) => document.querySelector(selector);
const state = { models: [], clips: [], added: 0, pipelines: new Map(), queue: Promise.resolve(), pending: 0, recorder: null };

function element(tag, { dataset = {}, ...props } = {}, ...children) {
    const node = Object.assign(document.createElement(tag), props);
    Object.assign(node.dataset, dataset);
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
}

const megabytes = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
const millions = (count) => `${(count / 1e6).toFixed(2)} M`;
const milliseconds = (ms) => `${Math.round(ms).toLocaleString("en")} ms`;

function showError(text) {
    $("#errors").append(element("li", { textContent: text }));
}

function setBusy(delta) {
    state.pending += delta;
    document.body.dataset.state = state.pending > 0 ? "busy" : "idle";
    if (state.pending === 0 && state.clips.length) $("#status").textContent = "Done.";
}

// --- models ---------------------------------------------------------------------------------------------------

function selectedModels() {
    return state.models.filter((m) => m.ok && document.getElementById(`use-${m.name}`)?.checked);
}

function describeKind(model) {
    if (model.kind !== "LiteWhisper") return `Whisper${model.english_only ? " (English-only)" : ""}`;
    return `LiteWhisper${model.base ? ` of ${model.base}` : ""}`;
}

function describeParams(model) {
    if (!model.encoder_params) return "";
    const share = model.encoder_params / model.encoder_params_dense;
    return model.kind === "LiteWhisper"
        ? `${millions(model.encoder_params)} (${(100 * share).toFixed(0)}% of ${millions(model.encoder_params_dense)})`
        : millions(model.encoder_params);
}

function describeFiles(model) {
    return Object.entries(model.dtypes)
        .map(([dtype, f]) => `${dtype}: encoder ${megabytes(f.encoder_bytes)} + decoder ${megabytes(f.decoder_bytes)}`)
        .join("; ");
}

function renderModels() {
    const body = $("#models tbody");
    body.replaceChildren();
    for (const model of state.models) {
        if (!model.ok) {
            body.append(element("tr", { className: "bad", dataset: { model: model.name } },
                element("td"), element("td", { textContent: model.name }),
                element("td", { colSpan: 4, className: "problem", textContent: model.problem })));
            continue;
        }
        const use = element("input", { type: "checkbox", id: `use-${model.name}`, checked: true });
        use.addEventListener("change", renderResultsHeader);
        body.append(element("tr", { dataset: { model: model.name } },
            element("td", {}, use),
            element("td", {}, element("label", { htmlFor: use.id, textContent: model.name })),
            element("td", { textContent: describeKind(model) }),
            element("td", { className: "number", textContent: describeParams(model) }),
            element("td", { className: "number sizes", textContent: describeFiles(model) }),
            element("td", { className: "number load-time", textContent: "" })));
    }
    const dtypes = [...new Set(state.models.filter((m) => m.ok).flatMap((m) => Object.keys(m.dtypes)))];
    $("#dtype").replaceChildren(...dtypes.map((d) => element("option", { value: d, textContent: d })));
    $("#dtype").value = dtypes.includes("fp32") ? "fp32" : dtypes[0] ?? "";
    $("#language-setting").hidden = !state.models.some((m) => m.ok && !m.english_only);
}

async function pipelineFor(model) {
    const dtype = $("#dtype").value;
    const device = $("#device").value;
    const key = `${model.name}|${dtype}|${device}`;
    if (!state.pipelines.has(key)) {
        state.pipelines.set(key, (async () => {
            if (!model.dtypes[dtype]) throw new Error(`${model.name} has no ${dtype} export`);
            const start = performance.now();
            const asr = await loadModel(model.name, { dtype, device });
            const ms = performance.now() - start;
            describeRuntime();
            $(`#models tr[data-model="${model.name}"] .load-time`).textContent = `${milliseconds(ms)} (${dtype}, ${device})`;
            return timeEncoder(asr);
        })());
    }
    try {
        return await state.pipelines.get(key);
    } catch (error) {
        state.pipelines.delete(key); // a later try loads again
        throw error;
    }
}

// The encoder's time inside a transcription: every run of its ONNX session ("model" in transformers.js) counted.
function timeEncoder(asr) {
    const session = asr.model.sessions.model;
    const run = session.run.bind(session);
    asr.encoderMs = 0;
    session.run = async (...args) => {
        const start = performance.now();
        try {
            return await run(...args);
        } finally {
            asr.encoderMs += performance.now() - start;
        }
    };
    return asr;
}

// --- clips and results ------------------------------------------------------------------------------------------

function renderResultsHeader() {
    const models = selectedModels();
    $("#results thead tr").replaceChildren(element("th", { textContent: "clip" }),
        ...models.map((m) => element("th", { textContent: m.name, dataset: { model: m.name } })));
    for (const clip of state.clips) {
        const row = $(`#results tr[data-clip="${clip.id}"]`);
        for (const model of models) {
            if (!row.querySelector(`td[data-model="${model.name}"]`)) row.append(resultCell(clip, model));
        }
        for (const cell of row.querySelectorAll("td[data-model]")) {
            if (!models.some((m) => m.name === cell.dataset.model)) cell.remove();
        }
    }
}

// Settings changed: every clip again, with every checked model.
function transcribeAgain() {
    document.querySelectorAll("#results td[data-model]").forEach((cell) => cell.remove());
    renderResultsHeader();
}

function resultCell(clip, model) {
    const cell = element("td", { dataset: { model: model.name, clip: clip.id } },
        element("p", { className: "transcript pending", textContent: "waiting..." }),
        element("span", { className: "timing" }));
    enqueue(() => transcribeInto(cell, clip, model));
    return cell;
}

function enqueue(job) {
    setBusy(+1);
    state.queue = state.queue.then(job).catch((error) => showError(String(error))).finally(() => setBusy(-1));
}

async function transcribeInto(cell, clip, model) {
    if (!cell.isConnected) return; // the model was unchecked meanwhile
    const [text, timing] = cell.children;
    text.textContent = "transcribing...";
    $("#status").textContent = `${model.name}: ${clip.name}`;
    try {
        const asr = await pipelineFor(model);
        const language = model.english_only ? undefined : $("#language").value.trim() || undefined;
        asr.encoderMs = 0;
        const start = performance.now();
        const transcript = await transcribe(asr, clip.audio, language);
        const total = performance.now() - start;
        Object.assign(cell.dataset, { encoderMs: asr.encoderMs.toFixed(1), totalMs: total.toFixed(1) });
        text.className = "transcript";
        text.textContent = transcript;
        timing.textContent = `encoder ${milliseconds(asr.encoderMs)} · total ${milliseconds(total)} ` +
            `(${(total / 1000 / clip.seconds).toFixed(2)}x real time)`;
    } catch (error) {
        cell.dataset.error = "true";
        text.className = "transcript problem";
        text.textContent = `failed: ${error.message ?? error}`;
        showError(`${model.name} on ${clip.name}: ${error.message ?? error}`);
    }
}

async function addClip(name, source) {
    setBusy(+1);
    try {
        await decodeClip(name, source);
    } finally {
        setBusy(-1);
    }
}

async function decodeClip(name, source) {
    const id = `clip-${++state.added}`;
    const row = element("tr", { dataset: { clip: id, name } }, element("td", { textContent: `${name} (decoding...)` }));
    $("#results tbody").append(row);
    let audio;
    try {
        audio = await readAudio(source);
    } catch (error) {
        row.firstChild.textContent = `${name}: not decodable audio`;
        showError(`${name}: the browser could not decode it as audio (${error.message ?? error})`);
        return;
    }
    const clip = { id, name, audio, seconds: audio.length / 16000 };
    state.clips.push(clip);
    row.firstChild.textContent = `${name} (${clip.seconds.toFixed(1)} s)`;
    for (const model of selectedModels()) row.append(resultCell(clip, model));
}

function addFiles(files) {
    for (const file of files) addClip(file.name, file);
}

// --- audio input: drop, choose, record --------------------------------------------------------------------------

function setUpInput() {
    const drop = $("#drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
        e.preventDefault();
        drop.classList.remove("over");
        addFiles(e.dataTransfer.files);
    });
    $("#files").addEventListener("change", (e) => {
        addFiles(e.target.files);
        e.target.value = "";
    });
    $("#record").addEventListener("click", toggleRecording);
}

async function toggleRecording() {
    const button = $("#record");
    if (state.recorder) {
        state.recorder.stop();
        return;
    }
    let stream;
    try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
        showError(`microphone: ${error.message ?? error}`);
        return;
    }
    const chunks = [];
    const recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (e) => chunks.push(e.data));
    recorder.addEventListener("stop", () => {
        stream.getTracks().forEach((t) => t.stop());
        state.recorder = null;
        button.classList.remove("recording");
        button.textContent = "record from the microphone";
        addClip(`recording ${state.added + 1}`, new Blob(chunks, { type: recorder.mimeType }));
    });
    recorder.start();
    state.recorder = recorder;
    button.classList.add("recording");
    button.textContent = "stop recording";
}

// Versions, and the WebAssembly threads onnxruntime-web chose (known once a model has loaded).
function describeRuntime() {
    const threads = env.backends.onnx.wasm.numThreads;
    $("#versions").textContent = `transformers.js ${env.version}, onnxruntime-web ${env.backends.onnx.versions?.web ?? ""}` +
        (threads ? ` (WebAssembly: ${threads} thread${threads > 1 ? "s" : ""})` : "") +
        `; models and libraries from ${location.host} only`;
}

// --- start ---------------------------------------------------------------------------------------------------

async function start() {
    describeRuntime();
    if (navigator.gpu && (await navigator.gpu.requestAdapter().catch(() => null))) {
        const webgpu = $("#device option[value=webgpu]");
        webgpu.disabled = false;
        webgpu.textContent = "WebGPU";
    }
    const response = await fetch("models.json");
    if (!response.ok) throw new Error(`models.json: HTTP ${response.status}`);
    state.models = await response.json();
    renderModels();
    renderResultsHeader();
    for (const model of state.models.filter((m) => !m.ok)) showError(`${model.name}: ${model.problem}`);
    for (const setting of ["#dtype", "#device"]) $(setting).addEventListener("change", transcribeAgain);
    setUpInput();
    document.body.dataset.state = "idle";
}

start().catch((error) => {
    showError(`the page did not start: ${error.message ?? error}`);
    document.body.dataset.state = "failed";
});

window.liteWhisper = { state, addClip }; // for scripts driving the page (the browser test)
