// The lobby: players (via the sandbox, which calls the wallet's admin API) and the game catalog.
"use strict";

const state = { config: null, currencies: {}, players: [], next: null };

function currencyOptions(select, preferred) {
  select.replaceChildren(...state.config.currencies.map((c) =>
    el("option", { value: c.code, selected: c.code === preferred }, c.code)));
}

function renderPlayers() {
  const body = document.querySelector("#players tbody");
  const playAs = document.getElementById("play-as");
  const current = playAs.value;
  body.replaceChildren(...state.players.map((p) => {
    const amount = el("input", { id: "dep-" + p.player_id, inputmode: "decimal", value: "", size: 8,
                                 "aria-label": "Deposit amount for " + p.player_id });
    const form = el("form", { class: "inline", onsubmit: (ev) => { ev.preventDefault(); deposit(p, amount.value); } },
      amount, el("button", { type: "submit" }, "Deposit"));
    return el("tr", {},
      el("th", { scope: "row" }, p.player_id),
      el("td", {}, p.currency),
      el("td", { "data-player": p.player_id, class: "num" }, formatMoney(p.balance, p.exponent)),
      el("td", {}, form));
  }));
  playAs.replaceChildren(...state.players.map((p) =>
    el("option", { value: p.player_id, selected: p.player_id === current }, `${p.player_id} (${p.currency})`)));
  document.getElementById("more-players").hidden = !state.next;
}

// The wallet's players, a page at a time: "More players" follows the page's next cursor.
async function loadPlayers(after) {
  const r = await api("GET", "/api/players" + (after ? "?after=" + encodeURIComponent(after) : ""));
  if (!r.ok) { fail(r.data); return false; }
  const known = new Set(r.data.players.map((p) => p.player_id));
  const kept = state.players.filter((p) => p.keep && !known.has(p.player_id));
  state.players = after ? state.players.filter((p) => !p.keep || !known.has(p.player_id)).concat(r.data.players)
                        : r.data.players.concat(kept);
  state.next = r.data.next;
  renderPlayers();
  return true;
}

// Back to the first page; a player just created or opened stays listed even when it sorts further on.
async function refreshPlayers(row) {
  if (row && !state.players.some((p) => p.player_id === row.player_id)) state.players.push({ ...row, keep: true });
  await loadPlayers(null);
}

function say(text) { document.getElementById("player-status").textContent = text; }
function fail(data) { showAlert(document.getElementById("lobby-error"), `${data.code}: ${data.message}`); }

async function deposit(player, text) {
  showAlert(document.getElementById("lobby-error"), "");
  const r = await api("POST", `/api/players/${encodeURIComponent(player.player_id)}/deposit`, { amount: text.trim() });
  if (!r.ok) return fail(r.data);
  say(`Deposited into ${player.player_id}: balance ${formatMoney(r.data.balance, r.data.exponent, r.data.currency)}.`);
  state.players = state.players.map((p) => p.player_id === r.data.player_id ? { ...p, ...r.data } : p);
  renderPlayers();
}

async function createPlayer(ev) {
  ev.preventDefault();
  showAlert(document.getElementById("lobby-error"), "");
  const body = { currency: document.getElementById("new-currency").value,
                 balance: document.getElementById("new-balance").value.trim() };
  const id = document.getElementById("new-player-id").value.trim();
  if (id) body.player_id = id;
  const r = await api("POST", "/api/players", body);
  if (!r.ok) return fail(r.data);
  say(`Created ${r.data.player_id} with ${formatMoney(r.data.balance, r.data.exponent, r.data.currency)}.`);
  await refreshPlayers(r.data);
  document.getElementById("play-as").value = r.data.player_id;
}

async function findPlayer(ev) {
  ev.preventDefault();
  showAlert(document.getElementById("lobby-error"), "");
  const id = document.getElementById("find-id").value.trim();
  const r = await api("GET", `/api/players/${encodeURIComponent(id)}`);
  if (!r.ok) return fail(r.data);
  say(`Opened ${r.data.player_id}.`);
  await refreshPlayers(r.data);
  document.getElementById("play-as").value = r.data.player_id;
}

async function launch(game) {
  showAlert(document.getElementById("lobby-error"), "");
  let body;
  if (state.config.embedded) {
    const player = document.getElementById("play-as").value;
    if (!player) return fail({ code: "NO_PLAYER", message: "create or open a player first" });
    body = { player_id: player, game_id: game.game_id };
  } else {
    body = { player_id: document.getElementById("ext-player-id").value.trim(),
             currency: document.getElementById("ext-currency").value,
             token: document.getElementById("ext-token").value.trim(), game_id: game.game_id };
  }
  say(`Launching ${game.name}…`);
  const r = await api("POST", "/api/launch", body);
  if (!r.ok) { say(""); return fail(r.data); }
  window.location.assign(r.data.play_url);
}

function renderGames() {
  const list = document.getElementById("games");
  list.replaceChildren(...state.config.games.map((g) => el("li", { class: "game" },
    el("h3", {}, g.name),
    el("p", { class: "muted" }, `${g.kind} · RTP ${(Number(g.rtp) * 100).toFixed(2)} % · id ${g.game_id}`),
    el("button", { type: "button", class: "launch", "data-game": g.game_id, onclick: () => launch(g) },
      "Launch " + g.name))));
}

async function main() {
  const r = await api("GET", "/api/config");
  if (!r.ok) return fail(r.data);
  state.config = r.data;
  document.getElementById("where").textContent = state.config.embedded
    ? `Reference wallet at ${state.config.wallet_url} · mock provider at ${state.config.provider_url}`
    : `Your wallet at ${state.config.wallet_url} (dialect ${state.config.dialect}) · mock provider at ${state.config.provider_url}`;
  for (const node of document.querySelectorAll(state.config.embedded ? ".external-only" : ".embedded-only")) node.hidden = true;
  for (const node of document.querySelectorAll(state.config.embedded ? ".embedded-only" : ".external-only")) node.hidden = false;
  currencyOptions(document.getElementById("new-currency"), "EUR");
  currencyOptions(document.getElementById("ext-currency"), "EUR");
  document.getElementById("create-player").addEventListener("submit", createPlayer);
  document.getElementById("find-player").addEventListener("submit", findPlayer);
  document.getElementById("external-player").addEventListener("submit", (ev) => ev.preventDefault());
  document.getElementById("more-players").addEventListener("click", async () => {
    if (await loadPlayers(state.next)) say(`${state.players.length} players listed.`);
  });
  renderGames();
  if (state.config.embedded) await loadPlayers(null);
}

main();
