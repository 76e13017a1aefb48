"""A real Kubernetes control plane (etcd + kube-apiserver) on loopback, for tests.

This is the Python counterpart of controller-runtime's *envtest*: it starts the two binaries that
``tools/controlplane/build.sh`` builds (or that ``KUBEBUILDER_ASSETS`` points at) on free ``127.0.0.1``
ports, with real TLS, RBAC authorization and ServiceAccount tokens, and writes an admin kubeconfig.
There is no kube-controller-manager, scheduler or kubelet: objects are stored and served, but nothing
reconciles them (no garbage collection, namespace finalization, pods never run).

Usage::

    with ControlPlane() as cp:
        subprocess.run(["kubectl", "--kubeconfig", str(cp.kubeconfig), "get", "ns"], check=True)
        operator_kubeconfig = cp.service_account_kubeconfig("operator-system", "operator")

Run as a script (``python tools/controlplane/harness.py``) it starts a control plane, prints the admin
kubeconfig path and serves until interrupted.

Only the standard library and ``cryptography`` are used.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import collections
import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ControlPlane", "ControlPlaneError", "find_assets"]

_T = TypeVar("_T")
_Probe = Callable[[], tuple[bool, str]]

BUILD_SCRIPT = Path(__file__).resolve().parent / "build.sh"
ADMIN_USER = "admin"
ADMIN_GROUP = "system:masters"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
LOG_TAIL_LINES = 40
_START_ATTEMPTS = 3


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started, or used; the message carries the evidence."""


def find_assets(assets: Path | str | None = None) -> Path:
    """Return the folder holding ``kube-apiserver`` and ``etcd``.

    Order: the *assets* argument, then ``$KUBEBUILDER_ASSETS``, then ``build.sh`` (which builds into its cache on
    first use, taking 10-20 minutes on 2 cores, and is a fast no-op afterwards).
    """
    for candidate in (assets, os.environ.get("KUBEBUILDER_ASSETS")):
        if candidate:
            folder = Path(candidate)
            if _has_binaries(folder):
                return folder.resolve()
            if candidate is assets:
                raise ControlPlaneError(f"{folder} has no executable kube-apiserver and etcd")
    # build.sh's progress (stderr) is passed through as it comes, since a first build takes many minutes, and kept
    # for the error message; its last stdout line is the folder.
    with (
        tempfile.TemporaryFile("w+") as out,
        subprocess.Popen(["bash", str(BUILD_SCRIPT)], stdout=out, stderr=subprocess.PIPE, text=True) as proc,
    ):
        assert proc.stderr is not None
        progress: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        for line in proc.stderr:
            sys.stderr.write(line)
            progress.append(line.rstrip("\n"))
        code = proc.wait()
        out.seek(0)
        stdout = out.read()
    if code != 0:
        raise ControlPlaneError(f"{BUILD_SCRIPT} failed with exit code {code}:\n" + "\n".join(progress))
    lines = stdout.strip().splitlines()
    folder = Path(lines[-1]) if lines else Path()
    if not lines or not _has_binaries(folder):
        raise ControlPlaneError(f"{BUILD_SCRIPT} printed {stdout!r}, not a folder holding kube-apiserver and etcd")
    return folder


def _has_binaries(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) and (folder / name).is_file() for name in ("kube-apiserver", "etcd"))


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _file_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return _tail(path.read_text(errors="replace"), lines)
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def _free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all sockets stay bound until every port is picked)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


# --- certificates ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pki:
    """PEM files for the CA, the serving cert, the admin client cert and the ServiceAccount signing key."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path


def _write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _make_pki(folder: Path) -> _Pki:
    """One test CA that signs both the apiserver's serving cert and the admin client cert."""
    folder.mkdir(mode=0o700)
    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=365)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scaleset-image-operator test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(subject: x509.Name, usage: x509.ObjectIdentifier, sans: Sequence[x509.GeneralName]) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    serving_cert, serving_key = leaf(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(next(ipaddress.IPv4Network(SERVICE_CLUSTER_IP_RANGE).hosts())),
        ],
    )
    admin_cert, admin_key = leaf(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ADMIN_GROUP),
                x509.NameAttribute(NameOID.COMMON_NAME, ADMIN_USER),
            ]
        ),
        ExtendedKeyUsageOID.CLIENT_AUTH,
        [],
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    ca_path = folder / "ca.crt"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (folder / "apiserver.crt").write_bytes(serving_cert)
    (folder / "admin.crt").write_bytes(admin_cert)
    (folder / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return _Pki(
        ca_cert=ca_path,
        serving_cert=folder / "apiserver.crt",
        serving_key=_write_private(folder / "apiserver.key", serving_key),
        admin_cert=folder / "admin.crt",
        admin_key=_write_private(folder / "admin.key", admin_key),
        sa_key=_write_private(folder / "sa.key", _key_pem(sa_key)),
        sa_pub=folder / "sa.pub",
    )


def _kubeconfig(server: str, ca_pem: bytes, user: str, credentials: dict[str, str]) -> str:
    """A one-context kubeconfig, as JSON (a subset of YAML that kubectl and client libraries read)."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": {"cluster": "test", "user": user, "namespace": "default"}}],
        "current-context": user,
        "preferences": {},
    }
    return json.dumps(config, indent=2) + "\n"


# --- processes ------------------------------------------------------------------------------------------------------


class _Process:
    """A child process whose stdout and stderr go to a log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        try:
            self.popen = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, close_fds=True
            )
        except OSError:
            self._log.close()
            raise

    def exited(self) -> int | None:
        return self.popen.poll()

    def stop(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL if it is still running after *timeout* seconds."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()

    def tail(self) -> str:
        return f"--- last lines of {self.log_path} ---\n{_file_tail(self.log_path)}"


_unsafe_no_fsync: dict[Path, bool] = {}


def _etcd_supports_unsafe_no_fsync(etcd: Path) -> bool:
    if etcd not in _unsafe_no_fsync:
        out = subprocess.run([str(etcd), "--help"], capture_output=True, text=True, timeout=30)
        _unsafe_no_fsync[etcd] = "--unsafe-no-fsync" in out.stdout + out.stderr
    return _unsafe_no_fsync[etcd]


class ControlPlane:
    """etcd + kube-apiserver on 127.0.0.1; use as a context manager, or call :meth:`start` and :meth:`stop`.

    After start: :attr:`kubeconfig` (admin, group ``system:masters``, client-certificate auth), :attr:`server`
    (``https://127.0.0.1:PORT``), :attr:`ca_file` (PEM of the CA that signed the serving cert) and :attr:`work_dir`
    (temporary folder with certs, etcd data, kubeconfigs and the ``etcd.log`` / ``kube-apiserver.log`` logs).
    """

    def __init__(
        self,
        assets: Path | str | None = None,
        *,
        startup_timeout: float = 90.0,
        stop_timeout: float = 10.0,
        keep_work_dir: bool = False,
        extra_apiserver_args: Sequence[str] = (),
        kubectl: str = "kubectl",
    ) -> None:
        """Configure (nothing starts yet).

        :param assets: folder with ``kube-apiserver`` and ``etcd``; default: :func:`find_assets`.
        :param startup_timeout: seconds allowed for etcd health plus kube-apiserver ``/readyz``.
        :param stop_timeout: seconds each process gets after SIGTERM before SIGKILL.
        :param keep_work_dir: keep the temporary folder (logs, certs) after :meth:`stop`, for debugging.
        :param extra_apiserver_args: appended to the kube-apiserver command line (later flags win).
        :param kubectl: the kubectl command used by :meth:`kubectl` and :meth:`service_account_kubeconfig`.
        """
        self._assets_arg = assets
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.keep_work_dir = keep_work_dir
        self.extra_apiserver_args = tuple(extra_apiserver_args)
        self.kubectl_cmd = kubectl
        self._work_dir: Path | None = None
        self._server: str | None = None
        self._kubeconfig: Path | None = None
        self._pki: _Pki | None = None
        self.etcd_url: str | None = None
        self._processes: list[_Process] = []
        self._lock = threading.Lock()

    # -- public attributes --

    @property
    def work_dir(self) -> Path:
        """The temporary folder of this control plane."""
        return self._require(self._work_dir)

    @property
    def server(self) -> str:
        """The API server URL, ``https://127.0.0.1:PORT``."""
        return self._require(self._server)

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (user ``admin`` in ``system:masters``)."""
        return self._require(self._kubeconfig)

    @property
    def ca_file(self) -> Path:
        """PEM file of the CA that signed the API server's serving certificate."""
        return self._require(self._pki).ca_cert

    @staticmethod
    def _require(value: _T | None) -> _T:
        if value is None:
            raise ControlPlaneError("the control plane is not running; call start() or use it in a with-block")
        return value

    # -- lifecycle --

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Start etcd and kube-apiserver and wait until ``/readyz`` answers 200; raise :class:`ControlPlaneError`."""
        with self._lock:
            if self._work_dir is not None:
                raise ControlPlaneError("the control plane is already started")
            assets = find_assets(self._assets_arg)
            self._work_dir = Path(tempfile.mkdtemp(prefix="scaleset-controlplane-"))
            atexit.register(self.stop)
            try:
                self._pki = _make_pki(self._work_dir / "pki")
                for attempt in range(1, _START_ATTEMPTS + 1):
                    try:
                        self._start_processes(assets, attempt)
                        break
                    except _PortTakenError:
                        self._stop_processes()
                        if attempt == _START_ATTEMPTS:
                            raise
            except BaseException:
                self._stop_locked()
                raise
            return self

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd (SIGTERM, SIGKILL after ``stop_timeout``), and remove the work dir."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        atexit.unregister(self.stop)
        self._stop_processes()
        if self._work_dir is not None and not self.keep_work_dir:
            shutil.rmtree(self._work_dir, ignore_errors=True)
        self._work_dir = self._server = self._kubeconfig = self._pki = self.etcd_url = None

    def _stop_processes(self) -> None:
        while self._processes:
            self._processes.pop().stop(self.stop_timeout)

    def _start_processes(self, assets: Path, attempt: int) -> None:
        work, pki = self.work_dir, self._require(self._pki)
        etcd_port, peer_port, api_port = _free_ports(3)
        etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
        data_dir = work / f"etcd-data-{attempt}"
        etcd_args = [
            str(assets / "etcd"),
            "--name=default",
            f"--data-dir={data_dir}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--log-level=warn",
        ]
        if _etcd_supports_unsafe_no_fsync(assets / "etcd"):
            etcd_args.append("--unsafe-no-fsync=true")
        deadline = time.monotonic() + self.startup_timeout
        etcd = _Process("etcd", etcd_args, work / "etcd.log")
        self._processes.append(etcd)
        self._wait(etcd, deadline, lambda: _http_ok(f"{etcd_url}/health", None))
        self.etcd_url = etcd_url

        server = f"https://127.0.0.1:{api_port}"
        apiserver_args = [
            str(assets / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={work / 'apiserver-certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={server}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            # No controller-manager mints ServiceAccount token secrets or default ServiceAccounts here.
            "--disable-admission-plugins=ServiceAccount",
            *self.extra_apiserver_args,
        ]
        apiserver = _Process("kube-apiserver", apiserver_args, work / "kube-apiserver.log")
        self._processes.append(apiserver)
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        self._wait(apiserver, deadline, lambda: _http_ok(f"{server}/readyz", context))

        kubeconfig = work / "admin.kubeconfig"
        credentials = {
            "client-certificate-data": base64.b64encode(pki.admin_cert.read_bytes()).decode(),
            "client-key-data": base64.b64encode(pki.admin_key.read_bytes()).decode(),
        }
        _write_private(kubeconfig, _kubeconfig(server, pki.ca_cert.read_bytes(), ADMIN_USER, credentials).encode())
        self._server, self._kubeconfig = server, kubeconfig

    def _wait(self, process: _Process, deadline: float, ready: _Probe) -> None:
        """Poll *ready* until it holds; fail with the logs' tails if the process exits or the deadline passes."""
        last_error = "no answer yet"
        while True:
            code = process.exited()
            if code is not None:
                log = _file_tail(process.log_path)
                message = f"{process.name} exited with code {code} during startup\n{self._tails()}"
                if "address already in use" in log:
                    raise _PortTakenError(message)
                raise ControlPlaneError(message)
            ok, last_error = ready()
            if ok:
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{process.name} was not ready within {self.startup_timeout:g} s (last probe: {last_error})\n"
                    f"{self._tails()}"
                )
            time.sleep(0.1)

    def _tails(self) -> str:
        return "\n".join(p.tail() for p in self._processes)

    # -- clients --

    def kubectl(
        self, *args: str, input: str | None = None, kubeconfig: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl with the admin kubeconfig (or *kubeconfig*); with *check*, raise on a non-zero exit."""
        argv = [self.kubectl_cmd, f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise ControlPlaneError(f"{' '.join(argv)} failed with exit code {proc.returncode}:\n{proc.stderr}")
        return proc

    def service_account_kubeconfig(
        self, namespace: str, name: str, *, create: bool = True, duration: str = "2h"
    ) -> Path:
        """Write a kubeconfig that authenticates as ServiceAccount *namespace*/*name* with a bound token.

        The token comes from the TokenRequest API (``kubectl create token``) and is valid for *duration*. With
        *create*, the namespace and the ServiceAccount are created first if missing. RBAC applies as for any
        ServiceAccount: it can do nothing until a (Cluster)RoleBinding grants it something.
        """
        if create:
            manifest = {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                    {
                        "apiVersion": "v1",
                        "kind": "ServiceAccount",
                        "metadata": {"name": name, "namespace": namespace},
                    },
                ],
            }
            self.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        token = self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}").stdout.strip()
        user = f"system:serviceaccount:{namespace}:{name}"
        path = self.work_dir / f"sa-{namespace}-{name}.kubeconfig"
        _write_private(path, _kubeconfig(self.server, self.ca_file.read_bytes(), user, {"token": token}).encode())
        return path


class _PortTakenError(ControlPlaneError):
    """A picked port was taken by someone else between picking and binding; start() retries."""


def _http_ok(url: str, context: ssl.SSLContext | None) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return response.status == 200, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}: {exc.read(300).decode(errors='replace')}"
    except (OSError, ssl.SSLError) as exc:
        return False, repr(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Start a control plane, print its admin kubeconfig, and serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--assets", help="folder with kube-apiserver and etcd (default: KUBEBUILDER_ASSETS/build.sh)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, certs) on exit")
    parser.add_argument("--timeout", type=float, default=90.0, help="startup deadline in seconds")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    with ControlPlane(args.assets, startup_timeout=args.timeout, keep_work_dir=args.keep) as cp:
        print(f"control plane ready in {time.monotonic() - started:.1f} s at {cp.server}", file=sys.stderr)
        print(f"logs: {cp.work_dir}/etcd.log {cp.work_dir}/kube-apiserver.log", file=sys.stderr)
        print(f"export KUBECONFIG={cp.kubeconfig}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
