// The status bar on every screen: online/offline, unsent count, scanner,
// scans to check, who is logged in, and the worker's buttons.

import { h, icon, button, clear } from "../dom.js";
import { workScreens } from "../screens.js";
import { connectionPill } from "../status-view.js";

function pill(id) {
  const iconSlot = h("span", { class: "pill-icon" });
  const text = h("span", { class: "pill-text" });
  const root = h("div", { class: "pill", id, attrs: { role: "status" } }, iconSlot, text);
  return {
    root,
    set(kind, iconName, words) {
      root.className = `pill ${kind}`;
      clear(iconSlot);
      iconSlot.appendChild(icon(iconName));
      text.textContent = words;
    },
  };
}

export function buildStatusBar(app) {
  const station = h("div", { class: "station-name", id: "st-station" });
  const online = pill("st-online");
  const unsent = pill("st-unsent");
  const scanner = pill("st-scanner");
  const attention = h("button", {
    type: "button",
    class: "btn attention-badge",
    id: "st-attention",
    hidden: true,
    on: { click: () => app.go("attention") },
  });
  const worker = h("div", { class: "worker", id: "st-worker" });
  const actions = h("div", { class: "status-actions" });
  const root = h(
    "div",
    { class: "status-inner" },
    station,
    h("div", { class: "pills" }, online.root, unsent.root, scanner.root, attention),
    h("div", { class: "status-right" }, worker, actions),
  );

  let actionsKey = null;

  function update() {
    const t = app.t;
    const s = app.state;
    const st = s?.status || { online: false, unsent: 0, needs_attention: 0 };
    station.textContent = s?.station_name || t("app_title");

    if (s?.configured) {
      online.root.hidden = false;
      unsent.root.hidden = false;
      scanner.root.hidden = false;
      const conn = connectionPill(st, { known: app.connectionKnown, elapsedMs: Date.now() - app.startedAt });
      online.set(conn.kind, conn.icon, t(conn.key));
      if (st.unsent > 0) unsent.set("warn", "upload", t("st_unsent", { n: st.unsent }));
      else unsent.set("good", "ok", t("st_all_sent"));
      const sc = s.scanner || { connected: false };
      if (sc.connected) scanner.set("good", "scanner", t("st_scanner_ok"));
      else scanner.set("plain", "scanner", t("st_scanner_none"));
    } else {
      online.root.hidden = true;
      unsent.root.hidden = true;
      scanner.root.hidden = true;
    }

    const w = s?.worker;
    const n = st.needs_attention || 0;
    attention.hidden = !(w && n > 0) || app.screen === "attention";
    clear(attention);
    attention.append(icon("warn"), h("span", { text: t("st_attention", { n }) }));

    clear(worker);
    if (w) {
      worker.append(
        icon("user"),
        h("span", { class: "worker-name", text: w.username }),
        h("span", { class: "worker-role", text: t(`role_${w.role}`) + (w.online ? "" : ` · ${t("st_worker_offline")}`) }),
      );
    } else if (s?.configured) {
      worker.append(h("span", { class: "worker-role", text: t("st_nobody") }));
    }

    // Buttons depend on the worker, the screen and the language only.
    const key = [t.lang, w?.username, w?.role, app.screen].join("|");
    if (key !== actionsKey) {
      actionsKey = key;
      clear(actions);
      if (w) {
        const work = workScreens(w.role);
        if (work.length > 1) {
          if (app.screen !== "scan") actions.append(button(t("btn_go_scan"), () => app.go("scan"), { kind: "small", iconName: "bag", test: "go-scan" }));
          if (app.screen !== "billing") actions.append(button(t("btn_go_billing"), () => app.go("billing"), { kind: "small", iconName: "bill", test: "go-billing" }));
        }
        actions.append(button(t("btn_switch_worker"), () => app.switchWorker(), { kind: "small", iconName: "user", id: "btn-switch-worker" }));
      }
      if (s?.configured && app.screen !== "settings" && app.screen !== "settings_unlock") {
        const gear = button(t("btn_settings"), () => app.go("settings"), { kind: "small icon-only", iconName: "gear", id: "btn-settings" });
        gear.setAttribute("aria-label", t("btn_settings"));
        gear.title = t("btn_settings");
        actions.append(gear);
      }
    }
  }

  return { root, update };
}
