"""nixos_containers builds each distinct guest system once, before any container changes (issue 14).

Read on the lab host: the emulator's evaluation log (every evaluation of <nixpkgs/nixos>), the
containers' profiles, conf files and configuration.nix.
"""

import json

import pytest

from test_nixos_containers import containers_play, result_of

LOG = '/nix/var/nix/lab-evaluations.log'
NGINX = 'services.nginx.enable = true;'
SSH = 'services.openssh.enable = true;'
BROKEN = 'services.nginx.enable = throw "the nginx module is broken";'


@pytest.fixture
def built(fresh):
    fresh.exec('host1', 'rm', '-f', LOG, check=True)
    yield fresh
    fresh.exec('host1', 'rm', '-f', LOG, check=True)


def evaluations(lab):
    """The evaluations since the last call (the log is emptied)."""
    text = lab.exec('host1', 'sh', '-c', 'cat %s 2>/dev/null; rm -f %s' % (LOG, LOG), check=True).stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def system_of(lab, name):
    return lab.exec('host1', 'readlink', '-f', '/nix/var/nix/profiles/per-container/%s/system' % name,
                    check=True).stdout.strip()


def generation_of(lab, name):
    return lab.exec('host1', 'readlink', '/nix/var/nix/profiles/per-container/%s/system' % name,
                    check=True).stdout.strip()


def configuration_of(lab, name):
    return lab.exec('host1', 'cat', '/var/lib/nixos-containers/%s/etc/nixos/configuration.nix' % name,
                    check=True).stdout


def recorded_system(lab, name):
    conf = lab.exec('host1', 'cat', '/etc/nixos-containers/%s.conf' % name, check=True).stdout
    return dict(line.split('=', 1) for line in conf.splitlines() if '=' in line).get('NIXFLEET_SYSTEM')


def run(lab, containers, name='set', ignore_errors=False, **args):
    args['containers'] = containers
    done = lab.playbook(containers_play(args, name=name, ignore_errors=ignore_errors))
    return done, result_of(done, name)


def test_each_distinct_system_is_built_once_and_every_container_records_its_configuration(built):
    fleet = [dict(name='a', config=NGINX, state='present'), dict(name='b', config=NGINX, state='present'),
             dict(name='c', config=SSH, state='present'), dict(name='web', config=NGINX, state='started')]
    done, result = run(built, fleet)
    assert done.rc == 0, str(done)
    builds = evaluations(built)
    # Two distinct configurations: two evaluations (nixos-container would have made four).
    assert [(e['command'], e['kind'], e['ok']) for e in builds] == [('nix-env', 'build', True)] * 2
    assert len(result['systems']) == 2
    nginx, ssh = system_of(built, 'a'), system_of(built, 'c')
    assert nginx != ssh and sorted(result['systems'].values()) == sorted([nginx, ssh])
    assert nginx.endswith('-nixos-system-unnamed-25.11.lab')
    assert system_of(built, 'b') == nginx and system_of(built, 'web') == nginx
    for name, extra in (('a', NGINX), ('b', NGINX), ('c', SSH), ('web', NGINX)):
        # Created from the shared system, and still with the configuration.nix nixos-container writes.
        creates = [argv for argv in result['containers'][name]['actions'] if argv[1:2] == ['create']]
        assert creates and creates[0][-2:] == ['--system-path', system_of(built, name)], creates
        assert '--config' not in creates[0]
        text = configuration_of(built, name)
        assert 'networking.hostName = lib.mkDefault "%s";' % name in text and extra in text
        assert recorded_system(built, name) == system_of(built, name)
    assert built.exec('host1', 'nixos-container', 'status', 'web', check=True).stdout.strip() == 'up'

    # A second run changes nothing and evaluates nothing.
    done, result = run(built, fleet)
    assert done.rc == 0 and not result['changed'] and evaluations(built) == []

    # a and the running web move to the ssh configuration: one build (the system c already has).
    moved = [dict(fleet[0], config=SSH), fleet[1], fleet[2], dict(fleet[3], config=SSH)]
    done, result = run(built, moved)
    assert done.rc == 0, str(done)
    assert len(evaluations(built)) == 1
    assert system_of(built, 'a') == ssh and system_of(built, 'web') == ssh and system_of(built, 'b') == nginx
    assert generation_of(built, 'a') == 'system-2-link'
    assert SSH in configuration_of(built, 'a') and recorded_system(built, 'a') == ssh
    assert result['containers']['web']['action'] == 'reload'
    reloads = [argv for argv in result['containers']['web']['actions'] if argv[1:2] == ['reload']]
    assert reloads and reloads[0][2] in ('container@web', 'container@web.service'), result['containers']['web']['actions']
    assert built.exec('host1', 'nixos-container', 'status', 'web', check=True).stdout.strip() == 'up'

    # Rollback sees the generation and the configuration.nix from before, without a build.
    done, result = run(built, [dict(name='a', config=NGINX, rollback=True, state='present')])
    assert done.rc == 0, str(done)
    assert system_of(built, 'a') == nginx and NGINX in configuration_of(built, 'a')
    assert evaluations(built) == []

    # Drift: an update by hand builds a system of its own; the next run sees it and shares again.
    built.exec('host1', 'nixos-container', 'update', 'b', check=True)
    assert system_of(built, 'b') != nginx
    evaluations(built)
    done, result = run(built, [fleet[1]])
    assert done.rc == 0 and result['containers']['b']['action'] == 'reload', str(done)
    assert system_of(built, 'b') == nginx and len(evaluations(built)) == 1


def test_a_system_that_fails_to_build_changes_nothing_and_names_the_container(built):
    done, result = run(built, [dict(name='keep', config=NGINX, state='present')])
    assert done.rc == 0, str(done)
    before = (system_of(built, 'keep'), generation_of(built, 'keep'), configuration_of(built, 'keep'))
    evaluations(built)
    done, result = run(built, [dict(name='keep', config=SSH, state='present'),
                               dict(name='new1', config=BROKEN, state='present')], ignore_errors=True)
    assert result['failed']
    # The container and Nix's own message, and the call's message names them too.
    assert result['containers']['new1']['failed']
    assert 'the nginx module is broken' in result['containers']['new1']['msg']
    assert 'new1' in result['msg'] and 'the nginx module is broken' in result['msg']
    # Nothing changed: keep was not updated (its system built, not set), new1 was not created.
    assert result['containers']['keep']['deferred'] and not result['containers']['keep']['changed']
    assert (system_of(built, 'keep'), generation_of(built, 'keep'), configuration_of(built, 'keep')) == before
    assert built.exec('host1', 'nixos-container', 'list', check=True).stdout.split() == ['keep']
    assert [e['ok'] for e in evaluations(built)] in ([True, False], [False, True])


def test_build_only_builds_and_a_later_call_uses_the_systems_without_evaluating(built):
    fleet = [dict(name='a', config=NGINX, state='present'), dict(name='b', config=SSH, state='present')]
    done, result = run(built, fleet, name='build', build_only=True)
    assert done.rc == 0 and not result['changed'], str(done)
    assert built.exec('host1', 'nixos-container', 'list', check=True).stdout.split() == []
    assert len(evaluations(built)) == 2 and len(result['systems']) == 2
    done, applied = run(built, fleet, systems=result['systems'])
    assert done.rc == 0, str(done)
    assert evaluations(built) == []
    assert sorted([system_of(built, 'a'), system_of(built, 'b')]) == sorted(result['systems'].values())


def test_per_container_builds_as_nixos_container_does(built):
    done, result = run(built, [dict(name='a', config=NGINX, state='present'),
                               dict(name='b', config=NGINX, state='present')], build='per_container')
    assert done.rc == 0, str(done)
    assert [(e['command'], e['container']) for e in evaluations(built)] == [('nixos-container', 'a'),
                                                                            ('nixos-container', 'b')]
    assert system_of(built, 'a') != system_of(built, 'b') and result['systems'] == {}
