# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This doc fragment is PRIVATE to the collection: it may change without notice.

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Options shared by the modules that drive nixos-container on a NixOS host.
    DOCUMENTATION = r'''
options:
  nixos_container_bin:
    description:
      - Path of the C(nixos-container) command on the managed host.
      - When not set, C(nixos-container) is looked up on E(PATH) and in C(/run/current-system/sw/bin).
      - On NixOS 25.11 and newer the command is only installed when C(boot.enableContainers = true).
    type: path
requirements:
  - A NixOS host with C(boot.enableContainers = true) (the C(nixos-container) command, C(systemctl)).
  - C(nix-instantiate) on the host to check Nix syntax before any change (present on every NixOS host).
notes:
  - The module reads the container directories of the host (C(/etc/nixos-containers) and
    C(/var/lib/nixos-containers), or the pre-22.05 C(/etc/containers) and C(/var/lib/containers)).
'''
