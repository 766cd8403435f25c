// Screens where a person types: first run, scanner choice, login, the admin
// unlock and settings. Nothing typed here is ever taken for a scan.

import { h, icon, button, field, clear } from "../dom.js";
import { addRecent } from "../screens.js";

function errorLine(id) {
  const el = h("div", { class: "form-error", id, hidden: true, attrs: { role: "alert" } });
  return {
    el,
    show(text) {
      el.textContent = text || "";
      el.hidden = !text;
    },
  };
}

function languageButtons(app) {
  const t = app.t;
  return h(
    "div",
    { class: "row lang-row", id: "language-buttons" },
    ["en", "hi"].map((lang) =>
      button(t(`lang_${lang}`), () => app.run(() => app.setLanguage(lang)), {
        kind: `lang ${t.lang === lang ? "chosen" : ""}`,
        test: `lang-${lang}`,
        iconName: t.lang === lang ? "ok" : null,
      }),
    ),
  );
}

/** First run, step 1: server address and station key. */
export function buildSetup(app) {
  const t = app.t;
  const err = errorLine("setup-error");
  const url = field({ label: t("setup_server"), name: "server", id: "setup-server", hint: t("setup_server_hint"), inputmode: "url", value: app.state?.server_url || "" });
  const key = field({ label: t("setup_key"), name: "key", id: "setup-key", hint: t("setup_key_hint") });
  const form = h(
    "form",
    { class: "card form narrow", id: "setup-form", attrs: { autocomplete: "off" } },
    url,
    key,
    err.el,
    h("button", { type: "submit", class: "btn primary big", id: "btn-setup" }, icon("ok"), h("span", { text: t("setup_connect") })),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const serverUrl = form.querySelector("#setup-server").value.trim();
    const stationKey = form.querySelector("#setup-key").value.trim();
    if (!serverUrl || !stationKey) return err.show(t("setup_missing"));
    err.show("");
    app.run(
      async () => {
        const res = await app.api.setup(serverUrl, stationKey);
        app.setupNote = t("setup_done", { name: res?.station_name ?? "" });
        await app.refresh({ requested: "setup_scanner" });
      },
      (e2) => err.show(app.errorText(e2)),
    );
  });
  const root = h("section", { class: "screen-form", id: "screen-setup" }, h("div", { class: "screen-head" }, h("h1", { text: t("setup_title") }), languageButtons(app)), form);
  return { root, update: () => {}, autofocus: () => form.querySelector("#setup-server").focus() };
}

/** The scanner list and the live test box (first run and settings). */
export function scannerChooser(app) {
  const t = app.t;
  const list = h("ul", { class: "device-list", id: "device-list" });
  const note = h("div", { class: "note good", id: "scanner-note", hidden: true });
  const err = errorLine("scanner-error");
  const testResult = h("div", { class: "test-result", id: "scanner-test-result", attrs: { "aria-live": "polite" } });
  const testField = field({ label: t("scanner_test_label"), name: "test", id: "scanner-test", hint: t("scanner_test_hint") });
  const testForm = h("form", { class: "test-box", id: "scanner-test-form", attrs: { autocomplete: "off" } }, testField, testResult);
  let chosen = null;

  function showTest(code) {
    clear(testResult);
    if (!code) return;
    testResult.append(icon("ok"), h("span", { text: t("scanner_test_got", { code }) }));
    testResult.className = "test-result good";
  }
  testForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const input = testForm.querySelector("#scanner-test");
    showTest(input.value.trim());
    input.value = "";
  });

  function choose(vendorId, productId, label) {
    app.run(
      async () => {
        await app.api.chooseScanner(vendorId, productId);
        chosen = label;
        note.textContent = `${t("scanner_chosen")}: ${label}`;
        note.hidden = false;
        err.show("");
        await load();
        testForm.querySelector("#scanner-test").focus();
      },
      (e) => err.show(app.errorText(e)),
    );
  }

  async function load() {
    let devices = [];
    try {
      devices = (await app.api.devices()) || [];
    } catch (e) {
      err.show(app.errorText(e));
    }
    clear(list);
    if (devices.length === 0) list.append(h("li", { class: "muted", text: t("scanner_none_found") }));
    for (const d of devices) {
      const label = d.name || `${hex(d.vendor_id)}:${hex(d.product_id)}`;
      const inUse = app.state?.scanner?.connected && app.state.scanner.name === d.name;
      list.append(
        h(
          "li",
          { class: inUse || chosen === label ? "in-use" : "" },
          icon("scanner"),
          h("span", { class: "device-name", text: label }),
          h("span", { class: "muted small", text: `${hex(d.vendor_id)}:${hex(d.product_id)}` }),
          inUse ? h("span", { class: "tag good", text: t("scanner_in_use") }) : button(t("scanner_use"), () => choose(d.vendor_id, d.product_id, label), { kind: "small", test: "choose-device" }),
        ),
      );
    }
  }

  const root = h(
    "div",
    { class: "scanner-chooser" },
    h(
      "div",
      { class: "card" },
      h("div", { class: "row spread" }, h("h2", { text: t("scanner_title") }), button(t("scanner_refresh"), () => load(), { kind: "small", iconName: "undo", id: "btn-devices-refresh" })),
      list,
      h("div", { class: "row" }, button(t("scanner_first"), () => choose(null, null, t("scanner_first")), { iconName: "scanner", id: "btn-first-scanner" })),
      note,
      err.el,
    ),
    h("div", { class: "card" }, testForm),
  );
  load();
  // HID scanners report here (the core sends "scanner_test" while no flow takes scans).
  const off = app.onScannerTest((code) => showTest(code));
  return { root, dispose: off, focusTest: () => testForm.querySelector("#scanner-test").focus() };
}

function hex(n) {
  return typeof n === "number" ? n.toString(16).padStart(4, "0") : String(n ?? "");
}

/** First run, step 2: the scanner. */
export function buildSetupScanner(app) {
  const t = app.t;
  const chooser = scannerChooser(app);
  const note = app.setupNote ? h("div", { class: "note good" }, icon("ok"), h("span", { text: app.setupNote })) : null;
  const root = h(
    "section",
    { class: "screen-form", id: "screen-setup-scanner" },
    h("div", { class: "screen-head" }, h("h1", { text: t("setup_title") }), button(t("scanner_finish"), () => app.go(null), { kind: "primary big", iconName: "ok", id: "btn-setup-finish" })),
    note,
    chooser.root,
  );
  return { root, update: () => {}, dispose: chooser.dispose, autofocus: chooser.focusTest };
}

/** Login, with the quick switch: recent workers as big name buttons. */
export function buildLogin(app) {
  const t = app.t;
  const err = errorLine("login-error");
  const user = field({ label: t("login_username"), name: "username", id: "login-username", autocomplete: "username" });
  const pass = field({ label: t("login_password"), name: "password", id: "login-password", type: "password", autocomplete: "current-password" });
  const form = h(
    "form",
    { class: "card form narrow", id: "login-form", attrs: { autocomplete: "off" } },
    user,
    pass,
    err.el,
    h("button", { type: "submit", class: "btn primary big", id: "btn-login" }, icon("user"), h("span", { text: t("login_button") })),
  );
  const recent = app.memory.recent || [];
  const recentBox = recent.length
    ? h(
        "div",
        { class: "card recent" },
        h("h2", { text: t("login_recent") }),
        h(
          "div",
          { class: "recent-list" },
          recent.map((name) =>
            button(name, () => {
              form.querySelector("#login-username").value = name;
              form.querySelector("#login-password").value = "";
              form.querySelector("#login-password").focus();
            }, { kind: "name", iconName: "user", test: "recent-worker" }),
          ),
        ),
      )
    : null;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const username = form.querySelector("#login-username").value.trim();
    const password = form.querySelector("#login-password").value;
    if (!username || !password) return err.show(t("login_missing"));
    err.show("");
    app.run(
      async () => {
        await app.api.login(username, password);
        app.remember({ recent: addRecent(app.memory.recent, username) });
        await app.refresh({ requested: null });
      },
      (e2) => {
        err.show(app.errorText(e2));
        form.querySelector("#login-password").value = "";
        form.querySelector("#login-password").focus();
      },
    );
  });
  const root = h("section", { class: "screen-form login", id: "screen-login" }, h("h1", { text: t("login_title") }), h("div", { class: "login-cols" }, recentBox, form));
  return {
    root,
    update: () => {},
    autofocus: () => form.querySelector(recent.length ? "#login-username" : "#login-username").focus(),
  };
}

/** Settings are behind an admin login. */
export function buildUnlock(app) {
  const t = app.t;
  const err = errorLine("unlock-error");
  const form = h(
    "form",
    { class: "card form narrow", id: "unlock-form", attrs: { autocomplete: "off" } },
    field({ label: t("login_username"), name: "username", id: "unlock-username" }),
    field({ label: t("login_password"), name: "password", id: "unlock-password", type: "password" }),
    err.el,
    h("div", { class: "row" }, h("button", { type: "submit", class: "btn primary big", id: "btn-unlock" }, icon("gear"), h("span", { text: t("unlock_button") })), button(t("btn_back"), () => app.go(null), { kind: "big", iconName: "back", id: "btn-unlock-back" })),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const username = form.querySelector("#unlock-username").value.trim();
    const password = form.querySelector("#unlock-password").value;
    if (!username || !password) return err.show(t("login_missing"));
    app.run(
      async () => {
        const ok = await app.api.settingsUnlock(username, password);
        if (ok) {
          app.settingsUnlocked = true;
          app.go("settings");
        } else {
          err.show(t("unlock_wrong"));
          form.querySelector("#unlock-password").value = "";
        }
      },
      (e2) => err.show(app.errorText(e2)),
    );
  });
  const root = h("section", { class: "screen-form", id: "screen-unlock" }, h("h1", {}, icon("gear", "icon prompt-icon"), h("span", { text: t("unlock_title") })), form);
  return { root, update: () => {}, autofocus: () => form.querySelector("#unlock-username").focus() };
}

export function buildSettings(app) {
  const t = app.t;
  const err = errorLine("server-error");
  const saved = h("div", { class: "note good", id: "server-saved", hidden: true });
  const serverForm = h(
    "form",
    { class: "card form", id: "server-form", attrs: { autocomplete: "off" } },
    h("h2", { text: t("settings_server") }),
    field({ label: t("setup_server"), name: "server", id: "settings-server", value: app.state?.server_url || "", inputmode: "url" }),
    field({ label: t("settings_key_needed"), name: "key", id: "settings-key" }),
    err.el,
    saved,
    h("button", { type: "submit", class: "btn primary", id: "btn-server-save" }, icon("ok"), h("span", { text: t("settings_server_save") })),
  );
  serverForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const serverUrl = serverForm.querySelector("#settings-server").value.trim();
    const stationKey = serverForm.querySelector("#settings-key").value.trim();
    if (!serverUrl || !stationKey) return err.show(t("setup_missing"));
    err.show("");
    app.run(
      async () => {
        const res = await app.api.setup(serverUrl, stationKey);
        saved.textContent = t("setup_done", { name: res?.station_name ?? "" });
        saved.hidden = false;
        serverForm.querySelector("#settings-key").value = "";
        await app.refresh({ requested: "settings", rebuild: false });
      },
      (e2) => err.show(app.errorText(e2)),
    );
  });
  const lastError = app.state?.status?.last_error;
  const chooser = scannerChooser(app);
  const root = h(
    "section",
    { class: "screen-form settings", id: "screen-settings" },
    h("div", { class: "screen-head" }, h("h1", {}, icon("gear", "icon prompt-icon"), h("span", { text: t("settings_title") })), button(t("btn_close_settings"), () => app.closeSettings(), { kind: "primary big", iconName: "back", id: "btn-settings-close" })),
    h(
      "div",
      { class: "settings-cols" },
      h(
        "div",
        {},
        h("div", { class: "card" }, h("h2", { text: t("settings_language") }), languageButtons(app)),
        serverForm,
        lastError ? h("div", { class: "muted small", id: "last-error", text: t("settings_last_error", { message: lastError }) }) : null,
        app.state?.app_version ? h("div", { class: "muted small", id: "app-version", text: t("settings_version", { version: app.state.app_version }) }) : null,
      ),
      h("div", {}, chooser.root),
    ),
  );
  return { root, update: () => {}, dispose: chooser.dispose };
}
