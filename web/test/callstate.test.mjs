import assert from "node:assert/strict";
import { test } from "node:test";
import { CallState, comparePublicationIds } from "./.build/callstate.js";

const me = { id: "buyer-1", name: "Somchai", role: "buyer", languages: ["th"] };
const kim = { id: "company-1", name: "Kim Minji", role: "company", languages: ["ko"] };
const lee = { id: "interp-1", name: "Lee Jiwoo", role: "interpreter", languages: ["ko", "th"] };
const pub = (id, participant, kind) => ({ id, participant, kind, source: kind === "audio" ? "microphone" : "camera" });

function joined(extra = {}) {
  return {
    type: "joined",
    call: { id: "c" },
    participant: me,
    participants: [kim],
    publications: [pub("PB_1", kim.id, "audio"), pub("PB_2", kim.id, "video")],
    ice_servers: [],
    ...extra,
  };
}

test("a fresh join wants every publication of the others", () => {
  const s = new CallState();
  assert.deepEqual(s.applyJoined(joined()), { resumed: false });
  assert.deepEqual(s.subscriptionDiff(), { subscribe: ["PB_1", "PB_2"], unsubscribe: [] });
  s.markSubscribed(["PB_1", "PB_2"]);
  assert.deepEqual(s.subscriptionDiff(), { subscribe: [], unsubscribe: [] });
  assert.deepEqual(s.tiles(), [
    { participant: kim.id, name: kim.name, role: "company", videoVisible: true, videoPublication: "PB_2", audioPublications: ["PB_1"] },
  ]);
});

test("hiding a participant's video unsubscribes only the video; showing resubscribes", () => {
  const s = new CallState();
  s.applyJoined(joined());
  s.markSubscribed(["PB_1", "PB_2"]);
  s.setVideoHidden(kim.id, true);
  assert.deepEqual(s.subscriptionDiff(), { subscribe: [], unsubscribe: ["PB_2"] });
  s.markUnsubscribed(["PB_2"]);
  assert.equal(s.tiles()[0].videoVisible, false);
  // A new video publication of a hidden participant is not subscribed either.
  s.apply({ type: "publication_added", publication: pub("PB_5", kim.id, "video") });
  assert.deepEqual(s.subscriptionDiff(), { subscribe: [], unsubscribe: [] });
  s.setVideoHidden(kim.id, false);
  assert.deepEqual(s.subscriptionDiff(), { subscribe: ["PB_2", "PB_5"], unsubscribe: [] });
});

test("participants and publications come and go", () => {
  const s = new CallState();
  s.applyJoined(joined());
  s.markSubscribed(["PB_1", "PB_2"]);
  assert.equal(s.apply({ type: "participant_joined", participant: lee }), true);
  assert.equal(s.apply({ type: "publication_added", publication: pub("PB_3", lee.id, "audio") }), true);
  assert.deepEqual(s.subscriptionDiff().subscribe, ["PB_3"]);
  s.apply({ type: "publication_removed", publication: "PB_2" });
  assert.equal(s.subscribed.has("PB_2"), false);
  assert.equal(s.tiles()[0].videoPublication, null);
  s.apply({ type: "quality", participants: [{ participant: kim.id, quality: "good" }] });
  s.apply({ type: "participant_left", participant: kim.id, reason: "left" });
  assert.deepEqual(s.tiles().map((t) => t.participant), [lee.id]);
  assert.equal(s.publications.has("PB_1"), false);
  assert.equal(s.subscribed.has("PB_1"), false);
  assert.equal(s.quality.has(kim.id), false);
  // Own notices are ignored.
  assert.equal(s.apply({ type: "publication_added", publication: pub("PB_9", me.id, "audio") }), false);
  assert.equal(s.apply({ type: "participant_joined", participant: me }), false);
  assert.equal(s.apply({ type: "unknown", rawType: "routing" }), false);
});

test("offers map mids to publications", () => {
  const s = new CallState();
  s.applyJoined(joined());
  s.apply({ type: "offer", transport: "subscriber", sdp: "", tracks: [{ mid: "MpY", publication: "PB_1" }] });
  assert.equal(s.publicationForMid("MpY").id, "PB_1");
  assert.equal(s.publicationForMid("zzz"), undefined);
  assert.equal(s.publicationForMid(null), undefined);
});

test("a resumed join keeps subscriptions, own publications and mids", () => {
  const s = new CallState();
  s.applyJoined(joined());
  s.apply({ type: "offer", transport: "subscriber", sdp: "", tracks: [{ mid: "MpY", publication: "PB_1" }] });
  s.setVideoHidden(kim.id, true);
  const r = s.applyJoined(
    joined({
      resumed: true,
      subscriptions: ["PB_1", "PB_404"],
      own_publications: [pub("PB_7", me.id, "audio")],
      participants: [kim, lee],
      publications: [pub("PB_1", kim.id, "audio"), pub("PB_2", kim.id, "video"), pub("PB_3", lee.id, "audio")],
    }),
  );
  assert.deepEqual(r, { resumed: true });
  assert.deepEqual([...s.subscribed], ["PB_1"]);
  assert.deepEqual([...s.own.keys()], ["PB_7"]);
  assert.equal(s.publicationForMid("MpY").id, "PB_1");
  // The hidden choice survives; only the newcomer's audio is missing.
  assert.deepEqual(s.subscriptionDiff(), { subscribe: ["PB_3"], unsubscribe: [] });
});

test("a fresh (not resumed) rejoin forgets transport state but keeps the user's choices", () => {
  const s = new CallState();
  s.applyJoined(joined());
  s.markSubscribed(["PB_1"]);
  s.addOwn(pub("PB_7", me.id, "audio"));
  s.apply({ type: "offer", transport: "subscriber", sdp: "", tracks: [{ mid: "MpY", publication: "PB_1" }] });
  s.setVideoHidden(kim.id, true);
  s.applyJoined(joined({ resumed: false, publications: [pub("PB_11", kim.id, "audio"), pub("PB_12", kim.id, "video")] }));
  assert.equal(s.subscribed.size, 0);
  assert.equal(s.own.size, 0);
  assert.equal(s.mids.size, 0);
  assert.deepEqual(s.subscriptionDiff(), { subscribe: ["PB_11"], unsubscribe: [] });
});

test("an unsubscribe is only asked for publications that still exist", () => {
  const s = new CallState();
  s.applyJoined(joined());
  s.markSubscribed(["PB_1", "PB_2"]);
  s.setVideoHidden(kim.id, true);
  s.apply({ type: "publication_removed", publication: "PB_2" });
  assert.deepEqual(s.subscriptionDiff(), { subscribe: [], unsubscribe: [] });
});

test("publication ids sort numerically", () => {
  assert.deepEqual(["PB_10", "PB_2", "PB_1"].sort(comparePublicationIds), ["PB_1", "PB_2", "PB_10"]);
  assert.deepEqual(["b", "a"].sort(comparePublicationIds), ["a", "b"]);
});

test("clearRemote forgets everyone but keeps the user's choices", () => {
  const s = new CallState();
  s.applyJoined(joined());
  s.markSubscribed(["PB_1"]);
  s.setVideoHidden(kim.id, true);
  s.apply({ type: "quality", participants: [{ participant: kim.id, quality: "good" }] });
  s.clearRemote();
  assert.deepEqual(s.tiles(), []);
  assert.equal(s.subscribed.size, 0);
  assert.equal(s.quality.size, 0);
  assert.equal(s.hiddenVideo.has(kim.id), true);
});
