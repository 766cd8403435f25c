// Tiny DOM helpers. Text always goes in through textContent, never parsed as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

/** Icon shapes on a 24x24 grid: simple strokes that read at any size. */
const ICON_PATHS = {
  ok: ["M4 12.5l5 5L20 6.5"],
  bad: ["M6 6l12 12", "M18 6L6 18"],
  wait: ["M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18", "M12 7v5l3.5 2.5"],
  info: ["M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18", "M12 11v6", "M12 7.2v.6"],
  warn: ["M12 3L2 20h20z", "M12 9.5v5", "M12 17.2v.6"],
  bag: ["M6 8h12l1.5 12.5h-15z", "M9 8V6.5a3 3 0 0 1 6 0V8"],
  undo: ["M9 14L4 9l5-5", "M4 9h10a6 6 0 0 1 0 12h-3"],
  keyboard: ["M3 6h18v12H3z", "M6 9.5h1M9.5 9.5h1M13 9.5h1M16.5 9.5h1M7 14.5h10"],
  user: ["M12 3.5a4 4 0 1 0 0 8a4 4 0 1 0 0-8", "M4 20.5c1.5-4 4.5-6 8-6s6.5 2 8 6"],
  gear: [
    "M12 8.5a3.5 3.5 0 1 0 0 7a3.5 3.5 0 1 0 0-7",
    "M12 2.5v3M12 18.5v3M2.5 12h3M18.5 12h3M5.3 5.3l2.1 2.1M16.6 16.6l2.1 2.1M5.3 18.7l2.1-2.1M16.6 7.4l2.1-2.1",
  ],
  online: ["M2.5 9a14 14 0 0 1 19 0", "M6 12.5a9 9 0 0 1 12 0", "M9.5 16a4 4 0 0 1 5 0", "M12 19.5v.5"],
  offline: ["M2.5 9a14 14 0 0 1 19 0", "M6 12.5a9 9 0 0 1 12 0", "M12 19.5v.5", "M3 3l18 18"],
  upload: ["M12 16V4", "M7 9l5-5l5 5", "M4 20h16"],
  scanner: ["M4 7V4h3M17 4h3v3M20 17v3h-3M7 20H4v-3", "M8 8v8M11 8v8M14 8v8M16.5 8v8"],
  bill: ["M6 3h12v18l-3-2-3 2-3-2-3 2z", "M9 8h6M9 12h6"],
  back: ["M15 5l-7 7l7 7"],
  close: ["M5 12h14", "M12 5l7 7l-7 7"],
  star: ["M12 2.5l2.9 6.2l6.6.7l-5 4.5l1.4 6.6L12 17.2l-5.9 3.3l1.4-6.6l-5-4.5l6.6-.7z"],
};

export function icon(name, cls = "icon") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const d of ICON_PATHS[name] || ICON_PATHS.info) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.appendChild(path);
  }
  return svg;
}

/**
 * h("div", {class: "x", text: "hello", on: {click: fn}, attrs: {...}}, child, ...)
 * Children may be nodes, strings, null/false (skipped) or arrays.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === "attrs") for (const [a, av] of Object.entries(v)) { if (av !== null && av !== undefined && av !== false) el.setAttribute(a, av === true ? "" : String(av)); }
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el[k] = v;
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  }
}

/** A button that is never a form's default button and never takes the Enter key. */
export function button(label, onClick, { kind = "", iconName = null, id = null, test = null, disabled = false } = {}) {
  return h(
    "button",
    { type: "button", class: `btn ${kind}`.trim(), id, disabled, dataset: test ? { test } : undefined, on: { click: onClick } },
    iconName ? icon(iconName) : null,
    h("span", { text: label }),
  );
}

/** A labelled form field (a person types here; never taken for a scan). */
export function field({ label, name, type = "text", value = "", hint = null, autocomplete = "off", inputmode = null, id = null, multiline = false }) {
  const inputId = id || `f-${name}`;
  const input = multiline
    ? h("textarea", { id: inputId, name, rows: 2, value, attrs: { autocomplete, spellcheck: "false" } })
    : h("input", { id: inputId, name, type, value, attrs: { autocomplete, spellcheck: "false", inputmode, autocapitalize: "off" } });
  return h(
    "div",
    { class: "field" },
    h("label", { attrs: { for: inputId }, text: label }),
    input,
    hint ? h("div", { class: "hint", text: hint }) : null,
  );
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** Sets a CSS custom property through the CSSOM (allowed by the CSP, unlike style attributes). */
export function setVar(el, name, value) {
  el.style.setProperty(name, value);
}
