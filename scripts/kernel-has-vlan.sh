#!/usr/bin/env bash
# Exits 0 when this kernel can make VLAN sub-interfaces (the 8021q module is loaded, built in,
# or loadable), 1 otherwise. Used by `make test` to decide, visibly, whether to opt out of the
# VLAN data-plane tests.
[ -d /sys/module/8021q ] && exit 0
modprobe -q 8021q 2>/dev/null && [ -d /sys/module/8021q ] && exit 0
exit 1
