"""Shared code of the lab's emulated nixos-container, systemctl and machinectl.

Stdlib only: it runs under Debian's system Python inside an emulated NixOS host (the scripts'
`#!/usr/bin/env python` finds /usr/bin/python, from python-is-python3, on the host's PATH).
The behaviour it reproduces is documented in ../../../../docs/lab.md and the facts file
(nixos-containers.md, cited as "facts §N").
"""
