"""Fault suite: a module killed mid-apply re-converges; concurrent runs on one host serialise."""

import threading
import time

from host_checks import module_play, module_result

NGINX = 'services.nginx.enable = true;'

# Inside the host: the PID of the python running the module whose child is `nixos-container
# start NAME` (with pipelining the module is a plain `python3` reading its code from stdin).
FIND_MODULE_PID = r'''
import os, sys
name = sys.argv[1]
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
        parent = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()[1]
    except OSError:
        continue
    if b"nixos-container" in b" ".join(argv) and b"start" in argv and name.encode() in argv:
        print(parent)
        break
'''


def wait_for(predicate, timeout=30, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError('condition not met within %ss' % timeout)


def test_killed_module_reconverges(fresh):
    fresh.fault('host1', 'slow-start', 'web', '6')
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(
        run=fresh.playbook(module_play(dict(name='web', config=NGINX, forward_ports=[dict(host_port=8080)])))))
    worker.start()

    def module_pid():
        found = fresh.exec('host1', '/usr/bin/python3', '-c', FIND_MODULE_PID, 'web').stdout.strip()
        return int(found) if found else None

    pid = wait_for(module_pid)
    fresh.exec('host1', 'kill', '-9', str(pid), check=True)
    worker.join(timeout=120)
    assert outcome['run'].rc != 0          # the play saw its module die
    fresh.fault('host1', 'clear')
    run = fresh.playbook(module_play(dict(name='web', config=NGINX, forward_ports=[dict(host_port=8080)])))
    assert run.rc == 0, str(run)
    again = fresh.playbook(module_play(dict(name='web', config=NGINX, forward_ports=[dict(host_port=8080)])))
    assert not module_result(again, 'task')['changed']
    conf = fresh.exec('host1', 'cat', '/etc/nixos-containers/web.conf', check=True).stdout
    assert 'HOST_PORT=tcp:8080:8080\n' in conf
    assert fresh.exec('host1', 'nixos-container', 'status', 'web').stdout.strip() == 'up'
    body = fresh.exec('host1', 'curl', '-s', '-m', '5', 'http://10.233.1.2/').stdout
    assert body.startswith('web generation 1')


def test_concurrent_runs_on_one_host_get_distinct_addresses(fresh):
    runs = {}
    names = ['c1', 'c2', 'c3']

    def converge(name):
        runs[name] = fresh.playbook(module_play(dict(name=name, config=NGINX, state='present')))

    workers = [threading.Thread(target=converge, args=(n,)) for n in names]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    for name in names:
        assert runs[name].rc == 0, str(runs[name])
    pairs = []
    for name in names:
        conf = fresh.exec('host1', 'cat', '/etc/nixos-containers/%s.conf' % name, check=True).stdout
        lines = dict(line.split('=', 1) for line in conf.splitlines())
        assert conf.startswith('PRIVATE_NETWORK=1\n') and conf.endswith('\n')   # whole, not torn
        pairs.append((lines['HOST_ADDRESS'], lines['LOCAL_ADDRESS']))
    addresses = [a for pair in pairs for a in pair]
    assert len(set(addresses)) == len(addresses), pairs
