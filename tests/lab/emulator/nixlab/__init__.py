"""Shared code of the lab's emulated nixos-container, nixos-rebuild and nix-env, and of the
container-unit program that the real container@.service runs.

Stdlib only: it runs under Debian's system Python inside a lab host (the scripts'
`#!/usr/bin/env python` finds /usr/bin/python, from python-is-python3, on the host's PATH).
The behaviour it reproduces is documented in ../../../../docs/lab.md and the facts file
(nixos-containers.md, cited as "facts §N").
"""
