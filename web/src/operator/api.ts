/** The operator REST API (`/v1/…`, same origin, bearer key). */
import { parseApiError, parseCallDetail, parseCallList } from "./model";
import type { Call, CallDetail } from "./model";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The key is missing or wrong. */
  get unauthorized(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

export class OperatorApi {
  constructor(
    private readonly key: string,
    private readonly base = "",
  ) {}

  private async request(method: string, path: string): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers: { Authorization: `Bearer ${this.key}`, Accept: "application/json" },
        cache: "no-store",
      });
    } catch (e) {
      throw new ApiError(0, "network", `The server cannot be reached (${e instanceof Error ? e.message : String(e)}).`);
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = text === "" ? null : JSON.parse(text);
    } catch {
      body = null;
    }
    if (!response.ok) {
      const { code, message } = parseApiError(body, response.status);
      throw new ApiError(response.status, code, message);
    }
    return body;
  }

  /** Calls whose slot starts on a UTC day (`YYYY-MM-DD`). */
  async listCalls(utcDate: string): Promise<Call[]> {
    return parseCallList(await this.request("GET", `/v1/calls?date=${encodeURIComponent(utcDate)}`));
  }

  async getCall(id: string): Promise<CallDetail> {
    const detail = parseCallDetail(await this.request("GET", `/v1/calls/${encodeURIComponent(id)}`));
    if (detail === null) throw new ApiError(0, "bad_response", "The server's answer was not a call.");
    return detail;
  }

  async endCall(id: string): Promise<void> {
    await this.request("POST", `/v1/calls/${encodeURIComponent(id)}/end`);
  }

  /** A plain link for the browser to download (so the key rides in the query, as the API allows). */
  exportUrl(id: string): string {
    return `${this.base}/v1/calls/${encodeURIComponent(id)}/export.csv?api_key=${encodeURIComponent(this.key)}`;
  }
}
