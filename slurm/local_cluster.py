"""A private one-node SLURM cluster on loopback, to try the sbatch scripts on one machine and to
test them (tests/test_slurm.py):

    python slurm/local_cluster.py        # prints `export SLURM_CONF=...`; Ctrl-C stops it

Debian's slurm-wlm and munge are installed with apt-get when absent (root). The cluster has its
own munge key and socket, ports, state and spool directories, so it neither needs nor disturbs a
cluster that the machine may already run; clients find it through SLURM_CONF, which jobs inherit.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
BINARIES = ("sbatch", "srun", "scontrol", "scancel", "slurmctld", "slurmd", "munged", "mungekey")
FINISHED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "DEADLINE"}
# the daemons live in sbin, which a non-login PATH may lack
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


class ClusterError(RuntimeError):
    """The cluster could not be installed or started, or a job did not do what was expected."""


def install_slurm() -> None:
    """Install slurm-wlm and munge with apt-get unless their programs are already there."""
    if all(shutil.which(name, path=SEARCH_PATH) for name in BINARIES):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ClusterError(f"SLURM is not installed; install {' '.join(PACKAGES)} (apt-get, root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise ClusterError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    missing = [name for name in BINARIES if not shutil.which(name, path=SEARCH_PATH)]
    if missing:
        raise ClusterError(f"installed {PACKAGES} but found no {missing} in {SEARCH_PATH}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slurm_conf(root: Path, cpus: int) -> str:
    """One node (localhost, the machine's real CPU count) in one partition; no cgroups,
    accounting or MPI plugins, which a container may lack. KillWait is short so that a
    requeued job is torn down quickly."""
    return f"""\
ClusterName=neurohash-test
SlurmctldHost=localhost
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=3600
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class Cluster:
    """A running private cluster: its directory, the environment its clients need, daemons."""

    root: Path
    env: dict[str, str]
    daemons: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *command: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        """Run a client command against this cluster; its stdout (ClusterError if it fails)."""
        result = subprocess.run(
            command, cwd=cwd, env=env or self.env, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise ClusterError(f"{' '.join(command)}: {result.stderr.strip()}")
        return result.stdout

    def job(self, job_id: int) -> dict[str, str]:
        """`scontrol show job` as a dict (JobState, Restarts, ExitCode, ...)."""
        text = self.run("scontrol", "show", "job", "--oneliner", str(job_id))
        return dict(re.findall(r"(\S+?)=(\S*)", text))

    def wait(self, job_id: int, states: set[str], timeout: float = 600) -> dict[str, str]:
        """Poll until the job is in one of ``states`` (or has finished); its last record."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.job(job_id)
            if info["JobState"] in states | FINISHED:
                return info
            time.sleep(0.5)
        raise ClusterError(f"job {job_id} not in {states} after {timeout} s: {self.job(job_id)}")

    def log_tail(self) -> str:
        """The daemons' last log lines, for failure messages."""
        parts = []
        for path in sorted((self.root / "log").glob("*.log")):
            parts.append(f"== {path.name}\n" + "\n".join(path.read_text().splitlines()[-15:]))
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop the daemons (slurmd, slurmctld, munged), newest first; remove the directory."""
        for proc in reversed(self.daemons):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.daemons.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def start_munged(root: Path, env: dict[str, str]) -> subprocess.Popen:
    """munged with a fresh key and a socket of its own (its directory must be world-searchable)."""
    munge = root / "munge"
    munge.mkdir(mode=0o755)
    munge.chmod(0o755)
    key = munge / "munge.key"
    subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, env=env)
    command = [
        "munged",
        "--foreground",
        f"--socket={munge}/munge.socket",
        f"--key-file={key}",
        f"--pid-file={munge}/munged.pid",
        f"--log-file={root}/log/munged.log",
        f"--seed-file={munge}/munged.seed",
    ]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while not (munge / "munge.socket").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise ClusterError(f"munged did not start:\n{(root / 'log/munged.log').read_text()}")
        time.sleep(0.1)
    return proc


def start_cluster() -> Cluster:
    """Install if needed, write slurm.conf, start munged, slurmctld and slurmd, and wait until
    the node is idle. The caller must ``stop()`` it."""
    install_slurm()
    # munged refuses a socket in a directory that not everybody may search: not under pytest's
    # private tmp_path
    root = Path(tempfile.mkdtemp(prefix="neurohash-slurm-"))
    root.chmod(0o755)
    for name in ("state", "spool", "log"):
        (root / name).mkdir()
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, os.cpu_count() or 1))
    env = dict(os.environ, SLURM_CONF=str(conf), PATH=SEARCH_PATH)
    cluster = Cluster(root, env)
    try:
        cluster.daemons.append(start_munged(root, env))
        for command in (["slurmctld", "-D", "-f", str(conf)], ["slurmd", "-D", "-N", "localhost"]):
            with open(root / "log" / f"{command[0]}.out", "w") as out:
                daemon = subprocess.Popen(command, env=env, stdout=out, stderr=out)
            cluster.daemons.append(daemon)
        wait_for_idle_node(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def wait_for_idle_node(cluster: Cluster, timeout: float = 60) -> None:
    """Until slurmd has registered with slurmctld and the node takes jobs."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        for proc in cluster.daemons:
            if proc.poll() is not None:
                raise ClusterError(f"{proc.args[0]} exited:\n{cluster.log_tail()}")
        try:
            state = cluster.run("sinfo", "--noheader", "--format=%T").strip()
        except ClusterError:
            state = "no controller yet"
        if state == "idle":
            return
        time.sleep(0.5)
    raise ClusterError(f"node not idle after {timeout} s ({state}):\n{cluster.log_tail()}")


def main() -> None:
    """Run a cluster in the foreground until interrupted."""
    cluster = start_cluster()
    print(f"export SLURM_CONF={cluster.env['SLURM_CONF']}   # logs: {cluster.root}/log", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop on kill as on Ctrl-C
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
