"""The chaos run: many rollouts on the test control plane against the simulator while faults are injected at random
moments (a recorded seed), then the invariants checked from the simulator's audit and safety counters.

``ChaosRun.run()`` drives everything from one thread: it keeps ``lanes`` rollouts going at once (each on a fresh
scale set, applied with kubectl as a user would), injects a fault every so often on a random moving rollout (or on the
operator, or the apiserver), watches each rollout to its end, and measures how long it took to move again after each
fault (``recovery``). ``check()`` then reads the simulator and returns the violations. Used by
tests/cluster/test_chaos.py (CI: ``CHAOS_FAULTS`` default 100) and ``make chaos`` (soak: ``FAULTS`` default 1000); both
write ``chaos-results.json`` at the repository root.
"""

from __future__ import annotations

import http.client
import json
import random
import ssl
import statistics
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.clusterkit import JAMMY, JAMMY_VERSIONS, Kubectl, Operators, condition, restart_apiserver, write_manifest
from scaleset_image_operator.simulator import SimulatorControl

INITIAL = ":".join((*JAMMY.values(), JAMMY_VERSIONS[0]))
TARGET = ":".join((*JAMMY.values(), JAMMY_VERSIONS[-1]))
OUT_OF_BAND = ":".join((*JAMMY.values(), JAMMY_VERSIONS[1]))
RESOURCE_GROUP = "rg-chaos"
API_VERSION = "2024-07-01"

FAULT_WEIGHTS: dict[str, int] = {
    "operator-kill": 8,
    "apiserver-restart": 3,
    "throttle-storm": 12,
    "server-error": 12,
    "connection-reset": 10,
    "slow-upgrade": 8,
    "stuck-upgrade": 4,
    "fail-upgrade": 6,
    "unhealthy": 6,
    "token-revoked": 6,
    "model-edit": 4,
    "scaleset-deleted": 3,
    "scale-out": 9,
    "scale-in": 9,
}
"""Relative frequency of each fault kind. Process faults are rarer: each costs seconds of outage for every rollout."""

DRAIN_SECONDS = 180.0
"""After the last fault: how long the rollouts still going may take to end before they count as lost."""

ENDED_BY_FAULT = {"stuck-upgrade", "fail-upgrade", "unhealthy", "model-edit", "scaleset-deleted"}
"""Faults after which a rollout legitimately ends Halted, RolledBack or Degraded instead of Ready."""


@dataclass
class Rollout:
    index: int
    name: str
    scale_set: str
    scale_set_id: str
    subscription: str
    capacity: int
    dry_run: bool
    on_failure: str
    started: float
    ended: float | None = None
    outcome: str | None = None
    reason: str = ""
    document: dict[str, Any] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    last_move: tuple[Any, ...] = ()
    chaos_writes: int = 0
    """Model writes the chaos itself made (out-of-band edits, capacity changes): not the operator's."""


@dataclass
class Fault:
    kind: str
    at: float
    target: str
    recovered_at: float | None = None

    @property
    def recovery(self) -> float | None:
        return None if self.recovered_at is None else self.recovered_at - self.at


class ChaosRun:
    def __init__(
        self,
        *,
        seed: int,
        faults: int,
        rollouts: int,
        lanes: int,
        kubectl: Kubectl,
        control: SimulatorControl,
        operators: Operators,
        control_plane: Any,
        namespace: str,
        folder: Path,
        arm_token: Callable[[], str],
        arm_url: str,
        ca_file: str,
        deadline: float,
    ) -> None:
        self.random = random.Random(seed)
        self.seed = seed
        self.fault_target = faults
        self.rollout_target = rollouts
        self.lanes = lanes
        self.kubectl = kubectl
        self.control = control
        self.operators = operators
        self.control_plane = control_plane
        self.namespace = namespace
        self.folder = folder
        self.arm_token = arm_token
        self.arm_url = arm_url
        self.ca_file = ca_file
        self.deadline = deadline
        self.rollouts: list[Rollout] = []
        self.faults: list[Fault] = []
        self.log: list[str] = []
        self.operator = operators.start("chaos", args=("--namespace", namespace))
        self.throttle_seen: set[str] = set()
        self.checked: Counter[str] = Counter()
        """How many batches and model writes the audit checks looked at (so a vacuous check shows)."""
        self.started = time.monotonic()

    # --- rollouts --------------------------------------------------------------------------------------------------

    def _start_rollout(self) -> None:
        index = len(self.rollouts)
        subscription = str(uuid.uuid4())
        scale_set = f"vmss-chaos-{index}-{uuid.uuid4().hex[:6]}"
        capacity = self.random.choice((5, 8, 10))
        arm_id = self.control.create_scale_set(
            subscriptionId=subscription,
            resourceGroup=RESOURCE_GROUP,
            name=scale_set,
            capacity=capacity,
            updateDomains=5,
            upgradeSeconds=30,
            healthWarmupSeconds=10,
            image={"publisher": JAMMY["publisher"], "offer": JAMMY["offer"], "sku": JAMMY["sku"]}
            | {"version": JAMMY_VERSIONS[0]},
        )
        dry_run = self.random.random() < 0.1
        on_failure = self.random.choice(("Halt", "Rollback"))
        rollout = Rollout(
            index, f"r{index}", scale_set, arm_id, subscription, capacity, dry_run, on_failure, time.time()
        )
        document = {
            "apiVersion": "scaleset.dev/v1alpha1",
            "kind": "ScaleSetImage",
            "metadata": {"name": rollout.name, "namespace": self.namespace},
            "spec": {
                "scaleSet": {"subscriptionId": subscription, "resourceGroup": RESOURCE_GROUP, "name": scale_set},
                "image": {"platform": {**JAMMY, "version": JAMMY_VERSIONS[-1]}},
                "dryRun": dry_run,
                "rollout": {
                    "strategy": "UpdateDomain",
                    "pauseBetweenBatches": "0s",
                    "healthCheck": {"mode": "Auto", "timeout": "20s"},
                    "onFailure": on_failure,
                },
            },
        }
        self._kubectl("apply", "-f", str(write_manifest(self.folder, document)), attempts=30)
        self.rollouts.append(rollout)
        self.note(f"rollout {rollout.name} on {scale_set} ({capacity} instances, dryRun={dry_run}, {on_failure})")

    def _kubectl(self, *args: str, attempts: int = 1) -> subprocess.CompletedProcess[str]:
        """kubectl, retried through an apiserver restart (a person would retry too); never raises."""
        done = self.kubectl.run(*args, check=False, timeout=20)
        for _ in range(attempts - 1):
            if done.returncode == 0:
                break
            time.sleep(0.5)
            done = self.kubectl.run(*args, check=False, timeout=20)
        return done

    def _documents(self) -> dict[str, dict[str, Any]] | None:
        done = self.kubectl.run("get", "ssi", "-n", self.namespace, "-o", "json", check=False, timeout=20)
        if done.returncode != 0:
            return None
        return {item["metadata"]["name"]: item for item in json.loads(done.stdout)["items"]}

    def _outcome(self, rollout: Rollout, document: Mapping[str, Any]) -> tuple[str, str] | None:
        status = document.get("status") or {}
        if status.get("observedGeneration") != document["metadata"].get("generation"):
            return None
        phase = status.get("phase")
        ready = condition(document, "Ready")
        degraded = condition(document, "Degraded")
        if degraded.get("status") == "True" and degraded.get("reason") in ("AuthFailed", "AzureTokenRefused"):
            return None  # a refused token: the operator requests a new one and carries on
        if degraded.get("status") == "True" and "AzureThrottled" not in str(degraded.get("reason")):
            reason = str(degraded.get("reason") or "")
            if reason in ("ScaleSetNotFound", "ModelChangedOutOfBand", "InvalidSpec"):
                return "degraded", reason
        if rollout.dry_run and phase == "Planned":
            return "planned", str(ready.get("reason") or "")
        if phase == "Succeeded" and ready.get("status") == "True":
            return "ready", str(ready.get("reason") or "")
        if phase == "Halted":
            return "halted", str(ready.get("reason") or status.get("message") or "")
        if phase == "Failed":
            return ("rolled-back" if "RolledBack" in str(ready.get("reason")) else "failed"), str(ready.get("reason"))
        return None

    def _observe(self, documents: Mapping[str, dict[str, Any]]) -> None:
        now = time.time()
        for rollout in self.rollouts:
            document = documents.get(rollout.name)
            if rollout.outcome is not None or document is None:
                continue
            rollout.document = document
            status = document.get("status") or {}
            for item in status.get("conditions") or []:
                if "Throttled" in str(item.get("reason")):
                    self.throttle_seen.add(rollout.name)
            move = (status.get("upgraded"), status.get("phase"), (status.get("currentBatch") or {}).get("index"))
            if move != rollout.last_move:
                rollout.last_move = move
                self._recovered(rollout.name, now)
            outcome = self._outcome(rollout, document)
            if outcome is not None:
                rollout.outcome, rollout.reason = outcome
                rollout.ended = now
                self._recovered(rollout.name, now)
                self.note(f"rollout {rollout.name} ended {rollout.outcome} ({rollout.reason})")
                self._kubectl("delete", "ssi", rollout.name, "-n", self.namespace, "--wait=false")
                if any(kind == "stuck-upgrade" for kind in rollout.faults):
                    self.control.clear_faults()

    def _recovered(self, target: str, now: float) -> None:
        for fault in self.faults:
            if fault.recovered_at is None and fault.target in (target, "*"):
                fault.recovered_at = now

    # --- faults ----------------------------------------------------------------------------------------------------

    def _moving(self) -> list[Rollout]:
        return [r for r in self.rollouts if r.outcome is None and not r.dry_run and "scaleset-deleted" not in r.faults]

    def _inject(self) -> None:
        moving = self._moving()
        if not moving:
            return
        kind = self.random.choices(list(FAULT_WEIGHTS), weights=list(FAULT_WEIGHTS.values()))[0]
        rollout = self.random.choice(moving)
        at = time.time()
        target = rollout.name
        path = f"/virtualMachineScaleSets/{rollout.scale_set}"
        try:
            target = self._apply(kind, rollout, target, path)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            # The chaos' own ARM call failed (faults meant for the operator hit it too): not a fault injected.
            self.note(f"could not inject {kind} on {target}: {error!r}")
            rollout.faults.append(kind)  # it may have reached Azure before the connection failed
            return
        rollout.faults.append(kind)
        self.faults.append(Fault(kind, at, target))
        self.note(f"fault {len(self.faults)}: {kind} on {target}")

    def _apply(self, kind: str, rollout: Rollout, target: str, path: str) -> str:
        """Does the fault; returns its target (the rollout, or ``*`` for every rollout)."""
        if kind == "operator-kill":
            target = "*"
            self.operator.kill()
            self.operator = self.operators.start("chaos", args=("--namespace", self.namespace))
        elif kind == "apiserver-restart":
            target = "*"
            restart_apiserver(self.control_plane, self.kubectl)
        elif kind == "throttle-storm":
            retry_after = self.random.choice((60, 300, 600, 1200))
            self.control.inject_fault(
                kind="throttle", match={"path": path}, count=self.random.randint(2, 4), retryAfter=retry_after
            )
        elif kind == "server-error":
            status = self.random.choice((500, 502, 503))
            self.control.inject_fault(
                kind="error", match={"path": path}, count=self.random.randint(1, 4), status=status
            )
        elif kind == "connection-reset":
            self.control.inject_fault(kind="reset", match={"path": path}, count=self.random.randint(1, 4))
        elif kind in ("slow-upgrade", "stuck-upgrade", "fail-upgrade", "unhealthy"):
            instances = [str(i) for i in self.random.sample(range(rollout.capacity), k=2)]
            body: dict[str, Any] = {"match": {"path": path}, "instanceIds": instances}
            if kind == "slow-upgrade":
                body |= {"kind": "slow", "seconds": self.random.choice((120, 300, 480))}
            else:
                body["kind"] = {"stuck-upgrade": "stuck", "fail-upgrade": "fail-upgrade", "unhealthy": "unhealthy"}[
                    kind
                ]
            self.control.inject_fault(**body)
        elif kind == "token-revoked":
            target = "*"
            self.control.revoke_tokens()
        elif kind == "model-edit":
            rollout.chaos_writes += 1
            self._arm(rollout, "PATCH", _model_patch(OUT_OF_BAND))
        elif kind == "scaleset-deleted":
            self._arm(rollout, "DELETE", None)
        elif kind in ("scale-out", "scale-in"):
            rollout.capacity = max(2, rollout.capacity + (3 if kind == "scale-out" else -2))
            rollout.chaos_writes += 1
            self._arm(rollout, "PATCH", {"sku": {"capacity": rollout.capacity}})
        return target

    def _arm(self, rollout: Rollout, method: str, body: Any) -> None:
        """A person (or another tool) writing to the scale set behind the operator's back."""
        url = (
            f"{self.arm_url}/subscriptions/{rollout.subscription}/resourceGroups/{RESOURCE_GROUP}/providers/"
            f"Microsoft.Compute/virtualMachineScaleSets/{rollout.scale_set}?api-version={API_VERSION}"
        )
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.arm_token()}", "Content-Type": "application/json"},
        )
        context = ssl.create_default_context(cafile=self.ca_file)
        for attempt in range(20):
            try:
                with urllib.request.urlopen(request, timeout=20, context=context):
                    return
            except urllib.error.HTTPError as error:
                if error.code == 404 and method != "DELETE":
                    return  # deleted meanwhile (by an earlier fault): nothing to change
                # Faults injected for the operator hit this client too when it comes first: retry like az does.
                if error.code not in (409, 429, 500, 502, 503) or attempt == 19:
                    raise
            except (urllib.error.URLError, OSError, http.client.HTTPException):
                if attempt == 19:
                    raise
            time.sleep(0.5)

    def note(self, line: str) -> None:
        self.log.append(f"{time.monotonic() - self.started:8.2f} {line}")

    # --- the run ---------------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Inject until the targets are met (or the deadline passes), then stop injecting, clear the faults and give
        the rollouts still going up to ``DRAIN_SECONDS`` to end; what has not ended by then is lost."""
        next_fault = time.monotonic() + 2.0
        draining_since: float | None = None
        while True:
            now = time.monotonic()
            want_more = len(self.rollouts) < self.rollout_target or len(self.faults) < self.fault_target
            if draining_since is None and (not want_more or now > self.deadline):
                draining_since = now
                self.control.clear_faults()
                self.note(f"draining after {len(self.faults)} faults and {len(self.rollouts)} rollouts")
            documents = self._documents()
            if documents is not None:
                self._observe(documents)
            active = [r for r in self.rollouts if r.outcome is None]
            if draining_since is not None:
                if not active or now - draining_since > DRAIN_SECONDS:
                    break
            elif len(active) < self.lanes:
                self._start_rollout()
                continue
            elif now >= next_fault:
                self._inject()
                next_fault = time.monotonic() + self.random.uniform(0.3, 1.5)
            time.sleep(0.2)
        self.control.clear_faults()

    # --- the verdict -----------------------------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Every invariant violation, each a sentence naming the rollout and what happened."""
        violations: list[str] = []
        stats = {key.lower(): value for key, value in self.control.stats()["scaleSets"].items()}
        for rollout in self.rollouts:
            entry = stats.get(rollout.scale_set_id.lower())
            if entry is not None:
                if entry["maxConcurrentDomains"] > 1:
                    violations.append(f"{rollout.name}: {entry['maxConcurrentDomains']} domains upgrading at once")
                if entry["doubleUpgrades"] > 0:
                    violations.append(f"{rollout.name}: {entry['doubleUpgrades']} instances upgraded twice")
            if rollout.outcome is None:
                continue
            allowed = {"ready", "planned"} if not set(rollout.faults) & ENDED_BY_FAULT else None
            if rollout.outcome == "failed":
                violations.append(f"{rollout.name}: ended Failed without rolling back ({rollout.reason})")
            elif allowed is not None and rollout.outcome not in allowed:
                violations.append(
                    f"{rollout.name}: ended {rollout.outcome} ({rollout.reason}) after only {rollout.faults}"
                )
            elif rollout.outcome == "halted" and not rollout.reason:
                violations.append(f"{rollout.name}: halted without a reason")
            audit = self.control.audit(scaleSet=rollout.scale_set_id)
            violations.extend(self._audit_violations(rollout, audit))
        return violations

    def _audit_violations(self, rollout: Rollout, audit: list[dict[str, Any]]) -> list[str]:
        violations: list[str] = []
        model_images = [e.get("image") for e in audit if e.get("kind") == "model" and e.get("profileChanged")]
        chaos_edits = 1 if "model-edit" in rollout.faults else 0
        self.checked["model_writes"] += len(model_images)
        foreign = [image for image in model_images if image not in (TARGET, INITIAL)]
        if len(foreign) > chaos_edits:
            violations.append(f"{rollout.name}: model written with {foreign}")
        writes = [
            e
            for e in audit
            if e.get("kind") == "request" and e.get("method") != "GET" and int(e.get("status") or 0) < 400
        ]
        chaos = rollout.chaos_writes + (1 if "scaleset-deleted" in rollout.faults else 0)
        if rollout.dry_run and len(writes) > chaos:
            violations.append(f"{rollout.name}: dryRun, yet {len(writes) - chaos} writes")
        violations.extend(batch_violations(rollout.name, audit, self.checked))
        return violations

    def results(self, violations: list[str]) -> dict[str, Any]:
        recoveries = [f.recovery for f in self.faults if f.recovery is not None]
        by_kind: dict[str, list[float]] = defaultdict(list)
        for fault in self.faults:
            if fault.recovery is not None:
                by_kind[fault.kind].append(fault.recovery)
        counts = Counter(f.kind for f in self.faults)
        lost = [r.name for r in self.rollouts if r.outcome is None]
        return {
            "seed": self.seed,
            "faults": len(self.faults),
            "rollouts": len(self.rollouts),
            "violations": len(violations),
            "violation_list": violations,
            "lost": len(lost),
            "lost_rollouts": lost,
            "recovery_s_median": round(statistics.median(recoveries), 2) if recoveries else None,
            "recovery_s_max": round(max(recoveries), 2) if recoveries else None,
            "outcomes": dict(Counter(str(r.outcome) for r in self.rollouts)),
            "throttle_reported": sorted(self.throttle_seen),
            "checked": dict(self.checked),
            "by_kind": {
                kind: {
                    "trials": counts[kind],
                    "recovered": len(by_kind[kind]),
                    "recovery_s_median": round(statistics.median(by_kind[kind]), 2) if by_kind[kind] else None,
                    "recovery_s_max": round(max(by_kind[kind]), 2) if by_kind[kind] else None,
                }
                for kind in FAULT_WEIGHTS
            },
            "duration_s": round(time.monotonic() - self.started, 1),
        }


def batch_violations(name: str, audit: list[dict[str, Any]], checked: Counter[str]) -> list[str]:
    """No forward batch starts while an instance upgraded earlier in the rollout is not yet healthy (the limit is
    0 unhealthy instances); rollback batches (the model back on the initial image) are exempt by design."""
    provisioning: dict[str, str] = {}
    health: dict[str, str] = {}
    upgraded: set[str] = set()
    model = INITIAL
    violations: list[str] = []
    batch_at: Any = None
    for entry in audit:
        kind = entry.get("kind")
        if kind == "model" and entry.get("profileChanged"):
            model = str(entry.get("image"))
            upgraded.clear()
        if kind != "transition":
            continue
        instance, what, value = str(entry["instanceId"]), entry["field"], entry["to"]
        if what == "provisioning" and value == "Updating" and model == TARGET:
            # The instances of one manualupgrade start at the same simulated moment: one batch.
            if entry.get("simTime") != batch_at:
                batch_at = entry.get("simTime")
                checked["batches"] += 1
                unready = sorted(
                    i for i in upgraded if provisioning.get(i) != "Succeeded" or health.get(i) not in ("Healthy", None)
                )
                if unready:
                    violations.append(f"{name}: a batch started while {unready} were not healthy")
            upgraded.add(instance)
        if what == "provisioning" and str(value).startswith("Delet"):
            upgraded.discard(instance)  # scaled in: gone, not unhealthy
        if what == "provisioning":
            provisioning[instance] = str(value)
        elif what == "health":
            health[instance] = str(value)
    return violations


def _model_patch(image: str) -> dict[str, Any]:
    publisher, offer, sku, version = image.split(":")
    reference = {"publisher": publisher, "offer": offer, "sku": sku, "version": version}
    return {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": reference}}}}
