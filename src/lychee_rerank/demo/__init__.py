"""The example gallery used by ``make demo``, ``make eval`` and the tests (:mod:`.gallery`)."""
