// DOM wiring: the screens, the status bar, the always-focused scan input and
// the station's events. All decisions live in the pure modules it imports.

import { api } from "./api.js";
import { makeT, normalizeLanguage } from "./i18n.js";
import { chooseScreen, scanMode, parseMemory, MEMORY_KEY, billToRestore } from "./screens.js";
import {
  SCAN_INPUT_ID,
  FOCUS_CHECK_MS,
  elementKind,
  routeKey,
  shouldRefocus,
  scanInputWanted,
  wedgeArgs,
  classifyWedgeResult,
} from "./wedge-focus.js";
import { initialScan, reduceOutcome, endCelebration, markAllSent, CELEBRATE_MS } from "./flow-view.js";
import { connectionKnown, CONNECTING_MS } from "./status-view.js";
import { nextBill, billFeedback } from "./bill-view.js";
import { errorLine } from "./reasons.js";
import { h, icon, clear } from "./dom.js";
import { buildStatusBar } from "./ui/status.js";
import { buildSetup, buildSetupScanner, buildLogin, buildUnlock, buildSettings } from "./ui/forms.js";
import { buildScan, buildAttention } from "./ui/scan.js";
import { buildBilling } from "./ui/billing.js";

const main = document.getElementById("screen");
const statusHost = document.getElementById("status-bar");
const scanBox = document.getElementById("scan-box");
const scanInput = document.getElementById(SCAN_INPUT_ID);
const scanLabel = document.getElementById("scan-label");

function loadMemory() {
  try {
    return parseMemory(window.localStorage.getItem(MEMORY_KEY));
  } catch {
    return parseMemory(null);
  }
}

const app = {
  api,
  t: makeT("en"),
  state: null,
  screen: null,
  requested: null,
  lastWork: "scan",
  settingsUnlocked: false,
  memory: loadMemory(),
  scan: initialScan(null),
  bill: null,
  billFb: null,
  billNote: null,
  setupNote: null,
  view: null,
  busy: false,
  celebrateTimer: null,
  testListeners: new Set(),
  startedAt: Date.now(),
  connectionKnown: false,

  /** Asks for a screen (null: the default one for this state). */
  go(screen) {
    app.requested = screen;
    render();
  },

  /** Reads station_state again and draws. */
  async refresh(opts = {}) {
    if ("requested" in opts) app.requested = opts.requested;
    const state = await api.stationState();
    const hadWorker = app.state?.worker?.username;
    if (state.configured && !app.state?.configured) {
      // Just started or just set up: "Connecting…" until the station knows.
      app.startedAt = Date.now();
      app.connectionKnown = false;
      setTimeout(() => statusBar.update(), CONNECTING_MS + 50);
    }
    app.connectionKnown = connectionKnown(state.status, app.connectionKnown);
    app.state = state;
    if (state.worker?.username !== hadWorker) {
      app.scan = initialScan(state.open_parent);
      app.bill = null;
      app.billFb = null;
      app.billNote = null;
    } else if (state.open_parent && !app.scan.parent) {
      app.scan = initialScan(state.open_parent);
    }
    applyLanguage(state.language, false);
    render();
  },

  refreshStatus() {
    api.stationState().then((s) => {
      if (app.state) {
        app.state.status = s.status;
        app.state.scanner = s.scanner;
      }
      statusBar.update();
    }, () => {});
  },

  update() {
    app.view?.update?.();
    statusBar.update();
    updateScanBox();
    syncScanMode();
  },

  async setLanguage(lang) {
    const language = normalizeLanguage(lang);
    try {
      await api.setLanguage(language);
    } finally {
      if (app.state) app.state.language = language;
      applyLanguage(language, true);
    }
  },

  remember(patch) {
    app.memory = { ...app.memory, ...patch };
    try {
      window.localStorage.setItem(MEMORY_KEY, JSON.stringify(app.memory));
    } catch {
      /* a full or missing localStorage only loses the convenience */
    }
  },

  /** One action at a time: a double tap never sends twice. */
  async run(action, onError) {
    if (app.busy) return;
    app.busy = true;
    document.body.classList.add("busy");
    try {
      await action();
    } catch (err) {
      if (onError) onError(err);
      else console.error(err);
    } finally {
      app.busy = false;
      document.body.classList.remove("busy");
      keepFocus();
    }
  },

  errorText(err, ctx) {
    return errorLine(err, ctx, app.t);
  },

  // ---- scanning ----
  handleFlow(outcome) {
    app.scan = reduceOutcome(app.scan, outcome);
    clearTimeout(app.celebrateTimer);
    if (app.scan.celebrate) {
      app.celebrateTimer = setTimeout(() => {
        app.scan = endCelebration(app.scan);
        app.update();
      }, CELEBRATE_MS);
    }
    if (app.screen === "attention") {
      app.go("scan");
    } else {
      app.update();
    }
  },

  scanError(err, code = null) {
    app.scan = { ...app.scan, celebrate: null, feedback: { colour: "red", title: { raw: app.errorText(err, { code, parent: app.scan.parent?.code }) }, detail: null, code } };
    app.update();
  },

  // ---- billing ----
  setBill(bill) {
    app.bill = bill;
    app.billFb = null;
    app.billNote = null;
    app.remember({ bill: bill?.code ?? null, user: app.state?.worker?.username ?? null });
    app.update();
    keepFocus();
  },

  handleBill(result, action, code) {
    const scanned = code ?? result?.code ?? newParentCode(app.bill, result?.bill);
    if (!app.bill && !result?.bill) {
      app.billFb = billFeedback(result, action, scanned, null);
      if (app.screen === "billing") app.view?.showError?.(feedbackTitle(app.billFb));
      return;
    }
    const before = app.bill;
    app.bill = nextBill(app.bill, result);
    app.billFb = billFeedback(result, action, scanned, before);
    if (app.screen === "attention") app.go("billing");
    else app.update();
  },

  billError(err, code) {
    app.billFb = { colour: "red", title: { raw: app.errorText(err, { code }) }, detail: null, code };
    app.update();
  },

  billClosed(bill) {
    app.bill = null;
    app.billFb = null;
    // Words are looked up when drawn, so a language change translates it too.
    app.billNote = { key: "bill_closed_done", params: { code: bill?.code ?? "" } };
    app.remember({ bill: null });
    app.update();
  },

  leaveBill() {
    app.bill = null;
    app.billFb = null;
    app.billNote = null;
    app.remember({ bill: null });
    app.update();
  },

  // ---- workers and settings ----
  switchWorker() {
    app.run(async () => {
      await api.logout();
      clearTimeout(app.celebrateTimer);
      app.state.worker = null;
      app.scan = initialScan(null);
      app.bill = null;
      app.billFb = null;
      app.billNote = null;
      app.go(null);
    }, (err) => console.error(err));
  },

  closeSettings() {
    app.settingsUnlocked = false;
    app.go(null);
  },

  onScannerTest(handler) {
    app.testListeners.add(handler);
    return () => app.testListeners.delete(handler);
  },

  focusScan() {
    if (scanInputActive() && document.activeElement !== scanInput) scanInput.focus({ preventScroll: true });
  },
};

function newParentCode(before, after) {
  if (!after) return null;
  const had = new Set((before?.parents || []).map((p) => p.code));
  return (after.parents || []).find((p) => !had.has(p.code))?.code ?? null;
}

function feedbackTitle(fb) {
  if (!fb) return "";
  if (fb.title.raw !== undefined) return fb.title.raw;
  return app.t(fb.title.key, fb.title.params);
}

// ---------------------------------------------------------------- drawing

const statusBar = buildStatusBar(app);
statusHost.appendChild(statusBar.root);

const BUILDERS = {
  loading: () => ({ root: h("section", { class: "screen-message" }, h("div", { class: "big-note", text: app.t("loading") })), update() {} }),
  unavailable: () => ({
    root: h(
      "section",
      { class: "screen-message", id: "screen-unavailable" },
      icon("warn", "icon huge"),
      h("h1", { text: app.t("no_tauri_title") }),
      h("p", { class: "big-note", text: app.t("no_tauri_body") }),
    ),
    update() {},
  }),
  setup: () => buildSetup(app),
  setup_scanner: () => buildSetupScanner(app),
  login: () => buildLogin(app),
  settings_unlock: () => buildUnlock(app),
  settings: () => buildSettings(app),
  scan: () => buildScan(app),
  attention: () => buildAttention(app),
  billing: () => buildBilling(app),
};

function render(force = false) {
  const screen = chooseScreen(app.state, {
    requested: app.requested,
    memory: app.memory,
    settingsUnlocked: app.settingsUnlocked,
    tauri: api.available(),
  });
  if (screen !== "settings" && screen !== "settings_unlock") app.settingsUnlocked = false;
  const changed = screen !== app.screen;
  if (changed || force) {
    app.view?.dispose?.();
    app.screen = screen;
    app.requested = screen === "loading" ? app.requested : screen;
    if (screen === "scan" || screen === "billing") {
      app.lastWork = screen;
      app.remember({ screen, user: app.state?.worker?.username ?? null });
    }
    document.body.dataset.screen = screen;
    if (screen === "billing" && !app.bill) restoreBill();
    clear(main);
    app.view = BUILDERS[screen]();
    main.appendChild(app.view.root);
    syncScanMode();
    statusBar.update();
    updateScanBox();
    if (app.view.autofocus) queueMicrotask(() => app.view.autofocus());
    else keepFocus();
  } else {
    app.update();
  }
}

// Tells the core where finished scans go, whenever that changes.
let sentMode = null;
function syncScanMode() {
  const mode = scanMode(app.screen, app.lastWork, { billOpen: billIsOpen() });
  if (mode === sentMode) return;
  sentMode = mode;
  api.setScanMode(mode).catch(() => {});
}

function billIsOpen() {
  return !!app.bill && app.bill.status !== "closed";
}

function restoreBill() {
  const code = billToRestore(app.memory, app.state?.worker);
  if (!code) return;
  api.billOpen(code).then(
    (bill) => {
      if (!app.bill && bill && bill.status !== "closed") app.setBill(bill);
    },
    () => app.remember({ bill: null }),
  );
}

function applyLanguage(lang, rebuild) {
  const language = normalizeLanguage(lang);
  const changed = language !== app.t.lang;
  app.t = makeT(language);
  document.documentElement.lang = language;
  document.title = app.t("app_title");
  if (changed || rebuild) {
    if (app.screen) render(true);
    statusBar.update();
    updateScanBox();
  }
}

// ------------------------------------------------------- the scan input

function scanInputActive() {
  return scanInputWanted(app.screen, { billOpen: billIsOpen() });
}

function describe(el) {
  if (!el || el === document.body || el === document.documentElement) return null;
  return { tagName: el.tagName, id: el.id, type: el.type, isContentEditable: el.isContentEditable };
}

function updateScanBox() {
  const active = scanInputActive();
  scanBox.hidden = !active;
  const focused = document.activeElement === scanInput;
  const typing = !focused && elementKind(describe(document.activeElement)) === "field";
  scanBox.classList.toggle("focused", focused);
  scanBox.classList.toggle("typing", typing);
  scanLabel.textContent = app.t(focused ? "scan_waiting" : typing ? "scan_paused" : "scan_click_here");
}

function keepFocus() {
  const active = scanInputActive();
  if (shouldRefocus({ scanActive: active, activeKind: elementKind(describe(document.activeElement)), hidden: document.hidden })) {
    scanInput.focus({ preventScroll: true });
  }
  updateScanBox();
}

// Keys from the scan input go to the core in order, one call at a time.
let wedgeChain = Promise.resolve();
function forwardKey(event) {
  const args = wedgeArgs(event);
  wedgeChain = wedgeChain
    .then(() => api.wedgeKey(args.key, args.ctrl, args.atMs))
    .then(handleWedgeResult, (err) => {
      if (app.screen === "billing") app.billError(err, null);
      else app.scanError(err, null);
    });
}

function handleWedgeResult(result) {
  switch (classifyWedgeResult(result)) {
    case "flow":
      app.handleFlow(result);
      break;
    case "bill":
      app.handleBill(result, "add", result.code ?? null);
      break;
    case "typed":
      // A person typed on the scan screen: give them the "type a code" box.
      if (result.typed.trim()) app.view?.onTyped?.(result.typed);
      break;
    default:
      break;
  }
}

document.addEventListener(
  "keydown",
  (event) => {
    const targetKind = elementKind(describe(event.target));
    const action = routeKey({ key: event.key, targetKind, scanActive: scanInputActive() });
    if (action === "pass") return;
    event.preventDefault();
    event.stopPropagation();
    if (action === "forward") {
      if (targetKind !== "scan") scanInput.focus({ preventScroll: true });
      forwardKey(event);
    }
  },
  true,
);

// Pressing a button on a scanning screen must not take the focus away
// (anything else that takes it is handled by blur and the periodic check).
document.addEventListener(
  "mousedown",
  (event) => {
    if (scanInputActive() && event.target.closest?.("button")) event.preventDefault();
  },
  true,
);
document.addEventListener("click", () => setTimeout(keepFocus, 0));
scanInput.addEventListener("blur", () => setTimeout(keepFocus, 0));
scanInput.addEventListener("focus", updateScanBox);
scanInput.addEventListener("input", () => {
  scanInput.value = "";
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) keepFocus();
});
window.addEventListener("focus", keepFocus);
setInterval(keepFocus, FOCUS_CHECK_MS);

// ------------------------------------------------------------- events

async function listen() {
  await api.on("status", (status) => {
    if (!app.state || !status) return;
    const before = app.state.status?.needs_attention ?? 0;
    app.state.status = status;
    app.connectionKnown = connectionKnown(status, app.connectionKnown);
    const scan = markAllSent(app.scan, status);
    if (scan !== app.scan) {
      app.scan = scan;
      app.update();
    }
    statusBar.update();
    if (app.screen === "attention" && status.needs_attention !== before) app.view?.reload?.();
  });
  await api.on("scanner", (scanner) => {
    if (!app.state || !scanner) return;
    app.state.scanner = scanner;
    statusBar.update();
  });
  await api.on("scan_outcome", (outcome) => {
    if (app.state?.worker) app.handleFlow(outcome);
  });
  await api.on("bill_scan_outcome", (result) => {
    if (app.state?.worker) app.handleBill(result, "add", result?.code ?? null);
  });
  await api.on("scanner_test", (payload) => {
    const code = typeof payload === "string" ? payload : payload?.code;
    if (!code) return;
    for (const fn of app.testListeners) fn(code);
    // Billing with no bill open: a scanned code is the bill number.
    app.view?.onScannedCode?.(code);
  });
}

async function start() {
  document.documentElement.lang = "en";
  document.title = app.t("app_title");
  if (!api.available()) {
    render();
    return;
  }
  render();
  try {
    await listen();
  } catch (err) {
    console.error("events", err);
  }
  try {
    await app.refresh();
  } catch (err) {
    clear(main);
    main.appendChild(h("section", { class: "screen-message" }, icon("warn", "icon huge"), h("p", { class: "big-note", text: app.errorText(err) })));
  }
}

start();
