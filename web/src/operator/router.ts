/** Hash routes of the dashboard: `#/` (today), `#/day/YYYY-MM-DD`, `#/call/ID`. Pure. */

export type Route = { page: "grid"; date: string | null } | { page: "call"; id: string };

const DATE = /^\d{4}-\d{2}-\d{2}$/;

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "").replace(/^\/+/, "");
  const [head, ...rest] = path.split("/");
  const arg = rest.join("/");
  if (head === "call" && arg !== "") {
    let id = arg;
    try {
      id = decodeURIComponent(arg);
    } catch {
      // keep it raw
    }
    return { page: "call", id };
  }
  if (head === "day" && DATE.test(arg)) return { page: "grid", date: arg };
  return { page: "grid", date: null };
}

export function routeHash(route: Route): string {
  if (route.page === "call") return `#/call/${encodeURIComponent(route.id)}`;
  return route.date === null ? "#/" : `#/day/${route.date}`;
}
