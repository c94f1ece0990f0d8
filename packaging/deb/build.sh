#!/bin/sh
# packaging/deb/build.sh: build dist/govs_VERSION_ARCH.deb with dpkg-deb,
# from the working tree, without the network. Run by `make package`, from
# the repository root; the environment gives:
#   VERSION     govs's version (the Makefile's, from git describe); the
#               package's is made from it (DEB_VERSION overrides that)
#   LDFLAGS     the Go linker flags (the Makefile's: the version stamp)
#   GO          the go command (default go)
#   DIST        the output directory (default dist)
#   DEB_MAINTAINER  the control file's Maintainer
set -eu

GO=${GO:-go}
DIST=${DIST:-dist}
VERSION=${VERSION:-}
LDFLAGS=${LDFLAGS:-}
DEB_MAINTAINER=${DEB_MAINTAINER:-govs developers <govs@localhost>}

# debversion VERSION: a Debian upstream version from git describe's: no
# leading v, digits first, only [A-Za-z0-9.+~]. 1.2.0 stays; v1.2.0-3-gabc1234-dirty
# becomes 1.2.0+3.gabc1234.dirty (after 1.2.0, before 1.2.1); an untagged
# 3ab3d50-dirty becomes 0~git3ab3d50+dirty (before any release).
debversion() {
	v=${1#v}
	case $v in
	'') v=0~unknown ;;
	[0-9]*.*) ;;
	*) v=0~git$v ;;
	esac
	printf '%s\n' "$v" | sed -e 's/-/+/' -e 's/-/./g' -e 's/[^A-Za-z0-9.+~]/./g'
}

goarch=$($GO env GOARCH)
case $goarch in
amd64 | arm64 | riscv64) arch=$goarch ;;
386) arch=i386 ;;
ppc64le) arch=ppc64el ;;
*) echo "build.sh: no Debian architecture for GOARCH=$goarch (the BPF objects are little-endian only)" >&2; exit 1 ;;
esac
debver=${DEB_VERSION:-$(debversion "$VERSION")}
# The manual pages' date: the last commit's, so that a rebuild is the same.
date=$(git log -1 --format=%cd --date=short 2>/dev/null || date -u +%Y-%m-%d)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

umask 022
mkdir -p "$DIST"
stage=$(mktemp -d "$DIST/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
mkdir -p "$root/DEBIAN" "$root/usr/sbin" "$root/lib/systemd/system" "$root/etc/govs" \
	"$root/usr/share/man/man5" "$root/usr/share/man/man8" \
	"$root/usr/share/bash-completion/completions" "$root/usr/share/doc/govs/examples"

# Static binaries (no cgo): the package depends on no library. -s -w: no
# symbol table or DWARF, as Debian strips its binaries (panics still have
# their stack traces).
CGO_ENABLED=0 $GO build -trimpath -ldflags "$LDFLAGS -s -w" -o "$root/usr/sbin/" ./cmd/govsd ./cmd/govsadm

install -m 0644 packaging/systemd/govsd.service "$root/lib/systemd/system/"
install -m 0644 packaging/deb/govs.yaml "$root/etc/govs/govs.yaml"
install -m 0644 packaging/completion/govsadm "$root/usr/share/bash-completion/completions/govsadm"

CGO_ENABLED=0 $GO run ./packaging/mangen -version "$debver" -date "$date" -o "$stage" packaging/man/*.md
for page in "$stage"/*.[0-9]; do
	sect=${page##*.}
	gzip -9n <"$page" >"$root/usr/share/man/man$sect/${page##*/}.gz"
	chmod 0644 "$root/usr/share/man/man$sect/${page##*/}.gz"
done

install -m 0644 packaging/deb/copyright "$root/usr/share/doc/govs/copyright"
install -m 0644 examples/* "$root/usr/share/doc/govs/examples/"

for f in conffiles; do install -m 0644 "packaging/deb/$f" "$root/DEBIAN/$f"; done
for f in postinst prerm postrm; do install -m 0755 "packaging/deb/$f" "$root/DEBIAN/$f"; done
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$debver/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	-e "s/@MAINTAINER@/$DEB_MAINTAINER/" packaging/deb/control.in >"$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -print |
	sed 's|^\./||' | LC_ALL=C sort | xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"

# Every file the same time, for a reproducible archive.
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb=$DIST/govs_${debver}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
