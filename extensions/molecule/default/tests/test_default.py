"""default: one host after container_host and container_fleet (web with nginx, cache with sshd)."""

import pytest

CONTAINERS = ('web', 'cache')


@pytest.mark.parametrize('name', CONTAINERS)
def test_conf_file(host, conf, name):
    conf_file = host.file('/etc/nixos-containers/%s.conf' % name)
    # An imperative conf: a regular root-owned 0644 file (facts §2.3), not a store symlink.
    assert conf_file.is_file and not conf_file.is_symlink
    assert (conf_file.user, conf_file.mode) == ('root', 0o644)
    values = conf(host, name)
    assert values['PRIVATE_NETWORK'] == '1'
    assert values['HOST_BRIDGE'] == '' and values['HOST_PORT'] == ''
    assert values['AUTO_START'] == '0'
    host_address, local_address = values['HOST_ADDRESS'], values['LOCAL_ADDRESS']
    # An allocated 10.233.N.1/.2 pair (facts §4).
    assert host_address.startswith('10.233.') and host_address.endswith('.1')
    assert local_address == host_address[:-1] + '2'


def test_addresses_differ(host, conf):
    assert len({conf(host, name)['LOCAL_ADDRESS'] for name in CONTAINERS}) == len(CONTAINERS)


@pytest.mark.parametrize('name', CONTAINERS)
def test_container_is_up(host, name):
    assert host.check_output('nixos-container status %s', name) == 'up'


def test_web_answers_http_from_the_host(host, conf, http_get):
    assert http_get(host, conf(host, 'web')['LOCAL_ADDRESS']) == 'web generation 1'


def test_cache_runs_sshd(host, conf):
    assert host.addr(conf(host, 'cache')['LOCAL_ADDRESS']).port(22).is_reachable


def test_configuration_nix_holds_the_spec(host):
    web = host.file('/var/lib/nixos-containers/web/etc/nixos/configuration.nix').content_string
    cache = host.file('/var/lib/nixos-containers/cache/etc/nixos/configuration.nix').content_string
    assert 'nginx' in web and 'openssh' not in web
    assert 'services.openssh.enable = true;' in cache


def test_summary_of_the_last_run(summary):
    # The last converge was molecule's idempotence run: nothing to do.
    data = summary()
    assert data['result'] == 'success' and data['check_mode'] is False
    outcomes = {name: c['outcome'] for name, c in data['hosts']['host1']['containers'].items()}
    assert outcomes == {'web': 'unchanged', 'cache': 'unchanged'}
