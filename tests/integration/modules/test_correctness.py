"""Issue 13: correctness under real use (no lost configuration, conflicts refused, atomic apply).

Every test sets the situation up through the modules with ansible-playbook and checks the
host over labctl exec; each one failed before its fix.
"""

import json

from host_checks import bad_play, host_state, module_play, module_result

NGINX = 'services.nginx.enable = true;'
CONFIG_NIX = '/var/lib/nixos-containers/%s/etc/nixos/configuration.nix'


def conf_of(lab, name, host='host1'):
    return lab.exec(host, 'cat', '/etc/nixos-containers/%s.conf' % name, check=True).stdout


def configuration_of(lab, name, host='host1'):
    return lab.exec(host, 'cat', CONFIG_NIX % name, check=True).stdout


def status(lab, name, host='host1'):
    return lab.exec(host, 'nixos-container', 'status', name).stdout.strip()


def http(lab, address, host='host1', port=80):
    return lab.exec(host, 'curl', '-s', '-m', '5', 'http://%s:%d/' % (address, port)).stdout.strip()


def play_ok(lab, args, module='nixos_container'):
    run = lab.playbook(module_play(args, module=module))
    assert run.rc == 0, str(run)
    return module_result(run, 'task')


def play_failed(lab, args, module='nixos_container', host='host1'):
    run = lab.playbook(module_play(args, module=module, host=host, ignore_errors=True))
    result = module_result(run, 'task', host=host)
    assert result['failed'], result
    return result


# item 1 -------------------------------------------------------------------------------------
def test_recreate_keeps_the_guest_configuration(fresh):
    play_ok(fresh, dict(name='t3', config=NGINX, forward_ports=[dict(host_port=8083, container_port=80)]))
    before = configuration_of(fresh, 't3')
    result = play_ok(fresh, dict(name='t3', recreate=True))
    assert result['action'] == 'recreate'
    assert configuration_of(fresh, 't3') == before
    assert NGINX in before
    assert 'HOST_PORT=tcp:8083:80\n' in conf_of(fresh, 't3')
    assert http(fresh, fresh.address('host1'), port=8083).startswith('t3 generation 1')


def test_recreate_with_rollback_is_refused_before_any_change(fresh):
    play_ok(fresh, dict(name='t3', config=NGINX))
    state = host_state(fresh, 'host1')
    result = play_failed(fresh, dict(name='t3', recreate=True, rollback=True))
    assert 'recreate' in result['msg'] and 'rollback' in result['msg']
    assert host_state(fresh, 'host1') == state
