"""faults: after side_effect's broken change of web, the canary is back on the old generation."""

PROFILE = '/nix/var/nix/profiles/per-container/web'


def rolled_back_host(summary):
    data = summary()
    [name] = [h for h, record in data['hosts'].items() if record['containers']['web']['outcome'] == 'rolled_back']
    return name


def test_summary_says_rolled_back(summary):
    data = summary()
    assert data['result'] == 'rolled_back', data
    web = data['hosts'][rolled_back_host(summary)]['containers']['web']
    assert web['health'] == 'failed' and web['message'], web


def test_web_serves_the_old_generation(host, conf, http_get):
    assert host.check_output('nixos-container status web') == 'up'
    assert http_get(host, conf(host, 'web')['LOCAL_ADDRESS']) == 'web generation 1'


def test_profile_is_back_on_the_old_generation(host, summary):
    assert host.check_output('readlink %s', PROFILE + '/system') == 'system-1-link'
    # The rolled-back host did build and run generation 2 (the broken one); the other never moved.
    moved = host.ansible.get_variables()['inventory_hostname'] == rolled_back_host(summary)
    assert host.file(PROFILE + '/system-2-link').exists == moved
