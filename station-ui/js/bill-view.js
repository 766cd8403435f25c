// The billing screen as data: a Bill and the result of a bill scan -> what
// the screen shows. Pure module: no DOM, no Tauri.

import { counterText, progressPercent } from "./flow-view.js";

/** "30 kg", "12.5 kg": at most one decimal. */
export function formatKg(value, t) {
  const n = Number(value);
  const shown = Number.isFinite(n) ? String(Math.round(n * 10) / 10) : "0";
  return t("kg", { n: shown });
}

/** Whether closing now needs a reason (the bill is not full). */
export function needsReason(bill) {
  return !!bill && bill.parent_count < bill.capacity;
}

/** Checks the "new bill" form; returns {ok, value} or {ok: false, error: key}. */
export function checkNewBill({ code, capacity, destination, vehicleNumber }) {
  const c = String(code ?? "").trim();
  if (!c) return { ok: false, error: "bill_code_missing", field: "code" };
  const text = String(capacity ?? "").trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 50) return { ok: false, error: "bill_capacity_bad", field: "capacity" };
  return {
    ok: true,
    value: {
      code: c,
      capacity: n,
      destination: String(destination ?? "").trim() || null,
      vehicleNumber: String(vehicleNumber ?? "").trim() || null,
    },
  };
}

/** What the billing screen shows for an open bill. */
export function billView(bill, t) {
  if (!bill) return null;
  return {
    code: bill.code,
    status: t(`bill_status_${bill.status}`),
    statusKey: bill.status,
    closed: bill.status === "closed",
    full: bill.parent_count >= bill.capacity,
    counter: counterText(bill.parent_count, bill.capacity),
    progress: progressPercent(bill.parent_count, bill.capacity),
    children: String(bill.child_count ?? 0),
    actual: formatKg(bill.actual_weight_kg, t),
    expected: formatKg(bill.expected_weight_kg, t),
    destination: bill.destination ? t("bill_to", { place: bill.destination }) : null,
    vehicle: bill.vehicle_number ? t("bill_vehicle_line", { number: bill.vehicle_number }) : null,
    needsReason: needsReason(bill),
    parents: (bill.parents || []).map((p) => ({
      code: p.code,
      counter: counterText(p.child_count, p.capacity),
      full: p.capacity > 0 && p.child_count >= p.capacity,
    })),
  };
}

/**
 * The bill after a bill_scan / bill_remove result {verdict, bill}. A full Bill
 * wins; else the verdict's short bill state ({code, status, parent_count,
 * capacity}) is laid over the bill we had.
 */
export function nextBill(bill, result) {
  if (result && result.bill) return result.bill;
  const short = result?.verdict?.kind === "applied" ? result.verdict.bill : null;
  if (bill && short && short.code === bill.code) {
    return { ...bill, status: short.status, parent_count: short.parent_count, capacity: short.capacity };
  }
  return bill;
}

/** The feedback panel for a bill scan (add) or a removal. */
export function billFeedback(result, action, code, bill) {
  const verdict = result?.verdict;
  if (!verdict) return null;
  const ctx = { code, bill: bill?.code };
  switch (verdict.kind) {
    case "applied":
      return {
        colour: "green",
        title: { key: action === "remove" ? "fb_bill_removed" : "fb_bill_added" },
        detail: null,
        code,
      };
    case "saved_offline":
      return { colour: "yellow", title: { key: "fb_saved" }, detail: { key: "fb_saved_detail", params: { n: verdict.unsent } }, code };
    case "refused":
      return { colour: "red", title: { reason: { code: verdict.code, message: verdict.message, ctx } }, detail: null, code };
    case "not_saved":
      return { colour: "red", title: { key: "fb_not_saved" }, detail: verdict.message ? { raw: verdict.message } : null, code };
    default:
      return null;
  }
}
