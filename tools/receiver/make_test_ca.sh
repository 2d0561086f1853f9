#!/bin/sh
# Makes a throw-away PKI for tests and demos of the sync protocol, with the openssl CLI:
#
#   ca.pem / ca.key          a test CA (give ca.pem to the gateway as uplink.tls.caFile, and to
#                            receiver.py --client-ca for mTLS)
#   server.pem / server.key  the receiver's certificate for 127.0.0.1 and localhost
#                            (subjectAltName IP:127.0.0.1, IP:::1, DNS:localhost; serverAuth)
#   client.pem / client.key  a gateway client certificate for mTLS (CN = the gateway id; clientAuth)
#   server.pin               the server public key pin, as curl's CURLOPT_PINNEDPUBLICKEY wants it
#
# Usage: make_test_ca.sh DIR [GATEWAY_ID] [DAYS]
#   DIR is created if needed; existing files in it are replaced. GATEWAY_ID defaults to pecos-17-gw1,
#   DAYS (certificate lifetime) to 30. Keys are ECDSA P-256 (KEY_ALG=rsa for RSA 2048).
# Prints the pin (sha256//BASE64) on the last line of stdout. Run it twice into two directories to get
# a second, unrelated CA for "wrong CA" tests.
set -eu

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  [ $# -ge 1 ] && exit 0 || exit 2
fi
dir=$1
gateway=${2:-pecos-17-gw1}
days=${3:-30}
command -v openssl >/dev/null 2>&1 || { echo "make_test_ca.sh: openssl is not installed (apt-get install openssl)" >&2; exit 1; }

mkdir -p "$dir"
cd "$dir"
umask 077

newkey() {  # newkey FILE
  if [ "${KEY_ALG:-ec}" = rsa ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
  else
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
  fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The CA.
newkey ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/O=WellPulse test/CN=edged test CA $(date +%s)" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" \
  -out ca.pem

# The server (receiver) certificate.
newkey server.key
openssl req -new -key server.key -subj "/O=WellPulse test/CN=localhost" -out "$tmp/server.csr"
cat > "$tmp/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
authorityKeyIdentifier=keyid
subjectKeyIdentifier=hash
EXT
openssl x509 -req -in "$tmp/server.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -CAserial "$tmp/ca.srl" \
  -sha256 -days "$days" -extfile "$tmp/server.ext" -out server.pem 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }

# The client (gateway) certificate for mTLS.
newkey client.key
openssl req -new -key client.key -subj "/O=WellPulse test/CN=$gateway" -out "$tmp/client.csr"
cat > "$tmp/client.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
authorityKeyIdentifier=keyid
subjectKeyIdentifier=hash
EXT
openssl x509 -req -in "$tmp/client.csr" -CA ca.pem -CAkey ca.key -CAserial "$tmp/ca.srl" \
  -sha256 -days "$days" -extfile "$tmp/client.ext" -out client.pem 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }

chmod 644 ca.pem server.pem client.pem
openssl verify -CAfile ca.pem server.pem client.pem >/dev/null

# curl's pin: sha256// + base64 of the SHA-256 of the DER SubjectPublicKeyInfo.
pin="sha256//$(openssl pkey -in server.key -pubout -outform DER | openssl dgst -sha256 -binary | openssl base64 -A)"
printf '%s\n' "$pin" > server.pin
chmod 644 server.pin
echo "test CA in $(pwd): ca.pem, server.pem/.key (127.0.0.1, ::1, localhost), client.pem/.key (CN=$gateway)"
echo "$pin"
