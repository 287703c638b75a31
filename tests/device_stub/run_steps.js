// Run the device JS through a list of steps (JSON on stdin) and print the event log (JSON).
//
// Steps: {"op": "send", "selector": s, "args": [...]}, {"op": "song", ...song properties},
//        ("silent": true: observers are not told, as if Live missed a notification),
//        {"op": "clock"}, {"op": "poll"}, {"op": "delete"}, {"op": "select", "clip": [track, slot]},
//        {"op": "mark", "label": s}.
// Output: {"log": [...events...], "tracks": the Live set's tracks at the end}.
"use strict";

const path = require("path");
const { createMax } = require("./max_stub");

function main() {
  const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const source = input.source || path.join(__dirname, "..", "..", "max_for_live", "musebridge.js");
  const max = createMax(source, input.live || {});
  for (const step of input.steps) {
    if (step.op === "send") max.send(step.selector, step.args || []);
    else if (step.op === "song") {
      const changes = {};
      for (const key of Object.keys(step)) if (key !== "op" && key !== "silent") changes[key] = step[key];
      max.setSong(changes, Boolean(step.silent));
    } else if (step.op === "clock") max.runTask("onClock");
    else if (step.op === "poll") max.runTask("onPoll");
    else if (step.op === "delete") max.deleteDevice();
    else if (step.op === "select") max.live.detailClip = step.clip;
    else if (step.op === "mark") max.log.push({ kind: "mark", label: step.label });
    else throw new Error("unknown step " + JSON.stringify(step));
  }
  process.stdout.write(JSON.stringify({ log: max.log, tracks: max.live.tracks }));
}

main();
