// The status bar as data: which pill the connection shows. Pure module.

/** How long "Connecting…" may show before a silent station counts as offline. */
export const CONNECTING_MS = 6000;

/**
 * Whether the station has said anything real about the server yet: an answer
 * (online) or a failure (last_error). Until then, and for at most
 * CONNECTING_MS after start, the bar shows a neutral "Connecting…" instead of
 * a red "Offline" (the station's first status is a default, not a check).
 */
export function connectionKnown(status, known) {
  return !!known || !!status?.online || !!status?.last_error;
}

/** {kind, icon, key} for the online pill. */
export function connectionPill(status, { known = false, elapsedMs = 0 } = {}) {
  if (status?.online) return { kind: "good", icon: "online", key: "st_online" };
  if (!connectionKnown(status, known) && elapsedMs < CONNECTING_MS) return { kind: "plain", icon: "wait", key: "st_connecting" };
  return { kind: "bad", icon: "offline", key: "st_offline" };
}
