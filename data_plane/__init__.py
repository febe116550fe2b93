"""Data plane: sync client, runtime (router + pipelines), proxy server, credential cache."""
