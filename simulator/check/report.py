"""What ``croupier check`` and ``croupier replay`` print and write: text, JSON, JUnit, replay files, curl.

For each broken rule: the minimal sequence as numbered calls (request body,
expected and actual answer), the PROTOCOL.md rule it breaks, a replay file
(the sequence as steps that ``croupier replay FILE`` runs again) and the same
sequence as a bash script of curl commands in the dialect's own wire (fresh ids
on every run; each request made by croupier's own dialect encoder,
``python -m simulator.check.request``, signed with the check's secret).
"""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from ..drive.tls import ClientTLS
from ..protocol.calls import Op, WalletCall, call_json
from ..protocol.dialects.semantics import CANONICAL, Semantics
from ..protocol.findings import SEVERITY_ORDER, Severity
from ..protocol.signing import DEV_ADMIN_TOKEN, DEV_SECRET
from ..report.junit import interrupted_case, to_bytes
from .checker import GAME
from .protocol import RULES
from .runner import STOPPED, CheckResult, Failure

REPLAY_VERSION = 1
RUN = "__RUN__"
"""Placeholder for the id prefix in curl scripts (replaced by a fresh one on every run of the script)."""


# -- text ------------------------------------------------------------------------------------

def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def failure_text(f: Failure, paths: dict[str, str] | None = None, wallet: str = "URL") -> str:
    r = f.rule
    what = f" — {f.kind_title}" if f.kind else ""
    lines = [f"✗ [{f.severity}] {r.id} — {r.title}{what}  ({r.source}, {r.section})", f'  "{r.text}"']
    found = ""
    if f.found_after_s is not None:
        found = f"first found after {f.found_after_s:.2f} s ({f.found_after_examples} examples); "
    lines.append(f"  {found}minimal sequence: {f.length} calls" + ("  (did not fail again when rerun: "
                                                                    "timing-dependent)" if f.flaky else ""))
    for e in f.entries:
        if e["kind"] == "admin":
            lines.append(f"       admin: {_clip(e['request'], 200)}")
            continue
        if e["kind"] == "check":
            lines.append(f"   ✗ check: {e['request']}: expected {e['expected']}, found {e['response']}")
            continue
        mark = " ✗" if e["bad"] else "  "
        extra = []
        if e["group"] is not None:
            extra.append(f"sent at once (group {e['group']})")
        if e["sign"] != "ok":
            extra.append(f"signature: {e['sign']}")
        if e["note"]:
            extra.append(e["note"])
        lines.append(f" {mark}{e['n']:>3}. {e['op']:<12} {_clip(e['request'])}" + (f"   ({'; '.join(extra)})"
                                                                                   if extra else ""))
        lines.append(f"          expected  {e['expected']}")
        actual = f"{e['status']} {_clip(e['response'])}" if e["status"] is not None else e["response"]
        lines.append(f"          actual    {actual}")
    where = f"call {f.call_number}: " if f.call_number else ""
    lines.append(f"  → {where}{f.message}")
    if paths:
        lines.append(f"  replay: croupier replay {shlex.quote(paths['replay'])} --wallet {wallet}")
        lines.append(f"  curl:   bash {shlex.quote(paths['curl'])}")
    return "\n".join(lines)


_SEVERITY_HEAD = {
    Severity.MONEY: "money: a balance, a refund or a credit is wrong, or could be",
    Severity.CONTRACT: "contract: a rule broken while no money moved",
    Severity.NOTE: "notes: habits stricter or looser than needed",
}


def _by_severity(failures: list[Failure]) -> list[tuple[Severity, list[Failure]]]:
    return [(sev, [f for f in failures if f.severity is sev]) for sev in SEVERITY_ORDER
            if any(f.severity is sev for f in failures)]


def coverage_text(result: CheckResult) -> str:
    """The coverage table: every rule, how often a call was judged under it, and the result."""
    rows = result.coverage()
    width = max(len(r.rule.id) for r in rows)
    out = [f"coverage ({result.examples} examples): rule, calls judged under it, result",
           f"  {'rule':<{width}}  {'calls':>7}  result"]
    for r in rows:
        result_text = f"BROKEN ({r.severity}: {r.why})" if r.result == "broken" else r.result
        if r.result in ("skipped",) and r.why:
            result_text += f": {r.why}"
        elif r.result == "pass" and r.why:
            result_text += f" (partly: {r.why})"
        if r.notes:
            result_text += f"; {r.notes} choice(s) noted"
        out.append(f"  {r.rule.id:<{width}}  {r.exercised:>7}  {result_text}")
    return "\n".join(out)


def _timing(result: CheckResult) -> str:
    return (f"{result.examples} examples ({result.search_examples} searching"
            + (f", {result.quiet} ended quietly on a rule already reported" if result.quiet else "") + "); "
            + (f"setup {result.setup_s:.1f} s + " if result.setup_s >= 0.5 else "") +
            f"search {result.search_s:.1f} s + shrink {result.shrink_s:.1f} s = {result.elapsed_s:.1f} s "
            f"({result.examples_per_s:.1f} examples/s)")


def render_text(result: CheckResult, paths: dict[str, dict[str, str]] | None = None, command: str = "check") -> str:
    t = result.target
    if command != "check":
        head = f"croupier {command}: {t['wallet']} ({t['dialect']}, players from {t['players']})"
    else:
        head = (f"croupier check: {t['wallet']} ({t['dialect']}, players from {t['players']}): {_timing(result)}; "
                f"seed {result.seed}; stopped: {STOPPED.get(result.stopped_by, result.stopped_by or 'error')}")
    mark = result.interrupted
    out = [head]
    if mark:  # the first line and the last say INTERRUPTED: a partial search is never taken for a whole one
        out[:0] = [_interrupted_line(result), f"interrupted: {mark['note']}"]
    failing = {id(f) for f in result.failing()}
    for sev, group in _by_severity(result.failures):
        out.append("")
        tail = "" if any(id(f) in failing for f in group) else " (not failures: --fail-on note makes them fail)"
        out.append(f"── {_SEVERITY_HEAD[sev]}: {len(group)} rule(s){tail}")
        for f in group:
            out.append("")
            out.append(failure_text(f, (paths or {}).get(f.rule.id), t["wallet"]))
    for e in result.errors:
        out.append("")
        out.append(f"error: {e}")
    if result.replays_lost:
        out.append("")
        out.append(f"note: {result.replays_lost} search run(s) could not replay an example the same way (the wallet "
                   "answered it differently the second time); the search went on with a new run")
    if command == "check" and result.stopped_by != "error":
        out.append("")
        out.append(coverage_text(result))
        if result.skipped:
            out.append("")
            out.append("not tried against this wallet:")
            out.extend(f"  - {s}" for s in result.skipped)
        if result.choices:
            out.append("")
            out.append("choices the wallet made where PROTOCOL.md (or the dialect) lets it choose (notes, never "
                       "failures):")
            out.extend(f"  {n:>6}×  {note}" for note, n in sorted(result.choices.items(), key=lambda kv: -kv[1]))
    out.append("")
    failing_rules = [f.rule.id for f in result.failing()]
    if result.verdict == "pass":
        if command == "check":
            out.append(f"no counterexample in {result.examples} sequences"
                       + (f" ({len(result.failures)} note(s))" if result.failures else ""))
        else:
            out.append("now: no longer reproduces: fixed (the sequence passes now)")
    elif result.verdict == "fail":
        counts = ", ".join(f"{len(g)} {sev}" for sev, g in _by_severity(result.failing()))
        out.append(("now: still reproduces: " if command == "replay" else "")
                   + f"{len(failing_rules)} broken rule(s) ({counts}): " + ", ".join(failing_rules))
    else:
        out.append("the check could not run" if not result.examples else "the check ended with an error")
    if mark:
        out[-1] = f"{_interrupted_line(result)}: {out[-1]}"
    return "\n".join(out)


def _interrupted_line(result: CheckResult) -> str:
    mark = result.interrupted or {}
    return (f"INTERRUPTED by {mark.get('signal', 'a signal')} after {float(mark.get('after_s') or 0):.1f} s — "
            f"verdict so far: {result.verdict.upper()}")


# -- JSON and JUnit ----------------------------------------------------------------------------

def failure_json(f: Failure, paths: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "rule": f.rule.id, "title": f.rule.title, "section": f.rule.section, "protocol": f.rule.text,
        "source": f.rule.source, "quotes": list(f.rule.quotes), "severity": str(f.severity), "kind": f.kind, "kind_title": f.kind_title,
        "message": f.message, "call": f.call_number, "length": f.length, "flaky": f.flaky,
        "found_after_s": None if f.found_after_s is None else round(f.found_after_s, 3),
        "found_after_examples": f.found_after_examples,
        "calls": f.entries, "steps": f.steps, **({"files": paths} if paths else {}),
    }


def result_json(result: CheckResult, paths: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    failing = {id(f) for f in result.failing()}
    return {
        "verdict": result.verdict, **result.target, "examples": result.examples,
        "search_examples": result.search_examples, "quiet_examples": result.quiet,
        "elapsed_s": round(result.elapsed_s, 3), "setup_s": round(result.setup_s, 3),
        "search_s": round(result.search_s, 3),
        "shrink_s": round(result.shrink_s, 3), "examples_per_s": round(result.examples_per_s, 1),
        "seed": result.seed, "stopped_by": result.stopped_by, "stopped": STOPPED.get(result.stopped_by, ""),
        "fail_on": result.fail_on,
        "by_severity": {str(sev): [f.rule.id for f in g] for sev, g in _by_severity(result.failures)},
        "failures": [failure_json(f, (paths or {}).get(f.rule.id)) for f in result.failures if id(f) in failing],
        "notes": [failure_json(f, (paths or {}).get(f.rule.id)) for f in result.failures if id(f) not in failing],
        "coverage": [{"rule": r.rule.id, "title": r.rule.title, "exercised": r.exercised, "result": r.result,
                      "severity": r.severity or None, "why": r.why or None, "choices": r.notes}
                     for r in result.coverage()],
        "choices": dict(sorted(result.choices.items())),
        "skipped": result.skipped,
        "replays_lost": result.replays_lost,
        "rules_selected": sorted(result.selected),
        "errors": result.errors,
        **({"interrupted": result.interrupted} if result.interrupted else {}),
    }


def junit_xml(result: CheckResult, suite: str = "croupier.check") -> bytes:
    """One test case per rule of PROTOCOL.md; a broken one (money or contract; notes with --fail-on note)
    carries its minimal sequence; notes and the choices seen are properties; rules not judged are skipped."""
    failing = {f.rule.id: f for f in result.failing()}
    notes = [f for f in result.failures if f.rule.id not in failing]
    rows = {r.rule.id: r for r in result.coverage()}
    mark = result.interrupted
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=suite, time=f"{result.elapsed_s:.3f}")
    props = ET.SubElement(ts, "properties")
    for key, value in (("wallet", result.target["wallet"]), ("dialect", result.target["dialect"]),
                       ("seed", result.seed), ("examples", result.examples),
                       ("search_s", f"{result.search_s:.1f}"), ("shrink_s", f"{result.shrink_s:.1f}"),
                       ("stopped_by", result.stopped_by), ("fail_on", result.fail_on)):
        ET.SubElement(props, "property", name=key, value=str(value))
    for sev, group in _by_severity(result.failures):
        ET.SubElement(props, "property", name=f"severity.{sev}", value=",".join(f.rule.id for f in group))
    for f in notes:
        ET.SubElement(props, "property", name=f"note.{f.rule.id}", value=f"[{f.severity}] {f.kind_title}: "
                                                                         f"{f.message}")
    for note, n in sorted(result.choices.items()):
        ET.SubElement(props, "property", name=f"choice.{note.split(':', 1)[0]}", value=f"{n}× {note}")
    for s in result.skipped:
        ET.SubElement(props, "property", name="skipped", value=s)
    for rule_id, rule in RULES.items():
        row = rows[rule_id]
        case = ET.SubElement(ts, "testcase", classname=f"{suite}.{rule.section.split(',')[0].lower()}", name=rule_id)
        # How often the rule was exercised is a suite property: the JUnit schema has no properties in a case.
        ET.SubElement(props, "property", name=f"exercised.{rule_id}", value=str(row.exercised))
        if rule_id in failing:
            f = failing[rule_id]
            ET.SubElement(case, "failure", type=f"{f.severity}.{f.kind or rule_id}",
                          message=f"[{f.severity}] {f.message}").text = failure_text(f)
        elif row.result in ("skipped", "not exercised"):
            ET.SubElement(case, "skipped", message=row.why or row.result)
    case = ET.SubElement(ts, "testcase", classname=f"{suite}.run", name="run")
    if result.errors:
        ET.SubElement(case, "error", type="error", message=result.errors[0][:500]).text = "\n\n".join(result.errors)
    interrupted_case(ts, suite, mark)
    return to_bytes(root)  # header counts counted from the cases


# -- replay files and curl scripts ---------------------------------------------------------------

def replay_document(f: Failure, target: dict[str, Any]) -> dict[str, Any]:
    return {
        "croupier_replay": REPLAY_VERSION,
        "rule": f.rule.id, "title": f.rule.title, "section": f.rule.section, "protocol": f.rule.text,
        "message": f.message, "dialect": target["dialect"],
        "players": "accounts" if any(s["kind"] == "account" for s in f.steps) else "admin",
        "steps": f.steps,
        "evidence": {"wallet": target["wallet"], "prefix": f.prefix, "calls": f.entries},
    }


def write_failures(result: CheckResult, out_dir: str | Path, secret: str | None = None,
                   admin_url: str | None = None, admin_token: str | None = None,
                   tls: ClientTLS | None = None) -> dict[str, dict[str, str]]:
    """A replay file and a curl script per broken rule, in ``out_dir``; returns their paths by rule.

    ``secret``: the check's (the scripts sign with it unless CROUPIER_SECRET says otherwise; they are written
    readable by their owner only); ``admin_url``, ``admin_token``: the check's admin API (default: the wallet's
    host, the reference wallet's development token), kept in the script as the secret is; ``tls``: the check's
    ``--ca-bundle``, ``--client-cert``, ``--client-key``, ``--insecure``, given to curl as ``--cacert``,
    ``--cert``, ``--key``, ``-k``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, dict[str, str]] = {}
    semantics = _semantics(result.target.get("dialect", "canonical"), secret or DEV_SECRET)
    for f in result.failures:
        replay = out / f"{f.rule.id}.json"
        curl = out / f"{f.rule.id}.sh"
        replay.write_bytes(orjson.dumps(replay_document(f, result.target), option=orjson.OPT_INDENT_2))
        curl.write_text(curl_script(f, result.target, secret or DEV_SECRET, semantics, admin_url,
                                    admin_token, tls), encoding="utf-8")
        curl.chmod(0o700)
        paths[f.rule.id] = {"replay": str(replay), "curl": str(curl)}
    return paths


def _semantics(dialect: str, secret: str) -> Semantics:
    from ..protocol.dialects import get, semantics_of

    try:
        return semantics_of(get(dialect, secret))
    except (ValueError, OSError):
        return CANONICAL


_PRELUDE = r'''#!/usr/bin/env bash
# croupier check: the minimal sequence that breaks @RULE@ (@TITLE@).
# @SOURCE@, @SECTION@: @TEXT@
# Every run uses fresh ids (RUN=...). Each request is made by croupier's own encoder of the @DIALECT@ dialect
# (python -m simulator.check.request: its paths, fields, amounts and signature) and sent with curl.
# This file holds the secret the check was given@DEVNOTE@ (CROUPIER_SECRET overrides it). Needs curl and python3.
set -u
WALLET="${WALLET:-@WALLET@}"
ADMIN_URL="${ADMIN_URL:-@ADMIN@}"
export CROUPIER_SECRET="${CROUPIER_SECRET:-@SECRET@}"
export CROUPIER_DIALECT="${CROUPIER_DIALECT:-@DIALECT@}"
export PYTHONPATH="@ROOT@${PYTHONPATH:+:$PYTHONPATH}"
PY="${CROUPIER_PYTHON:-@PYTHON@}"
ADMIN_TOKEN="${CROUPIER_ADMIN_TOKEN:-@ADMIN_TOKEN@}"
RUN="${RUN:-c$(date +%s)$RANDOM}"
CURL_TLS=(@CURL_TLS@)  # how curl verifies an https:// wallet: the check's --ca-bundle, --client-cert... as curl's

call() {  # call CALL [ok|wrong-secret|stale|future|unsigned] [VARIANT]: prints the answer and its HTTP status
  local req METHOD RPATH BODY HDR=()
  req=$("$PY" -m simulator.check.request encode "$1" "${2:-ok}" "${3:-}") || return 1
  eval "$req"
  curl -sS ${CURL_TLS[@]+"${CURL_TLS[@]}"} -X "$METHOD" "$WALLET/$RPATH" "${HDR[@]}" ${BODY:+--data-binary "$BODY"} -w '  [HTTP %{http_code}]\n'
}
session() {  # session CALL < answer: the session an authenticate answer gave (the dialect reads the answer)
  "$PY" -m simulator.check.request session "$1"
}
admin() {  # admin METHOD PATH [BODY]
  curl -sS ${CURL_TLS[@]+"${CURL_TLS[@]}"} -X "$1" "$ADMIN_URL$2" -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
       ${3:+--data-binary "$3"}; echo
}
field() {  # field NAME < answer: one field of a JSON answer
  python3 -c 'import json,sys; print(json.loads(sys.stdin.read().rsplit("  [HTTP",1)[0])[sys.argv[1]])' "$1"
}
'''


def _curl_tls(tls: ClientTLS | None) -> str:
    """The check's TLS options as curl's, shell-quoted (absolute paths: the script runs from anywhere)."""
    if tls is None:
        return ""
    args: list[str] = []
    for flag, path in (("--cacert", tls.ca_bundle), ("--cert", tls.client_cert), ("--key", tls.client_key)):
        if path:
            args += [flag, str(Path(path).resolve())]
    if tls.insecure:
        args.append("-k")
    return " ".join(shlex.quote(a) for a in args)


_ORIGINAL_ID = re.compile(r"the original wallet_tx_id '[^']*'")
"""The check's own run's id in an expected answer: a script's run gets other ids, so it names the call instead."""


class _Curl:
    """Turns a failure's steps into bash lines; ids get the placeholder prefix, sessions shell variables."""

    def __init__(self, f: Failure, semantics: Semantics = CANONICAL) -> None:
        self.expected = [e for e in f.entries if e["kind"] == "call"]
        self.players: dict[str, str] = {}
        self.sessions: dict[str, str] = {}
        self.subs: dict[str, str] = {RUN: "RUN"}
        """placeholder → shell variable it stands for"""
        self.n = 0
        self.lines: list[str] = []
        self.operator = semantics.sessions == "operator"

    def concrete(self, spec: dict[str, Any]) -> WalletCall:
        from .checker import Checker

        fake = Checker.__new__(Checker)
        fake.prefix = RUN + "-"
        fake.players, fake.sessions = dict(self.players), dict(self.sessions)
        return Checker.concrete(fake, spec)

    def assign(self, var: str, text: str, tail: str = "") -> None:
        subs = "".join(f"; {var}=${{{var}//{ph}/${v}}}" for ph, v in self.subs.items() if ph in text)
        self.lines.append(f"{var}={shlex.quote(text)}{subs}{tail}")

    def assign_call(self, var: str, call: WalletCall) -> None:
        self.assign(var, orjson.dumps(call_json(call)).decode())

    def comment(self) -> None:
        self.n += 1
        e = self.expected[self.n - 1] if self.n <= len(self.expected) else None
        expected = _ORIGINAL_ID.sub("the wallet_tx_id its original call got above", e["expected"]) if e else ""
        self.lines.append("echo " + shlex.quote(f"# {self.n}. " + (f"expected: {expected}" if expected else "")))

    def send(self, spec: dict[str, Any], mode: str = "ok") -> None:
        self.comment()
        self.assign_call("body", self.concrete(spec))
        self.lines.append(f'call "$body" {mode}')

    def new_session(self, sess: str) -> None:
        self.sessions[sess] = f"__{sess}__"
        self.subs[f"__{sess}__"] = sess

    def step(self, step: dict[str, Any]) -> None:
        kind = step["kind"]
        if kind == "player":
            alias = step["alias"]
            self.players[alias] = f"{RUN}-{alias}{step.get('suffix', '')}"
            self.lines.append(f"# player {alias}")
            self.assign("body", orjson.dumps({"player_id": self.players[alias], "currency": step["currency"],
                                              "balance": step["balance"]}).decode())
            self.lines.append('admin POST /admin/players "$body"')
        elif kind == "account":
            k, sess = step["account"] + 1, step["session"]
            self.players[step["alias"]] = f"__ACCOUNT_{k}_ID__"
            self.subs[f"__ACCOUNT_{k}_ID__"] = f"ACCOUNT_{k}_ID"
            self.new_session(sess)
            if self.operator:
                self.lines.append(f"# test account {step['alias']}: export ACCOUNT_{k}_ID and ACCOUNT_{k}_SESSION "
                                  "(its session token, from the operator)")
                self.lines.append(f'{sess}="${{ACCOUNT_{k}_SESSION:-${{ACCOUNT_{k}_TOKEN:-}}}}"')
            else:
                self.lines.append(f"# test account {step['alias']}: export ACCOUNT_{k}_ID and ACCOUNT_{k}_TOKEN "
                                  "(its launch token)")
                self.assign_call("body", WalletCall.authenticate(f"__ACCOUNT_{k}_TOKEN__", GAME))
                self.lines[-1] += f"; body=${{body//__ACCOUNT_{k}_TOKEN__/$ACCOUNT_{k}_TOKEN}}"
                self.lines.append(f'{sess}=$(call "$body" | session "$body")')
            self.comment()
            self.send_balance(step["alias"], sess)
        elif kind == "login":
            alias, sess = step["player"], step["session"]
            self.new_session(sess)
            self.assign("body", orjson.dumps({"player_id": self.players[alias], "ttl_s": step["ttl"]}).decode())
            if self.operator:
                self.lines.append(f"# the operator's session for {alias} (there is no authenticate)")
                self.lines.append(f'{sess}=$(admin POST /admin/tokens "$body" | field token)')
            else:
                self.lines.append(f'TOKEN=$(admin POST /admin/tokens "$body" | field token); LAUNCH_{sess}=$TOKEN')
                self.authenticate(sess, "TOKEN")
        elif kind == "reauth":
            sess, of = step["session"], step["of"]
            self.new_session(sess)
            self.lines.append(f"# the launch token of session {of} exchanged again")
            self.lines.append(f"LAUNCH_{sess}=${{LAUNCH_{of}:-}}")
            self.authenticate(sess, f"LAUNCH_{sess}")
        elif kind in ("block", "deposit"):
            path = quote(self.players[step["player"]], safe="").replace(RUN, "$RUN")
            if kind == "block":
                self.lines.append(f'admin POST "/admin/players/{path}/{"block" if step["blocked"] else "unblock"}" '
                                  "'{}'")
            else:
                self.lines.append(f'admin POST "/admin/players/{path}/deposit" \'{{"amount":{step["amount"]}}}\'')
        elif kind == "call":
            self.send(step["call"], step.get("sign", "ok"))
        elif kind == "raw":
            self.comment()
            mutation = step["mutation"]
            self.assign_call("body", self.concrete(step["call"]))
            self.lines.append(f'call "$body" ok {shlex.quote(mutation)}   # malformed: {mutation}')
        elif kind in ("race", "burst"):
            specs = step["calls"] if kind == "race" else [step["call"]] * step["n"]
            self.lines.append(f"# {len(specs)} calls at once")
            names = []
            for spec in specs:
                self.comment()
                names.append(f"body{self.n}")
                self.assign_call(names[-1], self.concrete(spec))
            self.lines.append("(" + " ".join(f'call "${v}" &' for v in names) + " wait)")

    def authenticate(self, sess: str, token_var: str) -> None:
        self.comment()
        self.assign_call("body", WalletCall.authenticate("__LAUNCH__", GAME))
        self.lines[-1] += f"; body=${{body//__LAUNCH__/${token_var}}}"
        self.lines.append(f'ANSWER=$(call "$body"); echo "$ANSWER"; '
                          f'{sess}=$(printf "%s" "$ANSWER" | session "$body")')

    def send_balance(self, alias: str, sess: str) -> None:
        self.assign_call("body", WalletCall(Op.BALANCE, player_id=self.players[alias], session_token=f"__{sess}__"))
        self.lines.append('call "$body"')


def curl_script(f: Failure, target: dict[str, Any], secret: str = DEV_SECRET,
                semantics: Semantics = CANONICAL, admin_url: str | None = None, admin_token: str | None = None,
                tls: ClientTLS | None = None) -> str:
    """The minimal sequence of ``f`` as a bash script: admin calls as they were, protocol calls each made by
    croupier's own encoder of the check's dialect and sent with curl."""
    import sys

    import simulator

    wallet = target["wallet"]
    dialect = target.get("dialect", "canonical")
    if dialect.endswith(".toml") or "/" in dialect:
        dialect = str(Path(dialect).resolve())  # the script runs from any directory
    admin = admin_url or (wallet.rsplit("/wallet", 1)[0] if wallet.endswith("/wallet") else wallet)
    c = _Curl(f, semantics)
    values = {"@RULE@": f.rule.id, "@TITLE@": f.rule.title, "@SOURCE@": f.rule.source, "@SECTION@": f.rule.section,
              "@TEXT@": f.rule.text, "@WALLET@": wallet, "@ADMIN@": admin, "@DIALECT@": dialect,
              "@SECRET@": secret, "@ADMIN_TOKEN@": admin_token or DEV_ADMIN_TOKEN, "@ROOT@": str(Path(simulator.__file__).resolve().parent.parent),
              "@PYTHON@": sys.executable or "python3",
              "@DEVNOTE@": ": the development secret, as no --secret was given" if secret == DEV_SECRET else "",
              "@CURL_TLS@": _curl_tls(tls)}
    prelude = _PRELUDE
    for key, value in values.items():
        safe = value.replace("\n", " ")
        if key in ("@WALLET@", "@ADMIN@", "@SECRET@", "@ADMIN_TOKEN@", "@DIALECT@", "@ROOT@", "@PYTHON@"):
            safe = safe.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
        prelude = prelude.replace(key, safe)
    c.lines.append(prelude)
    for step in f.steps:
        if step["kind"] != "check":
            c.step(step)
    c.lines.append("# the balances now")
    for p in c.players.values():
        if not p.startswith("__ACCOUNT"):
            c.lines.append(f'admin GET "/admin/players/{quote(p, safe="").replace(RUN, "$RUN")}"')
    return "\n".join(c.lines) + "\n"
