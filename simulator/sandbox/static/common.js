// croupier sandbox: helpers shared by the lobby and the game pages. Rendering only: no game math.
"use strict";

/** Minor units (an integer from the server) as the human reads them, from the currency's exponent. */
function formatMoney(minor, exponent, code) {
  if (minor === null || minor === undefined) return "unknown";
  const negative = minor < 0;
  let digits = String(Math.abs(minor));
  let text = digits;
  if (exponent > 0) {
    digits = digits.padStart(exponent + 1, "0");
    text = digits.slice(0, -exponent) + "." + digits.slice(-exponent);
  }
  return (negative ? "-" : "") + text + (code ? " " + code : "");
}

/** fetch + JSON; resolves to {ok, status, data}. */
async function api(method, path, body) {
  const init = { method, headers: {} };
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";  // the sandbox refuses other POSTs (no cross-site forms)
    init.body = JSON.stringify(body === undefined ? {} : body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    return { ok: false, status: 0, data: { code: "NETWORK", message: "the sandbox is not answering: " + err } };
  }
  let data = null;
  try { data = await resp.json(); } catch (_) { data = { code: "BAD_ANSWER", message: "not JSON" }; }
  return { ok: resp.ok, status: resp.status, data };
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c);
  return node;
}

function showAlert(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

function reducedMotion() {
  return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
