// The page's live voice link (the body of gr.HTML's js_on_load: `element`, `props`, `server`, `trigger` and
// `watch` are given). It plays the answer's speech with the Web Audio API, each piece scheduled right after the
// previous one, and streams the microphone to the server while the user speaks: push-to-talk (the mic button)
// and talk mode (hands-free: the server hears when a turn ends). No audio element, no HLS.
//
// The component's value is a small JSON cursor sent by each turn: {key, turn, ready, stage}. `key` names this
// tab's link on the server; when `ready` grows the page asks the server for the pieces it has not played yet.
// `config` (words, microphone rate and block, the silencing buttons) is written in front of this file by
// chatbot/live_ui.py.

const $ = (selector) => element.querySelector(selector);
const stats = (window.voiceStats = window.voiceStats || { turns: [], events: [] });

let key = null;
const log = (type, extra = {}) => stats.events.push({ type, t: performance.now(), ...extra });

// -- speech out ------------------------------------------------------------------------------------------

let audioContext = null;
let sources = [];  // pieces scheduled and not yet ended
let nextStart = 0;  // when (audioContext time) the next piece may start: right after the previous one
let playing = { turn: null, have: 0, muted: false, record: null };
let pulling = false;
let latest = null;  // the newest cursor seen while a pull was running

function speaker() {
  if (!audioContext) {
    audioContext = new AudioContext();
    audioContext.onstatechange = showState;
  }
  return audioContext;
}

function unlock() {  // autoplay policy: the first click or key press lets the page make sound
  const ctx = speaker();
  if (ctx.state === "suspended") ctx.resume().then(showState);
}
document.addEventListener("pointerdown", unlock, { capture: true });
document.addEventListener("keydown", unlock, { capture: true });

function samplesOf(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const pcm = new Int16Array(bytes.buffer);
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;
  return out;
}

function schedule(piece) {
  const ctx = speaker();
  const samples = samplesOf(piece.pcm);
  const buffer = ctx.createBuffer(1, samples.length, piece.rate);
  buffer.copyToChannel(samples, 0);
  const source = ctx.createBufferSource();
  source.buffer = buffer;
  source.connect(ctx.destination);
  const now = ctx.currentTime;
  const record = playing.record;
  if (record.first_sound === null) {
    nextStart = now + config.start_delay_s;
  } else if (now > nextStart) {  // the next piece came late: the listener hears silence in between
    record.gaps.push(now - nextStart);
    nextStart = now;
  }
  source.start(nextStart);
  if (record.first_sound === null) {
    record.first_sound = performance.now() + (nextStart - now) * 1000;
    log("first_sound", { turn: playing.turn, at: record.first_sound });
  }
  nextStart += buffer.duration;
  sources.push(source);
  source.onended = () => {
    sources = sources.filter((s) => s !== source);
    if (!sources.length) {
      record.ended = performance.now();
      showState();
    }
  };
  showState();
}

async function pull(cursor, via) {
  if (playing.turn !== null && cursor.turn < playing.turn) return;  // an older turn, still ending: not played
  if (cursor.turn !== playing.turn) {
    playing = { turn: cursor.turn, have: 0, muted: false,
                record: { turn: cursor.turn, first_sound: null, gaps: [], ended: null, pieces: 0 } };
    stats.turns.push(playing.record);
  }
  if (playing.muted || cursor.ready <= playing.have) return;
  if (!playing.have && !pulling) log("speech_ready", { turn: cursor.turn, via });
  if (pulling) { latest = cursor; return; }
  pulling = true;
  try {
    const pieces = await server.speech({ key, turn: cursor.turn, since: playing.have });
    for (const piece of pieces) {
      if (cursor.turn !== playing.turn || playing.muted) break;
      if (piece.seq < playing.have) continue;
      schedule(piece);
      playing.have = piece.seq + 1;
      playing.record.pieces += 1;
    }
  } catch (error) {
    console.error("speech could not be fetched", error);
  } finally {
    pulling = false;
  }
  if (latest) { const again = latest; latest = null; pull(again, "queued"); }
}

function silence(why) {  // Stop, Record, the user talking over the answer: quiet within a few ms
  playing.muted = true;
  for (const source of sources) {
    try { source.stop(); } catch (error) { /* already ended */ }
  }
  if (sources.length) log("silenced", { why });
  sources = [];
  nextStart = 0;
  release(null);
  showState();
}

// Talk mode: the moment the server hears what may be the user starting to speak, the answer is held (its
// clock stops, so it goes on exactly where it was); at min_speech_s it is silenced (barge-in), and if the sound
// was short (a cough) it goes on. The server says which; if it says nothing, the hold ends by itself.
let held = null;  // the timer that ends a hold
function hold() {
  if (held || !speaking()) return;
  speaker().suspend();
  held = setTimeout(() => release("timeout"), config.hold_max_s * 1000);
  log("held");
  showState();
}

function release(why) {
  if (!held) return;
  clearTimeout(held);
  held = null;
  speaker().resume();
  if (why) log("resumed", { why });
  showState();
}

const speaking = () => sources.length > 0;

// -- microphone in ---------------------------------------------------------------------------------------

let mic = null;  // {stream, context, node, mode: "ptt" | "talk"}
let unsent = [];  // Int16Array pieces not yet sent
let sending = false;
let serverState = "";  // what the server's listener hears: "listening" | "hearing"
let turnStage = "";  // the running turn's stage, from its cursors: "transcribing", "thinking", "speaking", ...

function toBase64(int16) {
  const bytes = new Uint8Array(int16.buffer, int16.byteOffset, int16.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

async function openMic(mode) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 } });
  const context = new AudioContext({ sampleRate: config.mic_rate });
  const input = context.createMediaStreamSource(stream);
  const node = context.createScriptProcessor(config.mic_block, 1, 1);
  node.onaudioprocess = (event) => {
    const samples = event.inputBuffer.getChannelData(0);
    const pcm = new Int16Array(samples.length);
    for (let i = 0; i < samples.length; i++) pcm[i] = Math.max(-1, Math.min(1, samples[i])) * 32767;
    noteLevel(samples, performance.now());
    unsent.push(pcm);
    send(false);
  };
  input.connect(node);
  node.connect(context.destination);  // a ScriptProcessor runs only while connected; it outputs silence
  mic = { stream, context, node, mode };
}

// For measurements (window.voiceStats): when the microphone's sound starts and stops, to the millisecond. A
// block arrives when its last sample was captured, so a sample's time is counted back from the block's arrival.
let loud = false;
let lastLoud = null;
function noteLevel(samples, arrived) {
  const rate = config.mic_rate;
  for (let i = 0; i < samples.length; i++) {
    const at = arrived - ((samples.length - 1 - i) / rate) * 1000;
    if (Math.abs(samples[i]) >= config.level) {
      if (!loud) { loud = true; log("mic_sound_start", { at }); }
      lastLoud = at;
    } else if (loud && at - lastLoud > config.level_gap_ms) {
      loud = false;
      log("mic_sound_end", { at: lastLoud });
    }
  }
}

function closeMic() {
  if (!mic) return;
  mic.node.disconnect();
  mic.stream.getTracks().forEach((track) => track.stop());
  mic.context.close();
  mic = null;
}

let finalWanted = false;  // the recording was stopped: its last audio goes with `final`, even if a send is in flight

async function send(final) {
  if (final) finalWanted = true;
  if (sending || (!mic && !finalWanted)) return;
  sending = true;
  try {
    while (unsent.length || finalWanted) {
      const count = unsent.reduce((n, part) => n + part.length, 0);
      const joined = new Int16Array(count);
      let at = 0;
      for (const part of unsent) { joined.set(part, at); at += part.length; }
      unsent = [];
      const isFinal = finalWanted;
      finalWanted = false;
      const mode = mic ? mic.mode : "ptt";
      react(await server.hear({ key, mode, final: isFinal, rate: config.mic_rate, pcm: toBase64(joined) }));
    }
  } catch (error) {
    console.error("microphone audio could not be sent", error);
    notify("The connection to the server was lost; the microphone is off.");
    stopTalking();
  } finally {
    sending = false;
  }
}

function react(answer) {
  serverState = answer.state || "";
  if (answer.notice) notify(answer.notice);
  if (answer.hold && !answer.resume) hold();
  else if (answer.resume && !answer.hold && !answer.barge_in) release("short sound");
  if (answer.barge_in && (speaking() || answer.turn_running)) {
    silence("barge-in");
    log("barge_in");
  }
  if (answer.speech) {  // talk mode: the turn's speech so far (the server started the turn itself)
    turnStage = answer.speech.stage || turnStage;
    key = answer.speech.key || key;
    pull(answer.speech, "microphone");
  }
  if (answer.utterance) {
    log("utterance", { mode: answer.mode });
    turnStage = "transcribing";
    if (answer.mode === "ptt") closeMic();
    trigger("utterance", { key });
  }
  if (answer.closed) closeMic();
  showState();
}

let opening = null;  // the microphone being opened: stopping waits for it

async function startPushToTalk() {
  unlock();
  silence("record");
  trigger("interrupt", { key });  // the answer still being written stops too
  opening = (async () => {
    try {
      await openMic("ptt");
      await server.hear({ key, mode: "ptt", start: true, final: false, rate: config.mic_rate, pcm: "" });
    } catch (error) {
      micDenied(error);
    }
  })();
  await opening;
  showState();
}

async function stopPushToTalk() {
  await opening;
  if (!mic) return;
  mic.node.onaudioprocess = null;
  send(true);  // the last audio; the server answers with the utterance
  closeMic();
  log("ptt_stop");
  showState();
}

async function startTalking() {
  unlock();
  try {
    await openMic("talk");
    const answer = await server.hear({ key, mode: "talk", start: true, final: false, rate: config.mic_rate, pcm: "" });
    react(answer);
    log("talk_start");
  } catch (error) {
    micDenied(error);
  }
  showState();
}

function stopTalking() {
  release("talk ended");
  closeMic();
  unsent = [];
  server.hear({ key, mode: "off", final: false, rate: config.mic_rate, pcm: "" }).catch(() => {});
  serverState = "";
  showState();
}

function micDenied(error) {
  closeMic();
  const denied = error && (error.name === "NotAllowedError" || error.name === "SecurityError");
  notify(denied ? "The microphone is blocked. Allow it in the browser's address bar to speak; typing still works."
                : "No microphone could be opened. Typing still works.");
  log("mic_denied", { name: error && error.name });
}

// -- what the page shows ---------------------------------------------------------------------------------

let noticeTimer = null;
function notify(text) {
  const box = $(".live-notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, config.notice_s * 1000);
}

function showState() {
  const talk = mic && mic.mode === "talk";
  const recording = mic && mic.mode === "ptt";
  let state = "";
  if (recording) state = "recording";
  else if (held) state = "hearing";  // the answer waits: is the user starting to speak?
  else if (speaking()) state = "speaking";
  else if (turnStage === "transcribing" || turnStage === "thinking") state = "thinking";
  else if (talk) state = serverState === "hearing" ? "hearing" : "listening";
  $(".live").dataset.state = state;
  $(".live-state").textContent = config.words[state] || "";
  $(".live-mic").classList.toggle("on", !!recording);
  $(".live-mic").setAttribute("aria-pressed", recording ? "true" : "false");
  $(".live-talk").classList.toggle("on", !!talk);
  $(".live-talk").textContent = talk ? config.words.end_talk : config.words.talk;
  $(".live-stop").hidden = !speaking();
  const locked = audioContext && audioContext.state === "suspended" && playing.have > 0 && !held;
  $(".live-unlock").hidden = !locked;
}

$(".live-mic").addEventListener("click", () => {
  log("pressed", { what: "mic" });
  mic && mic.mode === "ptt" ? stopPushToTalk() : startPushToTalk();
});
$(".live-talk").addEventListener("click", () => {
  log("pressed", { what: "talk" });
  mic && mic.mode === "talk" ? stopTalking() : startTalking();
});
$(".live-stop").addEventListener("click", () => { log("pressed", { what: "stop" }); silence("stop"); trigger("interrupt", { key }); });
$(".live-unlock").addEventListener("click", unlock);

// Stop, a new message, Clear and Retry silence the answer: the buttons outside this component say so.
document.addEventListener("click", (event) => {
  if (event.target.closest && event.target.closest(config.silencing)) silence("button");
}, { capture: true });

watch("value", () => {
  let cursor = null;
  try { cursor = JSON.parse(props.value || "null"); } catch (error) { return; }
  if (!cursor) return;
  key = cursor.key || key;
  if (cursor.turn === undefined || cursor.turn === null) return;
  turnStage = cursor.stage || "";
  showState();
  pull(cursor, "event");
});
try { key = JSON.parse(props.value || "null")?.key || null; } catch (error) { /* no link yet */ }
window.addEventListener("beforeunload", closeMic);
showState();
