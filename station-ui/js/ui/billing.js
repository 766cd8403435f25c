// The biller's screen: open or create a bill, scan parent bags onto it,
// remove one, close it (with a reason when it is not full).

import { h, icon, button, field, clear, setVar } from "../dom.js";
import { billView, checkNewBill } from "../bill-view.js";
import { feedbackView } from "../flow-view.js";
import { feedbackPanel, typeCodeBox } from "./scan.js";

function buildNoBill(app) {
  const t = app.t;
  const error = h("div", { class: "form-error", id: "bill-error", hidden: true, attrs: { role: "alert" } });
  const note = h("div", { class: "note good", id: "bill-note", hidden: !app.billNote });
  if (app.billNote) note.append(icon("ok"), h("span", { text: app.t(app.billNote.key, app.billNote.params) }));

  const openField = field({ label: t("bill_open_label"), name: "bill", id: "bill-code" });
  const openForm = h(
    "form",
    { class: "card form", id: "bill-open-form", attrs: { autocomplete: "off" } },
    openField,
    h("div", { class: "row" }, h("button", { type: "submit", class: "btn primary big", id: "btn-bill-open" }, icon("bill"), h("span", { text: t("bill_open_btn") })), button(t("bill_new_btn"), () => showCreate(true), { kind: "big", iconName: "bill", id: "btn-bill-new" })),
  );

  const createForm = h(
    "form",
    { class: "card form create", id: "bill-create-form", hidden: true, attrs: { autocomplete: "off" } },
    h("h2", { text: t("bill_new_title") }),
    h(
      "div",
      { class: "grid2" },
      field({ label: t("bill_open_label"), name: "code", id: "new-code" }),
      field({ label: t("bill_capacity"), name: "capacity", id: "new-capacity", inputmode: "numeric" }),
      field({ label: t("bill_destination"), name: "destination", id: "new-destination" }),
      field({ label: t("bill_vehicle"), name: "vehicle", id: "new-vehicle" }),
    ),
    h("div", { class: "row" }, h("button", { type: "submit", class: "btn primary big", id: "btn-bill-create" }, icon("ok"), h("span", { text: t("bill_create_btn") })), button(t("btn_cancel"), () => showCreate(false), { kind: "big" })),
  );

  function showError(text) {
    error.textContent = text;
    error.hidden = !text;
  }
  function showCreate(on) {
    createForm.hidden = !on;
    openForm.hidden = on;
    showError("");
    (on ? createForm.querySelector("#new-code") : openForm.querySelector("#bill-code")).focus();
  }

  function openBill() {
    const code = openForm.querySelector("#bill-code").value.trim();
    if (!code) return showError(t("bill_code_missing"));
    showError("");
    app.run(async () => app.setBill(await app.api.billOpen(code)), (err) => showError(app.errorText(err, { code })));
  }
  openForm.addEventListener("submit", (e) => {
    e.preventDefault();
    openBill();
  });
  createForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const check = checkNewBill({
      code: createForm.querySelector("#new-code").value,
      capacity: createForm.querySelector("#new-capacity").value,
      destination: createForm.querySelector("#new-destination").value,
      vehicleNumber: createForm.querySelector("#new-vehicle").value,
    });
    if (!check.ok) {
      showError(t(check.error));
      createForm.querySelector(check.field === "code" ? "#new-code" : "#new-capacity").focus();
      return;
    }
    showError("");
    app.run(async () => app.setBill(await app.api.billCreate(check.value)), (err) => showError(app.errorText(err, { code: check.value.code })));
  });

  const root = h("div", { class: "no-bill" }, h("h1", { class: "prompt" }, icon("bill", "icon prompt-icon"), h("span", { text: t("bill_open_hint") })), note, error, openForm, createForm);
  function onScannedCode(code) {
    if (!createForm.hidden) return;
    openForm.querySelector("#bill-code").value = code;
    openBill();
  }

  return { root, update: () => {}, focus: () => openForm.querySelector("#bill-code").focus(), showError, onScannedCode };
}

function buildOpenBill(app) {
  const t = app.t;
  const code = h("div", { class: "bill-code code", id: "bill-code-shown" });
  const status = h("div", { class: "bill-status", id: "bill-status" });
  const where = h("div", { class: "bill-where" });
  const counter = h("div", { class: "counter", id: "bill-counter" });
  const bar = h("div", { class: "bar" });
  const progress = h("div", { class: "progress", id: "bill-progress" }, bar);
  const children = h("div", { class: "stat-value", id: "bill-children" });
  const actual = h("div", { class: "stat-value", id: "bill-actual" });
  const expected = h("div", { class: "stat-value", id: "bill-expected" });
  const feedback = feedbackPanel("bill-feedback");
  const parentList = h("ul", { class: "parent-list", id: "bill-parents" });
  let confirmRemove = null;

  const typeBox = typeCodeBox(app, async (c) => {
    await app.run(async () => app.handleBill(await app.api.billScan(c), "add", c), (err) => app.billError(err, c));
  }, (open) => {
    typeBtn.hidden = open;
  });

  // Closing: a panel with the reason box when the bill is not full.
  const closeTitle = h("h2", { id: "close-title" });
  const reasonField = field({ label: t("bill_reason_label"), name: "reason", id: "close-reason", multiline: true });
  const closeError = h("div", { class: "form-error", id: "close-error", hidden: true, attrs: { role: "alert" } });
  const closeForm = h(
    "form",
    { class: "close-panel card", id: "close-form", hidden: true, attrs: { autocomplete: "off" } },
    closeTitle,
    reasonField,
    closeError,
    h("div", { class: "row" }, h("button", { type: "submit", class: "btn danger big", id: "btn-close-confirm" }, icon("ok"), h("span", { text: t("bill_close_confirm") })), button(t("btn_cancel"), () => hideClose(), { kind: "big", id: "btn-close-cancel" })),
  );
  let forceReason = false;
  function showClose() {
    const v = billView(app.bill, app.t);
    closeTitle.textContent = t("bill_close_ask", { code: v.code });
    reasonField.hidden = !(v.needsReason || forceReason);
    closeError.hidden = true;
    closeForm.hidden = false;
    sideButtons.hidden = true;
    typeBox.close();
    if (!reasonField.hidden) reasonField.querySelector("textarea").focus();
  }
  function hideClose() {
    closeForm.hidden = true;
    sideButtons.hidden = false;
    forceReason = false;
    reasonField.querySelector("textarea").value = "";
    app.focusScan();
  }
  closeForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = reasonField.querySelector("textarea").value.trim();
    const needs = !reasonField.hidden;
    if (needs && !text) {
      closeError.textContent = t("bill_reason_missing");
      closeError.hidden = false;
      reasonField.querySelector("textarea").focus();
      return;
    }
    app.run(
      async () => {
        const closed = await app.api.billClose(needs ? text : null);
        hideClose();
        app.billClosed(closed);
      },
      (err) => {
        if (err.code === "reason_required") {
          forceReason = true;
          reasonField.hidden = false;
          reasonField.querySelector("textarea").focus();
        }
        closeError.textContent = app.errorText(err, { code: app.bill?.code });
        closeError.hidden = false;
      },
    );
  });

  const closeBtn = button(t("bill_close_btn"), () => showClose(), { kind: "big danger", iconName: "ok", id: "btn-bill-close" });
  const typeBtn = button(t("btn_type_code"), () => typeBox.open(), { iconName: "keyboard", id: "btn-bill-type" });
  const sideButtons = h("div", { class: "side-buttons" });
  const otherBtn = button(t("bill_other"), () => app.leaveBill(), { kind: "small", iconName: "back", id: "btn-bill-other" });

  const root = h(
    "div",
    { class: "open-bill" },
    h(
      "div",
      { class: "col-main" },
      h("div", { class: "bill-head" }, h("div", {}, h("div", { class: "label", text: t("bill_open_label") }), code), h("div", { class: "bill-meta" }, status, where), otherBtn),
      h("h1", { class: "prompt step-children" }, icon("bag", "icon prompt-icon"), h("span", { text: t("bill_scan_prompt") })),
      h("div", { class: "parent-card" }, h("div", { class: "parent-top" }, h("div", { class: "label", text: t("bill_parents") }), counter), progress),
      h(
        "div",
        { class: "stats" },
        h("div", { class: "stat" }, h("div", { class: "label", text: t("bill_children") }), children),
        h("div", { class: "stat" }, h("div", { class: "label", text: t("bill_actual") }), actual),
        h("div", { class: "stat" }, h("div", { class: "label", text: t("bill_expected") }), expected),
      ),
      feedback.root,
    ),
    h("div", { class: "col-side" }, h("div", { class: "session-box" }, h("h2", { text: t("bill_parents") }), parentList), typeBox.root, closeForm, sideButtons),
  );

  sideButtons.append(typeBtn, closeBtn);

  function update() {
    const t = app.t;
    const v = billView(app.bill, t);
    if (!v) return;
    code.textContent = v.code;
    status.textContent = v.status;
    status.dataset.status = v.statusKey;
    clear(where);
    if (v.destination) where.append(h("div", { text: v.destination }));
    if (v.vehicle) where.append(h("div", { text: v.vehicle }));
    counter.textContent = v.counter;
    setVar(bar, "--pct", `${v.progress}%`);
    children.textContent = v.children;
    actual.textContent = v.actual;
    expected.textContent = v.expected;
    const fb = feedbackView(app.billFb, t);
    feedback.set(fb, app.billFb);
    feedback.root.hidden = !fb;

    clear(parentList);
    if (v.parents.length === 0) parentList.append(h("li", { class: "muted", text: t("bill_no_parents") }));
    for (const p of v.parents) {
      if (confirmRemove === p.code) {
        parentList.append(
          h(
            "li",
            { class: "confirm" },
            h("div", { class: "ask", text: t("bill_remove_ask", { code: p.code }) }),
            h(
              "div",
              { class: "row" },
              button(t("yes_remove"), () => {
                confirmRemove = null;
                app.run(async () => app.handleBill(await app.api.billRemove(p.code), "remove", p.code), (err) => app.billError(err, p.code));
              }, { kind: "danger", test: "remove-yes" }),
              button(t("no_keep"), () => {
                confirmRemove = null;
                update();
              }, { test: "remove-no" }),
            ),
          ),
        );
      } else {
        parentList.append(
          h(
            "li",
            { class: p.full ? "full" : "" },
            icon(p.full ? "ok" : "bag"),
            h("span", { class: "code", text: p.code }),
            h("span", { class: "count", text: p.counter }),
            button(t("bill_remove"), () => {
              confirmRemove = p.code;
              update();
            }, { kind: "small", test: "remove" }),
          ),
        );
      }
    }
    closeBtn.disabled = v.closed;
  }

  update();
  return { root, update, onTyped: (text) => typeBox.open(text) };
}

export function buildBilling(app) {
  const root = h("section", { class: "screen-billing", id: "screen-billing" });
  let mode = null;
  let part = null;

  function update() {
    const want = app.bill ? "open" : "none";
    if (want !== mode) {
      mode = want;
      clear(root);
      part = want === "open" ? buildOpenBill(app) : buildNoBill(app);
      root.appendChild(part.root);
      if (want === "none") queueMicrotask(() => part.focus());
      else app.focusScan();
    } else {
      part.update();
    }
  }
  update();
  return {
    root,
    update,
    onTyped: (text) => part.onTyped?.(text),
    onScannedCode: (code) => part.onScannedCode?.(code),
    showError: (text) => part.showError?.(text),
    autofocus: () => (mode === "none" ? part.focus() : app.focusScan()),
  };
}
