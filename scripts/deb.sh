#!/usr/bin/env bash
# make deb: edged_<version>_<arch>.deb with edged as scripts/build-packaged.sh builds it (Swift standard
# library linked statically, packed relocations) and /usr/bin/edgectl a link to it (edged runs as edgectl when
# invoked under that name: one copy of the Swift runtime, Foundation and ICU instead of two), the systemd
# unit, the example configuration and templates as conffiles, and a postinst that creates the edged system
# user. Checked with lintian when it is installed. Prints the package's size and its Installed-Size beside
# the targets (15 MB, 60 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/.*string = "\(.*\)".*/\1/p' Sources/EdgeCore/Version.swift)
arch=$(dpkg --print-architecture)
bin=$(scripts/build-packaged.sh edged)
root=.build-deb/edged_${version}_${arch}
rm -rf "$root" && mkdir -p "$root/DEBIAN"
install -D -m 0755 "$bin/edged" "$root/usr/bin/edged"
ln -s edged "$root/usr/bin/edgectl"
strip --strip-unneeded "$root/usr/bin/edged"
install -D -m 0644 systemd/edged.service "$root/lib/systemd/system/edged.service"
install -D -m 0640 config/edged.example.yaml "$root/etc/edged/edged.yaml"
for t in config/templates/*.yaml; do install -D -m 0644 "$t" "$root/etc/edged/templates/$(basename "$t")"; done
install -D -m 0644 README.md "$root/usr/share/doc/edged/README.md"
# Man pages (scripts/man.sh regenerates them from the binaries' help) and bash completion (from edgectl itself).
install -d "$root/usr/share/man/man8" "$root/usr/share/man/man1"
gzip -9n < packaging/man/edged.8 > "$root/usr/share/man/man8/edged.8.gz"
gzip -9n < packaging/man/edgectl.1 > "$root/usr/share/man/man1/edgectl.1.gz"
install -d "$root/usr/share/bash-completion/completions"
"$root/usr/bin/edgectl" --generate-completion-script bash > "$root/usr/share/bash-completion/completions/edgectl"
for d in docs/*.md docs/*.json; do install -D -m 0644 "$d" "$root/usr/share/doc/edged/$(basename "$d")"; done
install -D -m 0644 packaging/copyright "$root/usr/share/doc/edged/copyright"
# Yams (the YAML parser) compiles libyaml into the binaries; there is no system libyaml to use instead.
install -D -m 0644 packaging/lintian-overrides "$root/usr/share/lintian/overrides/edged"
printf 'edged (%s) stable; urgency=medium\n\n  * Release %s.\n\n -- WellPulse Edge Team <edge@wellpulse.io>  %s\n' \
  "$version" "$version" "$(date -R)" | gzip -9n > "$root/usr/share/doc/edged/changelog.gz"
( cd "$root/etc" && find edged -type f | sed 's#^#/etc/#' | sort ) > "$root/DEBIAN/conffiles"
install -m 0755 packaging/postinst packaging/prerm packaging/postrm "$root/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: edged
Version: $version
Architecture: $arch
Maintainer: WellPulse Edge Team <edge@wellpulse.io>
Installed-Size: $size
Depends: libc6 (>= 2.36), libmodbus5, libsqlite3-0, libssl3, libsystemd0, libcurl4, zlib1g, adduser
Section: net
Priority: optional
Homepage: https://wellpulse.io
Description: WellPulse edge gateway daemon for well pads
 edged polls pump controllers, flow computers, transmitters and tank gauges
 over Modbus RTU (RS-485) and Modbus TCP, raises local alarms, buffers
 readings in SQLite while the site is offline and uploads them in batches
 over TLS to the tenant's WellPulse sync endpoint. edgectl is the field
 technician's tool: configuration, direct device reads, live values,
 alarms, buffer and uplink state.
CONTROL
deb=".build-deb/edged_${version}_${arch}.deb"
# xz at its highest level: -z9 is 0.36 MB smaller than the default -z6; -Sextreme would save 9 kB more, too
# little to be worth its time (docs/BENCHMARKS.md).
dpkg-deb --root-owner-group -Zxz -z9 --build "$root" "$deb"
if command -v lintian >/dev/null; then lintian --fail-on error "$deb"; else echo "(lintian not installed: apt-get install lintian)"; fi
bytes=$(stat -c %s "$deb")
awk -v b="$bytes" -v k="$size" 'BEGIN {
  printf "package: %d bytes = %.1f MB (target: under 15 MB)\n", b, b / 1e6
  printf "Installed-Size: %d KiB = %.1f MiB (target: under 60 MiB)\n", k, k / 1024 }'
echo "$deb"
