import assert from "node:assert/strict";
import { test } from "node:test";
import { base64UrlDecode, decodeToken, describeAge } from "./.build/jwt.js";

const b64url = (s) => Buffer.from(s, "utf8").toString("base64url");
const token = (claims) => `${b64url('{"typ":"JWT","alg":"HS256"}')}.${b64url(JSON.stringify(claims))}.c2ln`;
const NOW = 1_800_000_000;
const claims = { call: "booth-3-0900", sub: "buyer-1", name: "Somchai", role: "buyer", languages: ["th"], exp: NOW + 60 };

test("decodes the claims of a well-formed token", () => {
  const r = decodeToken(token(claims), NOW);
  assert.equal(r.ok, true);
  assert.deepEqual(r.claims, claims);
});

test("decodes UTF-8 names and unpadded base64url", () => {
  const r = decodeToken(token({ ...claims, name: "김민지 — Kim" }), NOW);
  assert.equal(r.ok, true);
  assert.equal(r.claims.name, "김민지 — Kim");
  assert.equal(base64UrlDecode("YQ"), "a");
  assert.throws(() => base64UrlDecode("a+b/"));
});

test("languages default to empty; nbf is kept", () => {
  const rest = { ...claims };
  delete rest.languages;
  const r = decodeToken(token({ ...rest, nbf: NOW - 5 }), NOW);
  assert.equal(r.ok, true);
  assert.deepEqual(r.claims.languages, []);
  assert.equal(r.claims.nbf, NOW - 5);
});

test("missing token", () => {
  for (const t of [null, undefined, "", "   "]) {
    const r = decodeToken(t, NOW);
    assert.equal(r.ok, false);
    assert.equal(r.problem, "missing");
  }
});

test("garbled tokens", () => {
  const bad = [
    "not-a-jwt",
    "a.b",
    "a.b.c.d",
    `x.${b64url("not json")}.y`,
    `x.${b64url("[1,2]")}.y`,
    `x.%%%.y`,
    token({ ...claims, role: "king" }),
    token({ ...claims, call: "" }),
    token({ ...claims, sub: 7 }),
    token({ ...claims, exp: "soon" }),
  ];
  for (const t of bad) {
    const r = decodeToken(t, NOW);
    assert.equal(r.ok, false, t);
    assert.equal(r.problem, "garbled", t);
    assert.ok(r.message.length > 10);
  }
});

test("expired at exp (no leeway), and not yet valid before nbf", () => {
  const expired = decodeToken(token({ ...claims, exp: NOW }), NOW);
  assert.equal(expired.ok, false);
  assert.equal(expired.problem, "expired");
  assert.match(expired.message, /expired 0 s ago/);
  const later = decodeToken(token({ ...claims, nbf: NOW + 600 }), NOW);
  assert.equal(later.problem, "not_yet_valid");
});

test("describeAge", () => {
  assert.equal(describeAge(42), "42 s");
  assert.equal(describeAge(600), "10 min");
  assert.equal(describeAge(7200), "2 h");
  assert.equal(describeAge(86400 * 3), "3 days");
});
