import { test } from "node:test";
import assert from "node:assert/strict";
import { en, hi, TABLES, LANGUAGES, makeT, format, placeholders } from "../js/i18n.js";
import { REASON_KEYS } from "../js/reasons.js";

test("English and Hindi have exactly the same keys", () => {
  assert.deepEqual(Object.keys(hi).sort(), Object.keys(en).sort());
  assert.deepEqual(LANGUAGES, ["en", "hi"]);
  assert.deepEqual(Object.keys(TABLES), ["en", "hi"]);
});

test("no empty strings in any table", () => {
  for (const [lang, table] of Object.entries(TABLES)) {
    for (const [key, value] of Object.entries(table)) {
      assert.equal(typeof value, "string", `${lang}.${key}`);
      assert.ok(value.trim().length > 0, `${lang}.${key} is empty`);
    }
  }
});

test("every line uses the same placeholders in both languages", () => {
  for (const key of Object.keys(en)) {
    assert.deepEqual(new Set(placeholders(hi[key])), new Set(placeholders(en[key])), key);
  }
});

test("Hindi is written in Devanagari", () => {
  const devanagari = /[\u0900-\u097F]/;
  // Lines that may stay the same in both languages: names, examples, pure placeholders.
  const same = new Set(["lang_en", "lang_hi", "att_who_when"]);
  for (const [key, value] of Object.entries(hi)) {
    if (same.has(key)) continue;
    assert.match(value, devanagari, `hi.${key} has no Devanagari: ${value}`);
    assert.notEqual(value, en[key], `hi.${key} is not translated`);
  }
  assert.equal(hi.scan_parent, "बड़ा बैग स्कैन करें");
  assert.equal(hi.lang_hi, "हिन्दी");
});

test("every reason code points at a line that exists", () => {
  for (const [code, key] of Object.entries(REASON_KEYS)) {
    assert.ok(key in en, `${code} -> ${key}`);
  }
});

test("t fills placeholders and falls back to the key", () => {
  const t = makeT("en");
  assert.equal(t("st_unsent", { n: 3 }), "3 waiting to send");
  assert.equal(t("no_such_key"), "no_such_key");
  assert.equal(t.lang, "en");
  assert.equal(makeT("hi")("st_unsent", { n: 3 }), "3 भेजना बाकी");
  assert.equal(makeT("fr").lang, "en");
  assert.equal(format("{a} and {b}", { a: 1 }), "1 and ");
});
