"""The host simulator (a test acquirer on 127.0.0.1), its ledger, its test issuer and the
throw-away TLS PKI it serves with."""
