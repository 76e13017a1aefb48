"""Leader election on a ``coordination.k8s.io`` Lease, so that of several replicas exactly one drives rollouts.

Uses the ``kubernetes`` client's own ``leaderelection`` (a thread that acquires, then renews, the Lease). The
operator starts its kopf engine only once this process leads, and stops — exiting, so the pod restarts as a
candidate — the moment it can no longer renew. A standby takes over when the Lease expires
(``lease_duration`` seconds after the last renewal).

On SIGTERM the leader hands the Lease back once its engine has stopped (``release``), as client-go does with
``ReleaseOnCancel``: renewals stop first, then the Lease is written with an empty ``holderIdentity`` and
``leaseDurationSeconds: 1``. The client library has no release of its own. A standby treats a Lease without a
holder as free at once (the library reads an empty holder as no record and takes it, as client-go does), so a
rolling update of the Deployment hands leadership over within a retry period instead of a lease duration.
client-go's ``release`` and ``tryAcquireOrRenew``:
https://github.com/kubernetes/client-go/blob/master/tools/leaderelection/leaderelection.go
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import threading
import time
from dataclasses import dataclass

from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.leaderelectionrecord import LeaderElectionRecord
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


RELEASE_SECONDS = 5.0
"""How long SIGTERM waits to hand the Lease back (an unreachable API server); then the Lease expires instead."""


class _ReleasableElection(leaderelection.LeaderElection):
    """The client's election, stoppable, with the release it lacks. Every Lease write goes through
    ``try_acquire_or_renew`` under one lock; ``release`` marks the election stopped (no attempt starts after
    that), waits for the lock and only then writes: no renewal can follow the release, not even one under way."""

    def __init__(self, config: electionconfig.Config) -> None:
        super().__init__(config)
        self._writing = threading.Lock()
        self.stopped = threading.Event()

    def try_acquire_or_renew(self) -> bool:
        with self._writing:
            return not self.stopped.is_set() and bool(super().try_acquire_or_renew())

    def acquire(self) -> bool:
        # The library's loop, but it ends when the election is stopped (a standby sent SIGTERM).
        while not self.stopped.is_set():
            if self.try_acquire_or_renew():
                return True
            self.stopped.wait(self.election_config.retry_period)
        return False

    def renew_loop(self, leading_failed: threading.Event | None = None) -> None:
        # The library's loop (renew every retry period; give up after renew_deadline without a renewal), but it
        # ends as soon as the election is stopped instead of retrying until the deadline.
        config = self.election_config
        while not self.stopped.is_set() and not (leading_failed is not None and leading_failed.is_set()):
            give_up_at = time.monotonic() + config.renew_deadline
            while not self.try_acquire_or_renew():
                if self.stopped.wait(config.retry_period) or time.monotonic() >= give_up_at:
                    return
            self.stopped.wait(config.retry_period)

    def release(self, wait: float) -> bool:
        """Stops the election; if this process holds the Lease, writes it without a holder (as client-go's
        ``release``: ``leaseDurationSeconds`` 1, times now). True if released; False if not held, or if an attempt
        under way did not end within ``wait`` seconds."""
        self.stopped.set()
        if not self._writing.acquire(timeout=wait):
            return False
        try:
            lock = self.election_config.lock
            found, record = lock.get(lock.name, lock.namespace)
            if not found or getattr(record, "holder_identity", None) != lock.identity:
                return False
            now = str(datetime.datetime.now())  # the library's own (naive, local) time format
            return bool(lock.update(lock.name, lock.namespace, LeaderElectionRecord("", "1", now, now)))
        finally:
            self._writing.release()


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
        self._election: _ReleasableElection | None = None

    def _started(self) -> None:
        log.info(
            "leader election: %s now leads (Lease %s/%s)",
            self.settings.identity,
            self.settings.namespace,
            self.settings.name,
        )
        self._loop.call_soon_threadsafe(self._leading.set)

    def _stopped(self) -> None:
        if self._election is not None and self._election.stopped.is_set():
            return  # handed back on purpose (``release``): nothing was lost
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
        election = self._election = _ReleasableElection(config)

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

    async def release(self, timeout: float = RELEASE_SECONDS) -> None:
        """Stops renewing and, if this process holds the Lease, hands it back so that a standby leads at once.
        Call it only once this process has stopped acting as the leader. Gives up after ``timeout`` seconds."""
        election = self._election
        if election is None:
            return
        outcome: asyncio.Future[bool] = self._loop.create_future()

        def deliver(released: bool) -> None:
            if not outcome.done():
                outcome.set_result(released)

        def run() -> None:
            released = election.release(timeout)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
                self._loop.call_soon_threadsafe(deliver, released)

        # A daemon thread, not asyncio.to_thread: a Lease write hanging on the API server must not hold the exit.
        threading.Thread(target=run, name="leader-release", daemon=True).start()
        where = f"Lease {self.settings.namespace}/{self.settings.name}"
        try:
            released = await asyncio.wait_for(outcome, timeout)
        except TimeoutError:
            log.warning("leader election: could not hand %s back within %g s; it expires instead", where, timeout)
            return
        if released:
            log.info("leader election: %s handed %s back", self.settings.identity, where)
