"""The status document: condition semantics, the headline reason, per-instance and per-domain summaries, a plan
bounded for ``kubectl describe``, and the planner's memory surviving a write and a read (a restarted operator
resumes from what the last pass wrote)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scaleset_image_operator.core.images import Image, ImageKind
from scaleset_image_operator.core.observation import Health, InstanceView, ScaleSetView
from scaleset_image_operator.core.planner import Batch, Decision, InFlight, Outcome, Phase, Progress
from scaleset_image_operator.core.spec import HealthMode, Strategy
from scaleset_image_operator.core.status import (
    PLAN_IDS_SHOWN,
    ConditionUpdate,
    build_status,
    counts,
    domains,
    headline_reason,
    instance_state,
    merge_conditions,
    parse_rfc3339,
    problem_status,
    progress_from_status,
    rfc3339,
    transient_status,
)

JAMMY = ("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2")
OLD = Image.platform(*JAMMY, "22.04.202409110")
NEW = Image.platform(*JAMMY, "22.04.202411010")
GALLERY = Image.of(
    ImageKind.ID,
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/galleries/g"
    "/images/web/versions/1.4.0",
)
SHARED = Image.of(ImageKind.SHARED_GALLERY, "/SharedGalleries/abc-SHAREDGALLERY/Images/web/Versions/1.4.0")
VHD = Image.of(ImageKind.URI, "https://account.blob.core.windows.net/vhds/custom.vhd")
T0 = 1_735_689_600.0  # 2025-01-01T00:00:00Z
OP = "https://management.azure.com/subscriptions/s/providers/Microsoft.Compute/locations/eastus/operations/op-1"


def an_instance(
    instance_id: str = "0",
    *,
    image: Image | None = NEW,
    update_domain: int | None = None,
    fault_domain: int | None = None,
    zone: str | None = None,
    provisioning: str = "Succeeded",
    power: str = "running",
    health: Health | None = None,
) -> InstanceView:
    """A running, provisioned instance on NEW in update domain ``id % 5`` unless told otherwise."""
    number = int(instance_id)
    return InstanceView(
        instance_id=instance_id,
        update_domain=number % 5 if update_domain is None else update_domain,
        fault_domain=number % 3 if fault_domain is None else fault_domain,
        zone=zone,
        latest_model_applied=image is NEW,
        image=image,
        provisioning_state=provisioning,
        power_state=power,
        health=health,
    )


def a_scale_set(*instances: InstanceView, model: Image | None = NEW) -> ScaleSetView:
    return ScaleSetView(
        id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-web",
        name="vmss-web",
        location="eastus",
        etag='"7"',
        upgrade_mode="Manual",
        orchestration_mode="Uniform",
        model_image=model,
        capacity=len(instances),
        provisioning_state="Succeeded",
        instances=instances,
    )


BATCHES = (Batch(0, (0,), ("0", "5")), Batch(1, (1,), ("1", "6")), Batch(2, (2,), ("2", "7")))


def a_decision(
    progress: Progress | None = None,
    *,
    phase: Phase = Phase.ROLLING_OUT,
    reason: str = "UpgradingDomain",
    message: str = "upgrading UpdateDomain 1: instances 1, 6",
    batches: tuple[Batch, ...] = BATCHES,
    current: Batch | None = None,
    degraded: str = "",
) -> Decision:
    """A decision as the planner makes it: the current batch is the in-flight one unless told otherwise."""
    progress = progress or Progress(target=NEW, previous=OLD, started_at=T0)
    if current is None and progress.in_flight is not None:
        current = next((b for b in batches if b.index == progress.in_flight.batch_index), None)
    return Decision(None, progress, phase, reason, message, progress.target or NEW, batches, current, degraded)


def status_of(decision: Decision, *instances: InstanceView, previous: dict[str, Any] | None = None, **kw: Any) -> Any:
    observed = a_scale_set(*(instances or (an_instance("0"),)))
    return build_status(
        decision,
        observed,
        strategy=kw.get("strategy", Strategy.UPDATE_DOMAIN),
        mode=kw.get("mode", HealthMode.AUTO),
        generation=kw.get("generation", 3),
        now=kw.get("now", T0 + 600),
        previous=previous,
    )


def by_type(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


# -- conditions ------------------------------------------------------------------------------------------------


def a_condition(type_: str = "Ready", status: str = "False", **changes: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": "UpgradingDomain",
        "message": "not ready: upgrading",
        "lastTransitionTime": rfc3339(T0),
        "observedGeneration": 2,
    } | changes


def test_a_new_condition_starts_its_transition_now_at_the_given_generation() -> None:
    [condition] = merge_conditions([], [ConditionUpdate("Ready", False, "Pending", "not ready")], 3, T0 + 60)
    assert condition == {
        "type": "Ready",
        "status": "False",
        "reason": "Pending",
        "message": "not ready",
        "lastTransitionTime": "2025-01-01T00:01:00Z",
        "observedGeneration": 3,
    }


def test_a_condition_whose_status_stays_keeps_its_transition_time_but_takes_the_new_reason() -> None:
    [condition] = merge_conditions(
        [a_condition()], [ConditionUpdate("Ready", False, "WaitingForHealth", "not ready: waiting")], 3, T0 + 600
    )
    assert condition["lastTransitionTime"] == rfc3339(T0)
    assert (condition["reason"], condition["message"], condition["observedGeneration"]) == (
        "WaitingForHealth",
        "not ready: waiting",
        3,
    )


@pytest.mark.parametrize(("before", "after"), [("False", True), ("True", False), ("Unknown", True), ("Unknown", False)])
def test_a_condition_whose_status_flips_moves_its_transition_time(before: str, after: bool) -> None:
    [condition] = merge_conditions(
        [a_condition(status=before)], [ConditionUpdate("Ready", after, "R", "m")], 3, T0 + 600
    )
    assert condition["lastTransitionTime"] == rfc3339(T0 + 600)
    assert condition["status"] == ("True" if after else "False")


def test_a_condition_without_a_transition_time_gets_one() -> None:
    old = a_condition()
    del old["lastTransitionTime"]
    [condition] = merge_conditions([old], [ConditionUpdate("Ready", False, "R", "m")], 3, T0 + 600)
    assert condition["lastTransitionTime"] == rfc3339(T0 + 600)


def test_each_condition_is_matched_by_type_not_by_position() -> None:
    existing = [a_condition("Degraded", "True"), a_condition("Ready", "False")]
    merged = merge_conditions(
        existing, [ConditionUpdate("Ready", True, "R", "m"), ConditionUpdate("Degraded", True, "D", "m")], 3, T0 + 600
    )
    assert [(c["type"], c["lastTransitionTime"]) for c in merged] == [
        ("Ready", rfc3339(T0 + 600)),
        ("Degraded", rfc3339(T0)),
    ]


def test_garbage_in_the_old_conditions_is_ignored() -> None:
    merged = merge_conditions(["Ready", None, {"status": "True"}], [ConditionUpdate("Ready", True, "R", "m")], 1, T0)
    assert merged[0]["lastTransitionTime"] == rfc3339(T0)


def test_a_condition_message_is_cut_to_what_the_api_server_accepts() -> None:
    [condition] = merge_conditions([], [ConditionUpdate("Degraded", True, "R", "x" * 40_000)], 1, T0)
    assert len(condition["message"]) == 32768


@pytest.mark.parametrize(
    ("decision", "ready", "progressing", "degraded"),
    [
        pytest.param(
            a_decision(phase=Phase.SUCCEEDED, reason="RolloutComplete", message="all 10 instances run it"),
            ("True", "RolloutComplete", "all 10 instances run it"),
            ("False", "RolloutComplete"),
            ("False", "AsExpected", "no problems"),
            id="succeeded",
        ),
        pytest.param(
            a_decision(),
            ("False", "UpgradingDomain", "not ready: upgrading UpdateDomain 1: instances 1, 6"),
            ("True", "UpgradingDomain"),
            ("False", "AsExpected", "no problems"),
            id="rolling-out",
        ),
        pytest.param(
            a_decision(phase=Phase.UPDATING_MODEL, reason="UpdatingModel", message="changing the model"),
            ("False", "UpdatingModel", "not ready: changing the model"),
            ("True", "UpdatingModel"),
            ("False", "AsExpected", "no problems"),
            id="updating-model",
        ),
        pytest.param(
            a_decision(
                phase=Phase.ROLLING_BACK, reason="RollingBack", message="rolling back", degraded="UpgradeFailed"
            ),
            ("False", "RollingBack", "not ready: rolling back"),
            ("True", "RollingBack"),
            ("True", "UpgradeFailed", "rolling back"),
            id="rolling-back",
        ),
        pytest.param(
            a_decision(phase=Phase.HALTED, reason="UnhealthyInstances", message="3 bad", degraded="UnhealthyInstances"),
            ("False", "UnhealthyInstances", "not ready: 3 bad"),
            ("False", "Stopped"),
            ("True", "UnhealthyInstances", "3 bad"),
            id="halted",
        ),
        pytest.param(
            a_decision(phase=Phase.PAUSED, reason="AwaitingApproval", message="waiting for approval"),
            ("False", "AwaitingApproval", "not ready: waiting for approval"),
            ("False", "AwaitingApproval"),
            ("False", "AsExpected", "no problems"),
            id="awaiting-approval",
        ),
        pytest.param(
            a_decision(phase=Phase.PLANNED, reason="DryRun", message="dry run: 3 batches"),
            ("False", "DryRun", "not ready: dry run: 3 batches"),
            ("False", "DryRun"),
            ("False", "AsExpected", "no problems"),
            id="dry-run",
        ),
        pytest.param(
            a_decision(
                phase=Phase.SUCCEEDED, reason="UnhealthyInstances", message="1 unhealthy", degraded="UnhealthyInstances"
            ),
            ("False", "UnhealthyInstances", "not ready: 1 unhealthy"),
            ("False", "RolloutComplete"),
            ("True", "UnhealthyInstances", "1 unhealthy"),
            id="succeeded-within-tolerance",
        ),
        pytest.param(
            a_decision(phase=Phase.FAILED, reason="RolledBack", message="rolled back", degraded="RolledBack"),
            ("False", "RolledBack", "not ready: rolled back"),
            ("False", "Stopped"),
            ("True", "RolledBack", "rolled back"),
            id="rolled-back",
        ),
    ],
)
def test_each_phase_sets_ready_progressing_and_degraded(
    decision: Decision, ready: tuple[str, ...], progressing: tuple[str, ...], degraded: tuple[str, ...]
) -> None:
    conditions = by_type(status_of(decision))
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"], conditions["Ready"]["message"]) == ready
    assert (conditions["Progressing"]["status"], conditions["Progressing"]["reason"]) == progressing
    assert (
        conditions["Degraded"]["status"],
        conditions["Degraded"]["reason"],
        conditions["Degraded"]["message"],
    ) == degraded
    assert {c["observedGeneration"] for c in conditions.values()} == {3}


@pytest.mark.parametrize(
    ("decision", "reason"),
    [
        pytest.param(a_decision(), "UpgradingDomain", id="rolling-out"),
        pytest.param(a_decision(phase=Phase.PAUSED, reason="AwaitingApproval"), "AwaitingApproval", id="approval"),
        pytest.param(a_decision(phase=Phase.SUCCEEDED, reason="RolloutComplete"), "RolloutComplete", id="done"),
        pytest.param(a_decision(phase=Phase.PLANNED, reason="DryRun"), "DryRun", id="dry-run"),
        pytest.param(
            a_decision(phase=Phase.HALTED, reason="UnhealthyInstances", degraded="UnhealthyInstances"),
            "UnhealthyInstances",
            id="halted",
        ),
        pytest.param(
            a_decision(phase=Phase.ROLLING_BACK, reason="RollingBack", degraded="UpgradeFailed"),
            "UpgradeFailed",
            id="rolling-back-after-a-failure",
        ),
    ],
)
def test_the_status_reason_is_degradeds_while_it_is_true_else_progressings(decision: Decision, reason: str) -> None:
    status = status_of(decision)
    assert status["reason"] == reason == headline_reason(status["conditions"])


def test_a_problem_and_a_passing_azure_problem_put_their_own_reason_in_the_status_reason() -> None:
    rolling = status_of(a_decision())
    refused = problem_status("ScaleSetNotFound", "vmss-web: not found", generation=4, now=T0, previous=rolling)
    throttled = transient_status("AzureThrottled", "retry in 30s", generation=3, now=T0, previous=rolling)
    assert (rolling["reason"], refused["reason"], throttled["reason"]) == (
        "UpgradingDomain",
        "ScaleSetNotFound",
        "AzureThrottled",
    )


def test_conditions_without_degraded_or_progressing_give_no_reason() -> None:
    assert headline_reason([]) == ""
    assert headline_reason([{"type": "Degraded", "status": "False", "reason": "AsExpected"}]) == ""


def test_ready_keeps_its_transition_time_across_passes_that_do_not_flip_it() -> None:
    first = status_of(a_decision(), now=T0)
    second = status_of(a_decision(reason="WaitingForHealth", message="waiting"), previous=first, now=T0 + 300)
    done = status_of(a_decision(phase=Phase.SUCCEEDED, reason="RolloutComplete"), previous=second, now=T0 + 900)
    assert by_type(second)["Ready"]["lastTransitionTime"] == rfc3339(T0)
    assert by_type(done)["Ready"]["lastTransitionTime"] == rfc3339(T0 + 900)
    assert by_type(done)["Degraded"]["lastTransitionTime"] == rfc3339(T0)


# -- the document ----------------------------------------------------------------------------------------------


def test_the_document_carries_every_field_of_the_contract() -> None:
    progress = Progress(
        target=NEW, previous=OLD, model_written=True, in_flight=InFlight(1, ("1", "6"), T0 + 120, OP), started_at=T0
    )
    status = status_of(
        a_decision(progress), an_instance("0"), an_instance("1", image=OLD, provisioning="Updating"), generation=4
    )
    assert status["observedGeneration"] == 4
    assert status["phase"] == "RollingOut"
    assert (status["targetImage"], status["modelImage"], status["previousImage"]) == (NEW.key(), NEW.key(), OLD.key())
    assert status["instances"] == {"total": 2, "upgraded": 1, "upgrading": 1, "pending": 0, "failed": 0, "unhealthy": 0}
    assert status["domains"] == [
        {"domain": 0, "instances": 1, "upgraded": 1, "state": "Succeeded"},
        {"domain": 1, "instances": 1, "upgraded": 0, "state": "Upgrading"},
    ]
    assert status["plan"] == [
        {"index": 0, "domains": [0], "instances": 2, "instanceIds": ["0", "5"]},
        {"index": 1, "domains": [1], "instances": 2, "instanceIds": ["1", "6"]},
        {"index": 2, "domains": [2], "instances": 2, "instanceIds": ["2", "7"]},
    ]
    assert status["currentBatch"] == {
        "index": 1,
        "domains": [1],
        "instances": 2,
        "instanceIds": ["1", "6"],
        "operation": OP,
        "startedAt": "2025-01-01T00:02:00.000000Z",
    }
    assert (status["startedAt"], status["completedAt"]) == ("2025-01-01T00:00:00Z", None)
    assert (status["reason"], status["message"]) == ("UpgradingDomain", "upgrading UpdateDomain 1: instances 1, 6")


def test_the_target_is_the_decisions_until_a_rollout_remembers_one() -> None:
    decision = Decision(None, Progress(), Phase.PENDING, "Pending", "starting", NEW)
    assert status_of(decision)["targetImage"] == NEW.key()
    assert status_of(decision, an_instance("0", image=None))["previousImage"] == ""


def test_a_scale_set_without_a_model_image_shows_an_empty_one() -> None:
    status = build_status(
        a_decision(), a_scale_set(model=None), strategy=Strategy.BATCH, mode=HealthMode.AUTO, generation=1, now=T0
    )
    assert (status["modelImage"], status["instances"]["total"], status["domains"]) == ("", 0, [])


def test_a_batch_waiting_for_approval_is_current_without_an_operation() -> None:
    status = status_of(a_decision(phase=Phase.PAUSED, reason="AwaitingApproval", current=BATCHES[2]))
    assert status["currentBatch"] == {"index": 2, "domains": [2], "instances": 2, "instanceIds": ["2", "7"]}
    assert progress_from_status(status).in_flight is None


# -- a large scale set -----------------------------------------------------------------------------------------

THOUSAND = tuple(an_instance(str(n), image=NEW if n % 5 == 0 else OLD) for n in range(1000))
"""1,000 instances in 5 update domains; update domain 0 is upgraded."""
THOUSAND_BATCHES = tuple(Batch(d, (d,), tuple(str(n) for n in range(d, 1000, 5))) for d in range(5))


def test_the_plan_of_a_thousand_instances_shows_each_batchs_count_and_only_its_first_ten_ids() -> None:
    status = status_of(a_decision(batches=THOUSAND_BATCHES, current=THOUSAND_BATCHES[1]), *THOUSAND)
    assert PLAN_IDS_SHOWN == 10
    assert [(b["index"], b["domains"], b["instances"]) for b in status["plan"]] == [(d, [d], 200) for d in range(5)]
    assert status["plan"][1]["instanceIds"] == ["1", "6", "11", "16", "21", "26", "31", "36", "41", "46"]
    assert status["currentBatch"] == {
        "index": 1,
        "domains": [1],
        "instances": 200,
        "instanceIds": status["plan"][1]["instanceIds"],
    }


def test_the_batch_in_flight_keeps_every_instance_it_upgrades_for_a_restarted_operator_to_await() -> None:
    ids = THOUSAND_BATCHES[1].instance_ids
    progress = Progress(target=NEW, previous=OLD, in_flight=InFlight(1, ids, T0 + 60, OP), started_at=T0)
    status = status_of(a_decision(progress, batches=THOUSAND_BATCHES), *THOUSAND)
    assert (status["currentBatch"]["instances"], len(status["currentBatch"]["instanceIds"])) == (200, 200)
    assert progress_from_status(status) == progress


def test_the_status_of_a_thousand_instances_stays_a_few_kilobytes() -> None:
    # Measured: 11.9 KB (1,327 YAML lines) when the plan listed every instance id, 6.4 KB (384 lines) with ten per
    # batch while a batch of 200 is in flight, 2.4 KB (144 lines) once it is done.
    ids = THOUSAND_BATCHES[1].instance_ids
    progress = Progress(target=NEW, previous=OLD, in_flight=InFlight(1, ids, T0 + 60, OP), started_at=T0)
    in_flight = status_of(a_decision(progress, batches=THOUSAND_BATCHES), *THOUSAND)
    done = status_of(a_decision(phase=Phase.SUCCEEDED, reason="RolloutComplete", batches=THOUSAND_BATCHES), *THOUSAND)
    assert len(json.dumps(in_flight)) < 8_000
    assert len(json.dumps(done)) < 3_000


# -- instance and domain summaries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance", "mode", "state"),
    [
        pytest.param(an_instance(provisioning="Failed"), HealthMode.AUTO, "failed", id="failed"),
        pytest.param(an_instance(image=OLD, provisioning="Failed"), HealthMode.AUTO, "failed", id="failed-on-old"),
        pytest.param(an_instance(image=OLD, provisioning="Updating"), HealthMode.AUTO, "upgrading", id="updating"),
        pytest.param(an_instance(provisioning="Creating"), HealthMode.AUTO, "upgrading", id="creating"),
        pytest.param(an_instance(image=OLD), HealthMode.AUTO, "pending", id="old-image"),
        pytest.param(an_instance(image=None), HealthMode.AUTO, "pending", id="no-image"),
        pytest.param(
            an_instance(image=OLD, health=Health.UNHEALTHY), HealthMode.AUTO, "unhealthy", id="old-image-unhealthy"
        ),
        pytest.param(an_instance(image=OLD, health=Health.HEALTHY), HealthMode.AUTO, "pending", id="old-healthy"),
        pytest.param(an_instance(), HealthMode.AUTO, "upgraded", id="new-no-signal"),
        pytest.param(an_instance(health=Health.HEALTHY), HealthMode.AUTO, "upgraded", id="new-healthy"),
        pytest.param(an_instance(health=Health.UNHEALTHY), HealthMode.AUTO, "unhealthy", id="new-unhealthy"),
        pytest.param(an_instance(health=Health.INITIALIZING), HealthMode.AUTO, "upgrading", id="new-initializing"),
        pytest.param(an_instance(health=Health.UNKNOWN), HealthMode.AUTO, "upgrading", id="new-unknown"),
        pytest.param(an_instance(power="starting"), HealthMode.AUTO, "upgrading", id="new-starting"),
        pytest.param(an_instance(power="deallocated"), HealthMode.PROVISIONING_STATE, "upgrading", id="deallocated"),
        pytest.param(an_instance(), HealthMode.APPLICATION_HEALTH, "upgrading", id="signal-required-but-absent"),
        pytest.param(
            an_instance(health=Health.UNHEALTHY), HealthMode.PROVISIONING_STATE, "upgraded", id="signal-ignored"
        ),
        pytest.param(an_instance(health=Health.UNHEALTHY), HealthMode.NONE, "upgraded", id="no-health-check"),
        pytest.param(an_instance(power="stopped"), HealthMode.NONE, "upgraded", id="no-check-not-even-power"),
    ],
)
def test_each_instance_is_in_one_state(instance: InstanceView, mode: HealthMode, state: str) -> None:
    assert instance_state(instance, NEW, mode) == state


def test_counts_tally_every_instance_once() -> None:
    instances = [
        an_instance("0"),
        an_instance("1"),
        an_instance("2", image=OLD),
        an_instance("3", image=OLD, provisioning="Updating"),
        an_instance("4", provisioning="Failed"),
        an_instance("5", health=Health.UNHEALTHY),
    ]
    assert counts(instances, NEW, HealthMode.AUTO) == {
        "total": 6,
        "upgraded": 2,
        "pending": 1,
        "upgrading": 1,
        "failed": 1,
        "unhealthy": 1,
    }


@pytest.mark.parametrize(
    ("instances", "state"),
    [
        pytest.param([an_instance("0"), an_instance("5")], "Succeeded", id="all-upgraded"),
        pytest.param([an_instance("0"), an_instance("5", image=OLD, provisioning="Updating")], "Upgrading", id="busy"),
        pytest.param([an_instance("0", health=Health.INITIALIZING)], "Upgrading", id="warming-up"),
        pytest.param([an_instance("0", image=OLD), an_instance("5", image=OLD)], "Pending", id="not-started"),
        pytest.param([an_instance("0"), an_instance("5", image=OLD)], "Pending", id="half-way"),
        pytest.param([an_instance("0"), an_instance("5", provisioning="Failed")], "Failed", id="one-failed"),
        pytest.param(
            [an_instance("0"), an_instance("5", health=Health.UNHEALTHY)], "Failed", id="upgraded-one-unhealthy"
        ),
        pytest.param(
            [an_instance("0", health=Health.UNHEALTHY), an_instance("5", health=Health.UNHEALTHY)],
            "Failed",
            id="every-upgraded-instance-unhealthy",
        ),
        pytest.param([an_instance("0", health=Health.UNHEALTHY)], "Failed", id="single-upgraded-instance-unhealthy"),
    ],
)
def test_a_domain_state_summarises_its_instances(instances: list[InstanceView], state: str) -> None:
    [summary] = domains(instances, NEW, Strategy.UPDATE_DOMAIN, HealthMode.AUTO)
    assert summary["state"] == state


def test_the_instances_of_the_batch_in_flight_are_upgrading_from_its_start_until_upgraded() -> None:
    instances = [an_instance(n, image=image, update_domain=0) for n, image in (("0", OLD), ("1", OLD), ("2", NEW))]
    in_flight = ("0", "2")

    assert [instance_state(i, NEW, HealthMode.AUTO, in_flight) for i in instances] == [
        "upgrading",  # started, still on the old image: the operator only reads the operation while it runs
        "pending",  # not in the batch
        "upgraded",  # in the batch and done
    ]
    assert counts(instances, NEW, HealthMode.AUTO, in_flight)["upgrading"] == 1
    [summary] = domains(instances, NEW, Strategy.UPDATE_DOMAIN, HealthMode.AUTO, in_flight)
    assert summary["state"] == "Upgrading"


def test_update_domains_are_listed_in_numeric_order() -> None:
    instances = [an_instance(str(n), update_domain=n) for n in (10, 2, 0, 1)]
    assert [d["domain"] for d in domains(instances, NEW, Strategy.UPDATE_DOMAIN, HealthMode.AUTO)] == [0, 1, 2, 10]


def test_the_batch_strategy_is_summarised_by_update_domain() -> None:
    instances = [an_instance(str(n)) for n in range(7)]
    summary = domains(instances, NEW, Strategy.BATCH, HealthMode.AUTO)
    assert [(d["domain"], d["instances"]) for d in summary] == [(0, 2), (1, 2), (2, 1), (3, 1), (4, 1)]


def test_fault_domains_and_zones_group_by_their_own_domain() -> None:
    instances = [an_instance(str(n), zone=str(n % 3 + 1)) for n in range(6)]
    assert [(d["domain"], d["instances"]) for d in domains(instances, NEW, Strategy.ZONE, HealthMode.AUTO)] == [
        ("1", 2),
        ("2", 2),
        ("3", 2),
    ]
    assert [d["domain"] for d in domains(instances, NEW, Strategy.FAULT_DOMAIN, HealthMode.AUTO)] == [0, 1, 2]


def test_instances_without_a_domain_are_one_row_with_an_empty_name() -> None:
    summary = domains([an_instance("0"), an_instance("1")], NEW, Strategy.ZONE, HealthMode.AUTO)
    assert summary == [{"domain": "", "instances": 2, "upgraded": 2, "state": "Succeeded"}]


# -- the planner's memory round trip ---------------------------------------------------------------------------

ROUND_TRIPS = [
    pytest.param(Progress(target=NEW, previous=OLD, started_at=T0), id="just-started"),
    pytest.param(Progress(target=NEW, previous=None, started_at=T0), id="nothing-to-roll-back-to"),
    pytest.param(Progress(target=NEW, previous=OLD, model_written=True, started_at=T0), id="model-written"),
    pytest.param(
        Progress(
            target=NEW,
            previous=OLD,
            model_written=True,
            in_flight=InFlight(1, ("1", "6"), T0 + 60, OP),
            batches_started=2,
            started_at=T0,
        ),
        id="operation-in-flight",
    ),
    pytest.param(
        Progress(
            target=NEW,
            previous=OLD,
            model_written=True,
            in_flight=InFlight(2, ("2",), T0 + 60),
            batches_started=3,
            started_at=T0,
        ),
        id="waiting-for-health-of-part-of-a-batch",
    ),
    pytest.param(
        Progress(
            target=NEW,
            previous=OLD,
            model_written=True,
            in_flight=InFlight(7, ("9",), T0 + 60, OP),
            started_at=T0,
        ),
        id="in-flight-batch-not-in-the-plan",
    ),
    pytest.param(
        Progress(target=NEW, previous=OLD, model_written=True, pause_until=T0 + 90, batches_started=1, started_at=T0),
        id="pausing",
    ),
    pytest.param(
        Progress(
            target=NEW,
            previous=OLD,
            rolling_back=True,
            failure="UpgradeFailed: batch 1: vmss-web_1 (provisioning failed: OSProvisioningTimedOut)",
            batches_started=2,
            started_at=T0,
        ),
        id="rolling-back",
    ),
    pytest.param(
        Progress(
            target=NEW,
            previous=OLD,
            given_up=("3", "8"),
            retry_failed=True,
            outcome=Outcome(Phase.HALTED, "UnhealthyInstances", "batch 1: vmss-web_1 (unhealthy)", 5),
            started_at=T0,
        ),
        id="halted",
    ),
    pytest.param(
        Progress(
            target=NEW,
            previous=OLD,
            outcome=Outcome(Phase.FAILED, "RolledBack", "rolled back to it", 2),
            started_at=T0,
            completed_at=T0 + 3600,
        ),
        id="rolled-back",
    ),
    pytest.param(Progress(target=GALLERY, previous=SHARED, started_at=T0, completed_at=T0 + 1), id="gallery-images"),
    pytest.param(Progress(target=VHD, previous=VHD, started_at=T0), id="vhd-images"),
    pytest.param(Progress(target=NEW.with_version("latest"), previous=OLD), id="latest"),
]


@pytest.mark.parametrize("progress", ROUND_TRIPS)
def test_the_planners_memory_survives_a_status_write_and_read(progress: Progress) -> None:
    assert progress_from_status(status_of(a_decision(progress))) == progress


@pytest.mark.parametrize("progress", ROUND_TRIPS)
def test_a_pass_that_could_not_plan_forgets_nothing_already_under_way(progress: Progress) -> None:
    written = status_of(a_decision(progress))
    failed = problem_status("ScaleSetNotFound", "vmss-web: not found", generation=4, now=T0 + 900, previous=written)
    assert progress_from_status(failed) == progress


@pytest.mark.parametrize("progress", ROUND_TRIPS)
def test_a_pass_cut_short_by_azure_forgets_nothing_already_under_way(progress: Progress) -> None:
    written = status_of(a_decision(progress))
    throttled = transient_status("AzureThrottled", "retry in 30s", generation=3, now=T0 + 900, previous=written)
    assert progress_from_status(throttled) == progress


def test_an_operation_kept_across_a_retarget_reads_back_without_instance_ids() -> None:
    # After a target change the planner keeps only the operation to await (instance_ids=()); reading back the
    # batch's instance ids instead would make the next pass judge instances that were never upgraded.
    progress = Progress(target=NEW, previous=OLD, in_flight=InFlight(1, (), T0 + 60, OP), started_at=T0 + 100)
    assert progress_from_status(status_of(a_decision(progress))) == progress


def test_a_target_shown_before_the_rollout_began_is_not_read_back_as_remembered() -> None:
    # A pass that stops before the planner adopts a target (StrategyNotApplicable, Flexible orchestration) shows
    # the desired image as targetImage. Read back as the remembered target, it makes the next pass skip
    # ``retarget``, so the model's image is never recorded as previousImage and Rollback has nothing to go to.
    fresh = Progress()
    decision = Decision(None, fresh, Phase.FAILED, "StrategyNotApplicable", "regional", NEW, degraded="Strategy")
    assert progress_from_status(status_of(decision, an_instance("0", image=OLD))) == fresh


def test_rollout_start_is_shown_to_the_second_but_deadlines_are_remembered_exactly() -> None:
    progress = Progress(target=NEW, started_at=T0 + 0.75, pause_until=T0 + 30.4)
    restored = progress_from_status(status_of(a_decision(progress)))
    assert restored.started_at == T0
    assert restored.pause_until == pytest.approx(T0 + 30.4)


@pytest.mark.parametrize("status", [None, {}])
def test_no_status_is_a_fresh_rollout(status: dict[str, Any] | None) -> None:
    assert progress_from_status(status) == Progress()


def test_a_current_batch_with_an_unreadable_start_is_not_in_flight() -> None:
    status = status_of(a_decision(Progress(target=NEW, in_flight=InFlight(1, ("1",), T0, OP))))
    status["currentBatch"]["startedAt"] = "yesterday"
    assert progress_from_status(status).in_flight is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2025-01-01T00:00:00Z", T0),
        ("2025-01-01T01:00:00+01:00", T0),
        ("", None),
        (None, None),
        ("soon", None),
        (5, None),
    ],
)
def test_rfc3339_times_are_read_leniently(text: Any, seconds: float | None) -> None:
    assert parse_rfc3339(text) == seconds


# -- problem and transient status ------------------------------------------------------------------------------


def test_a_problem_marks_the_resource_degraded_and_not_progressing() -> None:
    status = problem_status("InvalidSpec", "spec.rollout.paused: must be true or false", generation=5, now=T0)
    assert (status["phase"], status["observedGeneration"], status["message"]) == (
        "Failed",
        5,
        "spec.rollout.paused: must be true or false",
    )
    assert {t: (c["status"], c["reason"]) for t, c in by_type(status).items()} == {
        "Ready": ("False", "InvalidSpec"),
        "Progressing": ("False", "InvalidSpec"),
        "Degraded": ("True", "InvalidSpec"),
    }


def test_a_problem_may_name_its_own_phase() -> None:
    assert problem_status("AuthFailed", "401", generation=1, now=T0, phase=Phase.HALTED)["phase"] == "Halted"


def test_a_problem_that_persists_keeps_degradeds_transition_time() -> None:
    first = problem_status("AuthFailed", "401", generation=1, now=T0)
    second = problem_status("AuthFailed", "401 again", generation=1, now=T0 + 600, previous=first)
    assert by_type(second)["Degraded"]["lastTransitionTime"] == rfc3339(T0)


def test_a_transient_problem_keeps_phase_and_progress_and_says_why_nothing_moved() -> None:
    written = status_of(a_decision(), generation=3, now=T0)
    status = transient_status("AzureThrottled", "Azure asked to wait 30s", generation=3, now=T0 + 60, previous=written)
    assert {k: v for k, v in status.items() if k not in ("reason", "message", "conditions")} == {
        k: v for k, v in written.items() if k not in ("reason", "message", "conditions")
    }
    assert (status["reason"], status["message"]) == ("AzureThrottled", "Azure asked to wait 30s")
    conditions, before = by_type(status), by_type(written)
    assert conditions["Ready"] == before["Ready"]
    assert conditions["Progressing"] == before["Progressing"]
    assert (conditions["Degraded"]["status"], conditions["Degraded"]["reason"]) == ("True", "AzureThrottled")
    assert conditions["Degraded"]["lastTransitionTime"] == rfc3339(T0 + 60)


def test_a_transient_problem_does_not_claim_a_newer_generation_for_what_it_carried_over() -> None:
    # The spec moved to generation 4, but the pass never planned it: what was computed for 3 stays marked 3.
    written = status_of(a_decision(phase=Phase.SUCCEEDED, reason="RolloutComplete"), generation=3, now=T0)
    status = transient_status("AzureThrottled", "wait", generation=4, now=T0 + 60, previous=written)
    assert status["observedGeneration"] == 3
    assert by_type(status)["Ready"]["observedGeneration"] == 3
    assert by_type(status)["Progressing"]["observedGeneration"] == 3


def test_a_transient_problem_before_any_status_is_only_degraded() -> None:
    status = transient_status("AzureUnavailable", "503", generation=1, now=T0)
    assert [c["type"] for c in status["conditions"]] == ["Degraded"]
    assert status["observedGeneration"] == 1
