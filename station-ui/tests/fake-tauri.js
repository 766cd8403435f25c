// TEST ONLY: a stand-in for window.__TAURI__ so the screens can be looked at
// in a plain browser (tests/preview.html). Never loaded by index.html.
// Scenes: preview.html?scene=NAME&lang=en|hi (see SCENES below).
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const scene = params.get("scene") || "scan-empty";
  const lang = params.get("lang") === "hi" ? "hi" : "en";

  const P = (code, children, capacity = 30) => ({ code, children, capacity, complete: children >= capacity });
  const W = (username, role) => ({ username, role, dispatch_area: role === "dispatcher" ? "A1" : null, online: true });

  const state = {
    app_version: "0.1.0",
    configured: true,
    server_url: "http://192.168.1.10:8080",
    station_name: "Gate 2",
    language: lang,
    worker: null,
    open_parent: null,
    status: { online: true, unsent: 0, needs_attention: 0, last_error: null },
    scanner: { connected: true, name: "Coconut 2D Scanner" },
  };
  let attention = [];
  let bill = null;
  let scanMode = "none";

  const listeners = {};
  function emit(name, payload) {
    for (const fn of listeners[name] || []) fn({ event: name, id: 0, payload });
  }
  function after(ms, fn) {
    setTimeout(fn, ms);
  }
  function $(sel) {
    return document.querySelector(sel);
  }
  function type(sel, value) {
    const el = $(sel);
    if (el) el.value = value;
  }
  function submit(sel) {
    const f = $(sel);
    if (f) f.requestSubmit();
  }

  function makeBill(code, capacity, destination, vehicle) {
    return { code, status: "new", capacity, destination, vehicle_number: vehicle, parents: [], parent_count: 0, child_count: 0, actual_weight_kg: 0, expected_weight_kg: 0 };
  }
  function addParent(b, code, children, capacity = 30) {
    b.parents.push({ code, child_count: children, capacity });
    b.parent_count = b.parents.length;
    b.child_count = b.parents.reduce((s, p) => s + p.child_count, 0);
    b.actual_weight_kg = b.child_count;
    b.expected_weight_kg = b.parents.reduce((s, p) => s + p.capacity, 0);
    b.status = b.parent_count >= b.capacity ? "ready" : "in_progress";
    return b;
  }

  function flowScan(code) {
    const c = String(code).trim().toUpperCase();
    if (/^SB\d{5}$/.test(c)) {
      state.open_parent = state.open_parent && state.open_parent.code === c ? state.open_parent : P(c, 0);
      return { kind: "parent_opened", parent: state.open_parent };
    }
    if (!/^[A-Z0-9]{4,20}$/.test(c)) return { kind: "not_a_code", code: c, message: `${c} is not a bag code.` };
    if (!state.open_parent) return { kind: "need_parent", code: c };
    const p = state.open_parent;
    if (p.complete) return { kind: "child", code: c, verdict: { kind: "refused", code: "parent_full", message: `${p.code} is full: ${p.capacity} of ${p.capacity}` } };
    const next = P(p.code, p.children + 1, p.capacity);
    state.open_parent = next.complete ? null : next;
    if (!state.status.online) {
      state.status.unsent += 1;
      emit("status", { ...state.status });
      return { kind: "child", code: c, verdict: { kind: "saved_offline", unsent: state.status.unsent, parent: next } };
    }
    return { kind: "child", code: c, verdict: { kind: "applied", parent: next, bill: null } };
  }

  function billScan(code) {
    const c = String(code).trim().toUpperCase();
    if (!bill) return { verdict: { kind: "refused", code: "bill_not_found", message: "No bill is open." }, bill: null };
    if (bill.parents.some((p) => p.code === c)) return { code: c, verdict: { kind: "refused", code: "already_on_bill", message: `${c} is already on bill ${bill.code}.` }, bill: null };
    addParent(bill, c, 30);
    return { code: c, verdict: { kind: "applied", parent: null, bill: { code: bill.code, status: bill.status, parent_count: bill.parent_count, capacity: bill.capacity } }, bill: JSON.parse(JSON.stringify(bill)) };
  }

  let buffer = "";
  // What the page sent, for tests/browser-check.mjs.
  window.__fakeStation = { wedgeKeys: [], scans: [], modes: [], csp: [], emit: (name, payload) => emit(name, payload) };
  document.addEventListener("securitypolicyviolation", (e) => window.__fakeStation.csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
  const commands = {
    station_state: () => JSON.parse(JSON.stringify(state)),
    setup: ({ serverUrl }) => {
      state.configured = true;
      state.server_url = serverUrl;
      state.station_name = "Gate 2";
      return { station_name: "Gate 2" };
    },
    login: ({ username, password }) => {
      if (password === "wrong") throw { code: "bad_credentials", message: "The username or password is wrong." };
      const u = username.trim().toLowerCase();
      state.worker = W(u, u.startsWith("sita") ? "biller" : u.startsWith("admin") ? "admin" : "dispatcher");
      return state.worker;
    },
    logout: () => {
      state.worker = null;
      return null;
    },
    wedge_key: ({ key }) => {
      window.__fakeStation.wedgeKeys.push(key);
      if (key === "Enter") {
        const code = buffer;
        buffer = "";
        if (!code) return null;
        return scanMode === "billing" ? billScan(code) : flowScan(code);
      }
      if (key.length === 1) buffer += key;
      return null;
    },
    scan: ({ code }) => (window.__fakeStation.scans.push(code), flowScan(code)),
    undo: () => {
      const p = state.open_parent;
      if (!p || p.children === 0) return { kind: "refused", code: "nothing_to_undo", message: "You have no scan to remove." };
      state.open_parent = P(p.code, p.children - 1, p.capacity);
      return { kind: "applied", parent: state.open_parent, bill: null };
    },
    close_parent: () => {
      state.open_parent = null;
      return null;
    },
    needs_attention: () => attention.slice(),
    acknowledge: ({ id }) => {
      attention = attention.filter((a) => a.id !== id);
      state.status.needs_attention = attention.length;
      emit("status", { ...state.status });
      return true;
    },
    bill_open: ({ code }) => {
      if (bill && bill.code === code) return JSON.parse(JSON.stringify(bill));
      throw { code: "bill_not_found", message: `There is no bill ${code}.` };
    },
    bill_create: ({ code, capacity, destination, vehicleNumber }) => {
      bill = makeBill(code, capacity, destination, vehicleNumber);
      return JSON.parse(JSON.stringify(bill));
    },
    bill_scan: ({ code }) => billScan(code),
    bill_remove: ({ parent }) => {
      bill.parents = bill.parents.filter((p) => p.code !== parent);
      addParent(bill, "X", 0);
      bill.parents.pop();
      bill.parent_count = bill.parents.length;
      return { code: parent, verdict: { kind: "applied", parent: null, bill: null }, bill: JSON.parse(JSON.stringify(bill)) };
    },
    bill_close: ({ reason }) => {
      if (bill.parent_count < bill.capacity && !reason) {
        throw { code: "reason_required", message: `Bill ${bill.code} has ${bill.parent_count} of ${bill.capacity} parent bags. Give a reason to close it early.` };
      }
      bill.status = "closed";
      return JSON.parse(JSON.stringify(bill));
    },
    devices: () => [
      { vendor_id: 0x0c2e, product_id: 0x0b61, name: "Coconut 2D Scanner", usage_page: 0x8c, path: "/dev/hidraw3" },
      { vendor_id: 0x046d, product_id: 0xc31c, name: "USB Keyboard", usage_page: 1, path: "/dev/hidraw1" },
    ],
    choose_scanner: () => null,
    set_language: ({ language }) => {
      state.language = language;
      return null;
    },
    settings_unlock: ({ password }) => password !== "wrong",
    set_scan_mode: ({ mode }) => {
      window.__fakeStation.modes.push(mode);
      scanMode = mode;
      return null;
    },
  };

  window.__TAURI__ = {
    core: {
      invoke(cmd, args) {
        return new Promise((resolve, reject) => {
          const fn = commands[cmd];
          if (!fn) return reject({ code: "unknown_command", message: `no command ${cmd}` });
          try {
            resolve(fn(args || {}));
          } catch (e) {
            reject(e);
          }
        });
      },
    },
    event: {
      listen(name, handler) {
        (listeners[name] = listeners[name] || []).push(handler);
        return Promise.resolve(() => {
          listeners[name] = listeners[name].filter((h) => h !== handler);
        });
      },
    },
  };

  const remember = (m) => localStorage.setItem("traitortrack.station.v1", JSON.stringify(m));
  const outcome = (o) => emit("scan_outcome", o);
  const child = (code, p) => outcome({ kind: "child", code, verdict: { kind: "applied", parent: p, bill: null } });
  const anHourAgo = new Date(Date.now() - 47 * 60 * 1000).toISOString();

  const SCENES = {
    setup() {
      state.configured = false;
      state.station_name = null;
      state.server_url = null;
    },
    "setup-scanner"() {
      state.configured = false;
      state.station_name = null;
      after(300, () => {
        type("#setup-server", "http://192.168.1.10:8080");
        type("#setup-key", "k-7f3a9c");
        submit("#setup-form");
      });
      after(700, () => emit("scanner_test", { code: "C0042" }));
    },
    login() {
      remember({ recent: ["ravi", "sita", "mohan"] });
    },
    "login-error"() {
      after(300, () => {
        type("#login-username", "ravi");
        type("#login-password", "wrong");
        submit("#login-form");
      });
    },
    "scan-empty"() {
      state.worker = W("ravi", "dispatcher");
    },
    "scan-progress"() {
      state.worker = W("ravi", "dispatcher");
      state.open_parent = P("SB12345", 4);
      after(300, () => {
        child("C0005", P("SB12345", 5));
        child("C0006", P("SB12345", 6));
        child("C0007", P("SB12345", 7));
      });
    },
    "scan-refused"() {
      state.worker = W("ravi", "dispatcher");
      state.open_parent = P("SB12345", 30);
      after(300, () => outcome({ kind: "child", code: "C0031", verdict: { kind: "refused", code: "parent_full", message: "SB12345 is full: 30 of 30" } }));
    },
    "scan-other-parent"() {
      state.worker = W("ravi", "dispatcher");
      state.open_parent = P("SB12345", 11);
      after(300, () => outcome({ kind: "child", code: "C7781", verdict: { kind: "refused", code: "child_in_other_parent", message: "C7781 is already in SB00417." } }));
    },
    "scan-offline"() {
      state.worker = W("ravi", "dispatcher");
      state.open_parent = P("SB12345", 11);
      state.status = { online: false, unsent: 3, needs_attention: 2, last_error: "connection refused" };
      after(300, () => outcome({ kind: "child", code: "C0012", verdict: { kind: "saved_offline", unsent: 3, parent: P("SB12345", 12) } }));
    },
    "scan-complete"() {
      state.worker = W("ravi", "dispatcher");
      state.open_parent = P("SB12345", 29);
      after(300, () => child("C0030", P("SB12345", 30)));
    },
    "scan-typed"() {
      state.worker = W("ravi", "dispatcher");
      state.open_parent = P("SB12345", 9);
      after(300, () => $("#btn-type-code").click());
    },
    attention() {
      state.worker = W("ravi", "dispatcher");
      state.status.needs_attention = 3;
      attention = [
        { id: "a1", worker: "ravi", kind: "link", parent: "SB12345", child: "C0031", bill: null, scanned_at: anHourAgo, code: "parent_full", message: "SB12345 is full: 30 of 30" },
        { id: "a2", worker: "ravi", kind: "link", parent: "SB12345", child: "C0099", bill: null, scanned_at: anHourAgo, code: "child_in_other_parent", message: "C0099 is already in SB00417." },
        { id: "a3", worker: "mohan", kind: "link", parent: "SB22222", child: "C1200", bill: null, scanned_at: anHourAgo, code: "wrong_area", message: "You can only see bags of your area A2." },
      ];
      after(300, () => $("#st-attention").click());
    },
    "billing-none"() {
      state.worker = W("sita", "biller");
    },
    "billing-open"() {
      state.worker = W("sita", "biller");
      bill = makeBill("BILL-2025-117", 10, "Pune depot", "MH12AB1234");
      addParent(bill, "SB00101", 30);
      addParent(bill, "SB00102", 30);
      addParent(bill, "SB00103", 24);
      remember({ screen: "billing", user: "sita", bill: "BILL-2025-117", recent: ["sita"] });
      after(400, () => emit("bill_scan_outcome", billScan("SB00104")));
    },
    "billing-close"() {
      SCENES["billing-open"]();
      after(700, () => $("#btn-bill-close").click());
    },
    settings() {
      after(300, () => {
        $("#btn-settings").click();
        setTimeout(() => {
          type("#unlock-username", "admin");
          type("#unlock-password", "pw");
          submit("#unlock-form");
        }, 100);
      });
    },
  };
  (SCENES[scene] || SCENES["scan-empty"])();
})();
