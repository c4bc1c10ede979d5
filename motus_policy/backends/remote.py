"""A :class:`~motus_policy.backends.base.PolicyBackend` running another backend in a child.

:class:`RemoteBackend` starts ``python -m motus_policy.backends.remote`` (``subprocess``, a fresh
interpreter like the multiprocessing *spawn* start method, but without re-importing the parent's
``__main__``: a ``python -m motus_policy.ros.policy_node`` parent would otherwise re-run its
rclpy imports in the child, and scripts without a main guard would fail), builds the wrapped
backend there with :func:`motus_policy.backends.make_backend` and forwards ``load``, ``infer``
and ``reset`` to it. Inference then never holds the control process's GIL (the parent thread
that calls ``infer`` waits on a socket, which releases the GIL), and the model's imports (torch
for ``motus``) stay in the child.

Transport: a Unix socket pair framed by ``multiprocessing.connection.Connection``. Every
message is pickled with protocol 5 and its numpy arrays are sent *out of band* as raw byte
buffers (``send_bytes``): no pickle copy of the 3 x 480 x 640 images, and the socket writes
release the GIL. Received arrays are backed by fresh writable buffers.

Errors: an exception raised by the wrapped backend in the child is re-raised in the parent with
the same type and message (the child's traceback is attached as a note); if it cannot be
pickled, a :class:`RemoteBackendError` carries its type name and message. A child that dies
makes every later call raise :class:`RemoteBackendError` (the runtime then holds and reports).

Lifetime: the child exits when the parent closes the socket (:meth:`RemoteBackend.close`,
garbage collection, interpreter exit, or the parent's death: EOF), and a watcher thread in the
child exits it when its parent process goes away while it is busy inferring (re-parenting
checked every :data:`PARENT_POLL_S`). The child ignores SIGINT (Ctrl-C / ``killpg`` of the
node's group stop the parent, whose exit then stops the child).

Threads (parent): the constructor and ``load`` on the configuring thread, ``infer`` / ``reset``
on the inference worker; a lock serialises the calls. :meth:`close` never waits on that lock
(a busy child is terminated). :meth:`set_option` only queues (sent with
the next request; it never waits for a running inference). Child: a main thread serving
requests and the parent watcher.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from motus_policy.types import ActionChunk, Observation

START_TIMEOUT_S = 120.0
"""How long the constructor waits for the child to import and build its backend."""
PARENT_POLL_S = 0.5
"""How often the child's watcher checks that its parent is still alive."""


class RemoteBackendError(RuntimeError):
    """The backend process failed (died, could not start, or raised an unpicklable error)."""


# -- wire format ------------------------------------------------------------------------------
def _send(conn: Connection, obj: Any) -> None:
    """Send ``obj`` as a pickle-5 header plus its out-of-band buffers (numpy data, raw)."""
    buffers: list[pickle.PickleBuffer] = []
    header = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    views = [b.raw() for b in buffers]
    conn.send_bytes(pickle.dumps((header, [v.nbytes for v in views]), protocol=5))
    for v in views:
        conn.send_bytes(v)


def _recv(conn: Connection) -> Any:
    """Receive what :func:`_send` sent; arrays come back in new writable buffers.

    Raises:
        EOFError: the other end closed the pipe.
    """
    header, sizes = pickle.loads(conn.recv_bytes())
    buffers = []
    for n in sizes:
        buf = bytearray(n)
        if n:
            conn.recv_bytes_into(buf)
        else:
            conn.recv_bytes()
        buffers.append(buf)
    return pickle.loads(header, buffers=buffers)


def _contiguous_obs(obs: Observation) -> Observation:
    """The observation with C-contiguous arrays (out-of-band pickling needs contiguous data)."""
    images = {k: np.ascontiguousarray(v) for k, v in obs.images.items()}
    return Observation(
        images, np.ascontiguousarray(obs.state), obs.stamp_ns, dict(obs.image_stamps_ns),
        obs.instruction,
    )  # fmt: skip


# -- child side -------------------------------------------------------------------------------
def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent_pid:  # re-parented: the parent died
            os._exit(3)


def _describe(backend: Any) -> dict:
    """The properties the parent mirrors (read after construction and after load)."""
    props = {
        "action_rate_hz": float(backend.action_rate_hz),
        "chunk_size": int(backend.chunk_size),
        "qpos_source": backend.qpos_source,
        "recommended_n_action_steps": getattr(backend, "recommended_n_action_steps", None),
    }
    try:
        props["video_frame_offsets_ns"] = tuple(getattr(backend, "video_frame_offsets_ns", ()))
    except RuntimeError:  # MotusBackend before load
        props["video_frame_offsets_ns"] = ()
    return props


def _error_reply(exc: BaseException) -> tuple:
    tb = "".join(traceback.format_exception(exc))
    try:
        pickled = pickle.dumps(exc)
        pickle.loads(pickled)
    except Exception:  # noqa: BLE001 - any unpicklable exception travels as text
        pickled = None
    return ("error", type(exc).__name__, str(exc), tb, pickled)


def serve(conn: Connection, parent_pid: int) -> None:
    """Child side: build the backend named in the first message, then serve requests.

    Protocol (each message via :func:`_send`): parent -> ``("start", (kind, kwargs, nice))``,
    then ``(op, args, options)`` with op ``load`` / ``infer`` / ``reset`` / ``close`` and
    ``options`` a list of ``(config field, value)`` applied first; child -> ``("progress",
    line)`` during load, then ``("ok", result)`` or ``("error", type name, message, traceback,
    pickled exception or None)``. Returns on ``close``, EOF or a failed send (the parent is
    gone: a broken pipe is the normal end after Ctrl-C of a launch, not an error to print).
    """
    try:
        _serve(conn, parent_pid)
    except (EOFError, OSError):  # BrokenPipeError / ConnectionResetError: the parent is gone
        return


def _serve(conn: Connection, parent_pid: int) -> None:
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    try:
        _, (kind, kwargs, nice) = _recv(conn)
    except (EOFError, OSError):
        return
    if hasattr(os, "sched_setscheduler"):  # never inherit a real-time policy from the node
        with contextlib.suppress(OSError):
            if os.sched_getscheduler(0) != os.SCHED_OTHER:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    if nice:
        os.nice(nice)
    from motus_policy.backends import make_backend

    try:
        backend = make_backend(kind, **kwargs)
        _send(conn, ("ok", _describe(backend)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which re-raises it
        _send(conn, _error_reply(exc))
        return
    while True:
        try:
            op, args, options = _recv(conn)
        except (EOFError, OSError):
            return  # the parent closed the pipe or died
        if op == "close":
            _send(conn, ("ok", None))
            return
        try:
            for name, value in options:  # live option changes queued by set_option
                setattr(backend.config, name, value)
            if op == "load":
                backend.load(lambda line: _send(conn, ("progress", line)))
                result = _describe(backend)
            elif op == "infer":
                result = backend.infer(args["obs"], **args["kw"])
            elif op == "reset":
                result = backend.reset()
            else:
                raise ValueError(f"unknown request {op!r}")
            _send(conn, ("ok", result))
        except (EOFError, OSError) as exc:
            if isinstance(exc, ConnectionError | EOFError):
                raise  # the parent is gone (a send failed): serve() ends quietly
            _send(conn, _error_reply(exc))  # the backend's own OSError: report it
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which re-raises it
            _send(conn, _error_reply(exc))


def _child_entry(argv: list[str]) -> None:
    """``python -m motus_policy.backends.remote FD PARENT_PID``: serve on the inherited socket.

    Exits with status 0 and prints nothing when the parent goes away (EOF or a broken pipe).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop (EOF/close)
    fd, parent_pid = int(argv[0]), int(argv[1])
    serve(Connection(fd), parent_pid)


# -- parent side ------------------------------------------------------------------------------
def _shutdown(proc: subprocess.Popen, conn: Connection, timeout_s: float) -> None:
    """Close the pipe (the child exits on EOF), then wait; terminate / kill if it lingers."""
    with contextlib.suppress(OSError):
        conn.close()
    for stop in (None, proc.terminate, proc.kill):
        if stop is not None:
            stop()
        try:
            proc.wait(timeout_s if stop is None else 2.0)
            return
        except subprocess.TimeoutExpired:
            continue


class RemoteBackend:
    """Runs ``make_backend(kind, **kwargs)`` in a spawned child process (see module docstring).

    Args:
        kind: backend name for :func:`motus_policy.backends.make_backend` (``scripted``, ``hold``,
            ``motus``).
        kwargs: its keyword arguments; must be picklable (a RobotProfile, a ScriptedConfig,
            strings).
        nice: niceness increment applied in the child (``os.nice``), 0 = none; > 0 lets the OS
            prefer the control process when both want a core.
        threads: if > 0, ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` of the child (torch's CPU
            intra-op threads). On the shared 2-core dev box 1 thread ran the tiny Motus chunk
            ~3-6x faster than 2 (41-50 vs 150-300 ms, with a training job on the box);
            0 = the library default (one per core). The policy node passes
            ``backend_threads`` (default 1).
        start_timeout_s: how long to wait for the child to build its backend.

    Raises:
        The wrapped constructor's error, re-raised with its type and message (e.g. ValueError for
        an unknown kind, FileNotFoundError for a missing checkpoint).
        RemoteBackendError: the child died or did not answer within ``start_timeout_s``.
    """

    def __init__(
        self,
        kind: str,
        kwargs: dict | None = None,
        *,
        nice: int = 0,
        threads: int = 0,
        start_timeout_s: float = START_TIMEOUT_S,
    ):
        self.kind = kind
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the folder holding motus_policy/
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        if threads > 0:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(int(threads))
        self._proc = subprocess.Popen(
            # -P: no working directory on sys.path, so the child imports the same code as this
            # process (PYTHONPATH above), not a source tree the node happens to be started in
            [sys.executable, "-P", "-m", __name__, str(child_sock.fileno()), str(os.getpid())],
            pass_fds=(child_sock.fileno(),),
            env=env,
        )
        child_sock.close()  # only the child holds its end: its death is EOF here
        self._conn = Connection(parent_sock.detach())
        self._lock = threading.Lock()
        self._options: list[tuple[str, Any]] = []
        self._options_lock = threading.Lock()
        self._dead: str | None = None
        self._finalizer = weakref.finalize(self, _shutdown, self._proc, self._conn, 5.0)
        try:
            _send(self._conn, ("start", (kind, dict(kwargs or {}), int(nice))))
            if not self._conn.poll(start_timeout_s):
                raise RemoteBackendError(
                    f"backend process ({kind}) did not start within {start_timeout_s:.0f} s"
                )
            self._props: dict = self._reply(None)
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int | None:
        """Process id of the child."""
        return self._proc.pid

    @property
    def action_rate_hz(self) -> float:
        """The wrapped backend's action rate (Hz), mirrored at start and after load."""
        return self._props["action_rate_hz"]

    @property
    def chunk_size(self) -> int:
        """The wrapped backend's chunk size A, mirrored at start and after load."""
        return self._props["chunk_size"]

    @property
    def qpos_source(self) -> str | None:
        """The wrapped backend's training qpos source, mirrored at start and after load."""
        return self._props["qpos_source"]

    @property
    def recommended_n_action_steps(self) -> int | None:
        """The wrapped backend's recommended actions per chunk (mirrored at start and load)."""
        return self._props["recommended_n_action_steps"]

    @property
    def video_frame_offsets_ns(self) -> tuple[int, ...]:
        """The wrapped backend's frame offsets (int ns; empty before load or without idm)."""
        return self._props["video_frame_offsets_ns"]

    def _child_gone(self, exc: BaseException) -> RemoteBackendError:
        """Record that the child died (with its exit code) and return the error to raise.

        Both ends of the pipe can notice first (a failed send or an EOF on
        receive); either way the message names the pid and the exit code
        (negative = killed by that signal), waiting up to 1 s for it.
        """
        try:
            code = self._proc.wait(1.0)
        except subprocess.TimeoutExpired:
            code = None
        self._dead = self._dead or (
            f"backend process ({self.kind}, pid {self._proc.pid}) exited "
            f"(exit code {code}; {type(exc).__name__}: {exc})"
        )
        return RemoteBackendError(self._dead)

    def _reply(self, progress: Callable[[str], None] | None) -> Any:
        """Wait for the answer to the last request, forwarding progress lines."""
        while True:
            try:
                msg = _recv(self._conn)
            except (EOFError, OSError) as exc:
                raise self._child_gone(exc) from exc
            if msg[0] == "progress":
                if progress is not None:
                    progress(msg[1])
                continue
            if msg[0] == "ok":
                return msg[1]
            _, name, text, tb, pickled = msg
            exc = None
            if pickled is not None:
                try:
                    exc = pickle.loads(pickled)
                except Exception:  # noqa: BLE001 - fall back to a text error
                    exc = None
            if not isinstance(exc, BaseException):
                exc = RemoteBackendError(f"{name}: {text}")
            exc.add_note(f"raised in the backend process (pid {self._proc.pid}):\n{tb}")
            raise exc

    def _call(self, op: str, args: Any = None, progress=None) -> Any:
        with self._lock:
            if self._dead is not None:
                raise RemoteBackendError(self._dead)
            with self._options_lock:
                options, self._options = self._options, []
            try:
                _send(self._conn, (op, args, options))
            except (OSError, ValueError) as exc:  # broken pipe / closed connection
                raise self._child_gone(exc) from exc
            return self._reply(progress)

    def load(self, progress: Callable[[str], None] | None = None) -> None:
        """Load in the child; its progress lines are passed to ``progress`` here."""
        self._props = self._call("load", progress=progress)

    def infer(
        self,
        obs: Observation,
        *,
        mode: str,
        num_steps: int,
        action_prefix: np.ndarray | None,
        instruction: str,
        future_frames: np.ndarray | None = None,
    ) -> ActionChunk:
        """Infer in the child; see :meth:`motus_policy.backends.base.PolicyBackend.infer`."""
        kw = {
            "mode": mode,
            "num_steps": num_steps,
            "action_prefix": None
            if action_prefix is None
            else np.ascontiguousarray(action_prefix),
            "instruction": instruction,
        }
        if future_frames is not None:
            kw["future_frames"] = np.ascontiguousarray(future_frames)
        return self._call("infer", {"obs": _contiguous_obs(obs), "kw": kw})

    def reset(self) -> None:
        """Reset the wrapped backend."""
        self._call("reset")

    def set_option(self, name: str, value: Any) -> None:
        """Set ``backend.config.<name> = value`` in the child before its next call (no wait).

        Used for the scripted fakes' live knobs (``scripted.fault``, ``scripted.latency_s``).
        """
        with self._options_lock:
            self._options.append((name, value))  # sent with the next request

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the child (idempotent); never waits for an inference in flight.

        Idle: a ``close`` request, then the pipe is closed and the child joined (terminated /
        killed if it lingers past ``timeout_s``). Busy (another thread is inside ``infer`` or
        ``reset``): the child is terminated at once (killed after 2 s), which makes that call
        raise :class:`RemoteBackendError`; the pipe is closed once that call has returned. A
        lifecycle transition (cleanup, shutdown) thus waits for the process to die, never for
        the model (issue #14, defect 2).
        """
        if not self._finalizer.alive:
            return
        self._finalizer.detach()
        if self._lock.acquire(blocking=False):
            try:
                if self._dead is None:
                    with contextlib.suppress(OSError, ValueError):
                        _send(self._conn, ("close", None, []))
                        self._conn.poll(timeout_s)
            finally:
                self._dead = self._dead or f"backend process ({self.kind}) was closed"
                self._lock.release()
            _shutdown(self._proc, self._conn, timeout_s)
            return
        self._dead = self._dead or f"backend process ({self.kind}) was closed"
        for stop in (self._proc.terminate, self._proc.kill):
            stop()
            try:
                self._proc.wait(2.0)
                break
            except subprocess.TimeoutExpired:
                continue

        def _close_when_free() -> None:  # the busy caller gets EOF, then releases the lock
            with self._lock, contextlib.suppress(OSError):
                self._conn.close()

        threading.Thread(target=_close_when_free, name="remote_backend_close", daemon=True).start()


if __name__ == "__main__":
    _child_entry(sys.argv[1:])
