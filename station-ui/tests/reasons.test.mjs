import { test } from "node:test";
import assert from "node:assert/strict";
import { reasonLine, errorLine, codesIn, numbersIn } from "../js/reasons.js";
import { attentionView, formatWhen } from "../js/attention-view.js";
import { makeT } from "../js/i18n.js";

const en = makeT("en");
const hi = makeT("hi");

test("codes and numbers are read out of server messages", () => {
  assert.deepEqual(codesIn("C0009 is already in SB99999."), ["C0009", "SB99999"]);
  assert.deepEqual(codesIn("M444-00001 is full: 15 of 15"), ["M444-00001"]);
  assert.deepEqual(numbersIn("SB12345 is full: 30 of 30"), [30, 30]);
  assert.deepEqual(numbersIn("M444-00001 is full: 15 of 15"), [15, 15]);
  assert.deepEqual(numbersIn("A bill holds from 1 to 50 parent bags here, not 70."), [1, 50, 70]);
});

test("plain lines for refusals, in both languages", () => {
  assert.equal(reasonLine("parent_full", "SB12345 is full: 30 of 30", { code: "C1", parent: "SB12345", capacity: 30 }, en), "SB12345 is full: 30 of 30");
  assert.equal(reasonLine("parent_full", "SB12345 is full: 30 of 30", { code: "C1", parent: "SB12345", capacity: 30 }, hi), "SB12345 भर गया है: 30 में से 30");
  assert.equal(reasonLine("child_in_other_parent", "C9 was just put in another parent bag.", { code: "C9" }, en), "C9 is already in another parent bag");
  assert.equal(reasonLine("not_a_child", "XYZ is not a child bag code.", { code: "XYZ" }, en), "XYZ is not a child bag code");
  assert.equal(reasonLine("bad_capacity", "A bill holds from 1 to 50 parent bags here, not 70.", {}, hi), "एक बिल में 1 से 50 बड़े बैग हो सकते हैं");
  assert.equal(reasonLine("never_here", "The server cannot be reached, and ravi ...", {}, en), "No server now, and this worker never logged in here. Log in once while the server works.");
});

test("unknown codes and missing details fall back to the server's message", () => {
  assert.equal(reasonLine("brand_new", "Plain words from the server.", {}, hi), "Plain words from the server.");
  assert.equal(reasonLine("bag_not_found", "There is no bag.", {}, en), "There is no bag.");
  assert.equal(reasonLine("brand_new", "", {}, en), "Something went wrong. Try again.");
  assert.equal(errorLine({ code: "bad_credentials", message: "The username or password is wrong." }, null, hi), "यूज़रनेम या पासवर्ड गलत है");
  assert.equal(errorLine(null, null, en), "Something went wrong. Try again.");
});

test("needs attention items read as plain lines", () => {
  const now = new Date(2025, 2, 12, 18, 0);
  const at = new Date(2025, 2, 12, 14, 5).toISOString();
  const v = attentionView(
    { id: "u1", worker: "ravi", kind: "link", parent: "SB12345", child: "C0031", bill: null, scanned_at: at, code: "parent_full", message: "SB12345 is full: 30 of 30" },
    en,
    now,
  );
  assert.deepEqual(v, { id: "u1", what: "Child C0031 into parent SB12345", reason: "SB12345 is full: 30 of 30", whoWhen: "ravi, 14:05" });
  const b = attentionView(
    { id: "u2", worker: "sita", kind: "bill_add", parent: "SB1", child: null, bill: "B-7", scanned_at: new Date(2025, 2, 10, 9, 0).toISOString(), code: "bill_closed", message: "Bill B-7 is closed." },
    hi,
    now,
  );
  assert.deepEqual(b, { id: "u2", what: "बड़ा बैग SB1 → बिल B-7", reason: "यह बिल बंद है", whoWhen: "sita, 09:00, 10/03" });
  assert.equal(formatWhen("not a date"), "not a date");
});
