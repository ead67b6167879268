"""Chapter 13: what stands between a model and a product (AI Engineering ch. 10; LLMs in Production ch. 1).

One module per concern: `pii` (input masking with a reverse map), `guards` (output format guard, topic filter),
`router` (intent routing), `gateway` (one interface over engines: timeouts, retries, fallback, rate limits),
`cache` (exact and semantic caches), `observe` (traces, metrics, drift), `feedback` (simulated user feedback) and
`buildbuy` (break-even of self-hosting against an API).
"""
