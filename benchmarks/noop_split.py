#!/usr/bin/env python
"""Issue 14 item 4: where a no-op rollout's time goes beyond ping's, controller against host.

Usage (root, the lab of NIXFLEET_LAB_ID up with at least HOSTS hosts):
    NIXFLEET_LAB_ID=3 .venv/bin/python benchmarks/noop_split.py [--shape 20x20] [--runs 3]
For the first HOSTS lab hosts (`--limit`) with COUNT containers each (state=present), the ping
playbook, one nixos_containers call per host and the rollout playbook, interleaved RUNS times:
(1) per module task and host: the controller's time before the remote Python, the remote
    Python (benchmarks/timed_python as the interpreter) and the controller's time after it;
(2) the controller's CPU per task: each Ansible worker's CPU time, summed over the hosts, and
    the main process's CPU (this script runs ansible-playbook in-process with the worker's
    `_run` wrapped: `noop_split.py --ansible-playbook ARGS`);
(3) inside host1: the CPU of the AnsiballZ file of ping and of the rollout's plan (brief,
    check mode), run as Ansible runs it (kept with ANSIBLE_KEEP_REMOTE_FILES).
Every run is checked (a no-op everywhere). Prints medians; asserts nothing about time.
"""

import argparse
import collections
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ('ping', 'one_call', 'rollout')
PLAN = {'name': 'plan', 'nixfleet.containers.nixos_containers': {'containers': '{{ containers }}', 'brief': True},
        'check_mode': True}


def ansible_playbook(argv):
    """ansible-playbook in this process, each worker's CPU and the main process's logged."""
    from ansible.executor.process import worker
    log = os.environ['NIXFLEET_BENCH_CPU_LOG']
    run = worker.WorkerProcess._run

    def timed_run(self):
        start = time.process_time()
        try:
            return run(self)
        finally:
            with open(log, 'a', encoding='utf-8') as stream:
                stream.write(json.dumps(['task', self._task.get_name(), time.process_time() - start]) + '\n')

    worker.WorkerProcess._run = timed_run
    from ansible.cli.playbook import main
    sys.argv = ['ansible-playbook'] + argv
    try:
        main()
    finally:
        own = resource.getrusage(resource.RUSAGE_SELF)
        with open(log, 'a', encoding='utf-8') as stream:
            stream.write(json.dumps(['main', '', own.ru_utime + own.ru_stime]) + '\n')


def cpu_run(bench, name, env, limit):
    """One run through ansible_playbook(): {task: workers' CPU}, main process CPU."""
    import fleet
    log = bench.dir / 'cpu.jsonl'
    for path in (log, bench.times):
        if path.exists():
            path.unlink()
    proc = subprocess.run([sys.executable, __file__, '--ansible-playbook', bench.playbooks[name]] + list(limit),
                          env=dict(bench.env, NIXFLEET_BENCH_CPU_LOG=str(log), **env),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit('%s failed:\n%s\n%s' % (name, proc.stdout[-3000:], proc.stderr[-3000:]))
    fleet.check_noop(name, fleet.Run(0, 0, 0, proc, bench.times.exists() and json.loads(bench.times.read_text())), bench.count)
    tasks, main = collections.OrderedDict(), 0.0
    for line in log.read_text().splitlines():
        kind, task, seconds = json.loads(line)
        if kind == 'main':
            main = seconds
        else:
            tasks[task] = tasks.get(task, 0.0) + seconds
    return tasks, main


def inside_host1(bench, env):
    """CPU of the kept AnsiballZ files of ping and of the plan, run inside host1 (median of 7)."""
    import fleet
    fleet.labctl('exec', 'host1', '--', 'rm', '-rf', '/tmp/.ansible/tmp')
    keep = dict(env, ANSIBLE_KEEP_REMOTE_FILES='1', ANSIBLE_PIPELINING='False')
    for name in ('ping', 'plan'):
        subprocess.run([fleet.PLAYBOOK, bench.playbooks[name], '--limit', 'host1'], env=dict(bench.env, **keep),
                       capture_output=True, text=True, check=True)
    files = fleet.labctl('exec', 'host1', '--', 'find', '/tmp/.ansible/tmp', '-name', 'AnsiballZ_*.py').split()
    code = ('import resource,subprocess,statistics,sys,json\n'
            'out={}\n'
            'for f in sys.argv[1:]:\n'
            '    t=[]\n'
            '    for i in range(7):\n'
            '        b=resource.getrusage(resource.RUSAGE_CHILDREN)\n'
            '        subprocess.run(["/usr/bin/python3",f],stdout=subprocess.DEVNULL,check=True)\n'
            '        a=resource.getrusage(resource.RUSAGE_CHILDREN)\n'
            '        t.append(a.ru_utime+a.ru_stime-b.ru_utime-b.ru_stime)\n'
            '    out[f.rsplit("/",1)[1]]=statistics.median(t)\n'
            'print(json.dumps(out))\n')
    try:
        sizes = dict((Path(f).name, int(fleet.labctl('exec', 'host1', '--', 'stat', '-c', '%s', f))) for f in files)
        result = json.loads(fleet.labctl('exec', 'host1', '--', '/usr/bin/python3', '-c', code, *files))
    finally:
        fleet.labctl('exec', 'host1', '--', 'rm', '-rf', '/tmp/.ansible/tmp')
    return result, sizes


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--ansible-playbook':
        return ansible_playbook(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--shape', default='20x20', help='HOSTSxCOUNT')
    parser.add_argument('--runs', type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import fleet
    hosts_count, count = (int(n) for n in args.shape.split('x'))
    fleet.HOSTS = tuple(sorted('host%d' % i for i in range(1, hosts_count + 1)))
    limit = ('--limit', ','.join(fleet.HOSTS))
    env = dict(ANSIBLE_PIPELINING='True', ANSIBLE_FORKS=str(max(5, hosts_count)))
    bench = fleet.Bench(count)
    plan = bench.dir / 'plan.yml'
    plan.write_text(json.dumps(fleet.play(PLAN)))
    bench.playbooks['plan'] = str(plan)
    print('machine: nproc=%d load=%s, %s, NIXFLEET_LAB_ID=%s; %d hosts x %d containers, forks %s, median of %d' % (
        os.cpu_count(), fleet.load(), time.strftime('%Y-%m-%d %H:%M'), os.environ.get('NIXFLEET_LAB_ID'),
        hosts_count, count, env['ANSIBLE_FORKS'], args.runs))
    try:
        bench.run('one_call', env, limit)
        spans, cpus = collections.defaultdict(list), collections.defaultdict(list)
        for dummy in range(args.runs):
            for name in ORDER:
                for row in fleet.remote_python(bench, name, env, limit):
                    spans[(name, row[0])].append(row[2:])
                tasks, main_cpu = cpu_run(bench, name, env, limit)
                cpus[(name, 'main process')].append(main_cpu)
                for task, seconds in tasks.items():
                    cpus[(name, task)].append(seconds)
        print('\n(1) module tasks, per host (median over hosts and runs), load now %s\n' % fleet.load())
        fleet.header('playbook', 'task', 'task s', 'controller before s', 'remote Python s', 'controller after s')
        for (name, task), values in spans.items():
            print('| %s | %s | %s |' % (fleet.LABELS[name], task, ' | '.join(
                '%.3f' % statistics.median(v[i] for v in values) for i in range(4))))
        print('\n(2) controller CPU per task (workers summed over the hosts; the main process), load now %s\n' % fleet.load())
        fleet.header('playbook', 'task', 'CPU s')
        for (name, task), values in cpus.items():
            print('| %s | %s | %.3f |' % (fleet.LABELS[name], task.replace('nixfleet.containers.container_fleet : ', ''),
                                          statistics.median(values)))
        result, sizes = inside_host1(bench, env)
        print('\n(3) inside host1: CPU of the AnsiballZ file, run as Ansible runs it (median of 7), load now %s\n' % fleet.load())
        fleet.header('file', 'bytes', 'CPU s')
        for name, seconds in sorted(result.items()):
            print('| %s | %d | %.3f |' % (name, sizes.get(name, 0), seconds))
    finally:
        bench.write_spec({}, state='absent')
        bench.run('one_call', env, limit)
        bench.cleanup()


if __name__ == '__main__':
    main()
