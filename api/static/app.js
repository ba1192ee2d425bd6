// mmrag chat page: plain JavaScript, no build step, no third-party code.
// Talks only to this server's /v1 API: chat completions (streamed), media, uploads, jobs.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_SLOT = "mmrag.apiKey"; // sessionStorage: this tab only, gone when it closes
const THUMB = 384;  // one of the fixed thumbnail sides (rag/payload.py THUMB_SIDES)

const state = {
  key: sessionStorage.getItem(KEY_SLOT) || "",
  history: [], // earlier turns as {role, content} (text only)
  image: null, // data URL of the image attached to the next question
  busy: false,
  turns: 0,
};
// Timings of the last answer, for people and for tests: ms from send to first token / end.
window.mmragMetrics = { firstTokenMs: null, totalMs: null, deltas: 0, uploadEvents: 0 };

function setStatus(text, error = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", error);
}

// ---------------------------------------------------------------- API key and fetch

let keyPrompt = null;

function askForKey(reason) {
  if (keyPrompt) return keyPrompt; // concurrent 401s share one prompt
  const dialog = $("key-dialog");
  $("key-reason").textContent = reason || "This server needs an API key. It is kept in this tab only.";
  $("key-input").value = "";
  dialog.returnValue = "";
  keyPrompt = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      keyPrompt = null;
      const key = dialog.returnValue === "ok" ? $("key-input").value.trim() : "";
      if (key) {
        state.key = key;
        sessionStorage.setItem(KEY_SLOT, key);
      }
      resolve(Boolean(key));
    }, { once: true });
  });
  dialog.showModal();
  $("key-input").focus();
  return keyPrompt;
}

class ApiError extends Error {}

async function errorText(res) {
  try {
    const body = await res.json();
    if (body && body.error && body.error.message) return body.error.message;
    if (body && body.detail) return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch (_) { /* not JSON */ }
  return `${res.status} ${res.statusText}`;
}

// fetch with the key; on 401 ask for a key and try again (until the user cancels).
async function api(path, options = {}) {
  for (;;) {
    const headers = new Headers(options.headers || {});
    if (state.key) headers.set("Authorization", `Bearer ${state.key}`);
    const res = await fetch(path, { ...options, headers });
    if (res.status !== 401) return res;
    const message = await errorText(res);
    const reason = state.key ? `The key was refused (${message}). Enter another one.` : undefined;
    if (!(await askForKey(reason))) throw new ApiError("an API key is needed to use this server");
  }
}

async function apiJson(path, options) {
  const res = await api(path, options);
  if (!res.ok) throw new ApiError(await errorText(res));
  return res.json();
}

// Server-sent events from a fetch response (EventSource cannot send Authorization).
async function readEvents(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length && onEvent(event, data.join("\n")) === false) {
        await reader.cancel();
        return;
      }
    }
  }
}

// ---------------------------------------------------------------- collections

async function loadCollections(select) {
  const sel = $("collection");
  try {
    const body = await apiJson("/v1/collections");
    const names = body.data.map((c) => c.name);
    const keep = select || sel.value;
    sel.replaceChildren();
    for (const c of body.data) {
      const opt = document.createElement("option");
      opt.value = c.name;
      opt.textContent = `${c.name} (${c.points})`;
      sel.append(opt);
    }
    if (!names.length) {
      const opt = document.createElement("option");
      opt.value = "";
      opt.textContent = "no collections yet: add files below";
      sel.append(opt);
      $("upload").open = true;
    }
    if (keep && names.includes(keep)) sel.value = keep;
    syncUploadTarget();
    setStatus(names.length ? "" : "No collections yet. Add files to start.");
  } catch (err) {
    setStatus(`Could not list collections: ${err.message}`, true);
  }
}

function syncUploadTarget() {
  const target = $("upload-collection");
  if (!target.dataset.touched) target.value = $("collection").value || "docs";
}

// ---------------------------------------------------------------- question image

function readAsDataURL(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function attachImage(file) {
  if (!file || !file.type.startsWith("image/")) {
    setStatus("Only images can be attached to a question (PNG, JPEG, WebP, GIF).", true);
    return;
  }
  state.image = await readAsDataURL(file);
  $("image-thumb").src = state.image;
  $("image-preview").hidden = false;
  setStatus(`Image attached: ${file.name || "pasted image"}`);
}

function clearImage() {
  state.image = null;
  $("image-preview").hidden = true;
  $("image-thumb").removeAttribute("src");
  $("image-input").value = "";
}

// ---------------------------------------------------------------- media and citations

async function mediaURL(mediaPath, size) {
  const url = size ? `${mediaPath}?size=${size}` : mediaPath;
  const res = await api(url);
  if (!res.ok) throw new ApiError(await errorText(res));
  return URL.createObjectURL(await res.blob());
}

function placeBox(frame, box) {
  const el = frame.querySelector(".box");
  if (!box || box.length !== 4) { el.hidden = true; return; }
  const [x0, y0, x1, y1] = box.map((v) => Math.min(1, Math.max(0, v)));
  Object.assign(el.style, {
    left: `${x0 * 100}%`, top: `${y0 * 100}%`,
    width: `${(x1 - x0) * 100}%`, height: `${(y1 - y0) * 100}%`,
  });
  el.hidden = false;
}

function baseName(source) {
  return source.split(/[\\/]/).pop() || source;
}

// Seconds as m:ss (h:mm:ss past an hour), floored like rag/timecode.py.
function clock(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
  const ss = String(s).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function placeOf(c) {
  if (c.start !== null && c.start !== undefined) return `at ${clock(c.start)}`;
  return c.page > 0 ? `page ${c.page}` : "";
}

// Play a cited moment of a video or recording. The element streams the original by HTTP
// Range from the cited time. It cannot send the API key, so with a key the page first asks
// for a signed link (POST /v1/media/{key}/url: this one file, for a few minutes) and, when
// that link dies mid-play (403 once it expires), asks for a new one and resumes there.
async function playerSource(c, at) {
  if (!state.key) return `${c.original_url}#t=${at}`;
  const link = await apiJson(`${c.original_url}/url`, { method: "POST" });
  return `${link.url}#t=${at}`;
}

async function playFrom(li, c) {
  let player = li.querySelector(".player");
  if (!player) {
    const audioOnly = c.modality === "transcript" && !c.media_url;
    player = document.createElement(audioOnly ? "audio" : "video");
    player.className = "player";
    player.controls = true;
    player.preload = "metadata";
    player.setAttribute("data-testid", "player");
    li.insertBefore(player, li.querySelector(".meta"));
    const start = Math.max(0, c.start || 0);
    let resumeAt = start;
    player.addEventListener("loadedmetadata", () => {
      if (Math.abs(player.currentTime - resumeAt) > 0.5) player.currentTime = resumeAt;
    });
    if (state.key) {
      let renewed = 0;
      player.addEventListener("error", async () => {
        // A media error does not say why; a renewal per minute at most cannot loop.
        if (Date.now() - renewed < 60_000) return;
        renewed = Date.now();
        resumeAt = player.currentTime || resumeAt;
        const playing = !player.paused;
        try {
          player.src = await playerSource(c, resumeAt);
          if (playing) player.play().catch(() => {});
        } catch (err) { setStatus(`Cannot play ${baseName(c.source)}: ${err.message}`, true); }
      });
    }
    try {
      player.src = await playerSource(c, start);
    } catch (err) {
      setStatus(`Cannot play ${baseName(c.source)}: ${err.message}`, true);
      return;
    }
  }
  player.play().catch(() => { /* autoplay refused: the controls are there */ });
}

function citationCard(turn, c) {
  const li = document.createElement("li");
  li.className = "cite";
  li.id = `cite-${turn}-${c.index}`;
  li.setAttribute("data-testid", "citation");
  const place = placeOf(c);
  const where = `${baseName(c.source)}${place ? `, ${place}` : ""}`;
  const meta = document.createElement("div");
  meta.className = "meta";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = `[${c.index}] ${where}`;
  name.title = c.source;
  const snippet = document.createElement("span");
  snippet.className = "snippet";
  snippet.textContent = c.text || "";
  meta.append(name, snippet);
  if (c.original_url && c.start !== null && c.start !== undefined) {
    const play = document.createElement("button");
    play.type = "button";
    play.className = "play";
    play.setAttribute("data-testid", "play");
    play.textContent = `▶ ${clock(c.start)}`;
    play.setAttribute("aria-label", `Play source ${c.index} from ${clock(c.start)}`);
    play.addEventListener("click", () => playFrom(li, c));
    meta.append(play);
  }
  if (c.media_url) {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-label", `Open the full image of source ${c.index}: ${where}`);
    const frame = document.createElement("div");
    frame.className = "frame";
    const img = document.createElement("img");
    img.alt = `Source ${c.index}: ${where}`;
    img.loading = "lazy";
    const box = document.createElement("div");
    box.className = "box";
    box.hidden = true;
    frame.append(img, box);
    button.append(frame);
    li.append(button);
    mediaURL(c.media_url, THUMB).then((url) => {
      img.src = url;
      img.addEventListener("load", () => placeBox(frame, c.box), { once: true });
    }).catch((err) => { img.alt = `image unavailable: ${err.message}`; });
    button.addEventListener("click", () => openViewer(c, where));
  }
  li.append(meta);
  return li;
}

async function openViewer(c, where) {
  const dialog = $("viewer");
  const img = $("viewer-img");
  const frame = dialog.querySelector(".frame");
  frame.querySelector(".box").hidden = true;
  img.alt = `Source ${c.index}: ${where}`;
  const place = placeOf(c);
  $("viewer-caption").textContent = `[${c.index}] ${c.source}${place ? `, ${place}` : ""}`;
  dialog.showModal();
  try {
    img.src = await mediaURL(c.media_url, 0);
    if (img.complete) placeBox(frame, c.box);
    else img.addEventListener("load", () => placeBox(frame, c.box), { once: true });
  } catch (err) {
    $("viewer-caption").textContent = `Could not load the image: ${err.message}`;
  }
}

// Answer text with [n] turned into links to the matching card (DOM nodes, never HTML).
function linkify(el, text, turn, indexes) {
  el.replaceChildren();
  const re = /\[(\d+)\]/g;
  let last = 0;
  for (let m; (m = re.exec(text)); ) {
    if (!indexes.has(Number(m[1]))) continue;
    el.append(text.slice(last, m.index));
    const a = document.createElement("a");
    a.href = `#cite-${turn}-${m[1]}`;
    a.textContent = m[0];
    a.setAttribute("aria-label", `source ${m[1]}`);
    el.append(a);
    last = m.index + m[0].length;
  }
  el.append(text.slice(last));
}

// ---------------------------------------------------------------- asking

function addTurn(question, image) {
  const turn = ++state.turns;
  const wrap = document.createElement("article");
  wrap.className = "turn";
  wrap.setAttribute("aria-label", `Question ${turn}`);
  const q = document.createElement("div");
  q.className = "q";
  q.textContent = question || "(image question)";
  if (image) {
    const img = document.createElement("img");
    img.src = image;
    img.alt = "Image asked about";
    q.append(img);
  }
  const answer = document.createElement("div");
  answer.className = "answer";
  answer.setAttribute("data-testid", "answer");
  answer.setAttribute("aria-busy", "true");
  const cites = document.createElement("ol");
  cites.className = "cites";
  cites.setAttribute("aria-label", "Sources");
  wrap.append(q, answer, cites);
  $("log").append(wrap);
  wrap.scrollIntoView({ block: "end" });
  return { turn, answer, cites };
}

async function ask(event) {
  event.preventDefault();
  if (state.busy) return;
  const collection = $("collection").value;
  const question = $("question").value.trim();
  if (!collection) { setStatus("Pick a collection first (or add files below).", true); return; }
  if (!question && !state.image) { setStatus("Type a question or attach an image.", true); return; }

  const content = [];
  if (question) content.push({ type: "text", text: question });
  if (state.image) content.push({ type: "image_url", image_url: { url: state.image } });
  const messages = [...state.history, { role: "user", content }];
  const { turn, answer, cites } = addTurn(question, state.image);
  $("question").value = "";
  clearImage();
  state.busy = true;
  $("send").disabled = true;
  setStatus("Searching and answering…");

  const started = performance.now();
  Object.assign(window.mmragMetrics, { firstTokenMs: null, totalMs: null, deltas: 0 });
  let text = "";
  let citations = [];
  try {
    const res = await api("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ model: collection, messages, stream: true }),
    });
    if (!res.ok) throw new ApiError(await errorText(res));
    await readEvents(res, (_event, data) => {
      if (data === "[DONE]") return false;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ApiError(chunk.error.message || "the answer failed");
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) {
        if (window.mmragMetrics.firstTokenMs === null) {
          window.mmragMetrics.firstTokenMs = performance.now() - started;
          answer.dataset.firstTokenMs = String(Math.round(window.mmragMetrics.firstTokenMs));
        }
        text += delta.content;
        window.mmragMetrics.deltas += 1;
        answer.textContent = text;
      }
      if (chunk.citations) citations = chunk.citations;
      return true;
    });
    window.mmragMetrics.totalMs = performance.now() - started;
    linkify(answer, text, turn, new Set(citations.map((c) => c.index)));
    for (const c of citations) cites.append(citationCard(turn, c));
    state.history.push({ role: "user", content: question || "(about the attached image)" },
                       { role: "assistant", content: text });
    setStatus(`Answered with ${citations.length} source${citations.length === 1 ? "" : "s"}.`);
  } catch (err) {
    answer.classList.add("error");
    answer.textContent = text ? `${text}\n\n${err.message}` : err.message;
    setStatus(`The question failed: ${err.message}`, true);
  } finally {
    answer.setAttribute("aria-busy", "false");
    state.busy = false;
    $("send").disabled = false;
    $("question").focus();
  }
}

// ---------------------------------------------------------------- uploads

function progressRow(name) {
  const li = document.createElement("li");
  const label = document.createElement("span");
  label.textContent = name;
  label.title = name;
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.setAttribute("aria-label", `progress of ${name}`);
  const status = document.createElement("span");
  status.textContent = "uploading";
  li.append(label, bar, status);
  $("upload-progress").append(li);
  return { li, bar, status };
}

const FINISHED = new Set(["added", "replaced", "repaired", "rebuilt", "unchanged", "duplicate", "failed"]);

function showJob(rows, job) {
  job.files.forEach((f, i) => {
    const row = rows[i];
    if (!row) return;
    row.li.dataset.status = f.status;
    if (FINISHED.has(f.status)) {
      row.bar.value = 1;
      row.status.textContent = f.status === "failed" ? `failed: ${f.error || ""}` : `${f.status} (${f.points} points)`;
      row.status.classList.toggle("error", f.status === "failed");
      row.status.title = f.error || "";
    } else {
      row.bar.removeAttribute("value"); // indeterminate while queued or running
      row.status.textContent = job.status === "queued" ? "queued" : "processing";
    }
  });
}

async function upload() {
  const input = $("upload-input");
  const files = [...input.files];
  if (!files.length) return;
  const collection = $("upload-collection").value.trim();
  if (!collection) { setStatus("Name the collection to add the files to.", true); return; }
  const rows = files.map((f) => progressRow(f.name));
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  setStatus(`Uploading ${files.length} file${files.length === 1 ? "" : "s"}…`);
  try {
    const res = await api(`/v1/collections/${encodeURIComponent(collection)}/documents`, {
      method: "POST", body: form,
    });
    if (!res.ok) throw new ApiError(await errorText(res));
    let job = await res.json();
    showJob(rows, job);
    const events = await api(job.events_url, { headers: { Accept: "text/event-stream" } });
    if (!events.ok) throw new ApiError(await errorText(events));
    await readEvents(events, (event, data) => {
      const body = JSON.parse(data);
      if (event === "error") throw new ApiError(body.error ? body.error.message : data);
      job = body;
      window.mmragMetrics.uploadEvents += 1;
      showJob(rows, job);
      return event !== "done";
    });
    const failed = job.files.filter((f) => f.status === "failed").length;
    setStatus(job.status === "failed" && job.error ? `Upload failed: ${job.error}`
      : `Added to ${collection}: ${job.files.length - failed} ok${failed ? `, ${failed} failed` : ""}.`,
      failed > 0 || job.status === "failed");
    await loadCollections(collection);
  } catch (err) {
    for (const r of rows) {
      if (!r.li.dataset.status || !FINISHED.has(r.li.dataset.status)) {
        r.bar.value = 0;
        r.status.textContent = "failed";
        r.status.classList.add("error");
      }
    }
    setStatus(`Upload failed: ${err.message}`, true);
  } finally {
    input.value = "";
  }
}

// ---------------------------------------------------------------- wiring

function init() {
  $("ask").addEventListener("submit", ask);
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("ask").requestSubmit();
    }
  });
  $("question").addEventListener("paste", (e) => {
    const file = [...(e.clipboardData ? e.clipboardData.files : [])].find((f) => f.type.startsWith("image/"));
    if (file) { e.preventDefault(); attachImage(file); }
  });
  const composer = $("ask");
  composer.addEventListener("dragover", (e) => { e.preventDefault(); composer.classList.add("drag"); });
  composer.addEventListener("dragleave", () => composer.classList.remove("drag"));
  composer.addEventListener("drop", (e) => {
    e.preventDefault();
    composer.classList.remove("drag");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) attachImage(file);
  });
  $("image-input").addEventListener("change", (e) => attachImage(e.target.files[0]));
  $("image-remove").addEventListener("click", () => { clearImage(); $("question").focus(); });
  $("collection").addEventListener("change", () => {
    state.history = []; // a new collection is a new conversation
    syncUploadTarget();
  });
  $("upload-collection").addEventListener("input", (e) => { e.target.dataset.touched = "1"; });
  $("upload-input").addEventListener("change", upload);
  $("key-cancel").addEventListener("click", () => $("key-dialog").close("cancel"));
  $("key-button").addEventListener("click", async () => {
    if (await askForKey("Enter the API key to use in this tab.")) loadCollections();
  });
  loadCollections();
}

init();
