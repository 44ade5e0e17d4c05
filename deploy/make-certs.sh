#!/usr/bin/env bash
# Certificates for compose.yaml, into deploy/certs/ (git-ignored, mode 0700):
#   internal-cert.pem, internal-key.pem  the instances' certificate, for the name
#                                        parley.internal; HAProxy checks it (verifyhost) and
#                                        trusts it (ca-file) when it re-encrypts to them.
#   public.pem                           the balancer's certificate + key, for the public name.
#                                        Made self-signed for a trial only if absent: in
#                                        production put your real one there (docs/deploy.md).
# Usage: deploy/make-certs.sh [public-host-name]    (default: localhost)
set -euo pipefail
cd "$(dirname "$0")"
public_host="${1:-localhost}"
mkdir -p certs
chmod 700 certs

self_signed() { # name, key file, cert file
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -nodes -days 825 \
    -subj "/CN=$1" -addext "subjectAltName=DNS:$1" -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=serverAuth" \
    -keyout "$2" -out "$3" 2>/dev/null
}

# Each is made only if absent: delete a file to renew it (then restart the services).
if [ ! -f certs/internal-cert.pem ] || [ ! -f certs/internal-key.pem ]; then
  self_signed parley.internal certs/internal-key.pem certs/internal-cert.pem
  echo "deploy/certs/internal-cert.pem, internal-key.pem: parley.internal (instances)"
fi

if [ ! -f certs/public.pem ]; then
  self_signed "$public_host" certs/public-key.tmp certs/public-cert.tmp
  cat certs/public-cert.tmp certs/public-key.tmp > certs/public.pem
  rm certs/public-cert.tmp certs/public-key.tmp
  echo "deploy/certs/public.pem: self-signed for $public_host (a trial; replace with your real certificate)"
fi
# The containers run as other users (node: 1000, haproxy: 99) than the one who made the files:
# readable inside them, while the directory (0700) keeps other users of this machine out.
chmod 644 certs/*.pem
