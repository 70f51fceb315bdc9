import assert from "node:assert/strict";
import { test } from "node:test";
import { MalformedMessage, parseServerMessage } from "./.build/protocol.js";

// The `joined` example from docs/protocol.md §7.
const joinedExample = `{"type": "joined", "id": 1, "call": {"id": "booth-3-0900"}, "participant": {"id": "buyer-1", "name": "Somchai", "role": "buyer", "languages": ["th"]}, "participants": [{"id": "company-1", "name": "Kim Minji", "role": "company", "languages": ["ko"]}, {"id": "interp-1", "name": "Lee Jiwoo", "role": "interpreter", "languages": ["ko", "th"]}], "publications": [{"id": "PB_1", "participant": "company-1", "kind": "audio", "source": "microphone", "channel": "floor"}, {"id": "PB_2", "participant": "company-1", "kind": "video", "source": "camera", "layers": ["q", "h", "f"]}, {"id": "PB_3", "participant": "interp-1", "kind": "audio", "source": "microphone", "channel": "th"}], "ice_servers": [{"urls": ["stun:stun.example.net:3478"]}, {"urls": ["turn:turn.example.net:3478?transport=udp"], "username": "dragoman", "credential": "s3cr3t-turn-pass"}]}`;

test("parses the documented joined message", () => {
  const m = parseServerMessage(joinedExample);
  assert.equal(m.type, "joined");
  assert.equal(m.id, 1);
  assert.equal(m.call.id, "booth-3-0900");
  assert.equal(m.participant.id, "buyer-1");
  assert.equal(m.participants.length, 2);
  assert.deepEqual(m.publications[1], { id: "PB_2", participant: "company-1", kind: "video", source: "camera", layers: ["q", "h", "f"] });
  assert.equal(m.publications[0].channel, "floor");
  assert.deepEqual(m.ice_servers[1], { urls: ["turn:turn.example.net:3478?transport=udp"], username: "dragoman", credential: "s3cr3t-turn-pass" });
  assert.equal(m.resumed, undefined);
});

test("parses resume fields of joined", () => {
  const raw = JSON.parse(joinedExample);
  raw.resumed = true;
  raw.subscriptions = ["PB_1"];
  raw.own_publications = [{ id: "PB_9", participant: "buyer-1", kind: "audio", source: "microphone", channel: "floor" }];
  const m = parseServerMessage(JSON.stringify(raw));
  assert.equal(m.resumed, true);
  assert.deepEqual(m.subscriptions, ["PB_1"]);
  assert.equal(m.own_publications[0].id, "PB_9");
});

test("parses the other server messages", () => {
  assert.deepEqual(parseServerMessage('{"type":"ok","id":4}'), { type: "ok", id: 4 });
  assert.deepEqual(parseServerMessage('{"type":"pong","id":"hb-42"}'), { type: "pong", id: "hb-42" });
  assert.deepEqual(parseServerMessage('{"type":"ok"}'), { type: "ok" });
  const offer = parseServerMessage('{"type":"offer","transport":"subscriber","sdp":"v=0","tracks":[{"mid":"MpY","publication":"PB_1"}]}');
  assert.deepEqual(offer.tracks, [{ mid: "MpY", publication: "PB_1" }]);
  assert.equal(parseServerMessage('{"type":"answer","id":2,"transport":"publisher","sdp":"v=0"}').sdp, "v=0");
  assert.equal(parseServerMessage('{"type":"published","id":3,"publication":{"id":"PB_7","participant":"b","kind":"audio","source":"microphone","channel":"floor"}}').publication.id, "PB_7");
  assert.deepEqual(parseServerMessage('{"type":"participant_left","participant":"office-1","reason":"disconnected"}'), { type: "participant_left", participant: "office-1", reason: "disconnected" });
  assert.deepEqual(parseServerMessage('{"type":"publication_removed","publication":"PB_8"}'), { type: "publication_removed", publication: "PB_8" });
  assert.deepEqual(parseServerMessage('{"type":"error","id":4,"code":"unknown_publication","message":"no"}'), { type: "error", id: 4, code: "unknown_publication", message: "no" });
});

test("parses quality reports, tolerating unknown levels", () => {
  const m = parseServerMessage('{"type":"quality","participants":[{"participant":"buyer","quality":"excellent","loss_percent":0.4,"rtt_ms":23},{"participant":"x","quality":"weird"}]}');
  assert.deepEqual(m.participants[0], { participant: "buyer", quality: "excellent", loss_percent: 0.4, rtt_ms: 23 });
  assert.equal(m.participants[1].quality, "poor");
});

test("unknown types are reported as unknown, not errors", () => {
  assert.deepEqual(parseServerMessage('{"type":"captions","text":"hi"}'), { type: "unknown", rawType: "captions" });
  assert.deepEqual(parseServerMessage('{"type":"speaking","participant":"a"}'), { type: "unknown", rawType: "speaking" });
});

test("malformed frames throw MalformedMessage", () => {
  for (const bad of ["", "nope", "[]", "42", '{"no":"type"}', '{"type":"offer","transport":"x","sdp":"","tracks":[]}', '{"type":"joined"}', '{"type":"publication_added","publication":{"id":"P","participant":"a","kind":"smell","source":"camera"}}']) {
    assert.throws(() => parseServerMessage(bad), MalformedMessage, bad);
  }
});

// The two `routing` examples from docs/protocol.md §7.
const buyerRouting = `{"type": "routing", "participant": "buyer-1", "mode": "simultaneous", "ramp_ms": 300, "routes": [{"publication": "PB_1", "participant": "company-1", "channel": "floor", "gain": 0.2, "priority": "floor"}, {"publication": "PB_5", "participant": "office-1", "channel": "th", "gain": 1.0, "priority": "interpretation"}], "summary": {"listening": "th", "live_channel": "th", "floor_gain": 0.2}}`;
const officeRouting = `{"type": "routing", "participant": "office-1", "mode": "simultaneous", "ramp_ms": 300, "routes": [{"publication": "PB_1", "participant": "company-1", "channel": "floor", "gain": 0.2, "priority": "floor"}, {"publication": "PB_3", "participant": "interp-1", "channel": "en", "gain": 1.0, "priority": "interpretation"}, {"publication": "PB_7", "participant": "buyer-1", "channel": "floor", "gain": 0.2, "priority": "floor"}], "summary": {"listening": null, "live_channel": "en", "floor_gain": 0.2, "booth": {"pair": ["en", "th"], "output": "th", "input": "en", "on_air": true, "live": true}}}`;

test("parses the documented routing messages (listener and relaying office)", () => {
  const buyer = parseServerMessage(buyerRouting);
  assert.deepEqual(buyer, {
    type: "routing",
    participant: "buyer-1",
    mode: "simultaneous",
    ramp_ms: 300,
    routes: [
      { publication: "PB_1", participant: "company-1", channel: "floor", gain: 0.2, priority: "floor" },
      { publication: "PB_5", participant: "office-1", channel: "th", gain: 1, priority: "interpretation" },
    ],
    summary: { listening: "th", live_channel: "th", floor_gain: 0.2 },
  });
  const office = parseServerMessage(officeRouting);
  assert.equal(office.summary.listening, null);
  assert.deepEqual(office.summary.booth, { pair: ["en", "th"], output: "th", input: "en", on_air: true, live: true, handovers: [] });
});

test("routing: optional booth fields, handovers, and tolerated oddities", () => {
  const raw = JSON.parse(officeRouting);
  raw.summary.booth.output_held_by = "interp-1";
  raw.summary.booth.handovers = [{ from: "office-2", to: "office-1" }];
  raw.routes[0].gain = 1.7; // never sent; forced into 0–1
  raw.routes[1].priority = "something-new";
  raw.mode = "future-mode";
  const m = parseServerMessage(JSON.stringify(raw));
  assert.equal(m.summary.booth.output_held_by, "interp-1");
  assert.deepEqual(m.summary.booth.handovers, [{ from: "office-2", to: "office-1" }]);
  assert.equal(m.routes[0].gain, 1);
  assert.equal(m.routes[1].priority, "floor");
  assert.equal(m.mode, "consecutive");
  // An operator's routing: nothing routed, no listening language.
  const operator = parseServerMessage('{"type":"routing","participant":"op","mode":"simultaneous","ramp_ms":300,"routes":[],"summary":{"listening":null,"live_channel":null,"floor_gain":0}}');
  assert.deepEqual(operator.routes, []);
  assert.equal(operator.summary.booth, undefined);
});

test("routing: malformed entries are refused, not half-used", () => {
  assert.throws(() => parseServerMessage('{"type":"routing","participant":"a","mode":"simultaneous","ramp_ms":300,"routes":{},"summary":{"floor_gain":1}}'), MalformedMessage);
  assert.throws(() => parseServerMessage('{"type":"routing","participant":"a","mode":"simultaneous","ramp_ms":300,"routes":[{"publication":"PB_1","participant":"b","channel":"floor","gain":"loud"}],"summary":{"floor_gain":1}}'), MalformedMessage);
  assert.throws(() => parseServerMessage('{"type":"routing","participant":"a","mode":"simultaneous","ramp_ms":300,"routes":[]}'), MalformedMessage);
  assert.throws(() => parseServerMessage('{"type":"routing","participant":"a","mode":"simultaneous","ramp_ms":300,"routes":[],"summary":{"floor_gain":1,"booth":{"pair":["en"],"output":"en","input":"floor"}}}'), MalformedMessage);
});
