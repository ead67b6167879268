"""Inference economics: roofline, latency metrics, utilization, batching, a continuous-batching server, prefix caching.

One concern per module:
    roofline.py      attainable FLOP/s = min(peak, bandwidth × intensity); book hardware; this machine, measured
    latency.py       TTFT/TPOT/total latency, percentiles, goodput against an SLO
    utilization.py   MBU and MFU
    cost.py          $ per 1M tokens, cached vs uncached prompt tokens
    batching.py      a simulator of static, dynamic and continuous batching under Poisson arrivals
    engine.py        batched and ragged (continuous-batching) decode steps on the kit's own model code
    prefix_cache.py  reuse the KV cache of a shared prompt prefix
    protocol.py      the server's door: parse and validate a request body (4xx naming the field)
    server.py        a continuous-batching HTTP server on loopback: isolation, backpressure, draining, /health
    load.py          a loopback client and a Poisson load generator
    fuzz.py          a fuzz-and-load driver: many clients, good requests and every bad kind
"""
