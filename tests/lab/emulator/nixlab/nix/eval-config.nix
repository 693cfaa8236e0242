# Stand-in for the NixOS module system (there is no nixpkgs in the lab).
# It loads a configuration module (or a flake's nixosConfigurations.<attr>) with stub
# `config`, `lib` and `pkgs` arguments, follows `imports`, and selects only the options the
# lab acts on. Selection is lazy, so unrelated options are never evaluated.
{ file ? null, flake ? null, attr ? "container" }:
let
  lib = {
    version = "25.11.lab";
    mkDefault = x: x;
    mkForce = x: x;
    mkOverride = _: x: x;
    mkBefore = x: x;
    mkAfter = x: x;
    mkOrder = _: x: x;
    mkIf = cond: x: if cond then x else { };
    mkMerge = builtins.foldl' (a: b: a // b) { };
    mkEnableOption = _: false;
    mkOption = _: null;
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    optionalString = cond: s: if cond then s else "";
    optionalAttrs = cond: a: if cond then a else { };
    nixosSystem = args: args // { __labSystem = true; };
    filterAttrs = pred: set: builtins.listToAttrs (builtins.concatMap
      (n: if pred n set.${n} then [ { name = n; value = set.${n}; } ] else [ ]) (builtins.attrNames set));
    inherit (builtins) attrNames attrValues concatStringsSep elem filter head length map toString;
  };
  pkgs = { inherit lib; system = "x86_64-linux"; };
  args = { inherit config lib pkgs; options = { }; modulesPath = "/lab/no-nixpkgs/modules"; };

  load = m:
    let
      raw = if builtins.isPath m || builtins.isString m then import m else m;
    in if builtins.isFunction raw then raw args else raw;
  collect = m:
    let v = load m;
    in [ v ] ++ builtins.concatMap collect (v.imports or [ ]);

  flakeModules =
    let
      outputsFn = (import (flake + "/flake.nix")).outputs;
      nixpkgsStub = { inherit lib; outPath = "/lab/no-nixpkgs"; };
      inputs = builtins.mapAttrs (_: _: nixpkgsStub) (builtins.functionArgs outputsFn);
      outputs = outputsFn (inputs // { self = outputs; });
      system = outputs.nixosConfigurations.${attr};
    in system.modules or [ ];

  roots = if flake != null then flakeModules else [ file ];
  modules = builtins.concatMap collect roots;
  # A module is either plain option definitions or { options; config; }.
  defs = map (v: if v ? config && v ? options then v.config else v) modules;

  pick = path: d:
    builtins.foldl' (acc: n: if acc != null && builtins.isAttrs acc && acc ? ${n} then acc.${n} else null) d path;
  get = path: default:
    builtins.foldl' (acc: d: let r = pick path d; in if r == null then acc else r) default defs;
  enabled = path: get path false == true;
  # The definitions of PATH in every module merged as the module system merges them (attribute
  # sets by name, lists concatenated, else the last wins); { } when none defines it.
  merge = a: b:
    if builtins.isAttrs a && builtins.isAttrs b then
      a // builtins.mapAttrs (n: v: if a ? ${n} then merge a.${n} v else v) b
    else if builtins.isList a && builtins.isList b then a ++ b
    else b;
  merged = path: builtins.foldl' (acc: d: let r = pick path d; in if r == null then acc else merge acc r) { } defs;
  mergedList = path: builtins.concatMap (d: let r = pick path d; in if builtins.isList r then r else [ ]) defs;

  # What NixOS's stage 2 (scripted networking, the etc activation) applies at the guest's boot.
  cidr = a: "${a.address}/${toString a.prefixLength}";
  route = r: { to = cidr r; via = r.via or null; };
  interfaces = builtins.mapAttrs (_: i: {
    ipv4 = map cidr (i.ipv4.addresses or [ ]);
    ipv6 = map cidr (i.ipv6.addresses or [ ]);
    routes = map route ((i.ipv4.routes or [ ]) ++ (i.ipv6.routes or [ ]));
  }) (merged [ "networking" "interfaces" ]);
  bridges = builtins.mapAttrs (_: b: b.interfaces or [ ]) (merged [ "networking" "bridges" ]);
  gateway = g: if g == null then null else if builtins.isString g then { address = g; interface = null; }
    else { address = g.address; interface = g.interface or null; };
  etc = builtins.mapAttrs (_: e: e.text)
    (lib.filterAttrs (_: e: builtins.isAttrs e && e ? text && (e.enable or true)) (merged [ "environment" "etc" ]));
  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) (mergedList [ "assertions" ]));

  config = {
    boot.isNspawnContainer = get [ "boot" "isNspawnContainer" ] false;
    networking.hostName = get [ "networking" "hostName" ] "nixos";
    services.nginx.enable = enabled [ "services" "nginx" "enable" ];
    services.httpd.enable = enabled [ "services" "httpd" "enable" ];
    services.openssh.enable = enabled [ "services" "openssh" "enable" ];
  };
in
# NixOS's `Failed assertions:` error, before anything is built.
if failedAssertions != [ ] then
  throw "\nFailed assertions:\n${builtins.concatStringsSep "" (map (m: "- ${m}\n") failedAssertions)}"
else {
  version = lib.version;
  isNspawnContainer = config.boot.isNspawnContainer == true;
  hostName = config.networking.hostName;
  http = config.services.nginx.enable || config.services.httpd.enable;
  ssh = config.services.openssh.enable;
  # lab only: the systemd guest (the hosts' Debian root with systemd as init, docs/lab.md)
  systemdGuest = enabled [ "lab" "systemdGuest" ];
  network = {
    inherit interfaces bridges;
    defaultGateway = gateway (get [ "networking" "defaultGateway" ] null);
    defaultGateway6 = gateway (get [ "networking" "defaultGateway6" ] null);
  };
  inherit etc;
}
