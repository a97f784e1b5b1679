"""The distributed recipe is tested, not just written: deploy/compose.yaml's and deploy/k8s/'s commands are
croupier commands that exist, agree with each other (the master's port is the workers', its expected worker
count their replicas), and the master's and workers' commands, run as the compose file says (its variables
substituted), make one run with one verdict.

The run is a master and two workers started separately, as on three hosts: the workers are told nothing but
the master's address (no secret, no scenario, no wallet in their environment), so a pass proves the master
sent them every setting, and each worker's calls and ledger reached the master's report.  Docker is not
needed: the commands run as local processes on 127.0.0.1.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from simulator.commands import cli
from tests.support import ADMIN_TOKEN, ROOT, SECRET, WalletProcess, free_port, valid_junit

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution (``${X}``, ``${X:-default}``, ``${X-default}``, ``${X:?error}``), the
    subset the file uses; an unset required variable is an error, as in ``docker compose``."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        value = env.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("?") and unset:
            raise KeyError(f"{name}: {arg}")
        if op.endswith("-") and unset:
            return arg
        return value or ""

    return _VARIABLE.sub(one, text)


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def command(name: str, env: Mapping[str, str]) -> list[str]:
    """A service's command, as ``docker compose`` would run it in the container."""
    return [interpolate(a, env) for a in compose()["services"][name]["command"]]


def environment(name: str) -> set[str]:
    """The variables a service's container is given (beside those in its command)."""
    return set(compose()["services"][name].get("environment", {}))


def service_command(name: str, env: Mapping[str, str]) -> list[str]:
    """A service's command run on this host: paths inside the container's mounts are the host's folders."""
    service = compose()["services"][name]
    argv = command(name, env)
    for volume in service.get("volumes", []):
        host, inside = interpolate(volume, env).split(":")[:2]
        if host.startswith(("/", ".")):
            argv = [a.replace(inside, str((DEPLOY / host).resolve()), 1) if a.startswith(inside) else a
                    for a in argv]
    return argv


def parsed(argv: list[str]) -> Any:
    assert argv[0] == "croupier", argv
    return cli.parser().parse_args(argv[1:])


def test_the_compose_file_runs_a_master_and_workers_that_find_each_other() -> None:
    services = compose()["services"]
    assert set(services) == {"wallet", "master", "worker"}
    assert services["wallet"]["profiles"] == ["wallet"]  # optional: your own wallet by CROUPIER_WALLET_URL
    defaults: dict[str, str] = {"CROUPIER_SECRET": "s", "CROUPIER_ADMIN_TOKEN": "t"}
    master = parsed(command("master", defaults))
    worker = parsed(command("worker", defaults))
    assert master.command == "load" and worker.command == "load-worker"
    assert master.master_bind_host == "0.0.0.0" and master.workers == 0
    assert master.wallet == "http://wallet:8080/wallet" and worker.master_host == "master"
    assert master.master_bind_port == worker.master_port == 5557
    assert master.expect_workers == int(interpolate(services["worker"]["deploy"]["replicas"], defaults)) == 2
    assert services["master"]["ports"] == ["${CROUPIER_MASTER_PORT:-5557}:${CROUPIER_MASTER_PORT:-5557}"]
    # The report folder is a mount; the secrets are required, never a default the wallet would refuse anyway.
    assert master.report_dir == "/report" and any(v.endswith(":/report") for v in services["master"]["volumes"])
    for name in ("wallet", "master"):
        with pytest.raises(KeyError, match="CROUPIER_SECRET"):
            interpolate(services[name]["environment"]["CROUPIER_SECRET"], {})
    wallet = parsed(command("wallet", defaults))
    assert wallet.command == "wallet" and wallet.host == "0.0.0.0" and wallet.port == 8080
    # The image every service runs: built from the repository, with the Locust side in it.
    build = services["master"]["build"]
    dockerfile = (DEPLOY / build["context"] / build["dockerfile"]).resolve()
    text = dockerfile.read_text(encoding="utf-8")
    copied = [src for line in re.findall(r"^COPY (?!--)(.+)$", text, re.MULTILINE) for src in line.split()[:-1]]
    assert "loadtests" in copied and all((ROOT / c).exists() for c in copied), copied


def k8s_documents() -> dict[tuple[str, str], dict[str, Any]]:
    docs: dict[tuple[str, str], dict[str, Any]] = {}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")):
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def test_the_kubernetes_manifests_wire_workers_to_the_master_service() -> None:
    docs = k8s_documents()
    job, service = docs[("Job", "croupier-master")], docs[("Service", "croupier-master")]
    workers = docs[("Deployment", "croupier-worker")]
    pod = job["spec"]["template"]
    master = parsed(pod["spec"]["containers"][0]["command"])
    worker = parsed(workers["spec"]["template"]["spec"]["containers"][0]["command"])
    assert master.command == "load" and worker.command == "load-worker"
    assert worker.master_host == service["metadata"]["name"]
    assert master.master_bind_port == worker.master_port == service["spec"]["ports"][0]["targetPort"]
    assert master.master_bind_host == "0.0.0.0" and master.expect_workers == workers["spec"]["replicas"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert pod["spec"]["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
    claim = pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in docs
    assert master.report_dir == pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"]
    secrets = {e["name"] for e in pod["spec"]["containers"][0]["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert secrets == {"CROUPIER_SECRET", "CROUPIER_ADMIN_TOKEN"}


def _croupier(argv: list[str], env: Mapping[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """``croupier …`` as the image runs it (this checkout's, under this interpreter)."""
    assert argv[0] == "croupier"
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "simulator", *argv[1:]], env={**env, "PYTHONPATH": str(ROOT)},
                                cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _distributed_run(tmp_path: Path, run_time: str, kill_after_s: float | None = None) -> tuple[int, list[int | None]]:
    """The compose file's master and two workers, run apart; with ``kill_after_s`` the second worker is killed
    (SIGKILL) that long after it started, as a host lost mid-run. The master's and workers' exit codes."""
    with WalletProcess(tmp_path / "unused.db", "--memory") as wallet:
        port = str(free_port())
        settings = {"CROUPIER_SECRET": SECRET, "CROUPIER_ADMIN_TOKEN": ADMIN_TOKEN,
                    "CROUPIER_WALLET_URL": f"{wallet.base}/wallet", "CROUPIER_SCENARIO": "smoke",
                    "CROUPIER_USERS": "4", "CROUPIER_SPAWN_RATE": "4", "CROUPIER_RUN_TIME": run_time,
                    "CROUPIER_WORKERS": "2", "CROUPIER_MASTER_PORT": port,
                    "CROUPIER_REPORT_DIR": str(tmp_path / "report")}
        base = {k: v for k, v in os.environ.items() if not k.startswith("CROUPIER_")}
        master_env = {**base, **{k: v for k, v in settings.items() if k in environment("master")},
                      "COLUMNS": "200"}
        (tmp_path / "report").mkdir()
        master = _croupier(service_command("master", settings), master_env, tmp_path, tmp_path / "master.log")
        # "Host B" and "host C": only where the master is (the service's own variables).
        worker_env = {**base, "CROUPIER_MASTER_HOST": "127.0.0.1"}
        worker_argv = service_command("worker", {**settings, **worker_env})
        workers = [_croupier(worker_argv, worker_env, tmp_path, tmp_path / f"worker-{k}.log") for k in range(2)]
        try:
            if kill_after_s is not None:
                time.sleep(kill_after_s)
                workers[1].kill()
            code = master.wait(90)
            ends: list[int | None] = [w.wait(20) for w in workers]
        finally:
            for p in (master, *workers):
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
    return code, ends


@pytest.mark.slow
def test_the_compose_commands_run_one_verdict_over_workers_started_apart(tmp_path: Path) -> None:
    code, ends = _distributed_run(tmp_path, "4s")
    log = (tmp_path / "master.log").read_text(errors="replace")
    assert code == 0, log[-3000:] + "".join((tmp_path / f"worker-{k}.log").read_text()[-1500:] for k in range(2))
    assert ends == [0, 0]  # the master told them to quit: a worker never outlives its run
    report = tmp_path / "report"
    rep = orjson.loads((report / "summary.json").read_bytes())
    assert rep["verdict"] == "pass" and rep["workers"] == 2 and "verdict: PASS" in log
    nodes = rep["nodes"]
    assert sorted(nodes) == ["w0", "w1"] and all(n["final"] for n in nodes.values())
    assert all(n["calls"].get("bet", 0) > 0 and n["players"] > 0 for n in nodes.values())  # the secret reached both
    with open(report / "locust_stats.csv", newline="", encoding="utf-8") as f:
        rows = {(r["Type"], r["Name"]): int(r["Request Count"]) for r in csv.DictReader(f)}
    for op in ("authenticate", "bet", "win"):  # the master's statistics are the sum of its workers' calls
        assert rows[("wallet", op)] == rep["calls"][op] == sum(n["calls"].get(op, 0) for n in nodes.values()), op
    assert rep["players"] == sum(n["players"] for n in nodes.values())
    assert not any(rep["anomalies"].values()) and rep["unsettled"] == 0
    junit = valid_junit((report / "junit.xml").read_bytes())
    assert not list(junit.iter("failure"))



@pytest.mark.slow
def test_a_worker_lost_mid_run_makes_the_verdict_an_error_naming_it(tmp_path: Path) -> None:
    """Its players' last calls were never settled nor reconciled: the run cannot say pass."""
    code, _ = _distributed_run(tmp_path, "8s", kill_after_s=4.0)
    log = (tmp_path / "master.log").read_text(errors="replace")
    rep = orjson.loads((tmp_path / "report" / "summary.json").read_bytes())
    assert code == 2 and rep["verdict"] == "error", log[-3000:]
    # Killed before or after its first statistics report: by its node name, or by Locust's id for it.
    assert len(rep["lost_workers"]) == 1 and rep["lost_workers"][0] in rep["error"], rep
    final = [name for name, node in rep["nodes"].items() if node["final"]]
    assert len(final) == 1 and final[0] not in rep["lost_workers"], rep["nodes"]


def test_a_worker_is_locusts_own_worker_on_croupiers_locustfile(monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator.commands.loadcmd import LOCUSTFILE, load_worker_argv

    monkeypatch.setenv("CROUPIER_MASTER_HOST", "master.internal")
    monkeypatch.delenv("CROUPIER_MASTER_PORT", raising=False)
    argv = load_worker_argv(cli.parser().parse_args(["load-worker"]))
    assert argv[1:] == ["-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", "master.internal",
                        "--master-port", "5557", "--loglevel", "WARNING"] and LOCUSTFILE.is_file()
    flags = cli.parser().parse_args(["load-worker", "--master-host", "10.0.0.7", "--master-port", "6000", "--verbose"])
    assert load_worker_argv(flags)[6:] == ["--master-host", "10.0.0.7", "--master-port", "6000", "--loglevel", "INFO"]
    bad = subprocess.run([sys.executable, "-m", "simulator", "load-worker", "--master-port", "70000"], check=False,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert bad.returncode == 2 and "TCP port" in bad.stderr
