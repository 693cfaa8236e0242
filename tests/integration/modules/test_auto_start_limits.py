"""issue 8 items 1 and 2: auto_start that starts at boot, resource limits (real lab host state)."""

import json
import os
import subprocess

from host_checks import assert_four_steps, four_step_play, module_play, module_result

LABCTL = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'lab', 'labctl')
NGINX = 'services.nginx.enable = true;'
UNIT_DIR = '/etc/systemd-mutable/system'
WANTS = UNIT_DIR + '/machines.target.wants/container@%s.service'
DROPIN = UNIT_DIR + '/container@%s.service.d/50-nixfleet.conf'


def labctl(*args, timeout=120):
    """Run labctl on this lab (NIXFLEET_LAB_ID is inherited); returns the completed process."""
    return subprocess.run([LABCTL] + list(args), capture_output=True, text=True, timeout=timeout, check=False)


def exists(lab, path, host='host1'):
    return lab.exec(host, 'test', '-L', path).returncode == 0 or lab.exec(host, 'test', '-e', path).returncode == 0


def status(lab, name, host='host1'):
    return lab.exec(host, 'nixos-container', 'status', name).stdout.strip()


def http(lab, address, host='host1'):
    return lab.exec(host, 'curl', '-s', '-m', '5', 'http://%s/' % address).stdout.strip()


def show(lab, name, host='host1'):
    out = lab.exec(host, 'systemctl', 'show', 'container@%s' % name, '-p',
                   'CPUQuotaPerSecUSec,MemoryMax,TasksMax,MainPID', check=True).stdout
    return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)


def remove_all(lab, names):
    play = '\n'.join(['- hosts: host1', '  gather_facts: false', '  tasks:'] + [
        '    - nixfleet.containers.nixos_container: %s' % json.dumps(dict(name=n, state='absent'))
        for n in names]) + '\n'
    run = lab.playbook(play)
    assert run.rc == 0, str(run)


def test_auto_start_link_four_steps_and_info(fresh):
    try:
        run = fresh.playbook(four_step_play(dict(name='boot', config=NGINX, auto_start=True)))
        assert_four_steps(run)
        real = module_result(run, 'step2 real')
        assert real['plan']['steps'] == ['create', 'link', 'start']
        assert fresh.exec('host1', 'readlink', WANTS % 'boot', check=True).stdout.strip() == \
            '/etc/systemd/system/container@.service'
        assert 'AUTO_START=1\n' in fresh.exec('host1', 'cat', '/etc/nixos-containers/boot.conf').stdout
        assert real['container']['auto_start'] is True
        info = module_result(fresh.playbook(module_play(dict(name='boot'), module='nixos_container_info')), 'task')
        assert info['container']['auto_start'] is True and info['container']['auto_start_link'] == WANTS % 'boot'

        # Off: the link goes, AUTO_START follows, and the running container is not restarted.
        pid = show(fresh, 'boot')['MainPID']
        run = fresh.playbook(four_step_play(dict(name='boot', config=NGINX, auto_start=False)))
        assert_four_steps(run)
        real = module_result(run, 'step2 real')
        assert real['plan']['steps'] == ['write_conf', 'link'] and real['action'] == 'configure'
        assert not exists(fresh, WANTS % 'boot')
        assert 'AUTO_START=0\n' in fresh.exec('host1', 'cat', '/etc/nixos-containers/boot.conf').stdout
        assert show(fresh, 'boot')['MainPID'] == pid
        info = module_result(fresh.playbook(module_play(dict(name='boot'), module='nixos_container_info')), 'task')
        assert info['container']['auto_start'] is False

        # check mode changes nothing on the host
        fresh.playbook(module_play(dict(name='boot', config=NGINX, auto_start=True), check=True))
        assert not exists(fresh, WANTS % 'boot')
    finally:
        remove_all(fresh, ['boot'])
    assert not exists(fresh, WANTS % 'boot')


def test_reboot_brings_back_exactly_the_auto_start_containers(fresh):
    try:
        play = '\n'.join(['- hosts: host1', '  gather_facts: false', '  tasks:'] + [
            '    - nixfleet.containers.nixos_container: %s' % json.dumps(args) for args in (
                dict(name='up1', config=NGINX, auto_start=True),
                dict(name='up2', config=NGINX, auto_start=True),
                dict(name='down1', config=NGINX, auto_start=False),
                dict(name='off1', config=NGINX, auto_start=True, state='stopped'))]) + '\n'
        run = fresh.playbook(play)
        assert run.rc == 0, str(run)
        addresses = {}
        for name in ('up1', 'up2', 'down1', 'off1'):
            conf = fresh.exec('host1', 'cat', '/etc/nixos-containers/%s.conf' % name, check=True).stdout
            addresses[name] = dict(l.split('=', 1) for l in conf.splitlines() if '=' in l)['LOCAL_ADDRESS']
        assert [status(fresh, n) for n in ('up1', 'up2', 'down1', 'off1')] == ['up', 'up', 'up', 'down']
        pids = dict((n, show(fresh, n)['MainPID']) for n in ('up1', 'up2'))

        rebooted = labctl('reboot', 'host1', timeout=300)
        assert rebooted.returncode == 0, rebooted.stderr

        assert [status(fresh, n) for n in ('up1', 'up2', 'down1', 'off1')] == ['up', 'up', 'down', 'up']
        for name in ('up1', 'up2', 'off1'):
            assert show(fresh, name)['MainPID'] != pids.get(name), name   # really started again
            assert http(fresh, addresses[name]).startswith('%s generation 1' % name)
        assert http(fresh, addresses['down1']) == ''
    finally:
        remove_all(fresh, ['up1', 'up2', 'down1', 'off1'])


def _cgroup_of(lab, pid):
    return lab.exec('host1', 'cat', '/proc/%s/cgroup' % pid, check=True).stdout.strip().split('::')[-1]


def test_limits_reach_the_unit_and_its_cgroup(fresh):
    limits = dict(cpu_quota='50%', memory_max='256M', tasks_max='64', unit_properties=dict(CPUWeight=50))
    try:
        run = fresh.playbook(four_step_play(dict(name='lim', config=NGINX, **limits)))
        assert_four_steps(run)
        assert fresh.exec('host1', 'cat', DROPIN % 'lim', check=True).stdout == (
            '# Managed by nixfleet.containers: unit properties of container lim.\n[Service]\n'
            'CPUQuota=50%\nMemoryMax=256M\nTasksMax=64\nCPUWeight=50\n')
        props = show(fresh, 'lim')
        assert (props['CPUQuotaPerSecUSec'], props['MemoryMax'], props['TasksMax']) == \
            ('500ms', str(256 << 20), '64')
        # The container (nspawn and everything under it) runs in the unit's cgroup; nspawn with
        # --keep-unit splits it into supervisor/ and payload/ below, so the limits bind both.
        cgroup = '/machine.slice/container@lim.service'
        assert _cgroup_of(fresh, props['MainPID']) == cgroup + '/supervisor'
        leader = fresh.exec('host1', 'machinectl', 'show', 'lim', '-p', 'Leader', '--value', check=True).stdout.strip()
        assert _cgroup_of(fresh, leader).startswith(cgroup + '/payload')
        # Enforced where the hierarchy offers the controller; on a hybrid hierarchy (this
        # machine's: cpu, memory and pids are cgroup v1) the unit's cgroup has no such file, and
        # the values are systemd's settings only (shown above).
        controllers = fresh.exec('host1', 'cat', '/sys/fs/cgroup/cgroup.controllers', check=True).stdout.split()
        for controller, filename, value in (('cpu', 'cpu.max', '50000 100000'),
                                            ('memory', 'memory.max', str(256 << 20)),
                                            ('pids', 'pids.max', '64')):
            got = fresh.exec('host1', 'cat', '/sys/fs/cgroup%s/%s' % (cgroup, filename))
            if controller in controllers:
                assert got.stdout.strip() == value
            else:
                assert got.returncode != 0 and 'No such file' in got.stderr

        # A change of a limit is a planned restart.
        pid = props['MainPID']
        run = fresh.playbook(four_step_play(dict(name='lim', config=NGINX, **dict(limits, memory_max='512M'))))
        assert_four_steps(run)
        real = module_result(run, 'step2 real')
        assert real['action'] == 'restart' and real['plan']['steps'] == ['stop', 'write_dropin', 'start']
        assert any('unit properties' in r for r in real['reasons'])
        assert show(fresh, 'lim')['MemoryMax'] == str(512 << 20) and show(fresh, 'lim')['MainPID'] != pid

        # Bad values fail naming the option, before anything changes.
        bad = fresh.playbook(module_play(dict(name='lim', config=NGINX, cpu_quota='half'), ignore_errors=True))
        result = module_result(bad, 'task')
        assert result['failed'] and 'cpu_quota' in result['msg']
        assert show(fresh, 'lim')['MemoryMax'] == str(512 << 20)

        # unit_properties={} alone removes the drop-in (a restart again).
        run = fresh.playbook(module_play(dict(name='lim', config=NGINX, unit_properties={})))
        assert module_result(run, 'task')['action'] == 'restart'
        assert not exists(fresh, DROPIN % 'lim')
        assert show(fresh, 'lim')['MemoryMax'] == 'infinity'
    finally:
        remove_all(fresh, ['lim'])
    assert not exists(fresh, DROPIN % 'lim')


def test_labctl_reboot_needs_a_known_host(lab):
    proc = labctl('reboot', 'nohost', timeout=60)
    assert proc.returncode != 0 and 'nohost' in proc.stderr
