"""Nix profiles as `nix-env -p PROFILE --set PATH` leaves them.

A profile is a symlink `system -> system-N-link`, each generation a symlink
`system-N-link -> /nix/store/...`. Setting the path the newest generation points at makes no
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


def switch_to(profile, number):
    """Point profile at its generation NUMBER (as nix-env's switchLink does)."""
    _replace_symlink("%s-%d-link" % (os.path.basename(profile), number), profile)


def set_profile(profile, store_path):
    """`nix-env -p profile --set store_path`; returns the generation number now current.

    Nix makes a new generation unless the *newest* one already points at store_path, in
    which case the profile just switches to that one (createGeneration in Nix's profiles.cc).
    """
    directory, base = os.path.split(profile)
    gens = generations(profile)
    if gens and os.path.realpath(gens[-1][1]) == os.path.realpath(store_path):
        switch_to(profile, gens[-1][0])
        return gens[-1][0]
    number = (gens[-1][0] + 1) if gens else 1
    _replace_symlink(store_path, os.path.join(directory, "%s-%d-link" % (base, number)))
    switch_to(profile, number)
    return number
