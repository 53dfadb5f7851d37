// Price alerts on the dashboard (issue 25): the bell's panel of
// templates/dashboard/_alerts.html, made live.
//
// - A card's bell button (data-alert-symbol) opens the panel with the new-alert
//   form prefilled: the card's symbol and its last price as the threshold.
// - Create, pause/resume and delete post the panel's own forms with fetch()
//   (Dashboard.post: CSRF, session-ended handling) to dashboard/alert_views.py,
//   whose JSON reply carries the lists rendered again by the server.
// - An `alert` message of the price stream (docs/protocol.md, Alerts) shows a
//   toast in an aria-live region, a browser Notification when the user allowed
//   them (asked only from the panel's button, a user gesture), and the event
//   under the bell, whose badge counts the events not seen yet (the newest seen
//   event id is kept in localStorage, per user).
//
// State for tests: #alerts-badge[data-count], #alert-toasts > .alert-toast.

const TOASTS_KEPT = 5;
const REFRESH_DELAY_MS = 300;

const VERBS = {
  crosses_above: "crossed above",
  crosses_below: "crossed below",
  pct_change_day_above: "day change crossed above",
  pct_change_day_below: "day change crossed below",
};

/** Four decimals below 10, two otherwise, like dashboard/selectors.format_price. */
export function formatPrice(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "\u2014";
  const digits = Math.abs(value) < 10 ? 4 : 2;
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function formatPercent(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "\u2014";
  const text = value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  return `${value >= 0 ? "+" : ""}${text}%`;
}

/** "AAPL crossed above 200.00: price 200.02" for an `alert` message. */
export function describeAlert(m) {
  const pct = String(m.condition || "").startsWith("pct_");
  const threshold = pct ? formatPercent(m.threshold) : formatPrice(m.threshold);
  const verb = VERBS[m.condition] || m.condition;
  const value = pct && typeof m.value === "number" ? ` (${formatPercent(m.value)})` : "";
  return `${m.symbol} ${verb} ${threshold}: price ${formatPrice(m.price)}${value}`;
}

/**
 * Call `callback` with every `alert` message `stream` receives.
 *
 * PriceStream (clients/js/price-stream.js, not ours to edit) ignores message
 * types it does not know and emits no generic "message" event, so this wraps
 * the instance's message handler, the one place every parsed frame passes. An
 * "alert" event, should PriceStream learn to emit one, is listened to as well;
 * the caller drops a second copy of the same event by its id.
 */
export function listenForAlerts(stream, callback) {
  stream.addEventListener("alert", (e) => callback(e.detail));
  const handle = stream._handle;
  if (typeof handle !== "function") return;
  stream._handle = function handleWithAlerts(message) {
    if (message && message.type === "alert") {
      try {
        callback(message);
      } catch (err) {
        console.error("alerts: handling an alert message failed", err);
      }
    }
    return handle.call(this, message);
  };
}

export class AlertsPanel {
  constructor(root, dashboard) {
    this.root = root;
    this.dashboard = dashboard;
    this.panel = root.querySelector("#alerts-panel");
    this.badge = root.querySelector("#alerts-badge");
    this.form = root.querySelector("#alert-form");
    this.feedback = root.querySelector("#alert-feedback");
    this.lists = root.querySelector("#alerts-lists");
    this.toasts = root.querySelector("#alert-toasts");
    this.notifyButton = root.querySelector("#alerts-notify-button");
    this.notifyState = root.querySelector("#alerts-notify-state");
    this.seenKey = `fmpsite-alerts-seen-${dashboard.root.dataset.userId}`;
    this.delivered = new Set(); // event ids shown live (a second copy is dropped)
    this.refreshTimer = null;

    this.form.addEventListener("submit", (e) => this.onCreate(e));
    this.lists.addEventListener("submit", (e) => this.onListSubmit(e));
    dashboard.root.addEventListener("click", (e) => {
      const button = e.target.closest("[data-alert-symbol]");
      if (button) this.prefill(button);
    });
    this.panel.addEventListener("toggle", () => {
      if (this.panel.open) this.markSeen();
    });
    this.toasts.addEventListener("click", (e) => {
      const button = e.target.closest(".alert-toast__dismiss");
      if (button) button.closest(".alert-toast").remove();
    });
    this.notifyButton.addEventListener("click", () => this.askNotifications());
    this.renderNotifyState();
    this.renderBadge();
    listenForAlerts(dashboard.stream, (m) => this.onAlert(m));
  }

  // --- the bell ------------------------------------------------------------------------

  lastSeen() {
    try {
      return Number(window.localStorage.getItem(this.seenKey)) || 0;
    } catch {
      return 0; // storage disabled: every listed event counts as new
    }
  }

  eventIds() {
    return [...this.lists.querySelectorAll("[data-event-id]")].map((el) => Number(el.dataset.eventId));
  }

  renderBadge() {
    const seen = this.lastSeen();
    const count = this.eventIds().filter((id) => id > seen).length;
    this.badge.dataset.count = String(count);
    this.badge.querySelector(".alerts-badge__count").textContent = String(count);
    this.badge.hidden = count === 0;
  }

  markSeen() {
    const newest = Math.max(0, ...this.eventIds());
    try {
      if (newest > this.lastSeen()) window.localStorage.setItem(this.seenKey, String(newest));
    } catch {
      // storage disabled: the badge resets with the page
    }
    this.renderBadge();
  }

  // --- alert messages ------------------------------------------------------------------

  onAlert(message) {
    if (typeof message.event_id === "number") {
      if (this.delivered.has(message.event_id)) return;
      this.delivered.add(message.event_id);
    }
    const text = describeAlert(message);
    const note = this.noteOf(message.alert_id);
    this.toast(note ? `${text} \u2014 ${note}` : text, message.symbol);
    this.notify(text, note, message);
    this.addEvent(message, text);
    this.scheduleRefresh();
  }

  noteOf(alertId) {
    const item = this.lists.querySelector(`.alert-item[data-alert-id="${Number(alertId)}"]`);
    return item ? item.dataset.note : "";
  }

  toast(text, symbol) {
    const toast = document.createElement("div");
    toast.className = "alert-toast";
    const body = document.createElement("span");
    body.className = "alert-toast__text";
    body.textContent = `Alert: ${text}`;
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "alert-toast__dismiss";
    dismiss.textContent = "Dismiss";
    dismiss.setAttribute("aria-label", `Dismiss the alert on ${symbol}`);
    toast.append(body, dismiss);
    this.toasts.append(toast);
    while (this.toasts.children.length > TOASTS_KEPT) this.toasts.firstElementChild.remove();
  }

  notify(text, note, message) {
    if (!("Notification" in window) || window.Notification.permission !== "granted") return;
    try {
      new window.Notification(`fmpsite: ${message.symbol} alert`, {
        body: note ? `${text}\n${note}` : text,
        tag: message.idempotency_key || String(message.event_id),
      });
    } catch (err) {
      // Some browsers (Chrome on Android) allow notifications from a service worker only.
      console.warn("alerts: cannot show a notification", err);
    }
  }

  /** The event under the bell now; the server's lists replace it shortly. */
  addEvent(message, text) {
    const list = this.lists.querySelector("#alert-events");
    if (!list || typeof message.event_id !== "number") return;
    if (list.querySelector(`[data-event-id="${message.event_id}"]`)) return;
    list.querySelectorAll(".alert-empty").forEach((el) => el.remove());
    const item = document.createElement("li");
    item.className = "alert-event alert-event--new";
    item.dataset.eventId = String(message.event_id);
    item.textContent = text;
    list.prepend(item);
    if (this.panel.open) this.markSeen();
    else this.renderBadge();
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refresh(), REFRESH_DELAY_MS);
  }

  /** The lists again from the server (a fired `once` alert is paused now). */
  async refresh() {
    try {
      const response = await fetch(this.root.dataset.panelUrl, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) return;
      this.showLists(await response.json());
    } catch (err) {
      console.warn("alerts: cannot refresh the panel", err);
    }
  }

  showLists(data) {
    if (typeof data.html !== "string") return;
    // Markup rendered (and escaped) by this server's own templates.
    this.lists.innerHTML = data.html;
    if (this.panel.open) this.markSeen();
    else this.renderBadge();
  }

  // --- the forms -------------------------------------------------------------------------

  prefill(button) {
    const symbol = button.dataset.alertSymbol;
    const card = button.closest("[data-symbol]");
    const last = card ? card.dataset.lastPrice : "";
    this.form.elements.symbol.value = symbol;
    this.form.elements.threshold.value = last || "";
    this.panel.open = true;
    this.setFeedback(
      last ? `New alert on ${symbol}, from its last price ${formatPrice(Number(last))}.` : `New alert on ${symbol}.`,
    );
    this.form.elements.threshold.focus();
    this.form.scrollIntoView({ block: "nearest" });
  }

  setFeedback(message, isError = false) {
    this.feedback.textContent = message;
    this.feedback.classList.toggle("is-error", isError);
  }

  async submit(form, button) {
    if (button) button.disabled = true;
    try {
      const { response, data } = await this.dashboard.post(form.action, new FormData(form));
      this.setFeedback(data.message || data.error || "", !response.ok);
      if (response.ok) this.showLists(data);
      return response.ok;
    } catch (err) {
      this.setFeedback(`Could not save the alert: ${err.message}`, true);
      return false;
    } finally {
      if (button && button.isConnected) button.disabled = false;
    }
  }

  async onCreate(event) {
    event.preventDefault();
    const ok = await this.submit(this.form, this.form.querySelector("button[type=submit]"));
    if (ok) {
      this.form.elements.note.value = "";
      this.form.elements.webhook_url.value = "";
    }
  }

  onListSubmit(event) {
    const form = event.target.closest(".alert-active-form, .alert-delete-form");
    if (!form) return;
    event.preventDefault();
    this.submit(form, form.querySelector("button"));
  }

  // --- notifications ---------------------------------------------------------------------

  renderNotifyState() {
    if (!("Notification" in window)) {
      this.notifyButton.hidden = true;
      this.notifyState.textContent = "This browser shows alerts on this page only.";
      return;
    }
    const permission = window.Notification.permission;
    this.notifyButton.hidden = permission !== "default";
    this.notifyState.textContent =
      permission === "granted"
        ? "Desktop notifications are on."
        : permission === "denied"
          ? "Desktop notifications are blocked in this browser's settings."
          : "";
  }

  async askNotifications() {
    try {
      await window.Notification.requestPermission();
    } catch (err) {
      console.warn("alerts: notification permission request failed", err);
    }
    this.renderNotifyState();
  }
}
