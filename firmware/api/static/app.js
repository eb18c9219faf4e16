// pitap cashier page: the terminal API (/v1) from a browser. The key is typed once and kept in
// localStorage; every request sends it (Authorization: Bearer). Live state comes from
// /v1/events read with fetch (EventSource cannot send the header). No framework, no build step.
// When /v1/status says the terminal takes UPI (INR, [upi]), a "UPI" button beside "Pay" takes
// the amount by UPI: the QR is on the terminal's screen, followed as a card payment is.
"use strict";

const KEY_STORE = "pitap_api_key";
const $ = (id) => document.getElementById(id);
const STATES = {
  waiting_for_card: "Waiting for card: tap now",
  processing: "Reading the card...",
  card_read: "Card read",
  see_phone: "See phone: unlock it, then tap again",
  upi_qr: "Scan the QR on the terminal",
  try_again: "Try again",
};
const OUTCOMES = {
  approved: "Approved",
  declined: "Declined",
  cancelled: "Cancelled",
  no_card: "No card presented",
  try_again: "Card left too early: try again",
  error: "Not charged (error)",
};

let key = localStorage.getItem(KEY_STORE) || "";
let running = null; // the id of the payment this page started and that has not ended
let last = null; // the last payment shown (an API payment object)

function newIdempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(method, path, body, headers) {
  const response = await fetch(path, {
    method,
    headers: Object.assign({ Authorization: `Bearer ${key}` },
      body === undefined ? {} : { "Content-Type": "application/json" }, headers || {}),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (response.status === 401) { showKeyPanel("That key was refused"); }
  return { status: response.status, data };
}

function say(text) { $("message").textContent = text || ""; }

function problem(answer) {
  const d = answer.data || {};
  return (d.field ? `${d.field}: ` : "") + (d.error || `HTTP ${answer.status}`);
}

function showState(text, css) {
  const el = $("state");
  el.textContent = text;
  el.className = "state " + (css || "");
}

function showPayment(p) {
  last = p;
  $("last").hidden = false;
  $("last-id").textContent = `#${p.id}`;
  const card = p.tender === "upi" ? ` UPI${p.payer_vpa ? " " + p.payer_vpa : ""}`
    : (p.masked_pan ? ` ${p.scheme || ""} ${p.masked_pan}` : "");
  $("last-summary").textContent =
    `${p.type} ${p.amount} ${p.currency}: ${p.outcome || p.state}${card}` +
    (p.reference ? ` (ref ${p.reference})` : "");
  $("receipt").hidden = true;
  const paid = p.type === "purchase" && p.outcome === "approved";
  $("void").disabled = !paid || p.tender === "upi"; // a UPI payment is refunded, never voided
  $("refund-last").disabled = !paid;
}

async function start(type, extra) {
  say("");
  const amount = $("amount").value.trim();
  const body = Object.assign({ amount, type }, extra || {});
  const reference = $("reference").value.trim();
  if (reference) { body.reference = reference; }
  const idem = newIdempotencyKey();
  let answer = null;
  for (let attempt = 0; attempt < 3 && answer === null; attempt++) {
    try { // a lost answer is asked again with the same key: never a second charge
      answer = await api("POST", "/v1/payments", body, { "Idempotency-Key": idem });
    } catch (_) { answer = null; }
  }
  if (answer === null) { say("The terminal did not answer"); return; }
  if (answer.status !== 201) { say(problem(answer)); return; }
  running = answer.data.id;
  $("cancel").disabled = false;
  showPayment(answer.data);
  if (!answer.data.finished) {
    showState(answer.data.tender === "upi" ? STATES.upi_qr : STATES.waiting_for_card);
  }
}

function ended(p) {
  if (p.id === running) { running = null; $("cancel").disabled = true; }
  showState(OUTCOMES[p.outcome] || p.state, p.outcome || "");
  showPayment(p);
  refreshTotals();
}

function onEvent(event) {
  if (event.type === "outcome" && event.payment) { ended(event.payment); return; }
  const text = STATES[event.type];
  if (text) {
    showState(text);
    if ((event.type === "waiting_for_card" || event.type === "upi_qr") && event.payment_id &&
        running === null) {
      $("cancel").disabled = false; // a payment keyed on the terminal: cancellable here too
      running = event.payment_id;
    }
  }
}

async function follow() {
  // fetch-streamed server-sent events; reconnects after a pause when the stream ends
  for (;;) {
    try {
      const response = await fetch("/v1/events", { headers: { Authorization: `Bearer ${key}` } });
      if (response.status === 401) { showKeyPanel("That key was refused"); return; }
      if (!response.ok || !response.body) { throw new Error(`HTTP ${response.status}`); }
      $("link").textContent = "live";
      $("link").className = "badge live";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) { break; }
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).trim()).join("\n");
          if (data) { onEvent(JSON.parse(data)); }
        }
      }
    } catch (_) { /* the terminal restarts, or the network dropped: try again */ }
    $("link").textContent = "offline";
    $("link").className = "badge";
    if (!key) { return; }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function refreshTotals() {
  const answer = await api("GET", "/v1/totals");
  if (answer.status !== 200) { return; }
  const t = answer.data;
  $("totals").textContent =
    `Batch ${t.batch}: ${t.sales_count} sales ${t.sales} ${t.currency}, ` +
    `${t.refunds_count} refunds ${t.refunds}, net ${t.net}` +
    (t.tips_count ? `, tips ${t.tips}` : "");
}

function showKeyPanel(why) {
  $("key-panel").hidden = false;
  $("till").hidden = true;
  if (why) { $("key").placeholder = why; }
}

async function useKey() {
  key = $("key").value.trim();
  if (!key) { return; }
  const answer = await api("GET", "/v1/status");
  if (answer.status !== 200) { showKeyPanel(problem(answer)); return; }
  localStorage.setItem(KEY_STORE, key);
  $("key").value = "";
  opened();
}

async function showTenders() {
  const answer = await api("GET", "/v1/status");
  $("upi").hidden = !(answer.status === 200 && answer.data.upi);
}

function opened() {
  $("key-panel").hidden = true;
  $("till").hidden = false;
  showTenders();
  refreshTotals();
  follow();
}

$("save-key").addEventListener("click", useKey);
$("pay").addEventListener("click", () => start("purchase"));
$("upi").addEventListener("click", () => start("purchase", { tender: "upi" }));
$("refund").addEventListener("click", () => start("refund"));
$("refund-last").addEventListener("click", () => {
  if (last) { $("amount").value = last.amount; start("refund", { refund_of: last.id }); }
});
$("cancel").addEventListener("click", async () => {
  if (running === null) { return; }
  const answer = await api("POST", `/v1/payments/${running}/cancel`);
  if (answer.status !== 200) { say(problem(answer)); }
});
$("void").addEventListener("click", async () => {
  if (!last) { return; }
  const answer = await api("POST", `/v1/payments/${last.id}/void`);
  if (answer.status !== 200) { say(problem(answer)); return; }
  showState(answer.data.voided ? "Voided" : "Void queued for the bank");
  showPayment(answer.data.payment);
  refreshTotals();
});
$("receipt-btn").addEventListener("click", async () => {
  if (!last) { return; }
  const answer = await api("GET", `/v1/payments/${last.id}/receipt`);
  if (answer.status !== 200) { say(problem(answer)); return; }
  $("receipt").textContent = answer.data.lines.join("\n") +
    (answer.data.url ? `\n\n${answer.data.url}` : "");
  $("receipt").hidden = false;
});
$("refresh").addEventListener("click", refreshTotals);
$("forget-key").addEventListener("click", () => {
  localStorage.removeItem(KEY_STORE);
  key = "";
  showKeyPanel("");
});

if (key) { opened(); } else { showKeyPanel(""); }
