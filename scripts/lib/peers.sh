# Shared by the peer-check and benchmark scripts: a git-ignored virtual environment with the peers.
PEER_VENV="${PEER_VENV:-$PWD/.venv-peers}"

ensure_peer_venv() {
    if [ ! -x "$PEER_VENV/bin/python" ]; then
        python3 -m venv "$PEER_VENV"
    fi
    if ! "$PEER_VENV/bin/python" -c 'import awslambdaric, awscli, boto3' 2>/dev/null; then
        "$PEER_VENV/bin/pip" install --quiet --disable-pip-version-check awslambdaric awscli boto3 >&2
    fi
}
