// Minimal OSC 1.0 encoder/decoder for the device tests (test code only, not part of the device).
// Numbers are typed the way Max types a js outlet's atoms: integral -> int32 'i', else float32 'f'.
"use strict";

function pad4(buffer) {
  const padded = Buffer.alloc(Math.ceil((buffer.length + 1) / 4) * 4);
  buffer.copy(padded);
  return padded;
}

function oscString(text) {
  return pad4(Buffer.from(String(text), "utf8"));
}

function encodeMessage(address, args) {
  let tags = ",";
  const parts = [];
  for (const arg of args) {
    if (typeof arg === "string") {
      tags += "s";
      parts.push(oscString(arg));
    } else if (Number.isInteger(arg)) {
      tags += "i";
      const b = Buffer.alloc(4);
      b.writeInt32BE(arg);
      parts.push(b);
    } else {
      tags += "f";
      const b = Buffer.alloc(4);
      b.writeFloatBE(arg);
      parts.push(b);
    }
  }
  return Buffer.concat([oscString(address), oscString(tags), ...parts]);
}

function readString(buffer, offset) {
  let end = offset;
  while (end < buffer.length && buffer[end] !== 0) end++;
  const text = buffer.toString("utf8", offset, end);
  return [text, Math.ceil((end + 1) / 4) * 4];
}

// Returns a list of [address, args] (bundles are flattened).
function decodePacket(buffer) {
  const [head, afterHead] = readString(buffer, 0);
  if (head === "#bundle") {
    const messages = [];
    let offset = afterHead + 8; // timetag
    while (offset + 4 <= buffer.length) {
      const size = buffer.readInt32BE(offset);
      messages.push(...decodePacket(buffer.subarray(offset + 4, offset + 4 + size)));
      offset += 4 + size;
    }
    return messages;
  }
  let [tags, offset] = readString(buffer, afterHead);
  const args = [];
  for (const tag of tags.slice(1)) {
    if (tag === "i") { args.push(buffer.readInt32BE(offset)); offset += 4; }
    else if (tag === "f") { args.push(buffer.readFloatBE(offset)); offset += 4; }
    else if (tag === "d") { args.push(buffer.readDoubleBE(offset)); offset += 8; }
    else if (tag === "h") { args.push(Number(buffer.readBigInt64BE(offset))); offset += 8; }
    else if (tag === "s") { const [text, next] = readString(buffer, offset); args.push(text); offset = next; }
    else if (tag === "T") args.push(1);
    else if (tag === "F") args.push(0);
    else throw new Error("osc_codec: unsupported type tag " + tag);
  }
  return [[head, args]];
}

module.exports = { encodeMessage: encodeMessage, decodePacket: decodePacket };
