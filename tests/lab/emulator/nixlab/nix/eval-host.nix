# Stand-in for evaluating the host's configuration.nix as far as the lab's nixos-rebuild needs:
# it follows `imports` from the configuration, collects every module's `containers.<name>`
# definitions (facts §6.1) and evaluates each guest with eval-config.nix. Only data leaves here:
# the options as written, where the container is defined, and what the guest enables.
{ configuration }:
let
  lib = {
    mkDefault = x: x;
    mkForce = x: x;
    mkOverride = _: x: x;
    mkIf = cond: x: if cond then x else { };
    mkMerge = builtins.foldl' (a: b: a // b) { };
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    optionalAttrs = cond: a: if cond then a else { };
  };
  pkgs = { inherit lib; system = "x86_64-linux"; };
  args = { config = { }; inherit lib pkgs; options = { }; modulesPath = "/lab/no-nixpkgs/modules"; };

  load = m:
    let raw = if builtins.isPath m || builtins.isString m then import m else m;
    in if builtins.isFunction raw then raw args else raw;
  collect = m:
    let v = load m;
    in [ v ] ++ builtins.concatMap collect (v.imports or [ ]);
  defs = map (v: if v ? config && v ? options then v.config else v) (collect configuration);

  guest = name: module: import ./eval-config.nix {
    # The NixOS module adds these to every guest (facts §6.1); the user's definitions come later and win.
    file = { imports = [ { boot.isNspawnContainer = true; networking.hostName = name; } module ]; };
  };
  describe = set: name:
    let c = set.${name};
    in {
      inherit name;
      position = builtins.unsafeGetAttrPos name set;
      options = builtins.removeAttrs c [ "config" ];
      hasConfig = c ? config;
      guest = if c ? config then guest name c.config else null;
    };
in
builtins.concatMap (v: let set = v.containers or { }; in map (describe set) (builtins.attrNames set)) defs
