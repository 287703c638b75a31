// Run the device JS against a real `musebridge serve` over real UDP, with Live's song simulated:
// the song time runs in real time at the scenario's tempo, the scenario's notes are "played" into
// the device at their song beats, and every note the device outputs is logged with the song beat
// at which it left. Scenario (JSON on stdin):
//   {"osc_port": P, "tempo": 240, "params": [[selector, value]...], "notes": [[pitch, velocity, beat, duration]...],
//    "stop_beat": 13, "connect_timeout_s": 10, "start_at_ms": optional Unix time in ms at which the song
//    starts (several harnesses given the same one share one song, as device instances in one Live set do)}
// or, for clip mode (transport stopped): {"osc_port": P, "tempo": 120, "params": [...], "play": false,
//    "live": {tracks, detailClip}, "after_connect": [[selector, args]...], "until": address, "timeout_s": 10}
// Output (JSON): {"midi": [[beat, pitch, velocity]], "inbound": [[beat, address, args]],
//                 "outbound": [[beat, address, args]], "posts": [...], "connected_after_s": s,
//                 "ui": [[beat, outlet, args]] (status line: outlet 3, Loop toggle: outlet 4),
//                 "tracks": the simulated Live set's tracks at the end}
"use strict";

const dgram = require("dgram");
const path = require("path");
const { createMax } = require("./max_stub");
const { encodeMessage, decodePacket } = require("./osc_codec");

const scenario = JSON.parse(require("fs").readFileSync(0, "utf8"));
const liveSet = Object.assign({}, scenario.live || {});
liveSet.song = { tempo: scenario.tempo, is_playing: 0, current_song_time: 0.0 };
const max = createMax(path.join(__dirname, "..", "..", "max_for_live", "musebridge.js"), liveSet);
const song = max.live.song;
const out = { midi: [], inbound: [], outbound: [], posts: [], ui: [], connected_after_s: null, tracks: null };
const started = process.hrtime.bigint();
const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
let playStart = null;
let stoppedAt = null;

function songBeat() {
  if (stoppedAt !== null) return stoppedAt;
  if (playStart === null) return 0.0;
  return (seconds() - playStart) * song.tempo / 60.0;
}
max.setBeatSource(songBeat);
Object.defineProperty(song, "current_song_time", { get: songBeat, set: () => {}, configurable: true });

const sender = dgram.createSocket("udp4");
let receiver = null;
let targetPort = scenario.osc_port;
let connected = false;

max.context.onOutlet = function (index, args) {
  if (index === 0) {
    if (args[0] === "port") { targetPort = args[1]; return; }
    out.outbound.push([songBeat(), args[0], args.slice(1)]);
    sender.send(encodeMessage(args[0], args.slice(1)), targetPort, "127.0.0.1");
  } else if (index === 1) {
    out.midi.push([songBeat(), args[0], args[1]]);
  } else if (index === 3 || index === 4) {
    out.ui.push([songBeat(), index, args]);
  } else if (index === 2 && args[0] === "port") {
    if (receiver) receiver.close();
    receiver = dgram.createSocket("udp4");
    receiver.on("message", (packet) => {
      for (const [address, oscArgs] of decodePacket(packet)) {
        out.inbound.push([songBeat(), address, oscArgs]);
        if (address === "/musebridge/welcome" && !connected) {
          connected = true;
          out.connected_after_s = seconds();
        }
        max.send(address, oscArgs);
      }
    });
    receiver.bind(args[1], "127.0.0.1");
  }
};

for (const [selector, value] of scenario.params || []) max.send(selector, [value]);
max.send("init");

const input = [];
for (const [pitch, velocity, beat, duration] of scenario.notes || []) {
  input.push({ beat: beat, pitch: pitch, velocity: velocity });
  input.push({ beat: beat + duration, pitch: pitch, velocity: 0 });
}
input.sort((a, b) => a.beat - b.beat || a.velocity - b.velocity);

function finish(code) {
  out.posts = max.log.filter((e) => e.kind === "post").map((e) => e.text);
  out.tracks = max.live.tracks;
  process.stdout.write(JSON.stringify(out));
  sender.close();
  if (receiver) receiver.close();
  process.exit(code);
}

let lastPoll = seconds();
let actedAt = null;
const timer = setInterval(() => {
  const now = seconds();
  if (scenario.play === false) {
    if (!connected) {
      if (now > (scenario.connect_timeout_s || 10)) { clearInterval(timer); finish(3); }
      return;
    }
    if (actedAt === null) {
      actedAt = now;
      for (const [selector, args] of scenario.after_connect || []) max.send(selector, args);
    }
    const done = out.inbound.some((m) => m[1] === scenario.until);
    if (done || now - actedAt > (scenario.timeout_s || 10)) {
      clearInterval(timer);
      setTimeout(() => finish(done ? 0 : 4), 100);
    }
    return;
  }
  if (playStart === null) {
    if (connected && !(scenario.start_at_ms > Date.now())) { playStart = now; max.setSong({ is_playing: 1 }); }
    else if (now > (scenario.connect_timeout_s || 10)) { clearInterval(timer); finish(3); }
  }
  while (input.length && input[0].beat <= songBeat()) {
    const event = input.shift();
    max.send("note_in", [event.pitch, event.velocity]);
  }
  if (playStart !== null && songBeat() >= scenario.stop_beat && song.is_playing) {
    stoppedAt = songBeat();
    max.setSong({ is_playing: 0 });
    max.runTask("onClock");
    clearInterval(timer);
    setTimeout(() => finish(0), 300);
    return;
  }
  max.runTask("onClock");
  if (now - lastPoll >= 1.0) { lastPoll = now; max.runTask("onPoll"); }
}, 2);
