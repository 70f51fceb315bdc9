/**
 * The day grid (`#calls-grid`): booth rows × hour columns, one `.call-cell` link per call with
 * `data-call`, `data-health` (good, degraded, idle, upcoming, ended), its time, parties and a short
 * status line (the reason when degraded). The grid's structure is rebuilt only when the layout
 * changes; each snapshot just updates the cells in place, so a click or hover is never lost to a
 * re-render.
 */
import { h, setData, setText } from "../../ui/dom";
import { clock, duration, score, slotText } from "../format";
import { DEFAULT_GRID, cellHealth, layoutGrid } from "../grid";
import type { CellHealth, GridEntry, GridLayout } from "../grid";
import { callReason } from "../reason";
import { routeHash } from "../router";

export interface GridModel {
  dayStart: number;
  dayEnd: number;
  /** Now, unix s (browser clock), to place the now-line and say "starts in". */
  now: number;
  calls: GridEntry[];
}

/** Spoken and tooltip state (the cell shows it by colour and its note line). */
const STATE_LABEL: Record<CellHealth, string> = {
  good: "Live, good",
  degraded: "Live, degraded",
  idle: "Live, idle",
  upcoming: "Upcoming",
  ended: "Ended",
};

interface CellParts {
  el: HTMLAnchorElement;
  time: HTMLElement;
  parties: HTMLElement;
  note: HTMLElement;
}

export class GridView {
  private signature = "";
  private cells = new Map<string, CellParts>();
  private nowLine: HTMLElement | null = null;
  private layout: GridLayout<GridEntry> | null = null;

  constructor(
    private readonly root: HTMLElement,
    private readonly emptyNote: HTMLElement,
  ) {}

  render(model: GridModel): void {
    const nowHour = Math.floor((model.now - model.dayStart) / 3600);
    const today = model.now >= model.dayStart && model.now < model.dayEnd;
    const layout = layoutGrid(
      model.calls,
      model.dayStart,
      { ...DEFAULT_GRID, include: today ? { first: nowHour, last: nowHour + 1 } : null },
      model.dayEnd - model.dayStart,
    );
    const signature = JSON.stringify([
      model.dayStart,
      layout.hours,
      layout.booths.map((b) => [b.booth, b.lanes, b.placements.map((p) => [p.call.id, p.lane, p.col, p.span])]),
    ]);
    if (signature !== this.signature) {
      const dayChanged = !this.signature.startsWith(`[${model.dayStart},`);
      this.signature = signature;
      this.build(layout, model);
      if (dayChanged) this.scrollToNow(layout, model);
    }
    this.layout = layout;
    for (const entry of model.calls) {
      const parts = this.cells.get(entry.id);
      if (parts !== undefined) this.updateCell(parts, entry, model.now);
    }
    this.placeNowLine(model);
    this.emptyNote.hidden = layout.booths.length > 0;
  }

  private build(layout: GridLayout<GridEntry>, model: GridModel): void {
    this.cells.clear();
    const cols = layout.hours.length;
    this.root.style.setProperty("--hours", String(cols));
    const nodes: HTMLElement[] = [h("div", { class: "grid-corner" }, "Booth")];
    layout.hours.forEach((hour, i) => {
      const head = h("div", { class: "grid-hour", "data-hour": String(hour) }, clock(model.dayStart + hour * 3600));
      head.style.gridColumn = String(i + 2);
      head.style.gridRow = "1";
      nodes.push(head);
    });

    let row = 2;
    for (const booth of layout.booths) {
      const head = h("div", { class: "grid-booth", title: booth.booth }, booth.booth);
      head.style.gridRow = `${row} / span ${booth.lanes}`;
      head.style.gridColumn = "1";
      nodes.push(head);
      for (let c = 0; c < cols; c++) {
        const bg = h("div", { class: "grid-slot", "aria-hidden": "true" });
        bg.style.gridRow = `${row} / span ${booth.lanes}`;
        bg.style.gridColumn = String(c + 2);
        nodes.push(bg);
      }
      for (const p of booth.placements) {
        const parts = this.makeCell(p.call);
        parts.el.style.gridRow = String(row + p.lane);
        parts.el.style.gridColumn = `${p.col + 2} / span ${p.span}`;
        this.cells.set(p.call.id, parts);
        nodes.push(parts.el);
      }
      row += booth.lanes;
    }
    this.nowLine = h("div", { class: "grid-now", "aria-hidden": "true" }, h("span", { class: "grid-now-line" }));
    this.nowLine.style.gridRow = `1 / ${Math.max(row, 2)}`;
    nodes.push(this.nowLine);
    this.root.replaceChildren(...nodes);
  }

  private makeCell(entry: GridEntry): CellParts {
    const time = h("span", { class: "cell-time" });
    const parties = h("span", { class: "cell-parties" });
    const note = h("span", { class: "cell-note" });
    const el = h(
      "a",
      { class: "call-cell", href: routeHash({ page: "call", id: entry.id }), "data-call": entry.id },
      time,
      parties,
      note,
    );
    return { el, time, parties, note };
  }

  private updateCell(parts: CellParts, entry: GridEntry, now: number): void {
    const health = cellHealth(entry.listed?.state, entry.live);
    setData(parts.el, "health", health);
    setText(parts.time, slotText(entry.slotStart, entry.slotEnd));

    const names =
      entry.live !== undefined && entry.live.participants.length > 0
        ? entry.live.participants.map((p) => p.name || p.id)
        : (entry.listed?.parties ?? []).map((p) => p.name || p.identity);
    setText(parts.parties, names.length > 0 ? names.join(" · ") : "No parties");

    let note: string;
    if (health === "degraded" && entry.live !== undefined) {
      note = callReason(entry.live) ?? "Quality dropped";
    } else if (entry.live !== undefined) {
      const connected = entry.live.participants.filter((p) => p.connected).length;
      note = connected === 0 ? "Live · waiting for participants" : `Live · ${connected} connected`;
    } else if (health === "upcoming") {
      const until = entry.slotStart - now;
      note = until > 0 && until < 3 * 3600 ? `Starts in ${duration(until)}` : "Upcoming";
    } else if (health === "ended") {
      const ended = entry.listed?.ended_at ?? null;
      const scores = (entry.listed?.parties ?? []).map((p) => p.average_score).filter((s): s is number => s !== null);
      const avg = scores.length > 0 ? scores.reduce((a, b) => a + b, 0) / scores.length : null;
      note = [ended !== null ? `Ended ${clock(ended)}` : "Ended", avg !== null ? `avg score ${score(avg)}` : ""]
        .filter((s) => s !== "")
        .join(" · ");
    } else {
      note = "Live · no health data yet";
    }
    setText(parts.note, note);

    const booth = entry.booth;
    const label = `${booth}, ${slotText(entry.slotStart, entry.slotEnd)}: ${STATE_LABEL[health]}. ${names.join(", ")}. ${note}`;
    if (parts.el.title !== label) {
      parts.el.title = label;
      parts.el.setAttribute("aria-label", label);
    }
  }

  /** On a new day's grid, scrolls sideways (when it is wider than the window) so the hour before now is first. */
  private scrollToNow(layout: GridLayout<GridEntry>, model: GridModel): void {
    const scroller = this.root.parentElement;
    const first = layout.hours[0];
    if (scroller === null || first === undefined) return;
    const col = Math.floor((model.now - model.dayStart) / 3600) - first - 1;
    const hourEl = this.root.querySelectorAll<HTMLElement>(".grid-hour")[Math.max(0, col)];
    const boothWidth = this.root.querySelector<HTMLElement>(".grid-corner")?.offsetWidth ?? 0;
    scroller.scrollLeft = col > 0 && hourEl !== undefined ? hourEl.offsetLeft - boothWidth : 0;
  }

  private placeNowLine(model: GridModel): void {
    const line = this.nowLine;
    const layout = this.layout;
    if (line === null || layout === null) return;
    const first = layout.hours[0];
    const offset = (model.now - model.dayStart) / 3600;
    if (first === undefined || offset < first || offset >= first + layout.hours.length) {
      line.hidden = true;
      return;
    }
    line.hidden = false;
    const col = Math.floor(offset) - first;
    line.style.gridColumn = String(col + 2);
    line.style.setProperty("--at", `${((offset % 1) * 100).toFixed(2)}%`);
    for (const el of this.root.querySelectorAll<HTMLElement>(".grid-hour")) {
      el.classList.toggle("now", Number(el.dataset.hour) === Math.floor(offset));
    }
  }
}
