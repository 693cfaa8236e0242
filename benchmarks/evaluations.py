#!/usr/bin/env python
"""Issue 14 item 6: guest evaluations per rollout, and the wall time with an evaluation cost.

Usage (root, the lab of NIXFLEET_LAB_ID up with at least 3 hosts):
    NIXFLEET_LAB_ID=5 .venv/bin/python benchmarks/evaluations.py [--count 50] [--configs 3] [--cost 1]
        [--modes per-container,per-host,build-host] [--no-noop]
The fleet: COUNT containers on each of the first 3 hosts (state=present), sharing CONFIGS
distinct configurations (container i gets configuration i mod CONFIGS). Every host is charged
COST seconds per evaluation (the emulator's /nix/var/nix/lab-evaluation-cost, docs/lab.md), and
each host's evaluation log is read after each run. Runs, each with the rollout playbook:
the first rollout (every container created), a no-op, and a change of one configuration, for
each build mode of the role: per-container (container_fleet_build_once=false: nixos-container
builds each container, as before issue 14), per-host (each distinct system built once per host
before the first batch) and build-host (built once on host4, the closures copied). It
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


# The role's variables of each build mode (roles/container_fleet: container_fleet_build_once and
# container_fleet_build_host).
MODES = {
    'per-container': dict(container_fleet_build_once=False),
    'per-host': dict(container_fleet_build_once=True),
    'build-host': dict(container_fleet_build_once=True, container_fleet_build_host='host4'),
}


def write_fleet(bench, configs, versions, mode_vars=None):
    bench.spec = [dict(name='c%d' % i, config=config_text(i % configs, versions.get(i % configs, 1)), state='present')
                  for i in range(bench.count)]
    variables = dict(containers=bench.spec)
    variables.update(mode_vars or {})
    (bench.dir / 'group_vars' / 'nixos_hosts.yml').write_text(json.dumps(variables))


def evaluations(hosts=HOSTS):
    """Every host's log, emptied after reading: {host: [entries]}."""
    found = {}
    for host in hosts:
        text = fleet.labctl('exec', host, '--', 'sh', '-c', 'cat %s 2>/dev/null; rm -f %s' % (LOG, LOG))
        found[host] = [json.loads(line) for line in text.splitlines() if line.strip()]
    return found


def row(mode, label, run, found, wanted):
    fleet.check_summary(run, wanted)
    entries = [e for host in found for e in found[host]]
    kinds = {}
    for entry in entries:
        kinds[entry['kind']] = kinds.get(entry['kind'], 0) + 1
    per_host = max(len(found[h]) for h in found)
    print('| %s | %s | %.1f | %d | %s | %d | %.0f |' % (
        mode, label, run.elapsed, len(entries), ', '.join('%s %d' % kv for kv in sorted(kinds.items())) or '-',
        per_host, per_host * REAL_HOST_SECONDS))
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=50)
    parser.add_argument('--configs', type=int, default=3)
    parser.add_argument('--cost', type=float, default=1.0, help='seconds charged per evaluation in the lab')
    parser.add_argument('--modes', default='per-container,per-host',
                        help='comma-separated, of: %s (build-host needs a 4th lab host)' % ', '.join(MODES))
    parser.add_argument('--no-noop', action='store_true', help='skip the no-op rollout')
    parser.add_argument('--setup-cost', type=float, default=None,
                        help='seconds charged per evaluation in the first rollout (default: --cost); the changed '
                             'rollout is the figure of the goal, the first one only sets it up')
    args = parser.parse_args()
    modes = args.modes.split(',')
    fleet.HOSTS = HOSTS
    hosts = HOSTS + (('host4',) if 'build-host' in modes else ())
    limit = ('--limit', ','.join(HOSTS))
    print('machine: nproc=%d load=%s, %s; %d hosts x %d containers, %d distinct configurations, %.1f s per evaluation'
          % (os.cpu_count(), fleet.load(), time.strftime('%Y-%m-%d %H:%M'), len(HOSTS), args.count, args.configs,
             args.cost))
    bench = fleet.Bench(args.count)
    try:
        for host in hosts:
            fleet.labctl('exec', host, '--', 'rm', '-f', LOG)
        setup_cost = args.cost if args.setup_cost is None else args.setup_cost
        print('\n| mode | rollout | wall s | evaluations | by kind | most on one host | real host: most on one host x %.0f s |'
              % REAL_HOST_SECONDS)
        print('|---|---|---|---|---|---|---|')
        changed = len(range(0, args.count, args.configs))
        for mode in modes:
            write_fleet(bench, args.configs, {}, MODES[mode])
            charge(hosts, setup_cost)
            run = bench.run('rollout', None, limit)
            row(mode, 'first rollout (every container created, %.1f s per evaluation)' % setup_cost, run,
                evaluations(hosts), {'created': args.count})
            charge(hosts, args.cost)
            if not args.no_noop:
                run = bench.run('rollout', None, limit)
                row(mode, 'no-op', run, evaluations(hosts), {'unchanged': args.count})
            write_fleet(bench, args.configs, {0: 2}, MODES[mode])
            run = bench.run('rollout', None, limit)
            row(mode, 'one configuration changed (%d containers per host)' % changed, run, evaluations(hosts),
                {'updated': changed, 'unchanged': args.count - changed})
            remove_all(bench, limit, hosts)
        print('\nload after: %s' % fleet.load())
    finally:
        for host in hosts:
            fleet.labctl('exec', host, '--', 'rm', '-f', COST_FILE, check=False)
        remove_all(bench, limit, hosts)
        bench.cleanup()


def charge(hosts, seconds):
    """Every host charges SECONDS per evaluation from now on (the emulator's cost file)."""
    for host in hosts:
        fleet.labctl('exec', host, '--', 'sh', '-c', 'echo %s > %s' % (seconds, COST_FILE))


def remove_all(bench, limit, hosts):
    """Every container of the fleet destroyed, the built systems' roots and the logs removed."""
    bench.write_spec({}, state='absent')
    bench.run('one_call', None, limit)
    for host in hosts:
        fleet.labctl('exec', host, '--', 'rm', '-rf', '/nix/var/nix/profiles/nixfleet-systems', '/var/lib/nixfleet',
                     check=False)
    evaluations(hosts)


if __name__ == '__main__':
    main()
