"""`lockgate deck`: decK-format declarative configuration against the Admin API.

The files are read, `${{ env "DECK_..." }}` templates substituted and the result validated
locally; only a valid document is sent, whole, to `POST /config` on the control plane, which
applies it in one transaction (or reports what it would change, with `?dry_run=true`).
"""
