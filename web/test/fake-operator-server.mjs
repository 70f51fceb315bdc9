// A stand-in for the operator side of `dragoman serve`, for developing and screenshotting the
// dashboard without the media server: serves a built web client (`/operator` → operator.html), the
// REST calls the dashboard uses (bearer key), and `/v1/health/stream` (a hand-rolled WebSocket, so no
// dependency) with a backlog and a snapshot every second of made-up but plausible numbers.
//
//   node test/fake-operator-server.mjs [--port 8787] [--dist DIR] [--key KEY]
//
// Scenario (today, around the current hour): Booth 1 live with four participants, the interpreter's
// uplink losing ~21%; Booth 2 live and good; Booth 4 live but nobody in yet; earlier calls ended,
// later ones upcoming. Control: POST /fake/drop (close every stream socket), /fake/recover,
// /fake/degrade, /fake/silence?ms=N (stop sending frames for N ms).
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, resolve } from "node:path";

const HOUR = 3600;
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".map": "application/json" };

// ---- minimal WebSocket (RFC 6455) ------------------------------------------------------------

function wsAccept(key) {
  return createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
}

function wsFrame(opcode, payload) {
  const len = payload.length;
  let head;
  if (len < 126) head = Buffer.from([0x80 | opcode, len]);
  else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

class WsConn {
  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.open = true;
    socket.on("data", (d) => this.onData(d));
    socket.on("close", () => (this.open = false));
    socket.on("error", () => (this.open = false));
  }
  sendText(text) {
    if (this.open) this.socket.write(wsFrame(1, Buffer.from(text)));
  }
  close(code = 1001) {
    if (!this.open) return;
    const p = Buffer.alloc(2);
    p.writeUInt16BE(code);
    this.socket.end(wsFrame(8, p));
    this.open = false;
  }
  /** Abrupt loss (no close frame), like a network drop. */
  kill() {
    this.open = false;
    this.socket.destroy();
  }
  onData(d) {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      const opcode = this.buf[0] & 0x0f;
      let len = this.buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (this.buf[1] & 0x80) !== 0;
      const maskOff = off;
      if (masked) off += 4;
      if (this.buf.length < off + len) return;
      const payload = Buffer.from(this.buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= this.buf[maskOff + (i % 4)];
      this.buf = this.buf.subarray(off + len);
      if (opcode === 8) this.close(1000);
      else if (opcode === 9) this.socket.write(wsFrame(10, payload));
    }
  }
}

// ---- scenario ---------------------------------------------------------------------------------

function noise(seed, t) {
  // Smooth deterministic wobble in [-1, 1].
  return Math.sin(t / 7000 + seed) * 0.6 + Math.sin(t / 2300 + seed * 3) * 0.4;
}

function makeScenario(nowSec) {
  const d = new Date(nowSec * 1000);
  const dayStart = new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() / 1000;
  const h = Math.floor((nowSec - dayStart) / HOUR);
  const at = (hour, min = 0) => dayStart + hour * HOUR + min * 60;
  const party = (identity, name, role, languages) => ({ identity, name, role, languages, first_joined_at: null, last_left_at: null, reconnects: 0, average_score: null, worst_score: null, worst_loss_percent: null, packets_expected: null, packets_lost: null });
  const std = (p) => [party(`${p}-company`, "Anna Keller", "company", ["de"]), party(`${p}-buyer`, "Li Wei", "buyer", ["zh"]), party(`${p}-interpreter`, "Marta Rossi", "interpreter", ["de", "zh"])];
  const call = (id, booth, start, end, state, parties, mode = "consecutive") => ({ id, booth, slot_start: start, slot_end: end, mode, state, booked: true, started_at: state === "upcoming" ? null : start + 60, ended_at: state === "ended" ? end - 120 : null, parties });
  const ended = (c, avg, worst, loss) => {
    for (const p of c.parties) Object.assign(p, { first_joined_at: c.slot_start + 60, last_left_at: c.slot_end - 120, average_score: avg, worst_score: worst, worst_loss_percent: loss, packets_expected: 90000, packets_lost: Math.round(900 * loss / 10), reconnects: loss > 5 ? 1 : 0 });
    return c;
  };
  const c1parties = [party("company", "Anna Keller", "company", ["de"]), party("buyer", "Li Wei", "buyer", ["zh"]), party("interpreter", "Marta Rossi", "interpreter", ["de", "zh"]), party("office", "Tom Berg", "office", ["de", "en"])];
  const calls = [
    call("c1", "Booth 1", at(h), at(h + 1), "live", c1parties),
    call("c2", "Booth 2", at(h), at(h + 1, 30), "live", [party("c2-company", "Jonas Weber", "company", ["de"]), party("c2-buyer", "Sofía Pérez", "buyer", ["es"]), party("c2-interpreter", "Clara Nunes", "interpreter", ["de", "es"])]),
    call("c4", "Booth 4", at(h), at(h + 1), "live", std("c4")),
    ended(call("e1", "Booth 1", at(h - 2), at(h - 1), "ended", std("e1")), 4.2, 3.8, 1.2),
    ended(call("e2", "Booth 2", at(h - 1), at(h - 1, 45), "ended", std("e2")), 3.6, 2.4, 9.5),
    ended(call("e3", "Booth 3", at(h - 3), at(h - 3, 30), "ended", std("e3")), 4.3, 4.1, 0.2),
    ended(call("e4", "Booth 3", at(h - 3, 30), at(h - 2), "ended", std("e4")), 4.1, 3.9, 0.6),
    call("u1", "Booth 1", at(h + 1), at(h + 2), "upcoming", std("u1")),
    call("u2", "Booth 3", at(h + 1, 30), at(h + 2, 30), "upcoming", std("u2"), "simultaneous"),
    call("u3", "Booth 5", at(h + 2), at(h + 4), "upcoming", std("u3")),
    call("u4", "Booth 10", at(h + 3), at(h + 4), "upcoming", std("u4")),
    call("u5", "Booth 2", at(h + 2), at(h + 3), "upcoming", std("u5")),
  ];
  return calls;
}

/** Live model of one participant: metrics as functions of time (ms). */
function liveParticipant(id, name, role, seed, degradedUplink) {
  return { id, name, role, seed, degradedUplink, connected: true };
}

export async function startFakeServer({ port = 0, dist, key = "opkey", host = "127.0.0.1" } = {}) {
  const distDir = resolve(dist);
  const startedAt = Date.now();
  const calls = makeScenario(Math.floor(startedAt / 1000));
  const live = {
    c1: [liveParticipant("company", "Anna Keller", "company", 1, false), liveParticipant("buyer", "Li Wei", "buyer", 2, false), liveParticipant("interpreter", "Marta Rossi", "interpreter", 3, true), liveParticipant("office", "Tom Berg", "office", 4, false)],
    c2: [liveParticipant("c2-company", "Jonas Weber", "company", 5, false), liveParticipant("c2-buyer", "Sofía Pérez", "buyer", 6, false), liveParticipant("c2-interpreter", "Clara Nunes", "interpreter", 7, false)],
    c4: [],
  };
  // When the interpreter's uplink started degrading (ms); null = healthy.
  let degradedSince = startedAt - 40_000;
  const events = { c1: [], c2: [], c4: [] };
  for (const [callId, ps] of Object.entries(live)) {
    ps.forEach((p, i) => events[callId].push({ at: startedAt - 280_000 + i * 4000, participant: p.id, kind: "joined", direction: null, detail: "" }));
  }
  events.c2.push({ at: startedAt - 150_000, participant: "c2-buyer", kind: "reconnected", direction: null, detail: "after 3 s" });
  events.c1.push({ at: degradedSince + 3000, participant: "interpreter", kind: "degraded", direction: "uplink", detail: "loss 21%" });
  let silentUntil = 0;

  const isDegraded = (p, t) => p.degradedUplink && degradedSince !== null && t >= degradedSince;

  function metrics(p, t) {
    const n = noise(p.seed, t);
    const bad = isDegraded(p, t);
    const upLoss = bad ? 20 + 3 * n : Math.max(0, 0.3 + 0.3 * n);
    const up = {
      score: bad ? 2.3 + 0.2 * n : 4.3 + 0.1 * n,
      bitrate_kbps: bad ? 420 + 60 * n : 1450 + 120 * n + p.seed * 40,
      loss_percent: Math.round(upLoss * 10) / 10,
      jitter_ms: bad ? 38 + 8 * n : 6 + 2 * n,
      rtt_ms: 42 + 6 * n + p.seed * 3,
      nacks: bad ? 180 : 2,
      plis: bad ? 4 : 0,
      fps: bad ? 14 : 30,
      freezes: bad ? 1 : 0,
      audio_level: 0.2,
    };
    const down = {
      score: 4.2 + 0.1 * n,
      bitrate_kbps: 2900 + 200 * n,
      loss_percent: Math.round(Math.max(0, 0.2 + 0.2 * n) * 10) / 10,
      jitter_ms: 7 + 2 * n,
      rtt_ms: 42 + 6 * n + p.seed * 3,
      nacks: 1,
      plis: 0,
    };
    return { up, down, score: Math.min(up.score, down.score) };
  }

  function participantHealth(p, t) {
    const m = metrics(p, t);
    const round = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === "number" ? Math.round(v * 10) / 10 : v]));
    return { id: p.id, name: p.name, role: p.role, connected: p.connected, score: Math.round(m.score * 10) / 10, status: isDegraded(p, t) ? "degraded" : "good", uplink: round(m.up), downlink: round(m.down) };
  }

  function snapshot(t) {
    return {
      type: "snapshot",
      at: t,
      calls: Object.entries(live).map(([id, ps]) => {
        const c = calls.find((x) => x.id === id);
        const participants = ps.map((p) => participantHealth(p, t));
        const health = participants.length === 0 ? "idle" : participants.some((p) => p.status !== "good") ? "degraded" : "good";
        return { id, booth: c.booth, slot_start: c.slot_start, slot_end: c.slot_end, health, participants, events: events[id].slice(-50) };
      }),
    };
  }

  function backlog(now) {
    const out = {};
    for (const [id, ps] of Object.entries(live)) {
      out[id] = {};
      for (const p of ps) {
        const s = { t: [], uplink_kbps: [], downlink_kbps: [], loss_percent: [], jitter_ms: [], rtt_ms: [], score: [] };
        for (let t = now - 300_000; t < now; t += 1000) {
          const m = metrics(p, t);
          const gap = p.id === "buyer" && t > now - 200_000 && t < now - 195_000; // a short outage
          s.t.push(t);
          s.uplink_kbps.push(gap ? null : Math.round(m.up.bitrate_kbps));
          s.downlink_kbps.push(gap ? null : Math.round(m.down.bitrate_kbps));
          s.loss_percent.push(gap ? null : Math.max(m.up.loss_percent, m.down.loss_percent));
          s.jitter_ms.push(gap ? null : Math.round(Math.max(m.up.jitter_ms, m.down.jitter_ms)));
          s.rtt_ms.push(gap ? null : Math.round(m.up.rtt_ms));
          s.score.push(Math.round(m.score * 10) / 10);
        }
        out[id][p.id] = s;
      }
    }
    return { type: "backlog", calls: out };
  }

  const conns = new Set();
  const timer = setInterval(() => {
    const t = Date.now();
    if (t < silentUntil) return;
    const text = JSON.stringify(snapshot(t));
    for (const c of conns) c.sendText(text);
  }, 1000);

  function pushEvent(callId, e) {
    events[callId].push(e);
    const text = JSON.stringify({ type: "event", call: callId, event: e });
    for (const c of conns) c.sendText(text);
  }

  const authorized = (req, url) => req.headers.authorization === `Bearer ${key}` || url.searchParams.get("api_key") === key;
  const json = (res, status, body) => {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    const path = url.pathname;
    try {
      if (path.startsWith("/fake/")) {
        if (path === "/fake/drop") for (const c of conns) c.kill();
        if (path === "/fake/recover" && degradedSince !== null) {
          degradedSince = null;
          pushEvent("c1", { at: Date.now(), participant: "interpreter", kind: "recovered", direction: "uplink", detail: "loss 0.3%" });
        }
        if (path === "/fake/degrade") {
          degradedSince = Date.now();
          pushEvent("c1", { at: Date.now(), participant: "interpreter", kind: "degraded", direction: "uplink", detail: "loss 21%" });
        }
        if (path === "/fake/silence") silentUntil = Date.now() + Number(url.searchParams.get("ms") ?? 8000);
        return json(res, 200, { ok: true, connections: conns.size });
      }
      if (path.startsWith("/v1/")) {
        if (!authorized(req, url)) return json(res, 401, { code: "unauthorized", message: "missing or wrong API key" });
        const m = path.match(/^\/v1\/calls\/([^/]+)(\/end|\/export\.csv)?$/);
        if (path === "/v1/calls" && req.method === "GET") {
          const date = url.searchParams.get("date");
          let list = calls;
          if (date !== null) {
            const from = Date.parse(`${date}T00:00:00Z`) / 1000;
            if (Number.isNaN(from)) return json(res, 400, { code: "invalid_filter", message: `date "${date}" is not YYYY-MM-DD` });
            list = calls.filter((c) => c.slot_start >= from && c.slot_start < from + 86_400);
          }
          return json(res, 200, { calls: list });
        }
        if (m !== null) {
          const c = calls.find((x) => x.id === decodeURIComponent(m[1]));
          if (c === undefined) return json(res, 404, { code: "unknown_call", message: `no call "${m[1]}"` });
          if (m[2] === "/end" && req.method === "POST") {
            c.state = "ended";
            c.ended_at = Math.floor(Date.now() / 1000);
            delete live[c.id];
            return json(res, 200, c);
          }
          if (m[2] === "/export.csv") {
            res.writeHead(200, { "content-type": "text/csv", "content-disposition": `attachment; filename="${c.id}.csv"` });
            return res.end("identity,name,role\n" + c.parties.map((p) => `${p.identity},${p.name},${p.role}`).join("\n") + "\n");
          }
          if (m[2] === undefined && req.method === "GET") {
            const ps = live[c.id];
            return json(res, 200, { ...c, live: ps ? { participants: ps.map((p) => ({ id: p.id, name: p.name, role: p.role, connected: p.connected, publications: 2 })) } : null });
          }
        }
        return json(res, 404, { code: "not_found", message: "no such endpoint" });
      }
      const file = path === "/operator" ? "operator.html" : path === "/join" ? "join.html" : path.slice(1);
      if (file.includes("..") || file === "") {
        res.writeHead(404);
        return res.end();
      }
      const body = await readFile(join(distDir, file));
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-cache" });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end("not found\n");
    }
  });

  server.on("upgrade", (req, socket) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname !== "/v1/health/stream" || url.searchParams.get("api_key") !== key) {
      socket.end("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${wsAccept(req.headers["sec-websocket-key"])}\r\n\r\n`,
    );
    const conn = new WsConn(socket);
    conns.add(conn);
    socket.on("close", () => conns.delete(conn));
    conn.sendText(JSON.stringify(backlog(Date.now())));
  });

  await new Promise((ok) => server.listen(port, host, ok));
  const address = server.address();
  return {
    url: `http://${host}:${address.port}`,
    key,
    connections: () => conns.size,
    async close() {
      clearInterval(timer);
      for (const c of conns) c.kill();
      await new Promise((ok) => server.close(ok));
    },
  };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : fallback;
  };
  const s = await startFakeServer({ port: Number(arg("--port", "8787")), dist: arg("--dist", "dist"), key: arg("--key", "opkey") });
  console.log(`fake operator server on ${s.url}/operator?key=${s.key}`);
}
