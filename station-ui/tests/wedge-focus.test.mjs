import { test } from "node:test";
import assert from "node:assert/strict";
import {
  elementKind,
  isFormField,
  routeKey,
  shouldRefocus,
  scanInputWanted,
  wedgeArgs,
  classifyWedgeResult,
  SCAN_INPUT_ID,
  FOCUS_CHECK_MS,
} from "../js/wedge-focus.js";

const scanInput = { tagName: "INPUT", id: SCAN_INPUT_ID, type: "text" };

test("which elements are form fields a person types in", () => {
  assert.equal(elementKind(scanInput), "scan");
  assert.equal(isFormField(scanInput), false);
  assert.equal(isFormField({ tagName: "INPUT", id: "login-username", type: "text" }), true);
  assert.equal(isFormField({ tagName: "INPUT", id: "login-password", type: "password" }), true);
  assert.equal(isFormField({ tagName: "INPUT", id: "new-capacity", type: "number" }), true);
  assert.equal(isFormField({ tagName: "input", id: "x" }), true); // no type: text
  assert.equal(isFormField({ tagName: "TEXTAREA", id: "close-reason" }), true);
  assert.equal(isFormField({ tagName: "SELECT" }), true);
  assert.equal(isFormField({ tagName: "DIV", isContentEditable: true }), true);
  assert.equal(elementKind({ tagName: "BUTTON", id: "btn-undo" }), "button");
  assert.equal(elementKind({ tagName: "INPUT", type: "submit" }), "button");
  assert.equal(elementKind({ tagName: "INPUT", type: "checkbox" }), "other");
  assert.equal(elementKind({ tagName: "DIV" }), "other");
  assert.equal(elementKind(null), "other");
});

test("Enter on the scan input is forwarded (and so prevented), never a submit", () => {
  assert.equal(routeKey({ key: "Enter", targetKind: "scan", scanActive: true }), "forward");
  assert.equal(routeKey({ key: "A", targetKind: "scan", scanActive: true }), "forward");
  assert.equal(routeKey({ key: "Shift", targetKind: "scan", scanActive: true }), "forward");
});

test("the scanner's Enter never presses a button", () => {
  // on a scanning screen, a focused button hands the keys to the scanner path
  assert.equal(routeKey({ key: "Enter", targetKind: "button", scanActive: true }), "forward");
  // elsewhere Enter and Space on a button are swallowed
  assert.equal(routeKey({ key: "Enter", targetKind: "button", scanActive: false }), "block");
  assert.equal(routeKey({ key: " ", targetKind: "button", scanActive: false }), "block");
  assert.equal(routeKey({ key: "Tab", targetKind: "button", scanActive: false }), "pass");
});

test("keys while focus slipped to the page still reach the scanner path", () => {
  assert.equal(routeKey({ key: "7", targetKind: "other", scanActive: true }), "forward");
});

test("a person typing in a form is never taken for a scan", () => {
  for (const key of ["a", "Enter", "Backspace", "1"]) {
    assert.equal(routeKey({ key, targetKind: "field", scanActive: true }), "pass", key);
    assert.equal(routeKey({ key, targetKind: "field", scanActive: false }), "pass", key);
  }
  assert.equal(routeKey({ key: "a", targetKind: "other", scanActive: false }), "pass");
});

test("IME composition keys are not sent as scanner keys", () => {
  assert.equal(routeKey({ key: "Process", targetKind: "scan", scanActive: true }), "block");
  assert.equal(routeKey({ key: "Process", targetKind: "field", scanActive: true }), "pass");
});

test("refocus: back to the scan input unless a person is in a form field", () => {
  assert.equal(shouldRefocus({ scanActive: true, activeKind: "other" }), true);
  assert.equal(shouldRefocus({ scanActive: true, activeKind: "button" }), true);
  assert.equal(shouldRefocus({ scanActive: true, activeKind: "scan" }), false);
  assert.equal(shouldRefocus({ scanActive: true, activeKind: "field" }), false);
  assert.equal(shouldRefocus({ scanActive: false, activeKind: "other" }), false);
  assert.equal(shouldRefocus({ scanActive: true, activeKind: "other", hidden: true }), false);
  assert.equal(FOCUS_CHECK_MS, 500);
});

test("the scan input is wanted on scan and attention, and on billing once a bill is open", () => {
  assert.equal(scanInputWanted("scan"), true);
  assert.equal(scanInputWanted("attention"), true);
  assert.equal(scanInputWanted("billing", { billOpen: false }), false);
  assert.equal(scanInputWanted("billing", { billOpen: true }), true);
  assert.equal(scanInputWanted("login"), false);
  assert.equal(scanInputWanted("settings"), false);
  assert.equal(scanInputWanted("setup"), false);
});

test("wedge_key arguments come from the keydown", () => {
  assert.deepEqual(wedgeArgs({ key: "S", ctrlKey: false, timeStamp: 1234.5 }), { key: "S", ctrl: false, atMs: 1234.5 });
  assert.deepEqual(wedgeArgs({ key: "j", ctrlKey: true, timeStamp: 7 }), { key: "j", ctrl: true, atMs: 7 });
});

test("wedge_key answers are told apart", () => {
  assert.equal(classifyWedgeResult(null), "none");
  assert.equal(classifyWedgeResult(undefined), "none");
  assert.equal(classifyWedgeResult({ typed: "abc" }), "typed");
  assert.equal(classifyWedgeResult({ kind: "child", code: "C1", verdict: { kind: "applied" } }), "flow");
  assert.equal(classifyWedgeResult({ kind: "need_parent", code: "C1" }), "flow");
  assert.equal(classifyWedgeResult({ verdict: { kind: "applied" }, bill: null }), "bill");
  assert.equal(classifyWedgeResult({ foo: 1 }), "unknown");
  assert.equal(classifyWedgeResult("x"), "unknown");
});
