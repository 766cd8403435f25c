import { test } from "node:test";
import assert from "node:assert/strict";
import { billView, checkNewBill, nextBill, billFeedback, formatKg, needsReason } from "../js/bill-view.js";
import { feedbackView } from "../js/flow-view.js";
import { makeT } from "../js/i18n.js";

const t = makeT("en");
const bill = (over = {}) => ({
  code: "B-100",
  status: "in_progress",
  capacity: 10,
  destination: "Pune",
  vehicle_number: "MH12AB1234",
  parents: [
    { code: "SB00001", child_count: 30, capacity: 30 },
    { code: "SB00002", child_count: 12, capacity: 30 },
  ],
  parent_count: 2,
  child_count: 42,
  actual_weight_kg: 42,
  expected_weight_kg: 60,
  ...over,
});

test("bill view: counter, progress, child count, weights, parents", () => {
  assert.deepEqual(billView(bill(), t), {
    code: "B-100",
    status: "Filling",
    statusKey: "in_progress",
    closed: false,
    full: false,
    counter: "2 / 10",
    progress: 20,
    children: "42",
    actual: "42 kg",
    expected: "60 kg",
    destination: "To: Pune",
    vehicle: "Vehicle: MH12AB1234",
    needsReason: true,
    parents: [
      { code: "SB00001", counter: "30 / 30", full: true },
      { code: "SB00002", counter: "12 / 30", full: false },
    ],
  });
});

test("a full bill needs no reason to close", () => {
  const v = billView(bill({ parent_count: 10, status: "ready" }), t);
  assert.equal(v.needsReason, false);
  assert.equal(v.full, true);
  assert.equal(v.status, "Full, ready to close");
  assert.equal(needsReason(bill({ parent_count: 9 })), true);
});

test("Hindi bill words", () => {
  const v = billView(bill({ destination: null, vehicle_number: null }), makeT("hi"));
  assert.equal(v.actual, "42 किलो");
  assert.equal(v.status, "भर रहा है");
  assert.equal(v.destination, null);
  assert.equal(v.vehicle, null);
});

test("weights show at most one decimal", () => {
  assert.equal(formatKg(12.345, t), "12.3 kg");
  assert.equal(formatKg(30, t), "30 kg");
  assert.equal(formatKg(null, t), "0 kg");
});

test("new bill form: code required, capacity 1 to 50", () => {
  assert.deepEqual(checkNewBill({ code: "", capacity: "10" }), { ok: false, error: "bill_code_missing", field: "code" });
  assert.deepEqual(checkNewBill({ code: "B1", capacity: "0" }), { ok: false, error: "bill_capacity_bad", field: "capacity" });
  assert.deepEqual(checkNewBill({ code: "B1", capacity: "51" }), { ok: false, error: "bill_capacity_bad", field: "capacity" });
  assert.deepEqual(checkNewBill({ code: "B1", capacity: "2.5" }), { ok: false, error: "bill_capacity_bad", field: "capacity" });
  assert.deepEqual(checkNewBill({ code: " B1 ", capacity: " 12 ", destination: " Pune ", vehicleNumber: "" }), {
    ok: true,
    value: { code: "B1", capacity: 12, destination: "Pune", vehicleNumber: null },
  });
});

test("a bill scan result: the full bill wins, else the short state is laid over", () => {
  const b = bill();
  const full = bill({ parent_count: 3 });
  assert.equal(nextBill(b, { verdict: { kind: "applied", parent: null, bill: null }, bill: full }), full);
  const merged = nextBill(b, { verdict: { kind: "applied", parent: null, bill: { code: "B-100", status: "ready", parent_count: 10, capacity: 10 } }, bill: null });
  assert.equal(merged.parent_count, 10);
  assert.equal(merged.status, "ready");
  assert.equal(merged.destination, "Pune");
  assert.equal(nextBill(b, { verdict: { kind: "saved_offline", unsent: 1, parent: null }, bill: null }), b);
});

test("bill scan feedback: green added, green removed, yellow saved, red refused with the plain reason", () => {
  const added = feedbackView(billFeedback({ verdict: { kind: "applied", parent: null, bill: null }, bill: null }, "add", "SB00003", bill()), t);
  assert.deepEqual(added, { colour: "green", icon: "ok", title: "Added to the bill", detail: null, code: "SB00003" });
  const removed = feedbackView(billFeedback({ verdict: { kind: "applied" }, bill: null }, "remove", "SB00002", bill()), t);
  assert.equal(removed.title, "Taken off the bill");
  const saved = feedbackView(billFeedback({ verdict: { kind: "saved_offline", unsent: 4, parent: null }, bill: null }, "add", "SB00003", bill()), t);
  assert.deepEqual(saved, { colour: "yellow", icon: "wait", title: "Saved, will send", detail: "4 waiting to send", code: "SB00003" });
  const refused = feedbackView(
    billFeedback({ verdict: { kind: "refused", code: "parent_on_other_bill", message: "SB00003 is already on bill B-7." }, bill: null }, "add", "SB00003", bill()),
    t,
  );
  assert.deepEqual(refused, { colour: "red", icon: "bad", title: "SB00003 is already on another bill", detail: null, code: "SB00003" });
  const full = feedbackView(billFeedback({ verdict: { kind: "refused", code: "bill_full", message: "Bill B-100 is full: 10 of 10" }, bill: null }, "add", "SB9", bill()), t);
  assert.equal(full.title, "The bill is full");
});
