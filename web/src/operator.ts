/**
 * Operator dashboard (`/operator?key=…`): the day grid of calls by booth and hour, and one call's page
 * with live scores, charts and events. Live data comes only from the health stream (WebSocket); the
 * REST API gives the day's bookings, a call's details, CSV export and "end call".
 */
import "uplot/dist/uPlot.min.css";
import "./operator/operator.css";
import { ApiError, OperatorApi } from "./operator/api";
import { STORAGE_KEY, takeKey } from "./operator/auth";
import { dayBounds, localDate, utcDates } from "./operator/format";
import { gridCalls } from "./operator/grid";
import type { Call } from "./operator/model";
import { parseRoute, routeHash } from "./operator/router";
import type { Route } from "./operator/router";
import { DashboardStore } from "./operator/store";
import { HealthStream, streamUrl } from "./operator/stream";
import type { StreamState } from "./operator/stream";
import { CallView } from "./operator/ui/callview";
import { GridView } from "./operator/ui/gridview";
import { byId, setData, setText } from "./ui/dom";
import { clearNotice, showNotice } from "./ui/status";

const STREAM_LABELS: Record<StreamState, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
};

/** How often the day's bookings are re-read (new bookings do not come over the stream). */
const LIST_REFRESH_MS = 60_000;

function showPage(page: "key" | "grid" | "call"): void {
  document.body.dataset.page = page;
  byId("key-prompt").hidden = page !== "key";
  byId("grid-page").hidden = page !== "grid";
  byId("call-page").hidden = page !== "call";
}

function showKeyPrompt(message: string | null, onKey: (key: string) => void): void {
  showPage("key");
  if (message !== null) setText(byId("key-prompt-message"), message);
  const form = byId<HTMLFormElement>("key-form");
  const input = byId<HTMLInputElement>("key-input");
  form.onsubmit = (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    if (key === "") return;
    sessionStorage.setItem(STORAGE_KEY, key);
    input.value = "";
    onKey(key);
  };
  input.focus();
}

function shiftDate(date: string, days: number): string {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  return localDate(new Date(y, m - 1, d + days));
}

function longDate(date: string): string {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  return new Date(y, m - 1, d).toLocaleDateString(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
}

class Dashboard {
  private readonly api: OperatorApi;
  private readonly store = new DashboardStore();
  private readonly stream: HealthStream;
  private readonly grid = new GridView(byId("calls-grid"), byId("grid-empty"));
  private readonly callView = new CallView(this.store);
  private route: Route = { page: "grid", date: null };
  private day = localDate(new Date());
  private listed: Call[] = [];
  private listedDay = "";
  private listSeq = 0;
  private listTimer: ReturnType<typeof setTimeout> | null = null;
  private detailTimer: ReturnType<typeof setTimeout> | null = null;
  private timers: ReturnType<typeof setInterval>[] = [];
  private stopped = false;

  constructor(
    key: string,
    private readonly onUnauthorized: (message: string) => void,
  ) {
    this.api = new OperatorApi(key);
    this.stream = new HealthStream({
      url: streamUrl(location, key),
      onMessage: (m) => this.onStream(m),
      onState: (s) => this.showStreamState(s),
    });
  }

  start(): void {
    this.showStreamState("connecting");
    window.addEventListener("hashchange", this.onHash);
    this.wireControls();
    this.stream.start();
    this.onHash();
    this.tick();
    this.timers.push(setInterval(() => this.tick(), 1000));
    this.timers.push(setInterval(() => this.loadList(), LIST_REFRESH_MS));
  }

  stop(): void {
    this.stopped = true;
    this.stream.stop();
    window.removeEventListener("hashchange", this.onHash);
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.callView.close();
  }

  /** Test hook: what the dashboard holds. */
  state(): object {
    return {
      stream: this.stream.state,
      streamAttempts: this.stream.attempts,
      route: this.route,
      day: this.day,
      listed: this.listed.map((c) => c.id),
      live: [...this.store.live.keys()],
      snapshotAt: this.store.snapshotAt,
      seriesLatest: this.store.series.latest,
    };
  }

  private wireControls(): void {
    const picker = byId<HTMLInputElement>("date-picker");
    picker.onchange = () => {
      if (/^\d{4}-\d{2}-\d{2}$/.test(picker.value)) this.goDay(picker.value);
    };
    byId("prev-day").onclick = () => this.goDay(shiftDate(this.day, -1));
    byId("next-day").onclick = () => this.goDay(shiftDate(this.day, 1));
    byId("today-button").onclick = () => this.goDay(localDate(new Date()));

    const dialog = byId<HTMLDialogElement>("confirm-end");
    byId("end-call").onclick = () => {
      const id = this.callView.current;
      if (id === null) return;
      setText(
        byId("confirm-end-text"),
        `${byId("call-title").textContent ?? id}: everyone in the call is disconnected at once.`,
      );
      dialog.returnValue = "";
      dialog.showModal();
    };
    dialog.onclose = () => {
      const id = this.callView.current;
      if (dialog.returnValue !== "end" || id === null) return;
      void this.endCall(id);
    };
  }

  private goDay(date: string): void {
    const today = localDate(new Date());
    location.hash = routeHash({ page: "grid", date: date === today ? null : date });
  }

  private readonly onHash = (): void => {
    this.route = parseRoute(location.hash);
    clearNotice();
    if (this.route.page === "grid") {
      this.callView.close();
      this.day = this.route.date ?? localDate(new Date());
      byId<HTMLInputElement>("date-picker").value = this.day;
      const isToday = this.day === localDate(new Date());
      setText(byId("grid-title"), isToday ? "Today" : longDate(this.day));
      setText(byId("grid-subtitle"), isToday ? longDate(this.day) : "");
      showPage("grid");
      if (this.listedDay !== this.day) {
        this.listed = [];
        this.listedDay = this.day;
      }
      this.renderGrid();
      this.loadList();
    } else {
      showPage("call");
      const id = this.route.id;
      this.callView.open(id);
      byId<HTMLAnchorElement>("export-csv").href = this.api.exportUrl(id);
      this.loadDetail(id);
    }
  };

  /** (Re)reads the shown day's calls: the UTC days the local day touches, merged. */
  private loadList(): void {
    if (this.stopped) return;
    const day = this.day;
    const seq = ++this.listSeq;
    const { start, end } = dayBounds(day);
    Promise.all(utcDates(start, end).map((d) => this.api.listCalls(d)))
      .then((lists) => {
        if (seq !== this.listSeq || this.stopped) return;
        const byId_ = new Map<string, Call>();
        for (const c of lists.flat()) byId_.set(c.id, c);
        this.listed = [...byId_.values()];
        this.listedDay = day;
        this.renderGrid();
        this.renderSummary();
      })
      .catch((e: unknown) => this.apiFailed(e, "The day's calls could not be loaded"));
  }

  /** A list refresh soon, coalescing bursts (several calls starting at the top of the hour). */
  private scheduleListRefresh(): void {
    if (this.listTimer !== null) return;
    this.listTimer = setTimeout(() => {
      this.listTimer = null;
      this.loadList();
    }, 1500);
  }

  private loadDetail(id: string): void {
    this.api
      .getCall(id)
      .then((detail) => {
        if (this.callView.current === id) this.callView.setDetail(detail);
      })
      .catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 404) {
          showNotice(`There is no call "${id}".`, "warning", { label: "All calls", run: () => (location.hash = "#/") });
          return;
        }
        this.apiFailed(e, "The call could not be loaded");
      });
  }

  private scheduleDetailRefresh(id: string): void {
    if (this.detailTimer !== null) return;
    this.detailTimer = setTimeout(() => {
      this.detailTimer = null;
      if (this.callView.current === id) this.loadDetail(id);
    }, 2000);
  }

  private async endCall(id: string): Promise<void> {
    const button = byId<HTMLButtonElement>("end-call");
    button.disabled = true;
    try {
      await this.api.endCall(id);
      showNotice("The call was ended.", "info");
      this.loadDetail(id);
      this.scheduleListRefresh();
    } catch (e) {
      button.disabled = false;
      this.apiFailed(e, "The call could not be ended");
    }
  }

  private apiFailed(e: unknown, what: string): void {
    if (e instanceof ApiError && e.unauthorized) {
      this.stop();
      this.onUnauthorized("The server refused this API key. Enter the operator API key again.");
      return;
    }
    const detail = e instanceof Error ? e.message : String(e);
    showNotice(`${what}: ${detail}`, "error");
  }

  private onStream(message: Parameters<DashboardStore["apply"]>[0]): void {
    const result = this.store.apply(message);
    if (result.kind === "unknown") return;
    if (result.kind === "backlog") this.scheduleListRefresh();
    if (result.appeared.length > 0 || result.vanished.length > 0) {
      // A call went live or ended: the REST list's states are stale.
      this.scheduleListRefresh();
      const current = this.callView.current;
      if (current !== null && (result.appeared.includes(current) || result.vanished.includes(current))) {
        this.scheduleDetailRefresh(current);
      }
    }
    const current = this.callView.current;
    if (current !== null && result.eventsChanged.includes(current)) {
      const latest = this.store.eventsOf(current)[0];
      if (latest !== undefined && (latest.kind === "joined" || latest.kind === "left")) this.scheduleDetailRefresh(current);
    }
    if (result.kind === "snapshot" || result.kind === "backlog" || result.eventsChanged.length > 0) {
      if (this.route.page === "grid") this.renderGrid();
      else this.callView.render();
      this.renderSummary();
    }
  }

  private renderGrid(): void {
    if (this.route.page !== "grid") return;
    const { start, end } = dayBounds(this.day);
    const listed = this.listedDay === this.day ? this.listed : [];
    this.grid.render({
      dayStart: start,
      dayEnd: end,
      now: Date.now() / 1000,
      calls: gridCalls(listed, this.store.live.values()),
    });
  }

  private renderSummary(): void {
    const live = [...this.store.live.values()];
    const degraded = live.filter((c) => c.health === "degraded").length;
    const el = byId("summary");
    const text =
      live.length === 0 ? "No live calls" : `${live.length} live${degraded > 0 ? ` · ${degraded} degraded` : " · all good"}`;
    setText(el, text);
    setData(el, "degraded", String(degraded));
  }

  private showStreamState(state: StreamState): void {
    const el = byId("stream-state");
    setData(el, "state", state);
    const label = el.querySelector(".label");
    if (label !== null) setText(label, STREAM_LABELS[state]);
    el.title = state === "live" ? "Live health stream connected" : "Live health stream: " + STREAM_LABELS[state];
  }

  private lastGridTick = 0;

  private tick(): void {
    const now = new Date();
    setText(byId("clock"), now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }));
    // Keep the now-line and "starts in" moving even when no stream frame arrives.
    if (this.route.page === "grid" && now.getTime() - this.lastGridTick > 15_000) {
      this.lastGridTick = now.getTime();
      this.renderGrid();
    }
  }
}

declare global {
  interface Window {
    dragomanOperator?: { state(): object };
  }
}

function main(): void {
  const { key, cleanUrl } = takeKey(location.href, sessionStorage);
  if (cleanUrl !== null) history.replaceState(history.state, "", cleanUrl);
  let dashboard: Dashboard | null = null;
  const launch = (k: string): void => {
    clearNotice();
    dashboard = new Dashboard(k, (message) => {
      sessionStorage.removeItem(STORAGE_KEY);
      dashboard = null;
      showKeyPrompt(message, launch);
    });
    dashboard.start();
  };
  window.dragomanOperator = {
    state: () => dashboard?.state() ?? { stream: "stopped" },
  };
  if (key === null || key === "") showKeyPrompt(null, launch);
  else launch(key);
}

main();
