// Checks on the shipped files themselves: what the CSP forbids, where the
// scan input sits, and that every word key the UI asks for exists.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { en } from "../js/i18n.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const read = (p) => readFileSync(join(root, p), "utf8");
function files(dir, ext) {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const p = join(dir, name);
    return statSync(join(root, p)).isDirectory() ? files(p, ext) : p.endsWith(ext) ? [p] : [];
  });
}
const html = read("index.html");
const shipped = [...files("js", ".js"), "index.html", ...files("css", ".css")];

test("index.html: no inline scripts, no inline handlers, no style attributes, no test stub", () => {
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
  assert.equal(scripts.length, 1);
  assert.match(scripts[0][1], /type="module"/);
  assert.match(scripts[0][1], /src="js\/app\.js"/);
  assert.equal(scripts[0][2].trim(), "", "inline script body");
  assert.doesNotMatch(html, /\son[a-z]+\s*=/i, "inline event handler");
  assert.doesNotMatch(html, /\sstyle\s*=/i, "style attribute");
  assert.doesNotMatch(html, /<style/i);
  assert.doesNotMatch(html, /fake-tauri|tests\//);
});

test("the scan input is outside any form, and nothing autofocuses a button", () => {
  assert.match(html, /<input id="scan-input"/);
  assert.doesNotMatch(html, /<form/i, "a form around the scan input would let Enter submit");
  assert.doesNotMatch(html, /autofocus/i);
  for (const f of files("js", ".js")) assert.doesNotMatch(read(f), /autofocus\s*[:=]\s*true/, f);
});

test("no external fonts, CDNs or network addresses in shipped files", () => {
  for (const f of shipped) {
    const text = read(f);
    assert.doesNotMatch(text, /@import|fonts\.googleapis|cdn\.|unpkg|jsdelivr/i, f);
    assert.doesNotMatch(text, /(src|href)\s*=\s*["']https?:/i, f);
  }
});

test("no innerHTML, eval or string timers in the UI code (CSP and safety)", () => {
  for (const f of files("js", ".js")) {
    const text = read(f);
    assert.doesNotMatch(text, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, f);
    assert.doesNotMatch(text, /\beval\(|new Function\(/, f);
    assert.doesNotMatch(text, /setAttribute\(\s*["']style/, f);
  }
});

test("window.__TAURI__ is touched only by api.js", () => {
  for (const f of files("js", ".js")) {
    if (f.endsWith("api.js")) continue;
    assert.doesNotMatch(read(f), /__TAURI__/, f);
  }
});

test("buttons are always type=button unless they submit their own form", () => {
  for (const f of files("js", ".js")) {
    for (const m of read(f).matchAll(/h\(\s*"button",\s*\{([^}]*)\}/g)) {
      assert.match(m[1], /type:\s*"(button|submit)"/, `${f}: ${m[0]}`);
    }
  }
});

test("every word key the UI asks for is in the tables", () => {
  const dynamic = {
    "bill_status_${": ["new", "in_progress", "ready", "closed"].map((s) => `bill_status_${s}`),
    "role_${": ["dispatcher", "biller", "admin"].map((s) => `role_${s}`),
    "lang_${": ["en", "hi"].map((s) => `lang_${s}`),
  };
  const missing = [];
  for (const f of files("js", ".js")) {
    const text = read(f);
    for (const m of text.matchAll(/\bt\(\s*"([a-z0-9_]+)"/g)) if (!(m[1] in en)) missing.push(`${f}: ${m[1]}`);
    for (const m of text.matchAll(/\bkey:\s*"([a-z0-9_]+)"/g)) if (!(m[1] in en)) missing.push(`${f}: ${m[1]}`);
    for (const m of text.matchAll(/\bt\(\s*`([a-z_]+\$\{)/g)) {
      for (const k of dynamic[m[1]] || [`unknown dynamic key ${m[1]}`]) if (!(k in en)) missing.push(`${f}: ${k}`);
    }
  }
  assert.deepEqual(missing, []);
});

test("the preview page has index.html's body (so screenshots show the real page)", () => {
  const body = (text) => text.slice(text.indexOf("<body>"), text.indexOf("</body>"));
  assert.equal(body(read("tests/preview.html")), body(html));
});
