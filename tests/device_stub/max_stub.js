// A small stand-in for the globals Max gives a `js` object (outlet, post, messagename,
// arrayfromargs, Task, LiveAPI, Dict), enough to run max_for_live/musebridge.js under node.
//
// The Live set is a plain object the test controls (song transport, tracks, clip slots, clips,
// the selected clip); every LiveAPI call, set and outlet is written to an event log.
"use strict";

const fs = require("fs");
const vm = require("vm");

function flatten(values) {
  const out = [];
  for (const value of values) {
    if (Array.isArray(value)) out.push(...flatten(value));
    else out.push(value);
  }
  return out;
}

function makeLiveSet(options) {
  const set = {
    song: Object.assign(
      { current_song_time: 0.0, is_playing: 0, tempo: 120.0, signature_numerator: 4, signature_denominator: 4 },
      options.song || {}
    ),
    tracks: options.tracks || [{ clip_slots: [null, null, null, null] }],
    deviceTrack: options.deviceTrack || 0,
    detailClip: options.detailClip || null, // [track, slot] of the selected clip
    failCalls: options.failCalls || [], // call names that throw, as Live does on a refused operation
    // which argument kinds add_new_notes refuses ("dict", "object"): which one a given Max accepts is
    // what a tester in Live confirms; the device tries a Dict first, then a plain object
    refuseNotes: options.refuseNotes || [],
    nextNoteId: 1,
  };
  return set;
}

function createMax(sourcePath, options) {
  const log = [];
  const tasks = [];
  const live = makeLiveSet(options || {});
  let nowBeat = () => live.song.current_song_time;

  function record(entry) {
    entry.beat = nowBeat();
    log.push(entry);
  }

  function resolve(path) {
    // Returns {kind, path, target} with the canonical path of the object, or {kind: "none"}.
    let words = path.trim().split(/\s+/);
    if (words.join(" ") === "live_set view detail_clip") {
      if (!live.detailClip) return { kind: "none", path: "" };
      words = ["live_set", "tracks", String(live.detailClip[0]), "clip_slots", String(live.detailClip[1]), "clip"];
    }
    if (words[0] === "this_device" && words[1] === "canonical_parent") {
      words = ["live_set", "tracks", String(live.deviceTrack)].concat(words.slice(2));
    }
    if (words[0] !== "live_set") return { kind: "none", path: "" };
    if (words.length === 1) return { kind: "song", path: "live_set", target: live.song };
    if (words[1] !== "tracks") return { kind: "none", path: "" };
    const track = live.tracks[Number(words[2])];
    if (!track) return { kind: "none", path: "" };
    const trackPath = "live_set tracks " + words[2];
    if (words.length === 3) return { kind: "track", path: trackPath, target: track };
    if (words[3] !== "clip_slots" || words[4] === undefined) return { kind: "none", path: "" };
    const index = Number(words[4]);
    if (index >= track.clip_slots.length) return { kind: "none", path: "" };
    const slotPath = trackPath + " clip_slots " + index;
    if (words.length === 5) return { kind: "slot", path: slotPath, target: { track: track, index: index } };
    if (words[5] === "clip" && words.length === 6) {
      const clip = track.clip_slots[index];
      if (!clip) return { kind: "none", path: "" };
      return { kind: "clip", path: slotPath + " clip", target: clip };
    }
    return { kind: "none", path: "" };
  }

  const observers = [];

  // Max's Dict: a named dictionary; parse() fills it from JSON text.
  let dictCount = 0;
  function Dict(name) {
    this.name = name || "u" + String(++dictCount).padStart(9, "0");
    this._data = {};
  }
  Dict.prototype.parse = function (text) { this._data = JSON.parse(text); };
  Dict.prototype.stringify = function () { return JSON.stringify(this._data); };
  Dict.prototype.toJSON = function () { return { dict: this._data }; };

  function LiveAPI() {
    const args = Array.prototype.slice.call(arguments);
    this.callback = typeof args[0] === "function" ? args[0] : null;
    const path = args.filter((a) => typeof a === "string").join(" ");
    const found = resolve(path);
    this.kind = found.kind;
    this.unquotedpath = found.path;
    this.path = '"' + found.path + '"';
    this.id = found.kind === "none" ? 0 : 1;
    this._target = found.target;
    record({ kind: "liveapi", op: "new", path: path, resolved: found.path });
  }
  // Setting .property on a LiveAPI made with a callback observes that property (as in Max).
  Object.defineProperty(LiveAPI.prototype, "property", {
    get: function () { return this._property || ""; },
    set: function (name) {
      this._property = name;
      record({ kind: "liveapi", op: "observe", path: this.unquotedpath, args: [name] });
      if (this.callback) observers.push(this);
    },
  });
  LiveAPI.prototype.get = function (property) {
    const t = this._target;
    let value;
    if (this.kind === "song") value = t[property];
    else if (this.kind === "slot") value = property === "has_clip" ? (t.track.clip_slots[t.index] ? 1 : 0) : undefined;
    else if (this.kind === "clip") value = t[property];
    if (value === undefined) throw new Error("LiveAPI stub: no property " + property + " on " + this.unquotedpath);
    if (this.kind !== "song" || property !== "current_song_time") {
      record({ kind: "liveapi", op: "get", path: this.unquotedpath, args: [property] });
    }
    return [value];
  };
  LiveAPI.prototype.getcount = function (child) {
    record({ kind: "liveapi", op: "getcount", path: this.unquotedpath, args: [child] });
    if (this.kind === "track" && child === "clip_slots") return this._target.clip_slots.length;
    throw new Error("LiveAPI stub: getcount " + child + " on " + this.unquotedpath);
  };
  LiveAPI.prototype.set = function (property, value) {
    record({ kind: "liveapi", op: "set", path: this.unquotedpath, args: [property, value] });
    if (this.kind === "clip") this._target[property] = value;
    else throw new Error("LiveAPI stub: set " + property + " on " + this.unquotedpath);
  };
  LiveAPI.prototype.call = function () {
    const args = Array.prototype.slice.call(arguments);
    const method = args[0];
    record({ kind: "liveapi", op: "call", path: this.unquotedpath, args: JSON.parse(JSON.stringify(args)) });
    const t = this._target;
    if (live.failCalls.indexOf(method) >= 0) throw new Error("LiveAPI stub: " + method + " refused");
    if (this.kind === "song" && method === "create_scene") {
      for (const track of live.tracks) track.clip_slots.push(null);
      return;
    }
    if (this.kind === "slot" && method === "create_clip") {
      if (t.track.clip_slots[t.index]) throw new Error("LiveAPI stub: the slot already has a clip");
      if (!(args[1] > 0)) throw new Error("LiveAPI stub: create_clip needs a length > 0");
      t.track.clip_slots[t.index] = { length: args[1], is_midi_clip: 1, name: "", notes: [] };
      return;
    }
    if (this.kind === "clip" && method === "get_notes_extended") {
      if (args.length !== 5) throw new Error("LiveAPI stub: get_notes_extended takes 4 arguments");
      const [fromPitch, pitchSpan, fromTime, timeSpan] = args.slice(1);
      const notes = t.notes.filter(
        (n) => n.pitch >= fromPitch && n.pitch < fromPitch + pitchSpan && n.start_time >= fromTime &&
          n.start_time < fromTime + timeSpan
      );
      return JSON.stringify({ notes: notes });
    }
    if (this.kind === "clip" && method === "add_new_notes") {
      const kind = args[1] instanceof Dict ? "dict" : "object";
      if (live.refuseNotes.indexOf(kind) >= 0) throw new Error("LiveAPI stub: add_new_notes refuses a " + kind);
      const spec = kind === "dict" ? args[1]._data : args[1];
      if (!spec || !Array.isArray(spec.notes)) throw new Error("LiveAPI stub: add_new_notes takes {notes: [...]}");
      const ids = [];
      for (const n of spec.notes) {
        for (const key of ["pitch", "start_time", "duration"]) {
          if (typeof n[key] !== "number") throw new Error("LiveAPI stub: note without " + key);
        }
        const id = live.nextNoteId++;
        t.notes.push(Object.assign({ note_id: id, velocity: 100, mute: 0 }, n));
        ids.push(id);
      }
      return ids;
    }
    throw new Error("LiveAPI stub: unsupported call " + method + " on " + this.unquotedpath);
  };

  function Task(fn, owner) {
    this.fn = fn;
    this.owner = owner;
    this.interval = 0;
    this.running = false;
    this.name = fn.name;
    tasks.push(this);
  }
  Task.prototype.repeat = function () { this.running = true; };
  Task.prototype.cancel = function () { this.running = false; };
  Task.prototype.execute = function () { this.fn.call(this.owner); };

  const context = {
    outlet: function (index) {
      const args = flatten(Array.prototype.slice.call(arguments, 1));
      record({ kind: "outlet", outlet: index, args: args });
      if (context.onOutlet) context.onOutlet(index, args);
    },
    post: function () {
      record({ kind: "post", text: Array.prototype.slice.call(arguments).join(" ") });
    },
    arrayfromargs: function (args) { return Array.prototype.slice.call(args); },
    messagename: "",
    LiveAPI: LiveAPI,
    Dict: Dict,
    Task: Task,
    JSON: JSON,
    Math: Math,
  };
  vm.createContext(context);
  vm.runInContext(fs.readFileSync(sourcePath, "utf8"), context, { filename: sourcePath });

  const max = {
    context: context,
    live: live,
    log: log,
    setBeatSource: function (fn) { nowBeat = fn; },
    // Send a message to the js object's inlet, as Max does: a function of that name, else anything().
    send: function (selector, args) {
      args = args || [];
      context.messagename = selector;
      const fn = Object.prototype.hasOwnProperty.call(context, selector) ? context[selector] : null;
      if (typeof fn === "function" && selector !== "anything") return fn.apply(context, args);
      if (typeof context.anything !== "function") throw new Error("no function for " + selector);
      return context.anything.apply(context, args);
    },
    runTask: function (name) {
      for (const task of tasks) {
        if (task.name === name && task.running) { task.execute(); return true; }
      }
      return false;
    },
    // Change song properties as Live would: observers of a changed property hear about it.
    setSong: function (changes, silent) {
      const changed = Object.keys(changes).filter((key) => live.song[key] !== changes[key]);
      Object.assign(live.song, changes);
      if (silent) return;
      for (const key of changed) {
        for (const api of observers) {
          if (api.kind === "song" && api._property === key) api.callback.call(api, [key, changes[key]]);
        }
      }
    },
    deleteDevice: function () {
      if (typeof context.notifydeleted === "function") context.notifydeleted();
    },
  };
  return max;
}

module.exports = { createMax: createMax };
