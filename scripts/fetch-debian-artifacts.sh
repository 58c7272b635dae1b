#!/usr/bin/env bash
# Fetch the Debian artifacts the measure tests compare against: the ovmf
# package (OVMF.fd, a TDVF with TDX metadata, golden MRTDs) and the signed
# kernel that linux-image-amd64 depends on (Authenticode vs osslsigncode).
#
# The packages are downloaded with `apt-get download` and extracted with
# `dpkg-deb -x` into $TDPROOF_DEBIAN_DIR (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/tdproof/debian), outside the repository:
#
#   $TDPROOF_DEBIAN_DIR/ovmf/usr/share/ovmf/OVMF.fd
#   $TDPROOF_DEBIAN_DIR/kernel/boot/vmlinuz-*
#
# The directory is printed on stdout; export it as TDPROOF_DEBIAN_DIR for
# `go test ./measure/`. Without it those tests skip. osslsigncode is
# installed when missing and running as root. Set TDPROOF_DEBIAN_REFRESH=1
# to download again. Needs a Debian or Ubuntu host with apt.
set -euo pipefail

dir="${TDPROOF_DEBIAN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tdproof/debian}"
log() { echo "fetch-debian-artifacts: $*" >&2; }

for tool in apt-get apt-cache dpkg-deb; do
  command -v "$tool" >/dev/null || { log "$tool not found (needs a Debian-based host)"; exit 1; }
done

if [[ -f "$dir/ovmf/usr/share/ovmf/OVMF.fd" && -n "$(ls "$dir"/kernel/boot/vmlinuz-* 2>/dev/null)" && -z "${TDPROOF_DEBIAN_REFRESH:-}" ]]; then
  log "already present in $dir"
  echo "$dir"
  exit 0
fi

mkdir -p "$dir"
cd "$dir"
apt_opts=(-qq)
if [[ $(id -u) -eq 0 ]]; then
  apt_opts+=(-o APT::Sandbox::User=root)
  export DEBIAN_FRONTEND=noninteractive
  apt-get "${apt_opts[@]}" update >&2
  command -v osslsigncode >/dev/null || apt-get "${apt_opts[@]}" install -y osslsigncode >&2 || log "could not install osslsigncode; the Authenticode comparison will skip"
fi

# linux-image-amd64 is a metapackage: download the versioned image it
# depends on (the signed build, which has a certificate table).
kernel_pkg=$(apt-cache depends linux-image-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
[[ -n "$kernel_pkg" ]] || { log "cannot resolve linux-image-amd64"; exit 1; }

rm -f ./*.deb
apt-get "${apt_opts[@]}" download ovmf "$kernel_pkg" >&2
rm -rf ovmf kernel
dpkg-deb -x ovmf_*.deb ovmf
dpkg-deb -x "${kernel_pkg}"_*.deb kernel
{
  dpkg-deb -f ovmf_*.deb Package Version
  dpkg-deb -f "${kernel_pkg}"_*.deb Package Version
  sha256sum ovmf/usr/share/ovmf/OVMF.fd kernel/boot/vmlinuz-*
} > versions.txt
log "extracted into $dir:"
sed 's/^/  /' versions.txt >&2
echo "$dir"
