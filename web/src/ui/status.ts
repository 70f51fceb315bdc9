/**
 * The connection indicator (`#connection-state`, its `data-state` is the stable hook) and the notice
 * banner (`#notice`) for messages that need the user's attention, with an optional action button.
 */
import { byId, setData, setText } from "./dom";

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "failed" | "left";

const LABELS: Record<ConnectionState, string> = {
  idle: "Not joined yet",
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  failed: "Connection failed",
  left: "Left the call",
};

export function showConnectionState(state: ConnectionState, detail?: string): void {
  const el = byId("connection-state");
  setData(el, "state", state);
  const label = el.querySelector(".label");
  if (label !== null) setText(label, LABELS[state]);
  el.title = detail ?? LABELS[state];
}

export interface NoticeAction {
  label: string;
  run(): void;
}

/** Shows a message in the banner; `kind` colours it. Replaces any earlier notice. */
export function showNotice(message: string, kind: "info" | "warning" | "error" = "info", action?: NoticeAction): void {
  const el = byId("notice");
  el.replaceChildren();
  const text = document.createElement("span");
  text.className = "notice-text";
  text.textContent = message;
  el.append(text);
  if (action !== undefined) {
    const button = document.createElement("button");
    button.type = "button";
    button.id = "notice-action";
    button.textContent = action.label;
    button.addEventListener("click", () => action.run());
    el.append(button);
  }
  el.dataset.kind = kind;
  el.hidden = false;
}

export function clearNotice(): void {
  const el = byId("notice");
  el.hidden = true;
  el.replaceChildren();
}
