"use strict";
// The Martlet demo page: connects to an application's HTTP and WebSocket APIs, submits jobs, follows
// their progress and plays their results. Served by `martlet local`, it also shows a live view of
// the local stack. Plain browser JavaScript: no build step, no dependencies.

const TERMINAL_STATES = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);
// UNKNOWN is this page's own state: the server said it has no such job (a restarted in-memory stack).
const SETTLED_STATES = new Set([...TERMINAL_STATES, "UNKNOWN"]);
const SETTINGS_STORAGE_KEY = "martlet.settings";
const FIRST_RETRY_MS = 1000;
const LAST_RETRY_MS = 10000;
const STATE_POLL_MS = 1000;

const $ = (selector) => document.querySelector(selector);

const fields = {
  http: $("#http-url"),
  ws: $("#ws-url"),
  key: $("#api-key"),
  model: $("#model"),
  modelName: $("#model-name"),
  prompt: $("#prompt"),
  seconds: $("#seconds"),
  seed: $("#seed"),
  extra: $("#extra-parameters"),
  inputFile: $("#input-file"),
};

const view = {
  connectionState: $("#connection-state"),
  connect: $("#connect"),
  settingsSource: $("#settings-source"),
  errorBar: $("#error-bar"),
  error: $("#error"),
  submit: $("#submit"),
  submitStatus: $("#submit-status"),
  jobs: $("#jobs"),
  jobsEmpty: $("#jobs-empty"),
  jobTemplate: $("#job-template"),
  live: $("#live"),
  liveStatus: $("#live-status"),
  liveFunctions: $("#live-functions"),
  liveQueues: $("#live-queues"),
  liveWorkers: $("#live-workers"),
};

const session = {
  socket: null,
  // Each press of Connect starts a new attempt; callbacks of an older one are ignored.
  attempt: 0,
  // Whether a socket of this attempt has opened: only then does a drop lead to reconnecting.
  everOpened: false,
  retryDelay: FIRST_RETRY_MS,
  retryTimer: null,
  jobs: new Map(),
  pendingSubmits: 0,
  lastUpload: null,
};

// --- Messages ------------------------------------------------------------------------------------

function showError(text) {
  view.error.textContent = text;
  view.errorBar.hidden = false;
}

function clearError() {
  view.error.textContent = "";
  view.errorBar.hidden = true;
}

function setSubmitStatus(text) {
  view.submitStatus.textContent = text;
}

function setConnectionState(state, label = state) {
  view.connectionState.dataset.state = state;
  view.connectionState.textContent = label;
  view.connect.textContent = state === "connected" ? "Reconnect" : "Connect";
}

// --- Settings ------------------------------------------------------------------------------------

function currentSettings() {
  return {
    http: fields.http.value.trim().replace(/\/+$/, ""),
    ws: fields.ws.value.trim(),
    key: fields.key.value.trim(),
  };
}

/** The console's configuration when `martlet local` serves this page; null anywhere else. */
async function fetchLocalConfig() {
  if (!location.protocol.startsWith("http")) return null;
  try {
    const response = await fetch("/_martlet/config", { cache: "no-store", signal: AbortSignal.timeout(3000) });
    if (!response.ok) return null;
    const config = await response.json();
    return typeof config?.httpAPI === "string" && typeof config?.webSocket === "string" ? config : null;
  } catch {
    return null;
  }
}

function savedSettings() {
  try {
    return JSON.parse(localStorage.getItem(SETTINGS_STORAGE_KEY) ?? "null");
  } catch {
    return null;
  }
}

function saveSettings(settings) {
  try {
    localStorage.setItem(SETTINGS_STORAGE_KEY, JSON.stringify(settings));
  } catch {
    // Storage can be disabled; the settings then last as long as the page.
  }
}

/** Fills the settings from the page address, then `martlet local`'s configuration, then the last ones used. */
async function loadSettings() {
  const query = new URLSearchParams(location.search);
  const config = await fetchLocalConfig();
  const saved = savedSettings();
  const sources = [
    ["http", "httpAPI"],
    ["ws", "webSocket"],
    ["key", "key"],
  ];
  for (const [name, configName] of sources) {
    // A value typed while the configuration loaded wins.
    if (fields[name].value) continue;
    fields[name].value = query.get(name) ?? config?.[configName] ?? saved?.[name] ?? "";
  }
  if (["http", "ws", "key"].some((name) => query.has(name))) {
    view.settingsSource.textContent = "from the page address";
  } else if (config) {
    view.settingsSource.textContent = "from martlet local";
  } else if (saved) {
    view.settingsSource.textContent = "as last used in this browser";
  } else {
    view.settingsSource.textContent = "enter your stack's URLs and client key";
  }
  return config;
}

// --- Connection ----------------------------------------------------------------------------------

function webSocketURL(address, key) {
  const url = new URL(address);
  if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new Error("not a WebSocket URL");
  url.searchParams.set("key", key);
  return url.toString();
}

async function responseMessage(response) {
  try {
    const body = await response.json();
    return typeof body?.message === "string" ? body.message : "";
  } catch {
    return "";
  }
}

/**
 * Asks the HTTP API about a job that does not exist: 404 means the key is accepted. A browser cannot
 * see why a WebSocket upgrade was refused, so this gives the clear answer first. Returns a problem or null.
 */
async function checkKey(http, key) {
  let response;
  try {
    response = await fetch(`${http}/jobs/key-check`, {
      headers: { "x-api-key": key },
      cache: "no-store",
      signal: AbortSignal.timeout(10000),
    });
  } catch (error) {
    return `Cannot reach the HTTP API at ${http} (${error.message}): check the URL and that the stack is running.`;
  }
  const message = await responseMessage(response);
  if (response.status === 401 || response.status === 403) {
    return `The key was refused (${response.status}): check the key.${message ? ` ${message.replace(/\.$/, "")}.` : ""}`;
  }
  if (response.status === 404) {
    // The application names the job it did not find; a gateway without such a route says only "Not Found".
    if (message === "Not Found") return `The HTTP API at ${http} has no /jobs route: check the URL (and its stage).`;
    return null;
  }
  if (response.ok) return null;
  return `The HTTP API at ${http} answered ${response.status} to the key check.${message ? ` ${message}` : ""}`;
}

function stopSocket() {
  clearTimeout(session.retryTimer);
  session.retryTimer = null;
  const socket = session.socket;
  session.socket = null;
  if (socket) socket.close(1000);
}

async function connect() {
  const attempt = ++session.attempt;
  stopSocket();
  clearError();
  const settings = currentSettings();
  if (!settings.http || !settings.ws || !settings.key) {
    setConnectionState("disconnected");
    showError("Fill in the HTTP API URL, the WebSocket URL and the client key, then connect.");
    return;
  }
  let address;
  try {
    address = webSocketURL(settings.ws, settings.key);
  } catch {
    setConnectionState("disconnected");
    showError(`"${settings.ws}" is not a WebSocket URL: it starts with ws:// or wss://.`);
    return;
  }
  saveSettings(settings);
  setConnectionState("connecting", "checking key");
  const problem = await checkKey(settings.http, settings.key);
  if (attempt !== session.attempt) return;
  if (problem) {
    setConnectionState("disconnected");
    showError(problem);
    return;
  }
  session.everOpened = false;
  session.retryDelay = FIRST_RETRY_MS;
  openSocket(address, settings.ws, attempt);
}

function openSocket(address, shownAddress, attempt) {
  setConnectionState(session.everOpened ? "reconnecting" : "connecting", session.everOpened ? "reconnecting" : "connecting");
  let socket;
  try {
    socket = new WebSocket(address);
  } catch (error) {
    setConnectionState("disconnected");
    showError(`Cannot open a WebSocket to ${shownAddress}: ${error.message}`);
    return;
  }
  session.socket = socket;
  socket.onopen = () => {
    if (socket !== session.socket) return;
    const reconnected = session.everOpened;
    session.everOpened = true;
    session.retryDelay = FIRST_RETRY_MS;
    setConnectionState("connected");
    if (reconnected) clearError();
    // Pushes sent while the connection was down are lost: ask for every job still in progress.
    for (const job of session.jobs.values()) {
      if (!SETTLED_STATES.has(job.state)) send({ action: "status", jobId: job.jobId });
    }
  };
  socket.onmessage = (event) => {
    if (socket === session.socket) receive(event.data);
  };
  socket.onclose = (event) => {
    if (socket !== session.socket) return;
    session.socket = null;
    if (!session.everOpened) {
      setConnectionState("disconnected");
      showError(
        `The WebSocket connection to ${shownAddress} was refused or is unreachable (code ${event.code}): check the WebSocket URL and the key.`,
      );
      return;
    }
    const delay = session.retryDelay;
    session.retryDelay = Math.min(delay * 2, LAST_RETRY_MS);
    setConnectionState("reconnecting", `reconnecting in ${Math.round(delay / 1000)} s`);
    session.retryTimer = setTimeout(() => {
      if (attempt === session.attempt) openSocket(address, shownAddress, attempt);
    }, delay);
  };
}

function isConnected() {
  return session.socket?.readyState === WebSocket.OPEN;
}

function send(message) {
  if (!isConnected()) return false;
  session.socket.send(JSON.stringify(message));
  return true;
}

function receive(text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    showError(`The server sent a message that is not JSON: ${String(text).slice(0, 200)}`);
    return;
  }
  switch (message?.type) {
    case "accepted":
      settleSubmit(`Job ${shortId(message.jobId)} ${message.duplicate ? "was already submitted" : "accepted"}.`);
      updateJob(message.jobId, { record: message.job });
      break;
    case "progress":
      updateJob(message.jobId, { state: "RUNNING", progress: message.progress, message: message.message });
      break;
    case "status":
      updateJob(message.jobId, { record: message.job });
      break;
    case "result":
      updateJob(message.jobId, {
        record: message.job,
        state: "SUCCEEDED",
        progress: 100,
        result: {
          url: message.url,
          contentType: message.contentType ?? "",
          expiresAt: Date.now() + (message.expiresIn ?? 0) * 1000,
        },
      });
      break;
    case "failed":
      updateJob(message.jobId, { record: message.job, state: "FAILED", message: message.message ?? message.job?.error });
      break;
    case "error": {
      const text = message.code ? `${message.message} (${message.code})` : String(message.message);
      // Refusals carry no job id: one that names a job in progress is about it, else a pending submit is the likeliest cause.
      const lost = [...session.jobs.values()].filter(
        (job) => message.code === "NotFound" && !SETTLED_STATES.has(job.state) && String(message.message).includes(job.jobId),
      );
      for (const job of lost) updateJob(job.jobId, { state: "UNKNOWN", message: "The server has no record of this job any more." });
      if (lost.length === 0 && session.pendingSubmits > 0) settleSubmit("");
      showError(text);
      break;
    }
    default:
      console.warn("martlet: unknown message", message);
  }
}

// --- Jobs ----------------------------------------------------------------------------------------

function shortId(jobId) {
  return String(jobId ?? "").slice(0, 8);
}

function elapsedText(job) {
  const end = job.finishedAt ?? (SETTLED_STATES.has(job.state) ? job.settledAt : Date.now());
  const milliseconds = Math.max(0, end - job.createdAt);
  if (milliseconds < 1000) return `${milliseconds} ms`;
  const seconds = milliseconds / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
}

/**
 * Merges what the server said about a job. Messages can arrive out of order (a fast job's result can
 * beat its `accepted`), so an older record never overwrites a newer one and a finished job stays finished.
 */
function updateJob(jobId, { record, state, progress, message, result }) {
  if (!jobId) return;
  let job = session.jobs.get(jobId);
  if (!job) {
    job = { jobId, model: "", state: "QUEUED", progress: 0, message: "", createdAt: Date.now(), updatedAt: 0 };
    job.element = createJobElement(job);
    session.jobs.set(jobId, job);
  }
  if (record) {
    job.model = record.model ?? job.model;
    job.createdAt = record.createdAt ?? job.createdAt;
    job.finishedAt = record.finishedAt ?? job.finishedAt;
    job.attempts = record.attempts ?? job.attempts;
  }
  const newState = state ?? record?.state;
  const stale = record?.updatedAt != null && record.updatedAt < job.updatedAt;
  const reopens = TERMINAL_STATES.has(job.state) && !TERMINAL_STATES.has(newState ?? job.state);
  if (!stale && !reopens) {
    if (newState) job.state = newState;
    const newProgress = progress ?? record?.progress;
    if (newProgress != null) job.progress = Math.max(0, Math.min(100, Number(newProgress) || 0));
    const newMessage = message ?? record?.message ?? (job.state === "FAILED" ? record?.error : null);
    if (newMessage != null) job.message = newMessage;
    if (record?.updatedAt != null) job.updatedAt = record.updatedAt;
  }
  if (result?.url) job.result = result;
  if (SETTLED_STATES.has(job.state)) {
    job.settledAt ??= Date.now();
    job.cancelling = false;
  } else {
    job.settledAt = undefined;
  }
  renderJob(job);
}

function createJobElement(job) {
  const element = view.jobTemplate.content.firstElementChild.cloneNode(true);
  element.dataset.jobId = job.jobId;
  element.querySelector(".job-id").textContent = shortId(job.jobId);
  element.querySelector(".job-id").title = job.jobId;
  element.querySelector(".cancel").addEventListener("click", () => cancelJob(job));
  view.jobs.prepend(element);
  view.jobsEmpty.hidden = true;
  return element;
}

function renderJob(job) {
  const element = job.element;
  element.dataset.state = job.state;
  element.querySelector(".job-model").textContent = job.model;
  element.querySelector(".badge").textContent = job.state;
  element.querySelector(".job-elapsed").textContent = elapsedText(job);
  const progress = element.querySelector(".progress");
  progress.dataset.progress = String(job.progress);
  progress.setAttribute("aria-valuenow", String(job.progress));
  progress.querySelector(".progress-bar").style.width = `${job.progress}%`;
  let message = job.message ?? "";
  if (job.state === "QUEUED" && job.attempts > 0) message = `retrying (attempt ${job.attempts + 1})${message ? `: ${message}` : ""}`;
  element.querySelector(".job-message").textContent = message;
  const cancel = element.querySelector(".cancel");
  cancel.hidden = SETTLED_STATES.has(job.state);
  cancel.disabled = Boolean(job.cancelling);
  cancel.textContent = job.cancelling ? "Cancelling…" : "Cancel";
  if (job.result) renderResult(job);
}

const MEDIA_TAGS = { audio: "audio", image: "img", video: "video" };
const EXTENSIONS = { "audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3", "image/jpeg": "jpg", "text/plain": "txt" };

function isWebAddress(text) {
  try {
    return ["http:", "https:"].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}

function renderResult(job) {
  const { url, contentType } = job.result;
  if (!isWebAddress(url)) return;
  const box = job.element.querySelector(".result");
  const tag = MEDIA_TAGS[contentType.split("/")[0]];
  let media = box.querySelector("audio, img, video");
  // A fresh URL replaces the media only when the old one failed (expired): it keeps playback going otherwise.
  if (tag && (!media || media.error)) {
    media?.remove();
    media = document.createElement(tag);
    if (tag === "img") {
      media.alt = `Result of job ${shortId(job.jobId)}`;
    } else {
      media.controls = true;
      media.preload = "metadata";
    }
    media.src = url;
    box.prepend(media);
  }
  let link = box.querySelector("a.download");
  if (!link) {
    link = document.createElement("a");
    link.className = "download";
    link.target = "_blank";
    link.rel = "noopener";
    link.addEventListener("click", (event) => refreshExpiredLink(event, job));
    box.append(link);
  }
  const subtype = contentType.split(";")[0].split("/")[1] ?? "";
  const extension = EXTENSIONS[contentType] ?? (/^[a-z0-9]{1,8}$/.test(subtype) ? subtype : "bin");
  link.href = url;
  link.download = `${job.jobId}.${extension}`;
  link.textContent = `Download .${extension}`;
}

/** Presigned links expire: an expired one is exchanged for a fresh one (a `status` answers with a `result`). */
function refreshExpiredLink(event, job) {
  if (Date.now() < job.result.expiresAt) return;
  event.preventDefault();
  if (send({ action: "status", jobId: job.jobId })) {
    setSubmitStatus(`The link of job ${shortId(job.jobId)} had expired: a fresh one is on its way, click again.`);
  } else {
    showError("The download link has expired; reconnect to get a fresh one.");
  }
}

function cancelJob(job) {
  if (!send({ action: "cancel", jobId: job.jobId })) {
    showError("Not connected: reconnect to cancel the job.");
    return;
  }
  job.cancelling = true;
  renderJob(job);
}

function tickElapsed() {
  for (const job of session.jobs.values()) {
    if (!SETTLED_STATES.has(job.state)) job.element.querySelector(".job-elapsed").textContent = elapsedText(job);
  }
}

// --- Submitting ----------------------------------------------------------------------------------

function showModelFields() {
  const choice = fields.model.value;
  $("#demo-fields").hidden = choice !== "demo";
  $("#model-name-field").hidden = choice !== "other";
}

function buildRequest() {
  const choice = fields.model.value;
  const model = choice === "other" ? fields.modelName.value.trim() : choice;
  if (!model) throw new Error("Name the model to run.");
  const parameters = {};
  if (choice === "demo") {
    const prompt = fields.prompt.value.trim();
    if (!prompt) throw new Error("The demo model needs a prompt.");
    parameters.prompt = prompt;
    if (fields.seconds.value !== "") parameters.seconds = Number(fields.seconds.value);
    if (fields.seed.value !== "") parameters.seed = Number(fields.seed.value);
  }
  const extraText = fields.extra.value.trim();
  if (extraText) {
    let extra;
    try {
      extra = JSON.parse(extraText);
    } catch (error) {
      throw new Error(`The extra parameters are not valid JSON: ${error.message}`);
    }
    if (extra === null || typeof extra !== "object" || Array.isArray(extra)) {
      throw new Error('The extra parameters must be a JSON object, such as {"stepMilliseconds": 150}.');
    }
    Object.assign(parameters, extra);
  }
  return { action: "submit", model, parameters };
}

function formatBytes(count) {
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KB`;
  return `${(count / 1024 / 1024).toFixed(1)} MB`;
}

function xmlErrorMessage(text) {
  const document = new DOMParser().parseFromString(text, "application/xml");
  return document.querySelector("Message")?.textContent ?? "";
}

/** Uploads `file` through a presigned S3 POST and returns its object key, the job's `inputKey`. */
async function upload(file) {
  if (session.lastUpload?.file === file) return session.lastUpload.key;
  const { http, key } = currentSettings();
  setSubmitStatus(`Uploading ${file.name} (${formatBytes(file.size)})…`);
  let response;
  try {
    response = await fetch(`${http}/uploads`, {
      method: "POST",
      headers: { "x-api-key": key, "content-type": "application/json" },
      body: JSON.stringify({ contentType: file.type || "application/octet-stream", fileName: file.name }),
    });
  } catch (error) {
    throw new Error(`Cannot reach the HTTP API at ${http} (${error.message}).`);
  }
  if (!response.ok) {
    const message = await responseMessage(response);
    throw new Error(`The upload was refused (${response.status})${message ? `: ${message}` : "."}`);
  }
  const target = await response.json();
  if (file.size > target.maxBytes) {
    throw new Error(`${file.name} is ${formatBytes(file.size)}; uploads are limited to ${formatBytes(target.maxBytes)}.`);
  }
  const form = new FormData();
  for (const [name, value] of Object.entries(target.post.fields)) form.append(name, value);
  // S3 ignores any field after the file, so it goes last.
  form.append("file", file);
  let stored;
  try {
    stored = await fetch(target.post.url, { method: "POST", body: form });
  } catch (error) {
    throw new Error(`Cannot reach the object store at ${target.post.url} (${error.message}).`);
  }
  if (!stored.ok) {
    const text = await stored.text();
    throw new Error(`The upload of ${file.name} failed (${stored.status}): ${xmlErrorMessage(text) || text.slice(0, 200)}`);
  }
  session.lastUpload = { file, key: target.key };
  return target.key;
}

function settleSubmit(text) {
  session.pendingSubmits = Math.max(0, session.pendingSubmits - 1);
  setSubmitStatus(text);
}

async function submitJob() {
  clearError();
  if (!isConnected()) {
    showError("Not connected: connect first, then submit.");
    return;
  }
  let request;
  try {
    request = buildRequest();
  } catch (error) {
    showError(error.message);
    return;
  }
  view.submit.disabled = true;
  try {
    const file = fields.inputFile.files[0];
    if (file) request.inputKey = await upload(file);
    if (!send(request)) throw new Error("The connection dropped before the job was sent: submit again once reconnected.");
    session.pendingSubmits += 1;
    setSubmitStatus("Submitted; waiting for the job id…");
  } catch (error) {
    setSubmitStatus("");
    showError(error.message);
  } finally {
    view.submit.disabled = false;
  }
}

// --- Live view of the local stack ----------------------------------------------------------------

/** Builds an element: `make("td", { className: "errors" }, "3")`. Text goes in as text, never as HTML. */
function make(tag, properties = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(properties)) {
    if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "style") element.style.cssText = value;
    else element[name] = value;
  }
  element.append(...children.filter((child) => child != null).map((child) => (child instanceof Node ? child : String(child))));
  return element;
}

function formatUptime(seconds) {
  const total = Math.floor(seconds ?? 0);
  if (total < 60) return `${total} s`;
  if (total < 3600) return `${Math.floor(total / 60)} min ${total % 60} s`;
  return `${Math.floor(total / 3600)} h ${Math.floor((total % 3600) / 60)} min`;
}

function renderLive(state) {
  const functions = state.functions ?? [];
  view.liveFunctions.replaceChildren(
    ...functions.map((fn) =>
      make(
        "tr",
        { dataset: { function: fn.name } },
        make("td", {}, make("code", {}, fn.name)),
        make("td", { className: fn.invocations ? "" : "none" }, fn.invocations),
        make("td", { className: fn.coldStarts ? "" : "none" }, fn.coldStarts),
        make("td", { className: fn.errors ? "errors" : "none" }, fn.errors),
        make("td", { title: fn.queued ? `${fn.queued} invocations waiting` : "" }, `${fn.busy} / ${fn.environments}`, fn.queued ? ` +${fn.queued}` : null),
      ),
    ),
  );
  if (functions.length === 0) view.liveFunctions.replaceChildren(make("tr", {}, make("td", { colSpan: 5, className: "none" }, "No functions")));

  const queues = state.queues ?? [];
  view.liveQueues.replaceChildren(
    ...queues.map((queue) =>
      make(
        "li",
        { dataset: { queue: queue.name } },
        make("div", { className: "queue-name" }, queue.name),
        make(
          "div",
          { className: "stats" },
          make("span", {}, make("strong", {}, queue.visible), " waiting"),
          make("span", {}, make("strong", {}, queue.inFlight), " in flight"),
          make("span", {}, make("strong", {}, queue.delayed), " delayed"),
        ),
      ),
    ),
  );
  if (queues.length === 0) view.liveQueues.replaceChildren(make("li", { className: "idle" }, "No queues"));

  const workers = state.workers ?? [];
  view.liveWorkers.replaceChildren(
    ...workers.map((worker) => {
      const jobs = worker.jobs ?? [];
      const doing = jobs.length
        ? jobs.map((job) =>
            make(
              "div",
              { className: "worker-job" },
              make("code", { title: job.jobId }, shortId(job.jobId)),
              make("span", {}, job.model),
              make("div", { className: "mini" }, make("div", { style: `width: ${Math.max(0, Math.min(100, job.progress))}%` })),
              make("span", {}, `${job.progress}%`),
            ),
          )
        : [make("div", { className: "idle" }, worker.status === "running" ? "idle" : `${worker.status}…`)];
      return make(
        "li",
        { dataset: { worker: worker.id, status: worker.status } },
        make(
          "div",
          { className: "worker-head" },
          make("span", { className: "worker-id" }, worker.id),
          make("span", { className: "worker-status", dataset: { status: worker.status } }, worker.status),
          worker.pid != null ? make("span", { className: "worker-pid" }, `pid ${worker.pid}`) : null,
        ),
        ...doing,
      );
    }),
  );
  if (workers.length === 0) view.liveWorkers.replaceChildren(make("li", { className: "idle" }, "No workers"));
}

async function pollLiveState() {
  if (!document.hidden) {
    try {
      const response = await fetch("/_martlet/state", { cache: "no-store", signal: AbortSignal.timeout(5000) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const state = await response.json();
      renderLive(state);
      view.liveStatus.textContent = `up ${formatUptime(state.uptimeSeconds)}`;
    } catch (error) {
      view.liveStatus.textContent = `not answering (${error.message}): is martlet local still running?`;
    }
  }
  setTimeout(pollLiveState, STATE_POLL_MS);
}

// --- Metrics of the local stack ------------------------------------------------------------------

const METRICS_POLL_MS = 2000;
const METRICS_WINDOW_MS = 5 * 60 * 1000;
// Latency has no value in a bucket without samples: its line joins measurements up to this far apart.
const LATENCY_JOIN_MS = 30 * 1000;
const SVG_NAMESPACE = "http://www.w3.org/2000/svg";
// Line colours are CSS custom properties (style.css gives each a dark-mode value). Functions take them
// in order of first appearance and keep them, so a line does not change colour when another appears.
const FUNCTION_COLORS = ["--chart-indigo", "--chart-amber", "--chart-cyan", "--chart-pink", "--chart-green", "--chart-slate", "--chart-violet", "--chart-teal"];
const functionColors = new Map();

const metricsView = {
  section: $("#live-metrics"),
  status: $("#metrics-status"),
  empty: $("#metrics-empty"),
  body: $("#metrics-body"),
  totals: $("#metrics-totals"),
  charts: ["invocations", "jobs", "latency"].map((name) => {
    const svg = $(`#chart-${name}`);
    const figure = svg.closest("figure");
    return { name, svg, legend: figure.querySelector(".legend"), time: figure.querySelector(".chart-time"), plot: null, hoverX: null };
  }),
  snapshot: null,
};

function functionColor(name) {
  if (!functionColors.has(name)) functionColors.set(name, FUNCTION_COLORS[functionColors.size % FUNCTION_COLORS.length]);
  return functionColors.get(name);
}

/** The charts' time range in `snapshot`: the starts of the buckets it holds, oldest first (the server's clock decides). */
function metricsRange(snapshot) {
  const bucketSeconds = snapshot.bucketSeconds > 0 ? snapshot.bucketSeconds : 5;
  const bucketMs = bucketSeconds * 1000;
  const end = Number.isFinite(snapshot.now) ? snapshot.now : Date.now();
  const start = end - METRICS_WINDOW_MS;
  const buckets = [];
  for (let t = Math.ceil(start / bucketMs) * bucketMs; t <= end; t += bucketMs) buckets.push(t);
  // The bucket in progress is still filling (and workers write theirs every few seconds): a rate drawn
  // from it would dip at the right edge, so rates stop at the last complete bucket.
  const complete = buckets.filter((t) => t + bucketMs <= end);
  return { bucketSeconds, start, end, buckets, complete };
}

function seriesNamed(snapshot, name) {
  return (snapshot.series ?? []).filter((series) => series.name === name);
}

/** One value per bucket of the range from the points of `series`: `pick` reads a point, `merge` folds values of one bucket. */
function perBucket(series, range, pick, merge) {
  const values = new Map();
  for (const one of series) {
    for (const point of one.points ?? []) {
      if (!(point.t >= range.start && point.t <= range.end)) continue;
      const value = pick(point);
      if (value == null || !Number.isFinite(value)) continue;
      values.set(point.t, values.has(point.t) ? merge(values.get(point.t), value) : value);
    }
  }
  return values;
}

const add = (a, b) => a + b;

/**
 * The three charts' lines. A rate line (`rate: true`) reads a bucket without points as zero; a
 * latency line has a gap there.
 */
function metricsCharts(snapshot, range) {
  const rate = (point) => point.sum / range.bucketSeconds;
  const rateLine = (label, color, series) => ({ label, color, rate: true, values: perBucket(series, range, rate, add) });
  const maxLine = (label, color, series, pick, dashed = false) => ({ label, color, dashed, values: perBucket(series, range, pick, Math.max) });

  const byFunction = new Map();
  for (const series of seriesNamed(snapshot, "Invocations")) {
    const name = series.dimensions?.FunctionName ?? "unnamed";
    byFunction.set(name, [...(byFunction.get(name) ?? []), series]);
  }
  const functionLines = [...byFunction.keys()]
    .sort()
    .map((name) => rateLine(name, functionColor(name), byFunction.get(name)))
    .filter((line) => line.values.size > 0);
  // Errors go first, under the functions' lines, so that a red line shows only when there are errors.
  const invocations = functionLines.length ? [rateLine("Errors", "--red", seriesNamed(snapshot, "Errors")), ...functionLines] : [];

  const jobs = [
    rateLine("Submitted", "--chart-indigo", seriesNamed(snapshot, "JobsSubmitted")),
    rateLine("Succeeded", "--chart-green", seriesNamed(snapshot, "JobsSucceeded")),
    rateLine("Failed", "--red", seriesNamed(snapshot, "JobsFailed")),
    rateLine("Retried", "--chart-amber", seriesNamed(snapshot, "JobsRetried")),
  ];

  const latency = [
    maxLine("Function duration p99", "--chart-violet", seriesNamed(snapshot, "Duration"), (point) => point.p99),
    maxLine("End-to-end p50", "--chart-cyan", seriesNamed(snapshot, "EndToEndTime"), (point) => point.p50),
    maxLine("End-to-end p99", "--chart-cyan", seriesNamed(snapshot, "EndToEndTime"), (point) => point.p99, true),
    maxLine("Queue wait p50", "--chart-amber", seriesNamed(snapshot, "QueueWait"), (point) => point.p50),
  ];
  return {
    invocations: { lines: invocations, format: formatRate },
    jobs: { lines: jobs.some((line) => line.values.size) ? jobs : [], format: formatRate },
    latency: { lines: latency.filter((line) => line.values.size > 0), format: formatMilliseconds },
  };
}

/** The totals over the last 5 minutes, and the end-to-end p50 of the latest bucket that has one. */
function metricsTotals(snapshot, range) {
  const total = (name) => [...perBucket(seriesNamed(snapshot, name), range, (point) => point.sum, add).values()].reduce(add, 0);
  const endToEnd = perBucket(seriesNamed(snapshot, "EndToEndTime"), range, (point) => point.p50, Math.max);
  const latest = Math.max(...endToEnd.keys());
  return [
    { key: "invocations", label: "Invocations", value: total("Invocations"), text: formatCount },
    { key: "errors", label: "Errors", value: total("Errors"), text: formatCount, bad: true },
    { key: "jobs-succeeded", label: "Jobs succeeded", value: total("JobsSucceeded"), text: formatCount },
    { key: "jobs-failed", label: "Jobs failed", value: total("JobsFailed"), text: formatCount, bad: true },
    {
      key: "end-to-end-p50",
      label: "End-to-end p50",
      value: endToEnd.get(latest),
      text: formatMilliseconds,
      title: endToEnd.size ? `the median end-to-end time of the jobs that finished in the bucket of ${clockTime(latest, true)}` : "no job finished in the last 5 minutes",
    },
  ];
}

function formatCount(value) {
  return Math.round(value).toLocaleString();
}

/** Three significant digits at most, without trailing zeros: 0.2, 1.25, 130. */
function shortNumber(value) {
  return String(Number(value.toPrecision(3)));
}

function formatRate(value) {
  return value === 0 ? "0" : shortNumber(value);
}

function formatMilliseconds(value) {
  if (value == null) return "—";
  return value < 1000 ? `${shortNumber(value)} ms` : `${shortNumber(value / 1000)} s`;
}

function clockTime(t, seconds = false) {
  return new Date(t).toLocaleTimeString([], { hourCycle: "h23", hour: "2-digit", minute: "2-digit", ...(seconds ? { second: "2-digit" } : {}) });
}

/** A scale from 0 to a round top above `largest`, with four or five ticks on round values. */
function niceScale(largest) {
  const wanted = largest > 0 ? largest : 1;
  const rough = wanted / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= rough * (1 - 1e-9));
  const top = Math.ceil(wanted / step - 1e-9) * step;
  const ticks = [];
  for (let index = 0; index * step <= top * (1 + 1e-9); index += 1) ticks.push(Number((index * step).toPrecision(12)));
  return { top, ticks };
}

function svgElement(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NAMESPACE, tag);
  for (const [name, value] of Object.entries(attributes)) if (value != null) element.setAttribute(name, String(value));
  element.append(...children.map((child) => (child instanceof Node ? child : String(child))));
  return element;
}

/** Draws `lines` over the range in the chart's SVG at its current size, and its legend. */
function drawChart(chart, { lines, format }, range) {
  const box = chart.svg.getBoundingClientRect();
  const width = Math.max(200, Math.round(box.width) || 600);
  const height = Math.max(100, Math.round(box.height) || 170);
  const times = (line) => (line.rate ? range.complete : range.buckets);
  const valueAt = (line, t) => line.values.get(t) ?? (line.rate ? 0 : null);

  let largest = 0;
  for (const line of lines) for (const t of times(line)) largest = Math.max(largest, valueAt(line, t) ?? 0);
  const scale = niceScale(largest);
  const labels = scale.ticks.map(format);
  // About 6.4 px per character of the 11 px tick labels.
  const left = 10 + Math.max(...labels.map((label) => label.length)) * 6.4;
  const right = 10;
  const top = 8;
  const bottom = 20;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const x = (t) => left + ((t - range.start) / (range.end - range.start)) * plotWidth;
  const y = (value) => top + plotHeight - (value / scale.top) * plotHeight;

  const grid = svgElement("g", { class: "grid" });
  scale.ticks.forEach((tick, index) => {
    grid.append(
      svgElement("line", { x1: left, x2: width - right, y1: y(tick), y2: y(tick), class: tick === 0 ? "baseline" : null }),
      svgElement("text", { x: left - 6, y: y(tick), class: "tick", "text-anchor": "end", "dominant-baseline": "middle" }, labels[index]),
    );
  });
  // A label every minute, every other one when narrow, none too close to the edges.
  const minuteStep = plotWidth < 320 ? 2 : 1;
  for (let t = Math.ceil(range.start / 60000) * 60000; t <= range.end; t += 60000) {
    if (new Date(t).getMinutes() % minuteStep !== 0) continue;
    grid.append(svgElement("line", { x1: x(t), x2: x(t), y1: top, y2: top + plotHeight, class: "minute" }));
    if (x(t) > left + 18 && x(t) < width - right - 18) {
      grid.append(svgElement("text", { x: x(t), y: height - 4, class: "tick", "text-anchor": "middle" }, clockTime(t)));
    }
  }

  const drawn = svgElement("g", { class: "lines" });
  let points = 0;
  for (const line of lines) {
    const group = svgElement("g", { style: `--series: var(${line.color})` });
    // A rate line runs through every bucket; a latency line joins its measurements across short gaps only.
    const runs = [];
    let run = [];
    let previous = null;
    for (const t of times(line)) {
      const value = valueAt(line, t);
      if (value == null) continue;
      if (previous != null && t - previous > LATENCY_JOIN_MS && run.length) {
        runs.push(run);
        run = [];
      }
      run.push([x(t), y(value)]);
      previous = t;
      if (line.values.has(t)) points += 1;
    }
    if (run.length) runs.push(run);
    const path = runs.map((one) => `M${one.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join("L")}`).join("");
    if (path) group.append(svgElement("path", { d: path, class: line.dashed ? "line dashed" : "line" }));
    if (!line.rate) for (const [px, py] of runs.flat()) group.append(svgElement("circle", { cx: px.toFixed(1), cy: py.toFixed(1), r: 2.25, class: "dot" }));
    drawn.append(group);
  }

  const guide = svgElement("line", { y1: top, y2: top + plotHeight, class: "guide", visibility: "hidden" });
  const children = [grid, drawn, guide];
  if (points === 0) {
    children.push(svgElement("text", { x: left + plotWidth / 2, y: top + plotHeight / 2, class: "no-data", "text-anchor": "middle" }, "No data in the last 5 minutes"));
  }
  chart.svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  chart.svg.dataset.points = String(points);
  chart.svg.replaceChildren(...children);

  chart.legend.replaceChildren(
    ...lines.map((line) => {
      line.valueElement = make("span", { className: "legend-value" });
      return make(
        "li",
        { style: `--series: var(${line.color})` },
        make("span", { className: line.dashed ? "swatch dashed" : "swatch" }),
        make("span", {}, line.label),
        line.valueElement,
      );
    }),
  );
  chart.plot = { lines, format, guide, x, buckets: range.buckets, left, right: width - right, width, times, valueAt };
  showChartValues(chart);
}

/** Shows the values of the bucket under the pointer in the legend, or nothing when the pointer is away. */
function showChartValues(chart) {
  const plot = chart.plot;
  if (!plot) return;
    let nearest = null;
  if (chart.hoverX != null && chart.hoverX >= plot.left - 8 && chart.hoverX <= plot.right + 8) {
    for (const t of plot.buckets) if (nearest == null || Math.abs(plot.x(t) - chart.hoverX) < Math.abs(plot.x(nearest) - chart.hoverX)) nearest = t;
  }
  plot.guide.setAttribute("visibility", nearest == null ? "hidden" : "visible");
  if (nearest != null) {
    plot.guide.setAttribute("x1", plot.x(nearest));
    plot.guide.setAttribute("x2", plot.x(nearest));
  }
  chart.time.textContent = nearest == null ? "" : clockTime(nearest, true);
  for (const line of plot.lines) {
    const drawnThere = nearest != null && plot.times(line).includes(nearest);
    line.valueElement.textContent = drawnThere ? (plot.valueAt(line, nearest) == null ? "—" : plot.format(plot.valueAt(line, nearest))) : "";
  }
}

function followPointer(chart) {
  const track = (event) => {
    const box = chart.svg.getBoundingClientRect();
    chart.hoverX = chart.plot && box.width ? ((event.clientX - box.left) * chart.plot.width) / box.width : null;
    showChartValues(chart);
  };
  chart.svg.addEventListener("pointermove", track);
  chart.svg.addEventListener("pointerdown", track);
  chart.svg.addEventListener("pointerleave", () => {
    chart.hoverX = null;
    showChartValues(chart);
  });
}

function renderMetrics() {
  const snapshot = metricsView.snapshot;
  if (!snapshot) return;
  const nothing = (snapshot.series ?? []).length === 0;
  metricsView.empty.hidden = !nothing;
  metricsView.body.hidden = nothing;
  if (nothing) return;
  const range = metricsRange(snapshot);
  metricsView.totals.replaceChildren(
    ...metricsTotals(snapshot, range).map((total) =>
      make(
        "div",
        { className: total.bad && total.value > 0 ? "total bad" : "total", dataset: { total: total.key, value: String(total.value ?? "") }, title: total.title ?? "" },
        make("dt", {}, total.label),
        make("dd", {}, total.text(total.value)),
      ),
    ),
  );
  const charts = metricsCharts(snapshot, range);
  for (const chart of metricsView.charts) drawChart(chart, charts[chart.name], range);
}

async function pollMetrics() {
  if (!document.hidden) {
    try {
      const response = await fetch("/_martlet/metrics", { cache: "no-store", signal: AbortSignal.timeout(5000) });
      // This console has no metrics: no charts, and no more asking.
      if (response.status === 404) {
        metricsView.section.hidden = true;
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      metricsView.snapshot = await response.json();
      metricsView.section.hidden = false;
      metricsView.status.textContent = "";
      renderMetrics();
    } catch (error) {
      metricsView.status.textContent = `not answering (${error.message})`;
    }
  }
  setTimeout(pollMetrics, METRICS_POLL_MS);
}

function startMetrics() {
  for (const chart of metricsView.charts) followPointer(chart);
  // The charts are drawn at their size in pixels, so that text and lines keep theirs: a new width redraws them.
  let widths = "";
  new ResizeObserver(() => {
    const now = metricsView.charts.map((chart) => Math.round(chart.svg.getBoundingClientRect().width)).join();
    if (now !== widths) {
      widths = now;
      renderMetrics();
    }
  }).observe(metricsView.body);
  pollMetrics();
}

// --- Start ---------------------------------------------------------------------------------------

async function start() {
  $("#settings-form").addEventListener("submit", (event) => {
    event.preventDefault();
    connect();
  });
  $("#job-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submitJob();
  });
  $("#error-dismiss").addEventListener("click", clearError);
  fields.model.addEventListener("change", showModelFields);
  showModelFields();
  setInterval(tickElapsed, 250);

  const config = await loadSettings();
  if (config?.local) {
    view.live.hidden = false;
    pollLiveState();
    startMetrics();
  }
  const settings = currentSettings();
  if (settings.http && settings.ws && settings.key && session.attempt === 0) connect();
}

start();
