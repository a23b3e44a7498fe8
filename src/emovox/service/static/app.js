// emovox page: upload or record audio, show the emotion probabilities and, for long
// recordings, a timeline; with "transcribe" ticked, also what was said (the whole text and each
// segment's). Plain JavaScript, no external code.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  // the colour of each label comes from the server (GET /v1/model "colors": the palette of
  // the PNG plots); a label it does not name is drawn in this plain grey
  const FALLBACK_COLOR = "#888888";
  let labels = [];
  let colors = {};
  let limits = { max_bytes: 20e6, max_seconds: 600 };
  let recorder = null;
  let recordTimer = null;

  function setState(state) { document.body.dataset.state = state; }

  function color(label) {
    return colors[label] || FALLBACK_COLOR;
  }

  function status(text) { $("status").textContent = text; }

  function showError(text) {
    const el = $("error");
    el.textContent = text;
    el.hidden = !text;
    if (text) setState("error");
  }

  async function init() {
    setState("idle");
    try {
      const [health, card] = await Promise.all([
        fetch("/v1/health").then((r) => r.json()),
        fetch("/v1/model").then((r) => r.json()),
      ]);
      labels = card.labels || health.labels || [];
      colors = card.colors || {};
      limits = health.limits || limits;
      $("model-name").textContent = card.name || health.model || "model";
      $("model-labels").textContent = labels.length ? `(${labels.join(", ")})` : "";
      $("limits").textContent = `Up to ${(limits.max_bytes / 1e6).toFixed(0)} MB and ` +
        `${Math.round(limits.max_seconds)} s. WAV, FLAC, Ogg/Opus, MP3, AIFF.`;
    } catch (e) {
      showError(`The server does not answer: ${e}`);
    }
    if (!(navigator.mediaDevices && window.MediaRecorder)) {
      $("record-button").disabled = true;
      $("record-button").title = "This browser cannot record audio here (needs HTTPS or localhost)";
    }
  }

  // ------------------------------------------------------------------ upload

  // a new request: the previous file's result must not stay on the page
  function clearResult() {
    $("result").hidden = true;
    for (const id of ["result-label", "result-uncertain", "result-file", "result-duration",
      "result-text", "result-text-warning"]) {
      $(id).textContent = "";
    }
    $("result-text-block").hidden = true;
    $("timeline-text-col").hidden = true;
    $("result-bars").replaceChildren();
    $("timeline-section").hidden = true;
    $("timeline-legend").replaceChildren();
    $("timeline-table").tBodies[0].replaceChildren();
    const canvas = $("timeline");
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  }

  async function upload(blob, filename) {
    showError("");
    clearResult();
    if (blob.size === 0) { showError(`${filename} is empty (0 bytes).`); return; }
    if (blob.size > limits.max_bytes) {
      showError(`${filename} is ${(blob.size / 1e6).toFixed(1)} MB; this server takes up to ` +
        `${(limits.max_bytes / 1e6).toFixed(0)} MB.`);
      return;
    }
    const transcribe = $("transcribe").checked;
    setState("busy");
    status(transcribe ? `Analysing and transcribing ${filename}…` : `Analysing ${filename}…`);
    const form = new FormData();
    form.append("file", blob, filename);
    let res, body = null;
    try {
      const url = transcribe ? "/v1/predict?transcribe=true" : "/v1/predict";
      res = await fetch(url, { method: "POST", body: form });
    } catch (e) {
      status("");
      showError(`Could not send ${filename}: ${e}`);
      return;
    }
    try { body = await res.json(); } catch { /* not JSON: answered below by the status */ }
    status("");
    if (!res.ok || !body) {
      const err = (body && body.error) || {};
      const why = `${err.message || res.statusText} ` +
        `(${res.status}${err.code ? ", " + err.code : ""})`;
      showError(res.status === 501 && transcribe
        ? `Could not transcribe ${filename}: ${why}. Untick "transcribe" for the emotion alone.`
        : `Could not analyse ${filename}: ${why}`);
      return;
    }
    render(body, filename);
    setState("done");
  }

  // ------------------------------------------------------------------ result

  function render(r, filename) {
    $("result").hidden = false;
    $("result-label").textContent = r.no_speech ? "no speech" : r.label;
    $("result-uncertain").textContent = r.no_speech
      ? "too little speech for an emotion (noise, music or silence?)"
      : r.uncertain ? `uncertain (top probability below ${r.threshold})` : "confident";
    $("result-uncertain").className = r.uncertain ? "error" : "muted";
    if (r.out_of_domain && !r.no_speech) {
      $("result-uncertain").textContent +=
        " · unfamiliar audio: unlike the recordings the model learnt from, so trust this less";
      $("result-uncertain").className = "error";
    }
    $("result-file").textContent = filename || "";
    $("result-duration").textContent = `${r.duration.toFixed(1)} s`;
    // "text" is in the answer only when transcription was asked for ("" when nothing was said)
    const transcribed = r.text !== undefined;
    $("result-text-block").hidden = !transcribed;
    if (transcribed) {
      $("result-text").textContent = r.text || "";
      $("result-text").hidden = !r.text;
      $("result-text-warning").textContent = r.text_warning
        ? `(${r.text_warning})` : r.text ? "" : "(nothing was said)";
    }
    const list = $("result-bars");
    list.replaceChildren();
    const entries = Object.entries(r.probabilities).sort((a, b) => b[1] - a[1]);
    for (const [label, p] of entries) {
      const li = document.createElement("li");
      li.dataset.label = label;
      const name = document.createElement("span");
      name.textContent = label;
      const track = document.createElement("span");
      track.className = "bar-track";
      track.setAttribute("aria-hidden", "true");
      const fill = document.createElement("span");
      fill.className = "bar-fill";
      fill.style.display = "block";
      fill.style.width = `${(100 * p).toFixed(1)}%`;
      fill.style.background = color(label);
      track.append(fill);
      const value = document.createElement("span");
      value.className = "bar-value";
      value.textContent = `${(100 * p).toFixed(1)} %`;
      li.append(name, track, value);
      list.append(li);
    }
    const segs = r.segments || [];
    $("timeline-section").hidden = segs.length === 0;
    if (segs.length) drawTimeline(segs, r.duration, transcribed);
    $("result").scrollIntoView({ block: "nearest" });
  }

  function drawTimeline(segs, duration, transcribed) {
    const canvas = $("timeline");
    const dpr = window.devicePixelRatio || 1;
    const cssWidth = canvas.clientWidth || 800;
    const cssHeight = 200;
    canvas.width = Math.round(cssWidth * dpr);
    canvas.height = Math.round(cssHeight * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const style = getComputedStyle(document.body);
    const fg = style.color;
    const pad = { l: 36, r: 10, t: 10, b: 26 };
    const w = cssWidth - pad.l - pad.r;
    const h = cssHeight - pad.t - pad.b;
    const x = (t) => pad.l + (w * t) / Math.max(duration, 1e-6);
    ctx.clearRect(0, 0, cssWidth, cssHeight);
    // each segment: its probabilities stacked, biggest at the bottom
    for (const s of segs) {
      let y0 = pad.t + h;
      const entries = Object.entries(s.probabilities).sort((a, b) => b[1] - a[1]);
      for (const [label, p] of entries) {
        const hh = p * h;
        ctx.fillStyle = color(label);
        ctx.fillRect(x(s.start), y0 - hh, Math.max(1, x(s.end) - x(s.start)), hh);
        y0 -= hh;
      }
    }
    // axes: probability 0..1 on the left, seconds along the bottom
    ctx.strokeStyle = fg;
    ctx.fillStyle = fg;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(pad.l, pad.t);
    ctx.lineTo(pad.l, pad.t + h);
    ctx.lineTo(pad.l + w, pad.t + h);
    ctx.stroke();
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of [0, 0.5, 1]) ctx.fillText(v.toFixed(1), pad.l - 4, pad.t + h - v * h);
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const step = niceStep(duration / 8);
    for (let t = 0; t <= duration + 1e-9; t += step) {
      ctx.fillText(`${+t.toFixed(1)} s`, x(t), pad.t + h + 6);
    }
    // legend and table
    const legend = $("timeline-legend");
    legend.replaceChildren();
    for (const label of labels) {
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = color(label);
      li.append(sw, label);
      legend.append(li);
    }
    const body = $("timeline-table").tBodies[0];
    body.replaceChildren();
    $("timeline-text-col").hidden = !transcribed;
    for (const s of segs) {
      const tr = document.createElement("tr");
      const p = s.probabilities[s.label];
      const cells = [s.start.toFixed(2), s.end.toFixed(2),
        s.label + (s.uncertain ? " (uncertain)" : ""), p.toFixed(2)];
      if (transcribed) cells.push(s.text || "");
      for (const v of cells) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      body.append(tr);
    }
    canvas.setAttribute("aria-label", `Timeline of ${segs.length} speech segments over ` +
      `${duration.toFixed(1)} s; the table below lists them`);
  }

  function niceStep(raw) {
    const p = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-3)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  // ------------------------------------------------------------------ recording

  async function toggleRecording() {
    if (recorder && recorder.state === "recording") { recorder.stop(); return; }
    showError("");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      showError(`No microphone: ${e.message || e}`);
      return;
    }
    // Ogg/Opus is read by the server directly (Firefox records it); other recordings (Chrome's
    // WebM) are converted to WAV here before upload.
    const ogg = "audio/ogg;codecs=opus";
    const options = MediaRecorder.isTypeSupported(ogg) ? { mimeType: ogg } : {};
    recorder = new MediaRecorder(stream, options);
    const chunks = [];
    const started = Date.now();
    recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
    recorder.onstop = async () => {
      clearInterval(recordTimer);
      stream.getTracks().forEach((t) => t.stop());
      $("record-button").textContent = "Record from microphone";
      $("record-button").setAttribute("aria-pressed", "false");
      $("record-time").textContent = "";
      const blob = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
      let upBlob = blob;
      let name = blob.type.includes("ogg") ? "recording.ogg" : "recording.webm";
      if (!blob.type.includes("ogg")) {
        try {
          upBlob = await toWav(blob);
          name = "recording.wav";
        } catch (e) {
          console.warn("could not convert the recording to WAV; sending it as recorded", e);
        }
      }
      await upload(upBlob, name);
    };
    recorder.start(250);
    setState("recording");
    $("record-button").textContent = "Stop and analyse";
    $("record-button").setAttribute("aria-pressed", "true");
    status("Recording… press the button again to stop.");
    recordTimer = setInterval(() => {
      const s = (Date.now() - started) / 1000;
      $("record-time").textContent = `${s.toFixed(0)} s`;
      if (s >= limits.max_seconds - 1 && recorder.state === "recording") recorder.stop();
    }, 250);
  }

  // decode the browser's recording and encode it as 16 kHz mono 16-bit WAV
  async function toWav(blob) {
    const AC = window.AudioContext || window.webkitAudioContext;
    const ac = new AC();
    let decoded;
    try {
      decoded = await ac.decodeAudioData(await blob.arrayBuffer());
    } finally {
      ac.close();
    }
    const sr = 16000;
    const off = new OfflineAudioContext(1, Math.max(1, Math.ceil(decoded.duration * sr)), sr);
    const src = off.createBufferSource();
    src.buffer = decoded;
    src.connect(off.destination);
    src.start();
    const pcm = (await off.startRendering()).getChannelData(0);
    const buf = new ArrayBuffer(44 + 2 * pcm.length);
    const v = new DataView(buf);
    const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
    str(0, "RIFF"); v.setUint32(4, 36 + 2 * pcm.length, true); str(8, "WAVE");
    str(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
    v.setUint32(24, sr, true); v.setUint32(28, 2 * sr, true); v.setUint16(32, 2, true);
    v.setUint16(34, 16, true); str(36, "data"); v.setUint32(40, 2 * pcm.length, true);
    for (let i = 0; i < pcm.length; i++) {
      const s = Math.max(-1, Math.min(1, pcm[i]));
      v.setInt16(44 + 2 * i, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([buf], { type: "audio/wav" });
  }

  // ------------------------------------------------------------------ wiring

  document.addEventListener("DOMContentLoaded", () => {
    init();
    const input = $("file-input");
    input.addEventListener("change", () => {
      const f = input.files[0];
      input.value = "";  // choosing the same file again fires "change" again
      if (f) upload(f, f.name);
    });
    const zone = $("drop-zone");
    for (const ev of ["dragenter", "dragover"]) {
      zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.add("dragging"); });
    }
    for (const ev of ["dragleave", "drop"]) {
      zone.addEventListener(ev, () => zone.classList.remove("dragging"));
    }
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      const f = e.dataTransfer.files[0];
      if (f) upload(f, f.name);
    });
    $("record-button").addEventListener("click", toggleRecording);
  });
})();
