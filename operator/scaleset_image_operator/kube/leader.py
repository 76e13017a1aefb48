"""Leader election on a ``coordination.k8s.io`` Lease, so that of several replicas exactly one drives rollouts.

Uses the ``kubernetes`` client's own ``leaderelection`` (a thread that acquires, then renews, the Lease). The
operator starts its kopf engine only once this process leads, and stops — exiting, so the pod restarts as a
candidate — the moment it can no longer renew. A standby takes over when the Lease expires
(``lease_duration`` seconds after the last renewal).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

log = logging.getLogger(__name__)


class _TolerantLeaseLock(LeaseLock):
    """The client's LeaseLock catches only ApiException; a connection error while kube-apiserver restarts would
    kill the election thread for good (no renewals, no takeover). Here any failure is a failed attempt."""

    def get(self, name: str, namespace: str) -> tuple[bool, object]:
        try:
            return super().get(name, namespace)  # type: ignore[no-any-return]
        except Exception as error:
            log.warning("leader election: reading Lease %s/%s failed: %s", namespace, name, error)
            return False, error

    def create(self, name: str, namespace: str, election_record: object) -> bool:
        try:
            return bool(super().create(name, namespace, election_record))
        except Exception as error:
            log.warning("leader election: creating Lease %s/%s failed: %s", namespace, name, error)
            return False

    def update(self, name: str, namespace: str, updated_record: object) -> bool:
        try:
            return bool(super().update(name, namespace, updated_record))
        except Exception as error:
            log.warning("leader election: renewing Lease %s/%s failed: %s", namespace, name, error)
            return False


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str
    name: str
    identity: str
    lease_duration: int = 15
    """Seconds a Lease is valid after its last renewal; a standby takes over after this."""
    renew_deadline: int = 10
    """Seconds the leader keeps trying to renew before it gives up leading."""
    retry_period: int = 2
    """Seconds between acquire/renew attempts."""


class LeaderElector:
    """``await became_leader()`` returns once this process holds the Lease; ``lost`` is set when it stops."""

    def __init__(self, settings: LeaseSettings, loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self._loop = loop
        self._leading = asyncio.Event()
        self.lost = asyncio.Event()

    def _started(self) -> None:
        log.info(
            "leader election: %s now leads (Lease %s/%s)",
            self.settings.identity,
            self.settings.namespace,
            self.settings.name,
        )
        self._loop.call_soon_threadsafe(self._leading.set)

    def _stopped(self) -> None:
        log.warning("leader election: %s stopped leading", self.settings.identity)
        self._loop.call_soon_threadsafe(self.lost.set)

    def start(self) -> None:
        config = electionconfig.Config(
            _TolerantLeaseLock(self.settings.name, self.settings.namespace, self.settings.identity),
            lease_duration=self.settings.lease_duration,
            renew_deadline=self.settings.renew_deadline,
            retry_period=self.settings.retry_period,
            onstarted_leading=self._started,
            onstopped_leading=self._stopped,
        )
        election = leaderelection.LeaderElection(config)

        def run() -> None:
            try:
                election.run()
            finally:
                # Whatever ends the election (lost renewals, or an error), this process no longer leads.
                self._stopped()

        thread = threading.Thread(target=run, name="leader-election", daemon=True)
        thread.start()

    async def became_leader(self) -> None:
        await self._leading.wait()
