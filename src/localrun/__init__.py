"""The function run on this machine, for people rather than Lambda: ``make run``
(``localrun.invoke``: an embedded S3 playing S3's part) and ``make backfill``
(``localrun.backfill``:
the inputs already in a bucket). Not packaged with the function (``sam build`` copies
``src/handler`` alone); the command lines are ``scripts/local_invoke.py`` and
``scripts/backfill.py``."""
