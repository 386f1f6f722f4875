"""The commission's service (`linewatch aggregator`), one module per job:

- `mqtt`: the broker link (gmqtt) -- `ingest`: decode, verify, replay guard, refusals
- `store`, `store_sqlite`: the evidence log, incidents and node health
- `acks`: end-to-end acks and resend requests -- `health`: node health from births and heartbeats
- `alerts`: webhooks and alert topics -- `fusionhook`: events into linewatch.fusion, incidents out
- `evidence`: rows the commission writes itself -- `incidents`: stored incidents and their status
- `config`, `registry`: the service's config file and its node registry
- `service`: the round loop that runs them in order (broker -> ingest -> store -> acks, fusion)
"""
