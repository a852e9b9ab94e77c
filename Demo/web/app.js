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
  }
  const settings = currentSettings();
  if (settings.http && settings.ws && settings.key && session.attempt === 0) connect();
}

start();
