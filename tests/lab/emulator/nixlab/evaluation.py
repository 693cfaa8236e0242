"""What an evaluation of a guest's NixOS configuration costs, and the log of every one made.

On a real host, `nixos-container create --config` / `update` evaluate `<nixpkgs/nixos>` for the
container (`nix-env -f '<nixpkgs/nixos>' --set -A system`, facts §1.3), and the 25.11 `update`
evaluates it once more first (the `boot.isNspawnContainer` check). That costs seconds of CPU
and hundreds of MB each; the lab's stand-in evaluation costs milliseconds. So that a test or a
benchmark can see how many evaluations a run made, and what they would cost, each one is:

- logged, one JSON line per evaluation in LOG (per host, as /nix is): the time, the command,
  the container, the kind (`build`: evaluate and build the system; `check`: the `update`
  check), the source (the configuration file or the flake), whether it succeeded and the
  seconds charged;
- charged: the emulator waits COST seconds before it evaluates. COST is the number in
  COST_FILE, or 0 when there is none, so that the test suite keeps its pace; the benchmarks
  set it. REAL_HOST_SECONDS is what a real host pays (the source is in docs/lab.md).

The charge is wall time (a sleep), not CPU: evaluations on different hosts overlap, as they do
on real hosts, and the lab's shared cores stay free for the rest.
"""

import json
import os
import sys
import time

LOG = "/nix/var/nix/lab-evaluations.log"
COST_FILE = "/nix/var/nix/lab-evaluation-cost"
# Seconds of one evaluation of <nixpkgs/nixos> for a small container on a real host (docs/lab.md).
REAL_HOST_SECONDS = 10.0


def cost():
    """The seconds charged per evaluation: COST_FILE's number, else 0."""
    try:
        with open(COST_FILE, encoding="ascii") as handle:
            seconds = float(handle.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0
    return max(seconds, 0.0)


def record(entry):
    """Append ENTRY as one line (a single write to an O_APPEND file: lines never interleave)."""
    os.makedirs(os.path.dirname(LOG), exist_ok=True)
    line = (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8", "surrogateescape")
    descriptor = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)


def charged(kind, container, source, evaluate):
    """Charge the cost, run EVALUATE() and log it; returns what EVALUATE returned. A result of
    None, or a tuple whose first item is None or False, counts as a failed evaluation."""
    seconds = cost()
    started = time.time()
    if seconds:
        time.sleep(seconds)
    result = evaluate()
    first = result[0] if isinstance(result, tuple) else result
    record(dict(time=round(started, 3), command=os.path.basename(sys.argv[0]), pid=os.getpid(), kind=kind,
                container=container, source=source, ok=first is not None and first is not False,
                charged=seconds, seconds=round(time.time() - started, 3)))
    return result
