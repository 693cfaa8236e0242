"""Nix profiles as `nix-env -p PROFILE --set PATH` leaves them.

A profile is a symlink `system -> system-N-link`, each generation a symlink
`system-N-link -> /nix/store/...`. Setting the path the profile already points at makes no
new generation.
"""

import os
import re


def _generation_numbers(profile):
    directory, base = os.path.split(profile)
    pattern = re.compile(r"^%s-(\d+)-link$" % re.escape(base))
    numbers = []
    for entry in os.listdir(directory):
        found = pattern.match(entry)
        if found:
            numbers.append(int(found.group(1)))
    return sorted(numbers)


def current_target(profile):
    try:
        return os.path.realpath(profile) if os.path.islink(profile) else None
    except OSError:
        return None


def generations(profile):
    """[(number, store path)] in order."""
    directory, base = os.path.split(profile)
    return [(n, os.readlink("%s/%s-%d-link" % (directory, base, n)))
            for n in _generation_numbers(profile)]


def _replace_symlink(target, path):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    os.symlink(target, tmp)
    os.rename(tmp, path)


def set_profile(profile, store_path):
    """Point profile at store_path; returns the generation number now current."""
    directory, base = os.path.split(profile)
    if current_target(profile) == os.path.realpath(store_path):
        return int(re.search(r"-(\d+)-link$", os.readlink(profile)).group(1))
    numbers = _generation_numbers(profile)
    number = (numbers[-1] + 1) if numbers else 1
    link_name = "%s-%d-link" % (base, number)
    _replace_symlink(store_path, os.path.join(directory, link_name))
    _replace_symlink(link_name, profile)
    return number
