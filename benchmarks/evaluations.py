#!/usr/bin/env python
"""Issue 14 item 6: guest evaluations per rollout, and the wall time with an evaluation cost.

Usage (root, the lab of NIXFLEET_LAB_ID up with at least 3 hosts):
    NIXFLEET_LAB_ID=5 .venv/bin/python benchmarks/evaluations.py [--count 50] [--configs 3] [--cost 1]
The fleet: COUNT containers on each of the first 3 hosts (state=present), sharing CONFIGS
distinct configurations (container i gets configuration i mod CONFIGS). Every host is charged
COST seconds per evaluation (the emulator's /nix/var/nix/lab-evaluation-cost, docs/lab.md), and
each host's evaluation log is read after each run. Runs, each with the rollout playbook:
the first rollout (every container created), a no-op, and a change of one configuration. It
prints the wall time, the evaluations (per kind) and what they would cost on a real host
(evaluations per host x REAL_HOST_SECONDS, as a host evaluates one container after the other).
Asserts nothing about time; the containers, the cost files and the logs are removed at the end.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fleet  # noqa: E402  (the shared Bench, checks and helpers)

LOG = '/nix/var/nix/lab-evaluations.log'
COST_FILE = '/nix/var/nix/lab-evaluation-cost'
REAL_HOST_SECONDS = 10.0      # nixlab/evaluation.py (the source is in docs/lab.md)
HOSTS = ('host1', 'host2', 'host3')


def config_text(index, version=1):
    return 'services.nginx.enable = true; environment.etc."role".text = "role %d version %d";' % (index, version)


def write_fleet(bench, configs, versions):
    bench.spec = [dict(name='c%d' % i, config=config_text(i % configs, versions.get(i % configs, 1)), state='present')
                  for i in range(bench.count)]
    (bench.dir / 'group_vars' / 'nixos_hosts.yml').write_text(json.dumps(dict(containers=bench.spec)))


def evaluations():
    """Every host's log, emptied after reading: {host: [entries]}."""
    found = {}
    for host in HOSTS:
        text = fleet.labctl('exec', host, '--', 'sh', '-c', 'cat %s 2>/dev/null; rm -f %s' % (LOG, LOG))
        found[host] = [json.loads(line) for line in text.splitlines() if line.strip()]
    return found


def row(label, run, found, wanted):
    fleet.check_summary(run, wanted)
    entries = [e for host in HOSTS for e in found[host]]
    kinds = {}
    for entry in entries:
        kinds[entry['kind']] = kinds.get(entry['kind'], 0) + 1
    per_host = max(len(found[h]) for h in HOSTS)
    print('| %s | %.1f | %d | %s | %d | %.0f |' % (
        label, run.elapsed, len(entries), ', '.join('%s %d' % kv for kv in sorted(kinds.items())) or '-',
        per_host, per_host * REAL_HOST_SECONDS))
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=50)
    parser.add_argument('--configs', type=int, default=3)
    parser.add_argument('--cost', type=float, default=1.0, help='seconds charged per evaluation in the lab')
    args = parser.parse_args()
    fleet.HOSTS = HOSTS
    limit = ('--limit', ','.join(HOSTS))
    print('machine: nproc=%d load=%s, %s; %d hosts x %d containers, %d distinct configurations, %.1f s per evaluation'
          % (os.cpu_count(), fleet.load(), time.strftime('%Y-%m-%d %H:%M'), len(HOSTS), args.count, args.configs,
             args.cost))
    bench = fleet.Bench(args.count)
    try:
        for host in HOSTS:
            fleet.labctl('exec', host, '--', 'sh', '-c', 'echo %s > %s; rm -f %s' % (args.cost, COST_FILE, LOG))
        print('\n| rollout | wall s | evaluations | by kind | most on one host | real host: most on one host x %.0f s |'
              % REAL_HOST_SECONDS)
        print('|---|---|---|---|---|---|')
        write_fleet(bench, args.configs, {})
        run = bench.run('rollout', None, limit)
        row('first rollout (every container created)', run, evaluations(), {'created': args.count})
        run = bench.run('rollout', None, limit)
        row('no-op', run, evaluations(), {'unchanged': args.count})
        write_fleet(bench, args.configs, {0: 2})
        changed = len(range(0, args.count, args.configs))
        run = bench.run('rollout', None, limit)
        row('one configuration changed (%d containers per host)' % changed, run, evaluations(),
            {'updated': changed, 'unchanged': args.count - changed})
        print('\nload after: %s' % fleet.load())
    finally:
        for host in HOSTS:
            fleet.labctl('exec', host, '--', 'rm', '-f', COST_FILE, check=False)
        bench.write_spec({}, state='absent')
        bench.run('one_call', None, limit)
        evaluations()
        bench.cleanup()


if __name__ == '__main__':
    main()
