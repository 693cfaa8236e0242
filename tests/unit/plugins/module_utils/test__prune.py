"""_prune: which shared systems go (the pure rule), and what the profile links on disk say."""

import os

from ansible_collections.nixfleet.containers.plugins.module_utils._prune import (
    Pruner,
    SharedProfile,
    prune_plan,
    shared_profiles,
    store_path,
    used_systems,
)

A, B, C = ('a' * 32), ('b' * 32), ('c' * 32)
S1, S2, S3 = '/nix/store/1111-nixos-system-unnamed', '/nix/store/2222-nixos-system-unnamed', '/nix/store/3333-x'
NOW, DAY = 1000000.0, 86400


def old(key, generations, current):
    return SharedProfile(key, generations, current, touched=NOW - 2 * DAY)


def test_an_old_profile_no_container_uses_goes_whole():
    assert prune_plan([old(A, {1: S1}, 1)], used=set(), keep=set(), now=NOW, grace=DAY) == {A: None}


def test_a_used_profile_stays_whatever_generation_a_container_holds():
    assert prune_plan([old(A, {1: S1}, 1)], used={S1}, keep=set(), now=NOW, grace=DAY) == {}
    # An older generation still held (a container not moved on, or one rolled back to it).
    assert prune_plan([old(A, {1: S1, 2: S2}, 2)], used={S1, S2}, keep=set(), now=NOW, grace=DAY) == {}


def test_a_fresh_profile_stays_for_the_grace_period():
    fresh = SharedProfile(A, {1: S1}, 1, touched=NOW - DAY + 1)
    assert prune_plan([fresh], used=set(), keep=set(), now=NOW, grace=DAY) == {}
    assert prune_plan([fresh], used=set(), keep=set(), now=NOW, grace=0) == {A: None}


def test_the_systems_of_the_run_stay_whatever_their_age():
    assert prune_plan([old(A, {1: S1}, 1), old(B, {1: S2}, 1)], used=set(), keep={A}, now=NOW, grace=0) == {B: None}


def test_a_used_profile_loses_its_unused_older_generations_but_never_the_current_one():
    # A new nixpkgs gave the same key new systems; the containers hold only the second one.
    assert prune_plan([old(A, {1: S1, 2: S2, 3: S3}, 3)], used={S2}, keep=set(), now=NOW, grace=DAY) == {A: [1]}
    assert prune_plan([old(A, {1: S1, 2: S2}, 2)], used={S1}, keep=set(), now=NOW, grace=DAY) == {}


def test_store_path_is_the_top_level_path():
    assert store_path('/nix/store/1111-x/bin/init') == '/nix/store/1111-x'
    assert store_path('/nix/store/1111-x') == '/nix/store/1111-x'
    assert store_path('system-1-link') is None and store_path('/nix/storex/y') is None


def link(target, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)


def age(path, seconds):
    when = NOW - seconds
    os.utime(path, (when, when), follow_symlinks=False)


def make_host(tmp_path):
    """A host's profiles as nix-env leaves them: `system -> system-N-link -> /nix/store/...`."""
    per_container = str(tmp_path / 'per-container')
    shared = str(tmp_path / 'nixfleet-systems')
    configs = str(tmp_path / 'systems')
    os.makedirs(configs)
    link(S1, per_container + '/web/system-1-link')
    link('system-1-link', per_container + '/web/system')
    # A guest's own profile in the directory bound as its /nix/var/nix/profiles.
    link(S3, per_container + '/web/per-user/root/profile-1-link')
    for key, generations in ((A, {1: S1}), (B, {1: S2}), (C, {1: S3})):
        for number, target in generations.items():
            link(target, '%s/%s-%d-link' % (shared, key, number))
            age('%s/%s-%d-link' % (shared, key, number), 2 * DAY)
        link('%s-1-link' % key, '%s/%s' % (shared, key))
        age('%s/%s' % (shared, key), 2 * DAY)
        with open('%s/%s.nix' % (configs, key), 'w') as f:
            f.write('{ }\n')
        age('%s/%s.nix' % (configs, key), 2 * DAY)
    return per_container, shared, configs


def test_the_links_on_disk_say_what_is_used_and_when_a_profile_was_touched(tmp_path):
    per_container, shared, configs = make_host(tmp_path)
    assert used_systems(per_container) == {S1, S3}
    assert used_systems(str(tmp_path / 'missing')) == set()
    profiles = dict((p.key, p) for p in shared_profiles(shared, configs))
    assert sorted(profiles) == [A, B, C]
    assert profiles[A].generations == {1: S1} and profiles[A].current == 1
    assert profiles[A].touched == NOW - 2 * DAY
    # A rebuild rewrites the configuration: the profile counts as touched then.
    os.utime('%s/%s.nix' % (configs, B), (NOW, NOW))
    assert dict((p.key, p) for p in shared_profiles(shared, configs))[B].touched == NOW


def test_the_pruner_removes_the_unused_profile_its_generations_and_its_configuration(tmp_path):
    per_container, shared, configs = make_host(tmp_path)
    pruner = Pruner(grace=DAY, now=NOW, directory=shared, config_dir=configs, root=per_container)
    assert pruner.result() == {B: [S2]}
    assert '%s-1-link -> %s' % (B, S2) in pruner.diff()['before']
    pruner.apply()
    assert sorted(os.listdir(shared)) == sorted([A, A + '-1-link', C, C + '-1-link'])
    assert sorted(os.listdir(configs)) == [A + '.nix', C + '.nix']
    # Nothing left to prune: a second pass changes nothing.
    assert Pruner(grace=DAY, now=NOW, directory=shared, config_dir=configs, root=per_container).result() == {}


def test_the_pruner_keeps_what_the_run_was_given(tmp_path):
    per_container, shared, configs = make_host(tmp_path)
    assert Pruner(grace=0, now=NOW, keep_paths=[S2], directory=shared, config_dir=configs,
                  root=per_container).result() == {}
    assert Pruner(grace=0, now=NOW, keep=[B], directory=shared, config_dir=configs,
                  root=per_container).result() == {}


def test_a_profile_set_again_between_the_look_and_the_removal_stays(tmp_path):
    per_container, shared, configs = make_host(tmp_path)
    pruner = Pruner(grace=DAY, now=NOW, directory=shared, config_dir=configs, root=per_container)
    assert list(pruner.result()) == [B]
    # A build host's import (outside the module's lock) sets the profile again meanwhile.
    os.utime('%s/%s' % (shared, B), (NOW, NOW), follow_symlinks=False)
    pruner.apply()
    assert pruner.result() == {} and B in os.listdir(shared)
