"""What every lab module shares: the error type, running commands, atomic writes, the lock."""

import contextlib
import errno
import os
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LAB_SCRIPTS = os.path.join(REPO, "tests", "lab")
CONTRACT_PATH = ("/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:"
                 "/usr/sbin:/usr/bin:/sbin:/bin")
HOST_PYTHON = "/usr/bin/python3"
IP, NSENTER, UNSHARE, SSHD = "/usr/sbin/ip", "/usr/bin/nsenter", "/usr/bin/unshare", "/usr/sbin/sshd"
SSH, SSH_KEYGEN = "/usr/bin/ssh", "/usr/bin/ssh-keygen"


class LabError(Exception):
    """A failure to report to the user as one clear line (exit status 1)."""


def run(argv, check=True, timeout=30):
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed (exit {result.returncode}): "
                       f"{result.stderr.strip()}")
    return result


def write_atomically(path, text, mode=0o644):
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def lab_lock(lab, timeout=120.0):
    """Serialise labctl runs on one lab id: an abstract socket leaves no file behind."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock.bind(f"\0nixfleet-lab-{lab.id}")
            break
        except OSError as error:
            if error.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                sock.close()
                raise LabError(f"another labctl holds the lock of lab {lab.id}") from error
            time.sleep(0.1)
    try:
        yield
    finally:
        sock.close()


def log_tail(path, lines=15):
    with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as stream:
        return "".join(stream.readlines()[-lines:])
    return ""
