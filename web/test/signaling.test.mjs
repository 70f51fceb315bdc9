import assert from "node:assert/strict";
import { test } from "node:test";

/** A stand-in for the browser's WebSocket: records sends, lets the test play the server. */
class FakeSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static last = null;
  constructor(url) {
    this.url = url;
    this.readyState = FakeSocket.CONNECTING;
    this.sent = [];
    FakeSocket.last = this;
    setTimeout(() => {
      this.readyState = FakeSocket.OPEN;
      this.onopen?.({});
    }, 0);
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000, reason = "") {
    if (this.readyState === FakeSocket.CLOSED) return;
    this.readyState = FakeSocket.CLOSED;
    this.onclose?.({ code, reason });
  }
  serverSends(message) {
    this.onmessage?.({ data: typeof message === "string" ? message : JSON.stringify(message) });
  }
  serverCloses(code, reason = "") {
    this.readyState = FakeSocket.CLOSED;
    this.onclose?.({ code, reason });
  }
}
globalThis.WebSocket = FakeSocket;
const { SignalClient, SignalError } = await import("./.build/signaling.js");

async function connected() {
  const pushed = [];
  const closes = [];
  const client = await SignalClient.connect("ws://test/v1/signal", {
    onMessage: (m) => pushed.push(m),
    onClose: (code, reason) => closes.push([code, reason]),
  });
  return { client, socket: FakeSocket.last, pushed, closes };
}

test("requests get increasing ids, in call order, and resolve with their own reply", async () => {
  const { client, socket } = await connected();
  const a = client.request({ type: "join", token: "t" });
  const b = client.request({ type: "subscribe", publications: ["PB_1"] });
  assert.deepEqual(socket.sent, [
    { type: "join", token: "t", id: 1 },
    { type: "subscribe", publications: ["PB_1"], id: 2 },
  ]);
  socket.serverSends({ type: "ok", id: 2 });
  socket.serverSends({ type: "joined", id: 1, call: { id: "c" }, participant: { id: "p", name: "P", role: "buyer" }, participants: [], publications: [], ice_servers: [] });
  assert.equal((await a).type, "joined");
  assert.deepEqual(await b, { type: "ok", id: 2 });
  client.close();
});

test("an error reply rejects with its code; pushes and unknown types go to onMessage", async () => {
  const { client, socket, pushed } = await connected();
  const r = client.request({ type: "subscribe", publications: ["PB_404"] });
  socket.serverSends({ type: "publication_added", publication: { id: "PB_3", participant: "x", kind: "audio", source: "microphone" } });
  socket.serverSends({ type: "speaking", whatever: 1 });
  socket.serverSends({ type: "routing", whatever: 1 }); // a known type, malformed: dropped
  socket.serverSends("not json at all");
  socket.serverSends({ type: "error", code: "rate_limited", message: "slow down" });
  socket.serverSends({ type: "error", id: 1, code: "unknown_publication", message: "no PB_404" });
  await assert.rejects(r, (e) => e instanceof SignalError && e.code === "unknown_publication" && e.message === "no PB_404");
  assert.deepEqual(pushed.map((m) => m.type), ["publication_added", "unknown", "error"]);
  client.close();
});

test("a close rejects pending requests and is reported once", async () => {
  const { client, socket, closes } = await connected();
  const r = client.request({ type: "ping" });
  socket.serverCloses(4005, "reconnect requested");
  await assert.rejects(r, (e) => e instanceof SignalError && e.code === "closed");
  client.close();
  assert.deepEqual(closes, [[4005, "reconnect requested"]]);
  assert.equal(client.isOpen, false);
  await assert.rejects(client.request({ type: "ping" }), (e) => e.code === "not_connected");
  client.send({ type: "leave" }); // ignored, no throw
  assert.equal(socket.sent.length, 1);
});

test("sends without an id for fire-and-forget messages", async () => {
  const { client, socket } = await connected();
  client.send({ type: "candidate", transport: "publisher", candidate: { candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host" } });
  assert.equal(socket.sent[0].id, undefined);
  client.close();
});
