// "Needs attention": scans the server refused after an offline period, as
// plain lines. Pure module.

import { reasonLine } from "./reasons.js";

const KIND_KEYS = {
  link: "att_link",
  unlink: "att_unlink",
  bill_add: "att_bill_add",
  bill_remove: "att_bill_remove",
};

function pad(n) {
  return String(n).padStart(2, "0");
}

/** "14:05, 12/03" in the station's local time; the raw text if it is not a date. */
export function formatWhen(iso, now = new Date()) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso ?? "");
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const sameDay =
    d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  return sameDay ? time : `${time}, ${pad(d.getDate())}/${pad(d.getMonth() + 1)}`;
}

export function attentionView(item, t, now = new Date()) {
  const key = KIND_KEYS[item.kind];
  const params = { child: item.child ?? "", parent: item.parent ?? "", bill: item.bill ?? "" };
  const what = key ? t(key, params) : [item.parent, item.child, item.bill].filter(Boolean).join(" · ");
  const bagCode = item.kind === "link" || item.kind === "unlink" ? item.child : item.parent;
  return {
    id: item.id,
    what,
    reason: reasonLine(item.code, item.message, { code: bagCode ?? undefined, parent: item.parent ?? undefined }, t),
    whoWhen: t("att_who_when", { worker: item.worker, time: formatWhen(item.scanned_at, now) }),
  };
}
