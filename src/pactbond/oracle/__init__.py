"""The evaluator (oracle) service: watch jobs, evaluate, sign, persist, serve and post votes.

Modules: `spec` (evaluation specs loaded by hash), `evaluators` (the plugin interface and the
built-ins), `evidence` (content-addressed evidence packets), `store` (SQLite, the never-sign-twice
rule), `chain` (watching the escrow), `txs` (the transaction manager), `service` (the loop that
wires them), `api` (the HTTP API), `config` (settings).
"""
