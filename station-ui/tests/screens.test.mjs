import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chooseScreen,
  homeScreen,
  scanMode,
  parseMemory,
  billToRestore,
  addRecent,
  usesScanInput,
} from "../js/screens.js";

const worker = (role, username = "ravi") => ({ username, role, dispatch_area: null, online: true });
const state = (over = {}) => ({
  configured: true,
  server_url: "http://127.0.0.1:8080",
  station_name: "Gate 1",
  language: "en",
  worker: null,
  open_parent: null,
  status: { online: true, unsent: 0, needs_attention: 0, last_error: null },
  scanner: { connected: true, name: "Coconut" },
  ...over,
});

test("no Tauri: the plain 'use the station program' screen", () => {
  assert.equal(chooseScreen(state(), { tauri: false }), "unavailable");
});

test("state not loaded yet: loading", () => {
  assert.equal(chooseScreen(null), "loading");
});

test("not configured: first run, whatever was asked", () => {
  assert.equal(chooseScreen(state({ configured: false })), "setup");
  assert.equal(chooseScreen(state({ configured: false }), { requested: "scan" }), "setup");
  assert.equal(chooseScreen(state({ configured: false }), { requested: "settings" }), "setup");
});

test("configured, nobody logged in: login", () => {
  assert.equal(chooseScreen(state()), "login");
  assert.equal(chooseScreen(state(), { requested: "scan" }), "login");
  assert.equal(chooseScreen(state(), { requested: "billing" }), "login");
});

test("first run's second step (scanner) is kept until finished", () => {
  assert.equal(chooseScreen(state(), { requested: "setup_scanner" }), "setup_scanner");
});

test("role picks the home screen", () => {
  assert.equal(chooseScreen(state({ worker: worker("dispatcher") })), "scan");
  assert.equal(chooseScreen(state({ worker: worker("biller") })), "billing");
  assert.equal(chooseScreen(state({ worker: worker("admin") })), "scan");
  assert.equal(homeScreen("biller"), "billing");
  assert.equal(homeScreen("nobody"), "login");
});

test("a dispatcher cannot be sent to billing, nor a biller to scanning", () => {
  assert.equal(chooseScreen(state({ worker: worker("dispatcher") }), { requested: "billing" }), "scan");
  assert.equal(chooseScreen(state({ worker: worker("biller") }), { requested: "scan" }), "billing");
  assert.equal(chooseScreen(state({ worker: worker("admin") }), { requested: "billing" }), "billing");
});

test("needs attention is open to every working role", () => {
  for (const role of ["dispatcher", "biller", "admin"]) {
    assert.equal(chooseScreen(state({ worker: worker(role) }), { requested: "attention" }), "attention");
  }
});

test("settings need the admin unlock first", () => {
  assert.equal(chooseScreen(state(), { requested: "settings" }), "settings_unlock");
  assert.equal(chooseScreen(state(), { requested: "settings", settingsUnlocked: true }), "settings");
  assert.equal(chooseScreen(state({ worker: worker("dispatcher") }), { requested: "settings" }), "settings_unlock");
});

test("after a restart the remembered screen opens, for the same worker only", () => {
  const memory = { screen: "billing", user: "ravi", bill: "B1", recent: [] };
  assert.equal(chooseScreen(state({ worker: worker("admin", "ravi") }), { memory }), "billing");
  assert.equal(chooseScreen(state({ worker: worker("admin", "sita") }), { memory }), "scan");
  // remembered screen not allowed for the role
  assert.equal(chooseScreen(state({ worker: worker("dispatcher", "ravi") }), { memory }), "scan");
});

test("scan mode sent to the core for each screen", () => {
  assert.equal(scanMode("scan", "scan"), "scan");
  assert.equal(scanMode("scan", "billing", { billOpen: true }), "scan");
  assert.equal(scanMode("billing", "billing", { billOpen: true }), "billing");
  assert.equal(scanMode("billing", "billing", { billOpen: false }), "none");
  assert.equal(scanMode("billing", "billing"), "none");
  assert.equal(scanMode("attention", "billing", { billOpen: true }), "billing");
  assert.equal(scanMode("attention", "billing", { billOpen: false }), "none");
  assert.equal(scanMode("attention", "scan"), "scan");
  for (const s of ["setup", "setup_scanner", "login", "settings", "settings_unlock", "loading", "unavailable"]) {
    assert.equal(scanMode(s, "scan"), "none", s);
  }
});

test("only scanning screens use the scan input", () => {
  assert.deepEqual(
    ["setup", "login", "scan", "billing", "attention", "settings"].map(usesScanInput),
    [false, false, true, true, true, false],
  );
});

test("memory parsing never throws", () => {
  assert.deepEqual(parseMemory(null), { screen: null, user: null, bill: null, recent: [] });
  assert.deepEqual(parseMemory("{not json"), { screen: null, user: null, bill: null, recent: [] });
  assert.deepEqual(parseMemory('{"screen":"billing","user":"ravi","bill":"B7","recent":["ravi",3,"sita"]}'), {
    screen: "billing",
    user: "ravi",
    bill: "B7",
    recent: ["ravi", "sita"],
  });
});

test("the bill reopens after a restart for the same worker only", () => {
  const memory = parseMemory('{"screen":"billing","user":"ravi","bill":"B7"}');
  assert.equal(billToRestore(memory, worker("biller", "ravi")), "B7");
  assert.equal(billToRestore(memory, worker("biller", "sita")), null);
  assert.equal(billToRestore(memory, null), null);
});

test("recent workers for the quick switch: newest first, no repeats, at most 6", () => {
  assert.deepEqual(addRecent(["sita", "ravi"], " Ravi "), ["ravi", "sita"]);
  assert.deepEqual(addRecent(["a", "b", "c", "d", "e", "f"], "g"), ["g", "a", "b", "c", "d", "e"]);
  assert.deepEqual(addRecent(["a"], ""), ["a"]);
});
