// A game page: the player's choices go to the sandbox, which plays the round with the games package and
// the provider's engine; this script only draws what comes back (reels, number, crash point, balance).
"use strict";

const sessionId = decodeURIComponent(location.pathname.split("/").pop());
const $ = (id) => document.getElementById(id);
let info = null;
let busy = false;

const SYMBOLS = { TEN: "10", JACK: "J", QUEEN: "Q", KING: "K", ACE: "A", BELL: "Bell", BAR: "Bar",
                  SEVEN: "7", WILD: "Wild", STAR: "Star" };

function money(minor) { return formatMoney(minor, info.exponent, info.currency); }

function setBalance(minor) {
  info.balance = minor;
  $("balance").textContent = money(minor);
  $("balance").dataset.minor = minor === null ? "" : String(minor);
}

// -- stages -------------------------------------------------------------------------------
function drawScreen(screen, label) {
  const grid = el("div", { class: "reels", role: "img", "aria-label": label + ": " +
    screen.map((row, i) => `row ${i + 1}: ${row.map((s) => SYMBOLS[s] || s).join(", ")}`).join("; ") });
  for (const row of screen) for (const s of row) grid.append(el("span", { class: "sym sym-" + s.toLowerCase(), "aria-hidden": "true" }, SYMBOLS[s] || s));
  $("stage").replaceChildren(grid);
}

function setupSlot() {
  drawScreen(info.game.slot.screen, "Reels");
  $("play").textContent = "Spin";
}

function setupRoulette() {
  const bets = info.game.roulette.bets;
  const names = { red_black: "Red or black", odd_even: "Odd or even", low_high: "Low (1-18) or high (19-36)",
                  dozen: "Dozen", column: "Column", straight: "Straight up (one number)" };
  const type = el("select", { id: "bet-type", name: "bet-type" },
    ...Object.keys(bets).map((k) => el("option", { value: k }, names[k] || k)));
  const sel = el("select", { id: "bet-selection", name: "bet-selection" });
  const fill = () => sel.replaceChildren(...bets[type.value].map((v) => el("option", { value: String(v) }, String(v))));
  type.addEventListener("change", fill);
  fill();
  $("choices").replaceChildren(el("label", { for: "bet-type" }, "Bet"), type, el("label", { for: "bet-selection" }, "On"), sel);
  $("stage").replaceChildren(el("div", { class: "wheel", id: "wheel", "aria-hidden": "true" }, "?"));
  $("play").textContent = "Spin the wheel";
}

function setupCrash() {
  $("choices").replaceChildren(
    el("label", { for: "target" }, "Auto cash-out at (×)"),
    el("input", { id: "target", name: "target", inputmode: "decimal", value: info.game.crash.default_target,
                  pattern: "[0-9]{1,7}(\\.[0-9]{1,2})?", "aria-describedby": "target-hint", required: true }),
    el("p", { id: "target-hint", class: "muted" }, `From ${info.game.crash.min_target}×; two decimals at most.`));
  $("stage").replaceChildren(el("div", { class: "multiplier", id: "multiplier", "aria-hidden": "true" }, "1.00×"));
  $("play").textContent = "Bet";
}

function choices() {
  const kind = info.game.kind;
  if (kind === "roulette") {
    const type = $("bet-type").value;
    let selection = $("bet-selection").value;
    if (["dozen", "column", "straight"].includes(type)) selection = Number(selection);
    return { bet: { type, selection } };
  }
  if (kind === "crash") return { target: $("target").value.trim() };
  return {};
}

// -- results --------------------------------------------------------------------------------
async function showSlot(round) {
  const s = round.slot;
  drawScreen(s.screen, "Reels");
  const cells = $("stage").querySelectorAll(".sym");
  for (const w of s.line_wins) for (const [row, reel] of w.cells) cells[row * 5 + reel].classList.add("hit");
  const lines = [];
  for (const w of s.line_wins) lines.push(`Line ${w.line}: ${w.length} × ${SYMBOLS[w.symbol] || w.symbol} pays ${w.pays} × the line bet`);
  if (s.scatters >= 3) lines.push(`${s.scatters} Stars anywhere`);
  const out = [el("p", { class: round.paid ? "win" : "" }, round.paid ? `Win ${money(round.paid)}!` : "No win.")];
  if (lines.length) out.push(el("ul", {}, ...lines.map((t) => el("li", {}, t))));
  if (s.free_spins) {
    out.push(el("p", { class: "free" }, `Free spins: ${s.free_spins} played at ×${s.free_spin_multiplier}, won ${money(s.free_spin_win)}.`));
    out.push(el("ol", { class: "free-list", "aria-label": "Free spins" },
      ...s.free.map((f) => el("li", {}, `Free spin ${f.n}: ${f.win ? "won " + money(f.win) : "no win"}`))));
    if (!reducedMotion()) {
      $("stage").prepend(el("p", { class: "banner", id: "free-banner" }, `FREE SPINS ×${s.free_spin_multiplier}`));
      for (const f of s.free) {
        drawScreen(f.screen, `Free spin ${f.n} of ${s.free_spins}`);
        $("stage").prepend(el("p", { class: "banner" }, `FREE SPIN ${f.n} / ${s.free_spins} ×${s.free_spin_multiplier}`));
        await sleep(180);
      }
    }
  }
  if (s.jackpot && s.jackpot.hit) out.push(el("p", { class: "win" }, "JACKPOT!"));
  return out;
}

function betName(label) {
  // "red_black black" → "black", "dozen 2" → "dozen 2", "straight 17" → "number 17"
  const [type, ...rest] = label.split(" ");
  const sel = rest.join(" ");
  return { red_black: sel, odd_even: sel, low_high: sel, straight: "number " + sel }[type] ?? label;
}

function showRoulette(round) {
  const r = round.roulette;
  const wheel = $("wheel");
  wheel.textContent = String(r.number);
  wheel.className = "wheel " + r.color;
  return [el("p", { class: round.paid ? "win" : "" },
    `${r.number} ${r.color}. Your bet on ${r.bets.map(betName).join(", ")} ` + (round.paid ? `won ${money(round.paid)}.` : "lost."))];
}

async function showCrash(round) {
  const c = round.crash;
  const m = $("multiplier");
  if (!reducedMotion()) {
    // Animation only: the crash point and the cash-out come from the server.
    const end = Number(c.crash_point);
    const steps = 20;
    for (let i = 1; i < steps; i++) {
      m.textContent = (1 + (end - 1) * (i / steps)).toFixed(2) + "×";
      await sleep(25);
    }
  }
  m.textContent = c.crash_point + "×";
  m.className = "multiplier " + (c.cashed_out ? "cashed" : "crashed");
  return [el("p", { class: c.cashed_out ? "win" : "" }, c.cashed_out
    ? `Cashed out at ${c.targets[0]}× (crashed at ${c.crash_point}×): won ${money(round.paid)}.`
    : `Crashed at ${c.crash_point}× before your ${c.targets[0]}× cash-out: lost.`)];
}

function explain(data) {
  const stake = Number($("stake").value);
  switch (data.code) {
    case "INSUFFICIENT_FUNDS":
      return `Not enough funds: your balance is ${money(data.balance ?? info.balance)} and the stake is ${money(stake)}. ` +
        "Lower the stake, or deposit from the lobby.";
    case "SESSION_EXPIRED": case "INVALID_TOKEN":
      return "Your session has ended. Go back to the lobby and launch the game again.";
    case "PLAYER_BLOCKED": return "Your account is blocked: bets are not accepted.";
    case "LIMIT_EXCEEDED": return "You have reached a limit set on your account: this bet is not accepted.";
    case "ROUND_CANCELLED": return "The wallet did not answer the bet in time; it was cancelled and nothing was staked.";
    case "ROUND_UNRESOLVED": return "The wallet has not confirmed this round yet; it will be settled.";
    default: return `The bet was not accepted (${data.code}): ${data.message}`;
  }
}

async function play(ev) {
  ev.preventDefault();
  if (busy) return;
  busy = true;
  $("play").disabled = true;
  $("play").setAttribute("aria-busy", "true");
  showAlert($("error"), "");
  $("result").textContent = info.game.kind === "slot" ? "Spinning…" : "Playing…";
  try {
    const r = await api("POST", `/api/sessions/${encodeURIComponent(sessionId)}/play`,
                        { stake: Number($("stake").value), ...choices() });
    if (r.data && r.data.balance !== undefined && r.data.balance !== null) setBalance(r.data.balance);
    if (!r.ok) {
      $("result").textContent = "";
      showAlert($("error"), explain(r.data));
      return;
    }
    const round = r.data.round;
    const kind = info.game.kind;
    let out;
    if (kind === "slot") out = await showSlot(round);
    else if (kind === "crash") out = await showCrash(round);
    else if (round.roulette) out = showRoulette(round);
    else out = [el("p", {}, round.paid ? `Win ${money(round.paid)}!` : "No win.")];
    $("result").replaceChildren(...out);
    $("result").dataset.round = round.round_id;
    $("result").dataset.paid = String(round.paid);
  } finally {
    busy = false;
    $("play").disabled = false;
    $("play").removeAttribute("aria-busy");
  }
}

// -- the live panel ---------------------------------------------------------------------------
function callTitle(c) {
  const amount = c.amount !== null ? " " + formatMoney(c.amount, info.exponent, c.currency) : "";
  const reason = c.reason && c.reason !== "regular" ? ` (${c.reason})` : "";
  const closed = c.round_closed ? " · closes round" : "";
  const status = c.http_status ? ` · HTTP ${c.http_status}` : "";
  return `#${c.id} ${c.op}${amount}${reason}${closed} → ${c.outcome}${status} · ${c.latency_ms.toFixed(1)} ms`;
}

function pretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return text; }
}

async function act(c, action, button) {
  button.disabled = true;
  $("panel-status").textContent = `Sending: ${action} of call #${c.id}…`;
  const r = await api("POST", `/api/calls/${c.id}/${action}`);
  button.disabled = false;
  $("panel-status").textContent = r.ok
    ? `${action} of call #${c.id}: ${r.data.calls.map((x) => `#${x.id} ${x.op} → ${x.outcome}`).join(", ")}`
    : `${action} of call #${c.id} failed: ${r.data.code}: ${r.data.message}`;
  if (r.ok) for (const x of r.data.calls) addCall(x);
}

const LABELS = { replay: "Replay this call", duplicate: "Send a duplicate", timeout: "Simulate a timeout" };

function addCall(c) {
  const origin = c.origin !== "game" ? el("span", { class: "badge" }, `${c.origin} of #${c.of}`) : "";
  const req = c.request ? `${c.request.method} ${c.request.url}\n` +
    Object.entries(c.request.headers).map(([k, v]) => `${k}: ${v}`).join("\n") + "\n\n" + pretty(c.request.body) : "(not recorded)";
  const resp = c.response ? `HTTP ${c.response.status}\n\n${pretty(c.response.body)}` : `no answer: ${c.message || c.outcome}`;
  const buttons = el("div", { class: "actions" }, ...c.actions.map((a) => {
    const b = el("button", { type: "button", "data-action": a, "aria-label": `${LABELS[a]} (#${c.id} ${c.op})` }, LABELS[a]);
    b.addEventListener("click", () => act(c, a, b));
    return b;
  }));
  const item = el("li", { id: "call-" + c.id, "data-id": String(c.id), "data-op": c.op, "data-origin": c.origin,
                          "data-outcome": c.outcome, class: "call outcome-" + (c.outcome === "ok" ? "ok" : "bad") },
    el("p", { class: "call-title" }, callTitle(c), " ", origin),
    el("p", { class: "muted" }, `tx ${c.tx_id || "–"}${c.ref_tx_id ? " (cancels " + c.ref_tx_id + ")" : ""} · wallet_tx_id ${c.wallet_tx_id || "–"}` +
      (c.balance !== null ? ` · balance ${formatMoney(c.balance, info.exponent, c.currency)}` : "")),
    ...c.notes.map((n) => el("p", { class: "note" }, n)),
    buttons,
    el("details", {}, el("summary", {}, "Request and response"),
      el("h3", {}, "Request"), el("pre", { class: "request" }, req),
      el("h3", {}, "Response"), el("pre", { class: "response" }, resp)));
  const existing = document.getElementById("call-" + c.id);
  if (existing) { item.querySelector("details").open = existing.querySelector("details").open; existing.replaceWith(item); return; }
  const list = $("calls");
  const after = [...list.children].find((li) => Number(li.dataset.id) < c.id);
  list.insertBefore(item, after || null);
  while (list.children.length > 300) list.lastElementChild.remove();
}

function listen() {
  const source = new EventSource(`/api/sessions/${encodeURIComponent(sessionId)}/events`);
  source.addEventListener("call", (ev) => addCall(JSON.parse(ev.data)));
  source.addEventListener("open", () => { $("panel-status").textContent = "Live."; });
  source.addEventListener("error", () => { $("panel-status").textContent = "Reconnecting to the live panel…"; });
}

async function main() {
  const r = await api("GET", `/api/sessions/${encodeURIComponent(sessionId)}`);
  if (!r.ok) {
    $("game-name").textContent = "No such game session";
    showAlert($("error"), `${r.data.message}`);
    $("play").disabled = true;
    return;
  }
  info = r.data;
  document.title = `${info.game.name} · croupier sandbox`;
  $("game-name").textContent = info.game.name;
  $("player").textContent = info.player_id;
  $("rtp").textContent = (Number(info.game.rtp) * 100).toFixed(2) + " %";
  setBalance(info.balance);
  const preferred = info.last_stake ?? info.stakes[0];
  $("stake").replaceChildren(...info.stakes.map((s) => el("option", { value: String(s), selected: s === preferred }, money(s))));
  if (info.game.kind === "slot") setupSlot();
  else if (info.game.kind === "roulette") setupRoulette();
  else if (info.game.kind === "crash") setupCrash();
  else {  // the live table: the provider spreads the stake over bets, as its players do
    $("stage").replaceChildren(el("div", { class: "wheel", id: "wheel", "aria-hidden": "true" }, "?"));
    $("play").textContent = "Place bet";
  }
  $("play-form").addEventListener("submit", play);
  listen();
}

main();
