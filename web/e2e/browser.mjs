// Headless Chromium (Debian's /usr/bin/chromium through playwright-core), participant pages, and the
// in-page probes the end-to-end tests read: `getStats()` per remote participant, the publisher's
// outbound layers, the tile layout. The functions passed to `page.evaluate` run in the page.
/* global window, document, MediaStream */
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      "--allow-loopback-in-peer-connection",
      "--autoplay-policy=no-user-gesture-required",
    ],
  });
}

/**
 * A page in a new browser context (a separate profile: one per participant), with a 10 s default
 * timeout. Uncaught page errors go to `onPageError(message)`, `console.error` output to
 * `onConsoleError(text)`.
 */
export async function newPage(browser, { viewport = { width: 1280, height: 800 }, onPageError, onConsoleError } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  if (onPageError !== undefined) page.on("pageerror", (e) => onPageError(e.message));
  if (onConsoleError !== undefined) {
    page.on("console", (m) => {
      if (m.type() === "error") onConsoleError(m.text());
    });
  }
  return page;
}

/** Opens the server's own join page (`http://HTTP/join?token=…`, signaling on the default /v1/signal) in `page`. */
export function gotoJoin(page, http, token) {
  return page.goto(`http://${http}/join?token=${token}`, { timeout: 10_000 });
}

/** A new page (`newPage` options) on a participant's join page (`gotoJoin`). */
export async function openParticipantPage(browser, http, token, options) {
  const page = await newPage(browser, options);
  await gotoJoin(page, http, token);
  return page;
}

/** Polls a page predicate (bounded). */
export async function waitInPage(page, what, timeoutMs, fn, arg) {
  try {
    return await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 100 });
  } catch (e) {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${String(e.message).split("\n")[0]}`, { cause: e });
  }
}

/**
 * What the page receives from each other participant, keyed by participant id:
 * `{ video: { mid, bytes, frames, width, height } | null, audio: [{ mid, bytes }] }`.
 * Tracks are found through the tile's `<video>` and the tile's `<audio>` sinks, then matched to the
 * subscriber connection's transceivers and `inbound-rtp` stats by mid. `extraMids` adds stats for mids
 * whose element is detached (a hidden video), under `byMid`.
 */
export function receivedByParticipant(page, extraMids = []) {
  return page.evaluate(async (extraMids) => {
    const pc = window.dragoman.subscriberPc;
    if (pc === null) return { participants: {}, byMid: {} };
    const midOfTrack = new Map();
    for (const t of pc.getTransceivers()) if (t.mid !== null) midOfTrack.set(t.receiver.track.id, t.mid);
    const inbound = new Map();
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.mid !== undefined) inbound.set(s.mid, s);
    });
    const read = (mid) => {
      const s = inbound.get(mid);
      return {
        mid,
        bytes: s?.bytesReceived ?? 0,
        frames: s?.framesDecoded ?? 0,
        width: s?.frameWidth ?? 0,
        height: s?.frameHeight ?? 0,
      };
    };
    const participants = {};
    for (const tile of document.querySelectorAll(".tile:not(.self)")) {
      const id = tile.dataset.participant;
      const video = tile.querySelector("video");
      const videoTrack = video.srcObject instanceof MediaStream ? video.srcObject.getVideoTracks()[0] : undefined;
      const videoMid = videoTrack === undefined ? undefined : midOfTrack.get(videoTrack.id);
      const audio = [];
      for (const el of tile.querySelectorAll(".audio-sinks audio")) {
        const track = el.srcObject instanceof MediaStream ? el.srcObject.getAudioTracks()[0] : undefined;
        const mid = track === undefined ? undefined : midOfTrack.get(track.id);
        if (mid !== undefined) audio.push({ publication: el.dataset.publication, ...read(mid) });
      }
      participants[id] = { video: videoMid === undefined ? null : read(videoMid), audio };
    }
    const byMid = {};
    for (const mid of extraMids) byMid[mid] = read(mid);
    return { participants, byMid };
  }, extraMids);
}

/** The publisher connection's `outbound-rtp` entries: `{ kind, rid, bytes, frames, width, height }`. */
export function sentLayers(page) {
  return page.evaluate(async () => {
    const pc = window.dragoman.publisherPc;
    if (pc === null) return [];
    const out = [];
    (await pc.getStats()).forEach((s) => {
      if (s.type === "outbound-rtp") {
        out.push({
          kind: s.kind,
          rid: s.rid ?? null,
          bytes: s.bytesSent ?? 0,
          frames: s.framesEncoded ?? 0,
          width: s.frameWidth ?? 0,
          height: s.frameHeight ?? 0,
          limitation: s.qualityLimitationReason,
        });
      }
    });
    return out.sort((a, b) => `${a.kind}${a.rid}`.localeCompare(`${b.kind}${b.rid}`));
  });
}

/**
 * The in-call layout: each tile's box, caption texts and video state, and the pairs of boxes (tiles,
 * roster, controls) that overlap by more than a pixel.
 */
export function layout(page) {
  return page.evaluate(() => {
    const box = (el) => {
      const r = el.getBoundingClientRect();
      return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height };
    };
    const boxes = [...document.querySelectorAll(".tile, #roster, .controls")].map((el) => ({
      what: el.classList.contains("tile") ? `tile ${el.dataset.participant}` : el.id || el.className,
      ...box(el),
    }));
    const overlaps = [];
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i];
        const b = boxes[j];
        if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) {
          overlaps.push(`${a.what} / ${b.what}`);
        }
      }
    }
    const tiles = [...document.querySelectorAll(".tile")].map((tile) => {
      const video = tile.querySelector("video");
      const name = tile.querySelector(".name");
      const role = tile.querySelector(".role");
      return {
        participant: tile.dataset.participant,
        self: tile.classList.contains("self"),
        state: tile.dataset.video,
        name: name.textContent,
        role: role.textContent,
        nameVisible: name.getBoundingClientRect().width > 0 && name.getBoundingClientRect().height > 0,
        roleVisible: role.getBoundingClientRect().width > 0 && role.getBoundingClientRect().height > 0,
        videoWidth: video.videoWidth,
        videoHeight: video.videoHeight,
        box: box(tile),
      };
    });
    return { tiles, overlaps, viewport: { width: window.innerWidth, height: window.innerHeight } };
  });
}
