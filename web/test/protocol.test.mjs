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
  assert.deepEqual(parseServerMessage('{"type":"routing","gains":{}}'), { type: "unknown", rawType: "routing" });
  assert.deepEqual(parseServerMessage('{"type":"speaking","participant":"a"}'), { type: "unknown", rawType: "speaking" });
});

test("malformed frames throw MalformedMessage", () => {
  for (const bad of ["", "nope", "[]", "42", '{"no":"type"}', '{"type":"offer","transport":"x","sdp":"","tracks":[]}', '{"type":"joined"}', '{"type":"publication_added","publication":{"id":"P","participant":"a","kind":"smell","source":"camera"}}']) {
    assert.throws(() => parseServerMessage(bad), MalformedMessage, bad);
  }
});
