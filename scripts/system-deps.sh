#!/usr/bin/env bash
# Install the system tools the tests and the demo use, where missing: pdflatex (TeX Live),
# pdftoppm (poppler) and a C compiler.  Needs root (apt-get); otherwise says what to install.
set -u
need=()
command -v pdflatex >/dev/null 2>&1 || need+=(texlive-latex-base texlive-latex-recommended)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { echo "could not install ${need[*]}: tests that need them will be skipped" >&2; exit 0; }
else
  echo "missing system packages: ${need[*]} (install them as root: apt-get install ${need[*]}); tests that need them are skipped" >&2
fi
exit 0
