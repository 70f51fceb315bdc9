/**
 * Join-token decoding for display only.
 *
 * The page reads the JWT's payload to show the call, the participant's name and role before it
 * connects. Nothing here verifies the signature: the server does that on `join` and is the authority
 * (it answers `invalid_token` / `token_expired` and closes with 4001). Pure: no DOM, no clock of its own.
 */

export const ROLES = ["company", "interpreter", "office", "buyer", "operator"] as const;
export type Role = (typeof ROLES)[number];

/** The claims of a Dragoman join token (docs/protocol.md §2). */
export interface TokenClaims {
  call: string;
  /** Participant identity. */
  sub: string;
  name: string;
  role: Role;
  languages: string[];
  /** Expiry, Unix seconds. */
  exp: number;
  nbf?: number;
}

export type TokenProblem = "missing" | "garbled" | "expired" | "not_yet_valid";

export type DecodedToken =
  | { ok: true; claims: TokenClaims }
  | { ok: false; problem: TokenProblem; message: string };

/** Decodes base64url (no padding required) into a UTF-8 string; throws on bad input. */
export function base64UrlDecode(input: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(input)) {
    throw new Error("not base64url");
  }
  const b64 = input.replace(/-/g, "+").replace(/_/g, "/");
  const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

function isString(v: unknown): v is string {
  return typeof v === "string" && v.length > 0;
}

function isRole(v: unknown): v is Role {
  return typeof v === "string" && (ROLES as readonly string[]).includes(v);
}

const garbled = (message: string): DecodedToken => ({ ok: false, problem: "garbled", message });

/**
 * Decodes a join token's claims. `nowSeconds` is the current Unix time; a token with
 * `exp <= now` is reported expired (the server allows no leeway either).
 */
export function decodeToken(token: string | null | undefined, nowSeconds: number): DecodedToken {
  if (token === null || token === undefined || token.trim() === "") {
    return {
      ok: false,
      problem: "missing",
      message: "This link has no join token. Open the full link you were sent.",
    };
  }
  const parts = token.trim().split(".");
  if (parts.length !== 3) {
    return garbled("This join link is damaged (the token is not a JWT). Copy the whole link again.");
  }
  let payload: unknown;
  try {
    payload = JSON.parse(base64UrlDecode(parts[1] ?? ""));
  } catch {
    return garbled("This join link is damaged (its token cannot be read). Copy the whole link again.");
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    return garbled("This join link is damaged (its token has no claims).");
  }
  const p = payload as Record<string, unknown>;
  if (!isString(p.call) || !isString(p.sub) || !isString(p.name)) {
    return garbled("This join link is incomplete (the call or participant is missing).");
  }
  if (!isRole(p.role)) {
    return garbled("This join link names an unknown role.");
  }
  if (typeof p.exp !== "number" || !Number.isFinite(p.exp)) {
    return garbled("This join link has no expiry time.");
  }
  const languages = Array.isArray(p.languages)
    ? p.languages.filter((l): l is string => typeof l === "string")
    : [];
  const claims: TokenClaims = {
    call: p.call,
    sub: p.sub,
    name: p.name,
    role: p.role,
    languages,
    exp: p.exp,
  };
  if (typeof p.nbf === "number") {
    claims.nbf = p.nbf;
  }
  if (claims.exp <= nowSeconds) {
    return {
      ok: false,
      problem: "expired",
      message: `This join link expired ${describeAge(nowSeconds - claims.exp)} ago. Ask the organiser for a new one.`,
    };
  }
  if (claims.nbf !== undefined && claims.nbf > nowSeconds) {
    return {
      ok: false,
      problem: "not_yet_valid",
      message: `This join link becomes valid in ${describeAge(claims.nbf - nowSeconds)}.`,
    };
  }
  return { ok: true, claims };
}

/** A short human duration: "42 s", "5 min", "3 h", "2 days". */
export function describeAge(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}
