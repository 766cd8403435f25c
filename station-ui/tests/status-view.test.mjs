import { test } from "node:test";
import assert from "node:assert/strict";
import { connectionPill, connectionKnown, CONNECTING_MS } from "../js/status-view.js";
import { makeT } from "../js/i18n.js";

const fresh = { online: false, unsent: 0, needs_attention: 0, last_error: null };

test("before the station knows, the bar says Connecting, not a red Offline", () => {
  const pill = connectionPill(fresh, { known: false, elapsedMs: 100 });
  assert.deepEqual(pill, { kind: "plain", icon: "wait", key: "st_connecting" });
  assert.equal(makeT("en")(pill.key), "Connecting…");
  assert.equal(makeT("hi")(pill.key), "जुड़ रहा है…");
});

test("online as soon as the station says so", () => {
  assert.equal(connectionPill({ ...fresh, online: true }, { known: false, elapsedMs: 0 }).key, "st_online");
  assert.equal(connectionPill({ ...fresh, online: true }, { known: true, elapsedMs: 0 }).kind, "good");
});

test("offline after a failure, after the station knew, or after the wait", () => {
  assert.equal(connectionPill({ ...fresh, last_error: "connection refused" }, { known: false, elapsedMs: 0 }).key, "st_offline");
  assert.equal(connectionPill(fresh, { known: true, elapsedMs: 0 }).key, "st_offline");
  assert.equal(connectionPill(fresh, { known: false, elapsedMs: CONNECTING_MS }).kind, "bad");
  assert.equal(connectionPill(null, { known: true }).key, "st_offline");
});

test("known latches once the station answered or failed", () => {
  assert.equal(connectionKnown(fresh, false), false);
  assert.equal(connectionKnown({ ...fresh, online: true }, false), true);
  assert.equal(connectionKnown({ ...fresh, last_error: "x" }, false), true);
  assert.equal(connectionKnown(fresh, true), true);
});
