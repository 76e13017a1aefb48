"""``make demo-cluster``: the rollout through a real local control plane, for a person at a terminal.

Starts kube-apiserver and etcd (tools/controlplane), installs ``deploy/base`` (CRD, namespace, RBAC), starts
the Azure simulator with a 5-update-domain scale set, and runs ``scaleset-image run`` as a process with the
operator's service-account token (the RBAC as shipped). It prints a kubeconfig and the kubectl commands to
watch and steer, applies the sample ScaleSetImage and follows it. With ``--exit-when-ready`` it stops once
the sample is Ready (what CI-like runs use); otherwise it keeps everything running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools" / "controlplane"))

from harness import ControlPlane  # noqa: E402

from scaleset_image_operator.simulator import SimulatorConfig, SimulatorControl, SimulatorThread  # noqa: E402

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000c1"
SAMPLE = """\
apiVersion: scaleset.dev/v1alpha1
kind: ScaleSetImage
metadata:
  name: web
  namespace: demo
spec:
  scaleSet: {{subscriptionId: {subscription}, resourceGroup: rg-demo, name: vmss-web}}
  image:
    platform: {{publisher: Canonical, offer: 0001-com-ubuntu-server-jammy, sku: 22_04-lts-gen2, version: latest}}
  rollout:
    strategy: UpdateDomain
    pauseBetweenBatches: 5s
    healthCheck: {{mode: Auto, timeout: 10m}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exit-when-ready", action="store_true", help="stop once the sample is Ready")
    parser.add_argument("--time-scale", type=float, default=10.0, help="simulator speed (default 10)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="scaleset-demo-cluster-"))
    with (
        ControlPlane() as cp,
        SimulatorThread(SimulatorConfig(port=0, ca_file=workdir / "sim-ca.pem", time_scale=args.time_scale)) as sim,
    ):
        cp.kubectl("apply", "-k", str(REPO / "deploy" / "base"))
        cp.kubectl("wait", "--for=condition=Established", "crd/scalesetimages.scaleset.dev", "--timeout=60s")
        cp.kubectl("create", "namespace", "demo")
        operator_kubeconfig = cp.service_account_kubeconfig(
            "scaleset-image-system", "scaleset-image-operator", create=False
        )
        SimulatorControl(sim.url, sim.ca_file).create_scale_set(
            subscriptionId=SUBSCRIPTION,
            resourceGroup="rg-demo",
            name="vmss-web",
            capacity=15,
            upgradeSeconds=60,
            healthWarmupSeconds=20,
        )
        health_port, metrics_port = free_port(), free_port()
        env = {
            **os.environ,
            "AZURE_TENANT_ID": "demo-tenant",
            "AZURE_CLIENT_ID": "demo-operator",
            "AZURE_CLIENT_SECRET": "demo-secret",
            "AZURE_AUTHORITY_HOST": sim.url,
            "SCALESET_IMAGE_ARM_ENDPOINT": sim.url,
            "SCALESET_IMAGE_CA_BUNDLE": str(sim.ca_file),
            "SCALESET_IMAGE_POLL_SECONDS": "1",
        }
        log_path = workdir / "operator.log"
        with log_path.open("w") as log:
            operator = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scaleset_image_operator.cli",
                    "run",
                    "--kubeconfig",
                    str(operator_kubeconfig),
                    "--lease-namespace",
                    "scaleset-image-system",
                    "--health-port",
                    str(health_port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                sample = workdir / "sample.yaml"
                sample.write_text(SAMPLE.format(subscription=SUBSCRIPTION))
                print(
                    f"""
control plane   {cp.server}   (kube-apiserver + etcd, as built by make controlplane)
Azure simulator {sim.url}   (CA {sim.ca_file}), time x{args.time_scale:g}
operator        pid {operator.pid}, service account scaleset-image-system/scaleset-image-operator, log {log_path}
                liveness http://127.0.0.1:{health_port}/healthz   metrics http://127.0.0.1:{metrics_port}/metrics

In another terminal:
  export KUBECONFIG={cp.kubeconfig}
  kubectl get ssi -A -w
  kubectl -n demo describe ssi web
  kubectl -n demo get events --sort-by=.lastTimestamp
  kubectl -n demo wait --for=condition=Ready ssi/web --timeout=10m
  kubectl -n demo patch ssi web --type merge -p '{{"spec":{{"rollout":{{"paused":true}}}}}}'
  kubectl -n demo annotate ssi web scaleset.dev/abort=true

applying {sample.name}:
{SAMPLE.format(subscription=SUBSCRIPTION)}""",
                    flush=True,
                )
                cp.kubectl("apply", "-f", str(sample))
                return follow(cp, args.exit_when_ready, operator)
            finally:
                operator.send_signal(signal.SIGTERM)
                try:
                    operator.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    operator.kill()


def follow(cp: ControlPlane, exit_when_ready: bool, operator: subprocess.Popen[bytes]) -> int:
    last = ""
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline or not exit_when_ready:
            if operator.poll() is not None:
                print(f"the operator exited with {operator.returncode}", file=sys.stderr)
                return 1
            document = json.loads(cp.kubectl("-n", "demo", "get", "ssi", "web", "-o", "json").stdout)
            status = document.get("status") or {}
            line = (
                f"{status.get('phase', 'Pending'):<13} {status.get('upgraded', '-'):>6}  "
                f"domain {status.get('domain') or '-':<3} {status.get('message', '')}"
            )
            if line != last:
                print(f"{time.strftime('%H:%M:%S')}  {line}", flush=True)
                last = line
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
            if ready and exit_when_ready:
                print("\nReady. Events:")
                print(cp.kubectl("-n", "demo", "get", "events", "--sort-by=.lastTimestamp").stdout)
                return 0
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    print("the sample did not become Ready in 10 minutes", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
