/**
 * Reads the page's URL: the join token (`?token=`) and the signaling WebSocket URL. The socket is on
 * the page's own origin at `/v1/signal` (`wss:` under `https:`), unless `?signal=ws://…` overrides it
 * (for development, when the page is served apart from the server). Pure: takes the location's parts.
 */

export interface PageLocation {
  protocol: string;
  host: string;
  search: string;
}

export interface PageParams {
  token: string | null;
  signalUrl: string;
  /** Set when `?signal=` was given but is not a ws:// or wss:// URL (it is then ignored). */
  signalOverrideRejected: boolean;
}

export function readPageParams(loc: PageLocation): PageParams {
  const query = new URLSearchParams(loc.search);
  const token = query.get("token");
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  let signalUrl = `${scheme}//${loc.host}/v1/signal`;
  let signalOverrideRejected = false;
  const override = query.get("signal");
  if (override !== null && override !== "") {
    let parsed: URL | null;
    try {
      parsed = new URL(override);
    } catch {
      parsed = null;
    }
    if (parsed !== null && (parsed.protocol === "ws:" || parsed.protocol === "wss:")) {
      signalUrl = parsed.toString();
    } else {
      signalOverrideRejected = true;
    }
  }
  return { token: token === null ? null : token.trim(), signalUrl, signalOverrideRejected };
}
