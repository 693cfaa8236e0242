"""Shared code of the lab's emulated nixos-container, systemctl and machinectl.

Stdlib only: it runs under the host's /usr/bin/python3 inside an emulated NixOS host.
The behaviour it reproduces is documented in ../../../../docs/lab.md and the facts file
(nixos-containers.md, cited as "facts §N").
"""
