/** Formatting of times (the browser's local time zone, 24-hour) and measurements. Pure apart from the time zone. */

const DASH = "–";

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** `YYYY-MM-DD` of a date in local time. */
export function localDate(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Local midnight of `YYYY-MM-DD` and of the next day, unix seconds (23 or 25 h apart on DST days). */
export function dayBounds(date: string): { start: number; end: number } {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  const start = new Date(y, m - 1, d).getTime() / 1000;
  const end = new Date(y, m - 1, d + 1).getTime() / 1000;
  return { start, end };
}

/** The UTC days (`YYYY-MM-DD`) that the span [start, end) touches: what to ask `GET /v1/calls?date=` for. */
export function utcDates(start: number, end: number): string[] {
  const out: string[] = [];
  const day = 86_400;
  for (let t = Math.floor(start / day) * day; t < end; t += day) {
    out.push(new Date(t * 1000).toISOString().slice(0, 10));
  }
  return out;
}

/** `HH:MM` local. */
export function clock(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** `HH:MM:SS` local, from unix ms. */
export function clockSeconds(unixMs: number): string {
  const d = new Date(unixMs);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function slotText(start: number, end: number): string {
  return `${clock(start)}–${clock(end)}`;
}

/** "45 min", "1 h 30 min". */
export function duration(seconds: number): string {
  const min = Math.max(0, Math.round(seconds / 60));
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  const m = min % 60;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

export function kbps(v: number | null): string {
  if (v === null) return DASH;
  if (v >= 1000) return `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)} Mb/s`;
  return `${Math.round(v)} kb/s`;
}

export function percent(v: number | null): string {
  if (v === null) return DASH;
  return v >= 10 ? `${Math.round(v)}%` : `${(Math.round(v * 10) / 10).toString()}%`;
}

export function ms(v: number | null): string {
  return v === null ? DASH : `${Math.round(v)} ms`;
}

export function score(v: number | null): string {
  return v === null ? DASH : v.toFixed(1);
}

/** Capitalized first letter ("interpreter" → "Interpreter"). */
export function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
