import { test } from "node:test";
import assert from "node:assert/strict";
import { createApi, findTauri, hasTauri, normalizeError, NO_STATION } from "../js/api.js";

test("no __TAURI__: every command rejects with no_station, events are a no-op", async () => {
  assert.equal(findTauri({}), null);
  assert.equal(hasTauri({ __TAURI__: {} }), false); // no core.invoke
  const api = createApi(() => findTauri({}));
  assert.equal(api.available(), false);
  await assert.rejects(api.stationState(), (e) => e.code === NO_STATION && e.code === "no_station" && typeof e.message === "string");
  await assert.rejects(api.wedgeKey("A", false, 1), { code: "no_station" });
  const off = await api.on("status", () => {});
  assert.equal(typeof off, "function");
});

test("the module-level api works in node without a window", async () => {
  const { api } = await import("../js/api.js");
  assert.equal(api.available(), false);
  await assert.rejects(api.login("a", "b"), { code: "no_station" });
});

test("commands send exactly the contract's names and camelCase args", async () => {
  const calls = [];
  const fake = { core: { invoke: async (cmd, args) => (calls.push([cmd, args]), null) }, event: { listen: async () => () => {} } };
  const api = createApi(() => fake);
  assert.equal(api.available(), true);
  await api.stationState();
  await api.setup("http://s", "k");
  await api.login("ravi", "pw");
  await api.logout();
  await api.wedgeKey("Enter", false, 12.5);
  await api.scan("C1");
  await api.undo();
  await api.closeParent();
  await api.needsAttention();
  await api.acknowledge("id-1");
  await api.billOpen("B1");
  await api.billCreate({ code: "B1", capacity: 10, destination: "Pune", vehicleNumber: "MH12" });
  await api.billScan("SB1");
  await api.billRemove("SB1");
  await api.billClose(null);
  await api.devices();
  await api.chooseScanner(0x1234, 0x5678);
  await api.chooseScanner(null);
  await api.setLanguage("hi");
  await api.settingsUnlock("admin", "pw");
  await api.setScanMode("billing");
  assert.deepEqual(calls, [
    ["station_state", {}],
    ["setup", { serverUrl: "http://s", stationKey: "k" }],
    ["login", { username: "ravi", password: "pw" }],
    ["logout", {}],
    ["wedge_key", { key: "Enter", ctrl: false, atMs: 12.5 }],
    ["scan", { code: "C1" }],
    ["undo", {}],
    ["close_parent", {}],
    ["needs_attention", {}],
    ["acknowledge", { id: "id-1" }],
    ["bill_open", { code: "B1" }],
    ["bill_create", { code: "B1", capacity: 10, destination: "Pune", vehicleNumber: "MH12" }],
    ["bill_scan", { code: "SB1" }],
    ["bill_remove", { parent: "SB1" }],
    ["bill_close", { reason: null }],
    ["devices", {}],
    ["choose_scanner", { vendorId: 0x1234, productId: 0x5678 }],
    ["choose_scanner", { vendorId: null }],
    ["set_language", { language: "hi" }],
    ["settings_unlock", { username: "admin", password: "pw" }],
    ["set_scan_mode", { mode: "billing" }],
  ]);
});

test("rejections always come out as {code, message}", async () => {
  const failing = (err) => createApi(() => ({ core: { invoke: async () => { throw err; } } }));
  await assert.rejects(failing({ code: "bad_credentials", message: "The username or password is wrong." }).login("a", "b"), {
    code: "bad_credentials",
    message: "The username or password is wrong.",
  });
  await assert.rejects(failing("plain text error").login("a", "b"), { code: "error", message: "plain text error" });
  assert.deepEqual(normalizeError(undefined), { code: "error", message: "" });
  assert.deepEqual(normalizeError({ message: "x" }), { code: "error", message: "x" });
});

test("events hand the payload to the handler", async () => {
  let registered;
  const fake = { core: { invoke: async () => null }, event: { listen: async (name, fn) => ((registered = [name, fn]), () => "off") } };
  const api = createApi(() => fake);
  const got = [];
  const off = await api.on("status", (p) => got.push(p));
  registered[1]({ event: "status", payload: { online: true, unsent: 2 } });
  assert.equal(registered[0], "status");
  assert.deepEqual(got, [{ online: true, unsent: 2 }]);
  assert.equal(off(), "off");
});

test("findTauri looks on window too", () => {
  const t = { core: { invoke() {} } };
  assert.equal(findTauri({ window: { __TAURI__: t } }), t);
  assert.equal(findTauri({ __TAURI__: t }), t);
});
