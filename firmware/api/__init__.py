"""The local terminal API and the cashier page, served by `pitap run` when `[api] enabled`.

HTTP JSON on aiohttp, versioned under /v1 (the OpenAPI document: /v1/openapi.json, a copy in
docs/openapi.json), for the shop's till and for the cashier page at / (plain HTML/JS/CSS in
`static/`). Every /v1 request needs an API key (`pitap api-key add NAME`); the page's own files
need none (they hold no data). A till's payment runs on the same terminal and screen as the
keypad's (firmware.service jobs); events come from the terminal's feedback.

Modules: `keys` (the hashed key file), `auth` (the key check, slowing down bad keys, foreign
origins), `requests` (what a request's body may hold), `views` (a payment as the API shows it),
`jobs` (requests run by the service loop), `events` (server-sent events), `app` (routes),
`tls` (the terminal's own HTTPS key and certificate), `server` (the thread `pitap run` starts).
"""

API_VERSION = "v1"
