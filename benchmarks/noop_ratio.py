#!/usr/bin/env python
"""Issue 14 item 4: a no-op rollout as a ratio to a one-task ping playbook, at several fleet shapes.

Usage (root, the lab of NIXFLEET_LAB_ID up with at least as many hosts as the largest shape,
e.g. `tests/lab/labctl up --hosts 20`):
    NIXFLEET_LAB_ID=5 .venv/bin/python benchmarks/noop_ratio.py [--shapes 3x50,20x20] [--runs 5]
        [--baseline /tmp/base/.build]   # also the rollout of another tree, interleaved (before/after)
        [--phases]                      # also each playbook's time per task (median)
For each shape HOSTSxCOUNT the first HOSTS lab hosts (`--limit`) get COUNT containers
(state=present, one nixos_containers call per host), then the ping playbook, the rollout
playbook (nixfleet.containers.rollout) and one nixos_containers call per host run
interleaved, RUNS times each; every run is checked (changed=0 everywhere, the rollout's
summary `success` with every container unchanged). Prints medians, the ratios to ping, the
controller CPU and the load; asserts nothing about time. The containers are destroyed after
each shape.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fleet  # noqa: E402  (the shared Bench, checks and helpers)

ORDER = ('ping', 'rollout', 'one_call')
BASELINE = 'rollout_baseline'


def shape_run(shape, runs, pipelining, baseline=None, phases=False):
    hosts_count, count = (int(n) for n in shape.split('x'))
    hosts = tuple(sorted('host%d' % i for i in range(1, hosts_count + 1)))
    fleet.HOSTS = hosts          # what the checks expect in the recap and the summary
    limit = ('--limit', ','.join(hosts))
    env = dict(ANSIBLE_PIPELINING=pipelining, ANSIBLE_FORKS=str(max(5, hosts_count)))
    bench = fleet.Bench(count)
    try:
        start = time.time()
        bench.run('one_call', env, limit)
        created = time.time() - start
        load_before = fleet.load()
        order = ORDER + ((BASELINE,) if baseline else ())
        if baseline:
            # The same rollout playbook from another tree of the collection (e.g. `git worktree add`
            # of the commit before a change, with a .build/ansible_collections/nixfleet/containers link).
            bench.playbooks[BASELINE] = fleet.ROLLOUT
            fleet.LABELS[BASELINE] = 'rollout playbook, baseline tree %s' % baseline
        results = dict((name, []) for name in order)
        for dummy in range(runs):
            for name in order:
                extra = dict(ANSIBLE_COLLECTIONS_PATH=baseline) if name == BASELINE else {}
                run = bench.run(name, dict(env, **extra), limit)
                fleet.check_noop('rollout' if name == BASELINE else name, run, count)
                results[name].append(run)
        load_after = fleet.load()
        ping = statistics.median(r.elapsed for r in results['ping'])
        ping_cpu = statistics.median(r.cpu for r in results['ping'])
        values = (hosts_count, count, pipelining, env['ANSIBLE_FORKS'], runs, created, load_before, load_after)
        print('\n%d hosts x %d containers, pipelining %s, forks %s, median of %d (interleaved); '
              'created in %.1f s; load %s -> %s\n' % values)
        fleet.header('playbook', 'median s', 'runs s', 'vs ping', 'controller CPU s', 'CPU vs ping')
        for name in order:
            median = statistics.median(r.elapsed for r in results[name])
            cpu = statistics.median(r.cpu for r in results[name])
            print('| %s | %.2f | %s | %.2fx | %.2f | %.2fx |' % (
                fleet.LABELS[name], median, fleet.fmt(r.elapsed for r in results[name]), median / ping,
                cpu, cpu / ping_cpu))
        if phases:
            # Each task from its start to the next one's (fleet.task_shares), median over the runs.
            for name in order:
                print('\n%s, phases (median s):\n' % fleet.LABELS[name])
                fleet.header('phase', 's')
                for phase, seconds in fleet.task_shares(results[name]):
                    print('| %s | %.3f |' % (phase, seconds))
        sys.stdout.flush()
    finally:
        bench.write_spec({}, state='absent')
        bench.run('one_call', env, limit)
        bench.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--shapes', default='3x50,20x20', help='HOSTSxCOUNT, comma-separated')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--pipelining', default='True')
    parser.add_argument('--baseline', help='a collections path holding another tree of nixfleet.containers: '
                                           'its rollout playbook runs interleaved with the others')
    parser.add_argument('--phases', action='store_true', help='also print where each playbook spends its time, per task')
    args = parser.parse_args()
    print('machine: nproc=%d kernel=%s load=%s, %s, NIXFLEET_LAB_ID=%s' % (
        os.cpu_count(), os.uname().release, fleet.load(), time.strftime('%Y-%m-%d %H:%M'),
        os.environ.get('NIXFLEET_LAB_ID')))
    for shape in args.shapes.split(','):
        shape_run(shape, args.runs, args.pipelining, args.baseline, args.phases)
    print('\nload after: %s' % fleet.load())


if __name__ == '__main__':
    main()
