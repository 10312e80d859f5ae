"""The deployed chain of ``make deploy-test``: Docker, a local registry serving the python3.13
runtime image, LocalStack with its own Lambda service, and ``sam deploy`` onto it.

Why each piece (docs/deploy.md, "make deploy-test"):

- LocalStack's Lambda runs every function in a Docker container of the runtime's image, and it
  always *pulls* that image, even one present locally: so the image is pushed to a registry of
  our own (Debian's ``docker-registry``, on loopback, a free port) and LocalStack is told to use
  it (``LAMBDA_RUNTIME_IMAGE_MAPPING``).
- The container's entrypoint is LocalStack's Lambda init, which LocalStack downloads from GitHub
  at the first function. Where there is no internet it must be placed beforehand where
  LocalStack's installer looks; the path and version are read from that installer, so a
  LocalStack upgrade fails here loudly instead of trying a download that cannot work.
- The function's container reaches LocalStack (its S3, the runtime API) through the Docker
  bridge's gateway address: LocalStack listens on every interface and tells Lambda that address
  (``HOSTNAME_FROM_LAMBDA``).

Anything missing stops the chain with ``Missing``: one line naming what and how to get it.
Everything here is the standard library, so the project's ``.venv`` (pytest) and ``bench/``
import it; LocalStack's own code runs only in ``.venv-localstack``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from tests.infra.localstack_runtime import (
    VENV_PYTHON,
    LocalStackProcess,
    free_port,
    start,
)

ROOT: Final = Path(__file__).resolve().parents[3]
#: What the template creates and ``sam deploy`` needs: CloudFormation and the resources' services.
SERVICES: Final = (
    "cloudformation",
    "lambda",
    "s3",
    "sqs",
    "events",
    "iam",
    "logs",
    "cloudwatch",
    "sts",
)
#: The runtime image tests/infra/sam_local/build_stand_in_image.sh builds (AWS's tag, amd64).
RUNTIME_IMAGE: Final = "public.ecr.aws/lambda/python:3.13-x86_64"
#: Its name in the local registry.
REGISTRY_IMAGE: Final = "market-totals/lambda-python:3.13-x86_64"
REGION: Final = "us-east-1"
#: A LocalStack plugin: CloudFormation's custom resource protocol, which LocalStack's community
#: CloudFormation lacks (localstack_plugins/market_totals_custom_resources.py).
PLUGINS: Final = Path(__file__).resolve().parent / "localstack_plugins"
#: Fake credentials: nothing here may sign a request AWS would accept.
FAKE_CREDENTIALS: Final = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
ENSURE_DOCKER: Final = "tests/infra/sam_local/ensure_docker.sh"
BUILD_IMAGE: Final = "tests/infra/sam_local/build_stand_in_image.sh"
REGISTRY_TIMEOUT: Final = 30.0
#: LocalStack with Lambda and CloudFormation takes longer to come up than the S3-only suite.
READY_TIMEOUT: Final = 180.0


class Missing(RuntimeError):
    """A piece of the chain is missing: the message is one line saying what and how to get it."""


def _run(
    command: Sequence[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a fixed command (no shell), capturing its output as text."""
    return subprocess.run(list(command), capture_output=True, text=True, check=False, env=env)


def docker_bridge_address() -> str:
    """The Docker bridge's gateway: the address at which a function's container reaches this
    machine (and LocalStack)."""
    if shutil.which("docker") is None:
        raise Missing(f"Docker: no `docker` command; {ENSURE_DOCKER} installs Debian's docker.io")
    if _run(["docker", "info"]).returncode != 0:
        raise Missing(f"Docker: no engine answers `docker info`; {ENSURE_DOCKER} starts dockerd")
    found = _run(["docker", "network", "inspect", "bridge", "-f", "{{json .IPAM.Config}}"])
    configs = json.loads(found.stdout) if found.returncode == 0 and found.stdout.strip() else []
    for config in configs or []:
        # Docker 20.10 leaves Gateway out of the default bridge's IPAM config: the gateway is
        # then the subnet's first address, as Docker assigns it to docker0.
        if config.get("Gateway"):
            return str(config["Gateway"])
        if config.get("Subnet") and ":" not in config["Subnet"]:
            return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))
    raise Missing("Docker: the `bridge` network has no IPv4 subnet; restart dockerd")


@dataclass
class Registry:
    """A ``docker-registry`` process serving images on a loopback port."""

    process: subprocess.Popen[bytes]
    address: str
    log_path: Path
    log_file: IO[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log_file.close()


def _answers(url: str) -> bool:
    # The URL is a loopback address this module chose.
    request = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def start_registry(root: Path) -> Registry:
    """Debian's ``docker-registry`` on a free loopback port, its storage under ``root``.
    Docker pushes to and pulls from a loopback registry over plain HTTP without any setting."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise Missing(
            "docker-registry: not installed; `apt-get install docker-registry` (Debian), "
            f"or run {ENSURE_DOCKER} as root"
        )
    root.mkdir(parents=True, exist_ok=True)
    address = f"127.0.0.1:{free_port()}"
    config = root / "registry.json"  # YAML is a superset of JSON
    config.write_text(
        json.dumps(
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(root / "storage")}},
                "http": {"addr": address},
            }
        ),
        encoding="utf-8",
    )
    log_path = root / "registry.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [binary, "serve", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    registry = Registry(process, address, log_path, log_file)
    deadline = time.monotonic() + REGISTRY_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        if _answers(f"http://{address}/v2/"):
            return registry
        time.sleep(0.2)
    registry.stop()
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
    raise Missing(f"docker-registry did not answer on {address}: {' '.join(tail) or 'no log'}")


def push_image(image: str, registry: Registry) -> str:
    """Push ``image`` into ``registry``; return the reference LocalStack pulls."""
    if _run(["docker", "image", "inspect", image]).returncode != 0:
        raise Missing(f"runtime image {image}: not built; {BUILD_IMAGE} builds it")
    reference = f"{registry.address}/{REGISTRY_IMAGE}"
    for command in (["docker", "tag", image, reference], ["docker", "push", reference]):
        done = _run(command)
        if done.returncode != 0:
            raise Missing(f"`{' '.join(command)}` failed: {done.stderr.strip()[-300:]}")
    return reference


# Run inside .venv-localstack with LocalStack's environment: its installer, not this file, knows
# the init's version and where it goes (config.dirs.var_libs depends on FILESYSTEM_ROOT).
_INIT_LOCATION = """
import json, sys
from localstack.packages import InstallTarget
from localstack.services.lambda_.packages import lambda_runtime_package
installer = lambda_runtime_package.get_installer()
marker = installer._get_install_marker_path(installer._get_install_dir(InstallTarget.VAR_LIBS))
if sys.argv[1] == "install":
    installer.install(InstallTarget.VAR_LIBS)
print(json.dumps({"version": installer.version, "path": marker}))
"""


@dataclass(frozen=True)
class InitLocation:
    """Where LocalStack's installer looks for its Lambda init, and which version it wants."""

    version: str
    path: Path


def _init_script(env: Mapping[str, str], action: str, python: Path) -> InitLocation:
    done = _run([str(python), "-c", _INIT_LOCATION, action], env=dict(env))
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise Missing(f"LocalStack's Lambda init ({action}): {last[0]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return InitLocation(str(found["version"]), Path(found["path"]))


def provide_init(env: Mapping[str, str], source: Path | None, python: Path = VENV_PYTHON) -> Path:
    """Put LocalStack's Lambda init where its installer looks before LocalStack starts.

    With ``source`` (``LAMBDA_INIT``): copy that binary there. Without: let LocalStack's own
    installer download it now (a machine with internet), so that a failed download stops the
    chain here with one line instead of leaving every function in ``CREATE_FAILED``."""
    location = _init_script(env, "locate", python)
    if source is None:
        try:
            return _init_script(env, "install", python).path
        except Missing:
            raise Missing(
                f"LocalStack's Lambda init {location.version}: the download failed (no "
                "internet?); build localstack/lambda-runtime-init and pass "
                "LAMBDA_INIT=/path/to/init"
            ) from None
    if not source.is_file():
        raise Missing(f"LAMBDA_INIT={source}: no such file (LocalStack's Lambda init binary)")
    location.path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, location.path)
    location.path.chmod(0o755)
    return location.path


def lambda_settings(bridge: str, image: str) -> dict[str, str]:
    """LocalStack's settings for its Lambda service in host mode, and the custom resource plugin
    (docs/deploy.md)."""
    return {
        "HOSTNAME_FROM_LAMBDA": bridge,
        "LAMBDA_RUNTIME_IMAGE_MAPPING": json.dumps({"python3.13": image}),
        # A cold container on a busy 2-core machine: more than the default 20 s to be ready.
        "LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT": "90",
        # The custom resource plugin (its .dist-info names the entry point LocalStack loads).
        "PYTHONPATH": str(PLUGINS),
    }


@dataclass
class Chain:
    """A running chain: LocalStack's endpoint for clients on this machine, and its pieces."""

    localstack: LocalStackProcess
    registry: Registry
    image: str
    init: Path

    @property
    def endpoint(self) -> str:
        return self.localstack.endpoint

    def client_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment for AWS clients (the SAM CLI, boto3) that reach LocalStack only."""
        env = {
            name: value
            for name, value in (os.environ if base is None else base).items()
            if not name.startswith("AWS_")
        }
        env.update(FAKE_CREDENTIALS, AWS_ENDPOINT_URL=self.endpoint, SAM_CLI_TELEMETRY="0")
        return env


@contextlib.contextmanager
def running(root: Path, *, init: Path | None) -> Iterator[Chain]:
    """The whole chain for the length of a ``with`` block; LocalStack (which removes its Lambda
    containers) and the registry are stopped however the block ends."""
    bridge = docker_bridge_address()
    registry = start_registry(root / "registry")
    image = ""
    try:
        image = push_image(RUNTIME_IMAGE, registry)
        settings = lambda_settings(bridge, image)
        localstack_root = root / "localstack"
        # The installer reads the same FILESYSTEM_ROOT as the LocalStack that start() runs in
        # localstack_root/run-0 (its first attempt; a retry on a taken port copies again).
        init_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "OVERRIDE_IN_DOCKER": "0",
        }
        placed = []
        for attempt in range(3):
            run_root = localstack_root / f"run-{attempt}"
            (run_root / "tmp").mkdir(parents=True, exist_ok=True)
            env = {**init_env, "FILESYSTEM_ROOT": str(run_root), "TMPDIR": str(run_root / "tmp")}
            placed.append(provide_init(env, init))
        # LocalStackError (with LocalStack's log tail) if it does not come up.
        localstack = start(
            localstack_root,
            timeout=READY_TIMEOUT,
            services=SERVICES,
            listen="0.0.0.0",
            extra=settings,
        )
        try:
            yield Chain(localstack, registry, image, placed[0])
        finally:
            localstack.stop()
    finally:
        registry.stop()
        # The registry's tag of the image (a new port each run): removed, the image stays.
        if image:
            _run(["docker", "image", "rm", image])
