"""The function's pure rules: no S3, no Lambda, each tested on values alone.

``ordering`` (duplicate, stale or new; which version counts), ``scope`` (which buckets and keys
the deployment acts on), ``settings`` (the environment, and what is an input and where its
result goes), ``documents`` (the result documents). The total itself is ``handler.totals``.
"""
