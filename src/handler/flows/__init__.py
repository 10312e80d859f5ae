"""The two flows of an object event, peers that never import each other: ``created`` (an
upload, a restore, a Batch Operations task) and ``deleted``. Both end in the one step they share,
``recompute``: make the result fit the key's current object."""
