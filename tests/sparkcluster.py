"""A throw-away Spark standalone cluster for tests: one master and one worker on 127.0.0.1.

Both daemons are started from the installed pyspark's own launcher
(``<pyspark>/bin/spark-class org.apache.spark.deploy.{master.Master,worker.Worker}``) on free
ports, with their scratch, work and log folders under one temp folder.

One Python process can hold only one SparkContext, and ``SparkSession.builder.getOrCreate()``
hands back the open one whatever master it is asked for; the suite's in-process session is
``local[2]``. So tests reach the cluster from a child process: :func:`run_on_cluster` runs a
Python snippet that opens ``spark_session(url)``, does its work and prints one JSON object.

Public API:

- :func:`unavailable` -- why the cluster cannot run here (no pyspark, no Java), or None.
- :class:`SparkCluster` -- ``SparkCluster(cores=2, memory="2g", timeout=60.0)`` starts and waits;
  ``.url``, ``.state()``, ``.applications()``, ``.stop()``; also a context manager.
- :func:`run_on_cluster` -- ``run_on_cluster(url, script, *, args=(), env=None, timeout=300.0)``
  returns the JSON object the child printed last.
- :func:`executor_tasks` -- for use *inside* the child: completed tasks per executor.
- :class:`SparkConnectServer` -- a Spark Connect server (local mode) on a free port: ``.url``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
_BIND_ATTEMPTS = 3


def unavailable() -> str | None:
    """Why a Spark cluster cannot be started here (pyspark or Java missing), or None."""
    if importlib.util.find_spec("pyspark") is None:
        return "Spark cluster tests skipped: pyspark is not installed (pip install -e '.[spark]')"
    if _java() is None:
        return "Spark cluster tests skipped: no Java runtime (set JAVA_HOME or put java on PATH)"
    return None


def spark_home() -> Path:
    """The installed pyspark package folder, which is a complete ``SPARK_HOME``."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise RuntimeError("pyspark is not installed (pip install -e '.[spark]')")
    return Path(spec.origin).parent


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def _free_ports(n: int) -> list[int]:
    # Hold all sockets open together so the n ports are distinct.
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _spark_env(folder: Path, **extra: str) -> dict[str, str]:
    """The environment of a Spark daemon: this machine's without its Spark settings, an empty
    conf folder (no spark-defaults.conf or spark-env.sh of the machine), scratch and logs under
    ``folder``, bound to 127.0.0.1, executors' Python this interpreter."""
    for sub in ("conf", "local", "logs"):
        (folder / sub).mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_CONF_DIR=str(folder / "conf"),
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_LOCAL_DIRS=str(folder / "local"),
        PYSPARK_PYTHON=sys.executable,
        **extra,
    )
    return env


def _launch(
    cmd: list[str], *, env: Mapping[str, str], log: Path, cwd: Path, stdout: Path | None = None
) -> subprocess.Popen:
    """Start ``cmd`` in its own process group; stderr (and stdout unless given) go to ``log``.

    Where util-linux's ``setpriv`` exists the process also gets SIGTERM when the test process
    dies (even by SIGKILL), so an interrupted run leaves no daemon behind.
    """
    setpriv = shutil.which("setpriv")
    if setpriv and sys.platform.startswith("linux"):
        cmd = [setpriv, "--pdeathsig", "TERM", *cmd]
    with contextlib.ExitStack() as files:
        err = files.enter_context(log.open("wb"))
        out = files.enter_context(stdout.open("wb")) if stdout else err
        return subprocess.Popen(
            cmd,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def _stop_group(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the process group of ``proc`` (the daemon and its children), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)
    # Children (executors) may outlive the daemon by a moment; while any lives, the group id
    # is theirs and cannot be reused.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"({path} was not written)"
    return "\n".join(text[-lines:])


class SparkCluster:
    """A running Spark standalone master and one worker, bound to 127.0.0.1.

    The constructor returns once the worker is registered with the master (checked on the
    master's ``/json/`` endpoint). Executors of applications run as children of the worker.

    Args:
        cores: cores the worker offers (one executor takes them all by default).
        memory: memory the worker offers to executors (Spark's size syntax, e.g. ``2g``).
        timeout: seconds to wait for the master and then the worker to be ready.

    Attributes:
        url: the master URL, ``spark://127.0.0.1:PORT``.
        master_web_url: the master's web UI (``/json/`` gives its state).
        worker_web_url: the worker's web UI.
        dir: the temp folder holding logs (``master.log``, ``worker.log``), ``work/`` (executor
            logs, per application) and ``local/`` (shuffle and spill files).
        startup_seconds: how long the start took, master and worker ready.

    Raises:
        RuntimeError: a daemon exited or was not ready in time; the message holds the tail of
            both logs.
    """

    def __init__(self, *, cores: int = 2, memory: str = "2g", timeout: float = 60.0) -> None:
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(reason)
        self.cores = cores
        self.memory = memory
        self.timeout = timeout
        self.dir = Path(tempfile.mkdtemp(prefix="tianping-spark-cluster-"))
        self.master_log = self.dir / "master.log"
        self.worker_log = self.dir / "worker.log"
        self._procs: list[subprocess.Popen] = []
        atexit.register(self.stop)
        started = time.perf_counter()
        try:
            self._start_with_retries()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started

    # -- starting ------------------------------------------------------------------
    def _start_with_retries(self) -> None:
        # A free port can be taken by another process before the daemon binds it; Spark is
        # told not to move to the next port (the URL would then be wrong), so the daemon exits
        # and the whole start is tried again on new ports.
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            try:
                self._start()
                return
            except _PortTaken:
                self._stop_processes()
                if attempt == _BIND_ATTEMPTS:
                    raise RuntimeError(
                        f"Spark cluster: ports were taken {attempt} times in a row\n" + self._logs()
                    ) from None

    def _start(self) -> None:
        ports = _free_ports(4)
        self.master_port, self.master_web_port, self.worker_port, self.worker_web_port = ports
        self.url = f"spark://127.0.0.1:{self.master_port}"
        self.master_web_url = f"http://127.0.0.1:{self.master_web_port}"
        self.worker_web_url = f"http://127.0.0.1:{self.worker_web_port}"
        spark_class = str(spark_home() / "bin" / "spark-class")
        env = self._env()
        self._procs.append(
            _launch(
                [spark_class, "org.apache.spark.deploy.master.Master"]
                + ["--host", "127.0.0.1", "--port", str(self.master_port)]
                + ["--webui-port", str(self.master_web_port)],
                env=env,
                log=self.master_log,
                cwd=self.dir,
            )
        )
        self._wait(lambda s: s.get("status") == "ALIVE", "the master to be up")
        self._procs.append(
            _launch(
                [spark_class, "org.apache.spark.deploy.worker.Worker"]
                + ["--host", "127.0.0.1", "--port", str(self.worker_port)]
                + ["--webui-port", str(self.worker_web_port)]
                + ["--cores", str(self.cores), "--memory", self.memory]
                + ["--work-dir", str(self.dir / "work"), self.url],
                env=env,
                log=self.worker_log,
                cwd=self.dir,
            )
        )
        self._wait(self._worker_registered, "the worker to register with the master")

    def _env(self) -> dict[str, str]:
        (self.dir / "work").mkdir(exist_ok=True)
        return _spark_env(
            self.dir,
            SPARK_LOG_DIR=str(self.dir / "logs"),
            SPARK_DAEMON_MEMORY="512m",
            SPARK_DAEMON_JAVA_OPTS="-Dspark.port.maxRetries=0",
        )

    def _worker_registered(self, state: dict[str, Any]) -> bool:
        return any(
            w.get("port") == self.worker_port and w.get("state") == "ALIVE"
            for w in state.get("workers", [])
        )

    def _wait(self, ready: Callable[[dict[str, Any]], bool], what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:
                    if "BindException" in self._logs() or "Address already in use" in self._logs():
                        raise _PortTaken
                    raise RuntimeError(
                        f"Spark cluster: a daemon exited with status {proc.returncode} while "
                        f"waiting for {what}\n" + self._logs()
                    )
            with contextlib.suppress(OSError, ValueError):
                if ready(self.state(timeout=2.0)):
                    return
            time.sleep(0.2)
        raise RuntimeError(
            f"Spark cluster: timed out after {self.timeout:.0f} s waiting for {what}\n"
            + self._logs()
        )

    def _logs(self) -> str:
        return (
            f"--- {self.master_log} (tail) ---\n{_tail(self.master_log)}\n"
            f"--- {self.worker_log} (tail) ---\n{_tail(self.worker_log)}"
        )

    # -- using ---------------------------------------------------------------------
    def state(self, timeout: float = 10.0) -> dict[str, Any]:
        """The master's state as its web UI's ``/json/`` gives it (workers, apps, status)."""
        with urllib.request.urlopen(f"{self.master_web_url}/json/", timeout=timeout) as resp:
            return json.load(resp)

    def applications(self) -> list[dict[str, Any]]:
        """Applications the master has seen, running first, then completed (``id``, ``name``, ...)."""
        state = self.state()
        return [*state.get("activeapps", []), *state.get("completedapps", [])]

    # -- stopping ------------------------------------------------------------------
    def _stop_processes(self) -> None:
        # The worker first: it stops its executors on SIGTERM.
        for proc in reversed(self._procs):
            _stop_group(proc)
        self._procs.clear()

    def stop(self) -> None:
        """Stop the worker, its executors and the master, and remove the temp folder."""
        try:
            self._stop_processes()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            atexit.unregister(self.stop)

    def __enter__(self) -> SparkCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SparkConnectServer:
    """A Spark Connect server on 127.0.0.1, started as ``tianping spark connect-server`` does
    (:func:`tianping.warehouse.sparkconnect.server_command`), local mode by default.

    Attributes:
        url: ``sc://127.0.0.1:PORT``.
        startup_seconds: from launch to the port accepting connections.
        log: the server's log file.
    """

    def __init__(self, master: str = "local[2]", *, timeout: float = 120.0) -> None:
        from tianping.warehouse.sparkconnect import server_command

        reason = unavailable()
        if reason is not None:
            raise RuntimeError(reason)
        self.dir = Path(tempfile.mkdtemp(prefix="tianping-spark-connect-"))
        self.log = self.dir / "server.log"
        (self.port,) = _free_ports(1)
        self.url = f"sc://127.0.0.1:{self.port}"
        env = _spark_env(self.dir)
        conf = {"spark.local.dir": str(self.dir / "local"), "spark.driver.memory": "1g"}
        started = time.perf_counter()
        self._proc = _launch(
            server_command(master, port=self.port, conf=conf), env=env, log=self.log, cwd=self.dir
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"Spark Connect server exited\n{_tail(self.log)}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                break
            if time.monotonic() > deadline:
                tail = _tail(self.log)
                self.stop()
                raise RuntimeError(f"Spark Connect server not up in {timeout:.0f} s\n{tail}")
            time.sleep(0.3)
        self.startup_seconds = time.perf_counter() - started

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        try:
            if self._proc.poll() is None:
                _stop_group(self._proc)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            atexit.unregister(self.stop)


class _PortTaken(Exception):
    """A daemon could not bind a port chosen as free: another process took it first."""


def run_on_cluster(
    url: str,
    script: str,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Run a Python snippet in a child process against the Spark master ``url``.

    The snippet runs as a file (``textwrap.dedent`` is applied) with
    ``sys.argv[1:] == [url, *args]`` and ``TIANPING_WAREHOUSE=url`` in its environment, in an empty temp folder as working directory.
    ``src/`` and ``tests/`` are on its ``PYTHONPATH`` (so ``import tianping`` and
    ``from sparkcluster import executor_tasks`` work), ``SPARK_LOCAL_IP=127.0.0.1``, and
    executors start Python workers with this interpreter. It must print one JSON object as the
    last line of its stdout; Spark's own logging goes to stderr.

    Args:
        url: the master URL, e.g. ``SparkCluster().url``.
        script: Python source; typically opens ``spark_session(sys.argv[1])``.
        args: further command-line arguments for the snippet (paths, sizes).
        env: extra environment variables for the child (override the above).
        timeout: seconds before the child and its JVM are killed.

    Returns:
        The JSON object the child printed.

    Raises:
        AssertionError: the child failed, timed out or did not print a JSON object; the message
            holds its exit status and the tail of its stdout and stderr.
    """
    path_parts = [str(SRC), str(TESTS)]
    if os.environ.get("PYTHONPATH"):
        path_parts.append(os.environ["PYTHONPATH"])
    child_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path_parts),
        "PYTHONUNBUFFERED": "1",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "TIANPING_WAREHOUSE": url,
        **(env or {}),
    }
    with tempfile.TemporaryDirectory(prefix="tianping-spark-child-") as tmp:
        folder = Path(tmp)
        (folder / "child.py").write_text(textwrap.dedent(script))
        proc = _launch(
            [sys.executable, str(folder / "child.py"), url, *args],
            env=child_env,
            log=folder / "stderr",
            stdout=folder / "stdout",
            cwd=folder,
        )
        try:
            status: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(proc, grace=5.0)
            status = None
        except BaseException:  # an interrupted run does not leave the child's JVM behind
            _stop_group(proc, grace=5.0)
            raise
        stdout = (folder / "stdout").read_text(errors="replace")
        stderr = (folder / "stderr").read_text(errors="replace")
    return _child_result(stdout, stderr, status, timeout)


def _child_result(stdout: str, stderr: str, status: int | None, timeout: float) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    problem = None
    if status is None:
        problem = f"timed out after {timeout:.0f} s"
    elif status != 0:
        problem = f"exited with status {status}"
    elif not lines:
        problem = "printed nothing on stdout"
    else:
        try:
            result = json.loads(lines[-1])
        except ValueError:
            result = None
        if isinstance(result, dict):
            return result
        problem = "did not end its stdout with a JSON object"
    tail_out = "\n".join(lines[-20:])
    tail_err = "\n".join(stderr.splitlines()[-40:])
    raise AssertionError(
        f"Spark child process {problem}\n--- stdout (tail) ---\n{tail_out}\n"
        f"--- stderr (tail) ---\n{tail_err}"
    )


def executor_tasks(session: Any) -> dict[str, int]:
    """Completed tasks per executor id of ``session``'s application, the driver left out.

    For use inside a :func:`run_on_cluster` child, after its queries: in local mode the
    driver runs every task and this is empty; on a cluster it shows the tasks really ran on
    the worker's executors. Reads the application's status store through py4j (Spark keeps it
    with the UI off).
    """
    summaries = session.sparkContext._jsc.sc().statusStore().executorList(False)
    tasks = {}
    for i in range(summaries.size()):
        summary = summaries.apply(i)
        if summary.id() != "driver":
            tasks[summary.id()] = int(summary.completedTasks())
    return tasks
