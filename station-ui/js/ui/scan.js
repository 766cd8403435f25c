// The dispatcher's scan screen and the "needs attention" screen.

import { h, icon, button, clear, setVar } from "../dom.js";
import { scanView, closeParent, reduceUndo } from "../flow-view.js";
import { attentionView } from "../attention-view.js";

/** The coloured feedback panel: icon + words + the code in big letters. */
export function feedbackPanel(id) {
  const iconSlot = h("div", { class: "fb-icon" });
  const title = h("div", { class: "fb-title", id: `${id}-title` });
  const code = h("div", { class: "fb-code code", id: `${id}-code` });
  const detail = h("div", { class: "fb-detail", id: `${id}-detail` });
  const root = h("div", { class: "feedback", id, attrs: { role: "status", "aria-live": "assertive" } }, iconSlot, h("div", { class: "fb-words" }, title, code, detail));
  let last = null;
  return {
    root,
    /**
     * @param fb {colour, icon, title, detail, code} | null
     * @param identity the untranslated feedback object: the flash restarts only when it changes
     */
    set(fb, identity = fb) {
      if (!fb) {
        root.className = "feedback empty";
        root.dataset.colour = "";
        clear(iconSlot);
        title.textContent = "";
        code.textContent = "";
        detail.textContent = "";
        last = null;
        return;
      }
      const same = last === identity;
      last = identity;
      root.dataset.colour = fb.colour;
      clear(iconSlot);
      iconSlot.appendChild(icon(fb.icon || "info"));
      title.textContent = fb.title || "";
      code.textContent = fb.code || "";
      code.hidden = !fb.code;
      detail.textContent = fb.detail || "";
      detail.hidden = !fb.detail;
      if (!same) {
        // Restart the flash so each new scan is seen, even with the same colour.
        root.className = "feedback";
        void root.offsetWidth;
        root.className = `feedback flash ${fb.colour}`;
      }
    },
  };
}

/** The "type a code" box: a form a person types in (never taken for a scan). */
export function typeCodeBox(app, onCode, onToggle = () => {}) {
  const input = h("input", {
    id: "type-code",
    type: "text",
    attrs: { autocomplete: "off", spellcheck: "false", autocapitalize: "characters", maxlength: "64" },
  });
  const label = h("label", { attrs: { for: "type-code" } });
  const add = h("button", { type: "submit", class: "btn primary" });
  const cancel = button("", () => close(), { kind: "" });
  const form = h("form", { class: "type-box", id: "type-form", hidden: true, attrs: { autocomplete: "off" } }, label, input, h("div", { class: "row" }, add, cancel));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const code = input.value.trim();
    if (!code) return;
    close();
    await onCode(code);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      close();
    }
  });
  function open(text = "") {
    form.hidden = false;
    onToggle(true);
    input.value = text;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }
  function close() {
    form.hidden = true;
    onToggle(false);
    input.value = "";
    app.focusScan();
  }
  function words() {
    const t = app.t;
    label.textContent = t("type_code_label");
    add.textContent = t("btn_add");
    cancel.querySelector("span").textContent = t("btn_cancel");
  }
  words();
  return { root: form, open, close, isOpen: () => !form.hidden };
}

export function buildScan(app) {
  const t = app.t;
  const promptText = h("span", { id: "prompt-text" });
  const prompt = h("h1", { class: "prompt", id: "prompt" }, icon("bag", "icon prompt-icon"), promptText);

  const parentCode = h("div", { class: "parent-code code", id: "parent-code" });
  const counter = h("div", { class: "counter", id: "counter" });
  const bar = h("div", { class: "bar" });
  const progress = h("div", { class: "progress", id: "progress", attrs: { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" } }, bar);
  const parentCard = h(
    "div",
    { class: "parent-card", id: "parent-card" },
    h("div", { class: "parent-top" }, h("div", {}, h("div", { class: "label", text: t("scan_parent_label") }), parentCode), counter),
    progress,
  );
  const waiting = h("div", { class: "waiting-art", id: "waiting-art" }, icon("bag", "icon huge"), icon("scanner", "icon huge"));

  const feedback = feedbackPanel("feedback");

  const sessionList = h("ol", { class: "session-list", id: "session" });
  const sessionEmpty = h("div", { class: "muted", text: t("scan_none_yet") });
  const sessionBox = h("div", { class: "session-box" }, h("h2", { text: t("scan_this_session") }), sessionEmpty, sessionList);

  const typeBox = typeCodeBox(app, async (code) => {
    await app.run(async () => app.handleFlow(await app.api.scan(code)), (err) => app.scanError(err, code));
  }, (open) => {
    typeBtn.hidden = open;
  });

  const undoBtn = button(t("btn_undo"), () =>
    app.run(async () => {
      app.scan = reduceUndo(app.scan, await app.api.undo());
      app.update();
    }, (err) => app.scanError(err)), { kind: "big undo-btn", iconName: "undo", id: "btn-undo" });
  const typeBtn = button(t("btn_type_code"), () => typeBox.open(), { kind: "", iconName: "keyboard", id: "btn-type-code" });
  const leaveBtn = button(t("btn_close_parent"), () =>
    app.run(async () => {
      await app.api.closeParent();
      app.scan = closeParent(app.scan);
      app.update();
    }, (err) => app.scanError(err)), { kind: "", iconName: "close", id: "btn-leave" });

  const celebrateTitle = h("div", { class: "celebrate-title", id: "celebrate-title" });
  const celebrateCode = h("div", { class: "celebrate-code code", id: "celebrate-code" });
  const celebrateNext = h("div", { class: "celebrate-next" });
  const confetti = h("div", { class: "confetti" }, Array.from({ length: 14 }, (_, i) => h("i", { class: `c${i % 7}` })));
  const celebrate = h(
    "div",
    { class: "celebrate", id: "celebrate", hidden: true, attrs: { role: "alert" } },
    confetti,
    h("div", { class: "celebrate-box" }, icon("star", "icon celebrate-star"), celebrateTitle, celebrateCode, celebrateNext),
  );

  const root = h(
    "section",
    { class: "screen-scan", id: "screen-scan" },
    h("div", { class: "col-main" }, prompt, parentCard, waiting, feedback.root),
    h("div", { class: "col-side" }, sessionBox, typeBox.root, h("div", { class: "side-buttons" }, undoBtn, typeBtn, leaveBtn)),
    celebrate,
  );

  function update() {
    const v = scanView(app.scan, app.t);
    root.dataset.step = v.step;
    promptText.textContent = v.prompt;
    prompt.className = `prompt step-${v.step}`;
    parentCard.hidden = !v.parent;
    waiting.hidden = !!v.parent;
    if (v.parent) {
      parentCode.textContent = v.parent.code;
      counter.textContent = v.parent.counter;
      setVar(bar, "--pct", `${v.parent.progress}%`);
      progress.setAttribute("aria-valuenow", String(v.parent.progress));
      parentCard.classList.toggle("complete", v.parent.complete);
    }
    feedback.set(v.feedback, app.scan.feedback);
    feedback.root.hidden = !v.feedback;

    clear(sessionList);
    for (const s of v.session) {
      sessionList.append(h("li", { class: s.colour }, icon(s.colour === "yellow" ? "wait" : "ok"), h("span", { class: "code", text: s.code })));
    }
    sessionEmpty.hidden = v.session.length > 0 || !v.parent;
    sessionBox.hidden = !v.parent;
    undoBtn.disabled = !v.canUndo;
    undoBtn.hidden = !v.parent;
    leaveBtn.hidden = !v.canLeave;

    celebrate.hidden = !v.celebrate;
    if (v.celebrate) {
      celebrateTitle.textContent = v.celebrate.title;
      celebrateCode.textContent = `${v.celebrate.code}  ${v.celebrate.counter}`;
      celebrateNext.textContent = v.celebrate.next;
    }
  }

  update();
  return { root, update, onTyped: (text) => typeBox.open(text) };
}

export function buildAttention(app) {
  const t = app.t;
  const list = h("div", { class: "attention-list", id: "attention-list" });
  const message = h("div", { class: "form-error", id: "attention-error", hidden: true });
  const root = h(
    "section",
    { class: "screen-attention", id: "screen-attention" },
    h("div", { class: "screen-head" }, h("h1", { text: t("att_title") }), button(t("btn_back"), () => app.go(app.lastWork), { kind: "", iconName: "back", id: "btn-attention-back" })),
    h("p", { class: "intro", text: t("att_intro") }),
    message,
    list,
  );
  let items = [];
  let loaded = false;

  async function load() {
    try {
      items = await app.api.needsAttention();
      message.hidden = true;
    } catch (err) {
      message.textContent = app.errorText(err);
      message.hidden = false;
    }
    loaded = true;
    draw();
  }

  function draw() {
    const t = app.t;
    clear(list);
    if (loaded && items.length === 0) {
      list.append(h("div", { class: "all-clear" }, icon("ok"), h("span", { text: t("att_none") })));
      return;
    }
    for (const item of items) {
      const v = attentionView(item, t);
      const ok = button(t("att_ok"), () =>
        app.run(async () => {
          await app.api.acknowledge(v.id);
          items = items.filter((x) => x.id !== v.id);
          draw();
          app.refreshStatus();
        }, (err) => {
          message.textContent = app.errorText(err);
          message.hidden = false;
        }), { kind: "primary", iconName: "ok", test: "ack" });
      list.append(
        h(
          "div",
          { class: "attention-card", dataset: { id: v.id } },
          h("div", { class: "att-icon" }, icon("bad")),
          h("div", { class: "att-words" }, h("div", { class: "att-what code-ish", text: v.what }), h("div", { class: "att-reason", text: v.reason }), h("div", { class: "muted", text: v.whoWhen })),
          ok,
        ),
      );
    }
  }

  load();
  return { root, update: () => {}, reload: load, onTyped: () => {} };
}
