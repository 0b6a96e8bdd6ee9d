"""The image classifier service: what a ClassifierService's pods run (:mod:`.classifier`) and its
local mode, ``foresight run -f classifierservice.yaml --local`` (:mod:`.local`).

A scrape-mode ForecastTask's ``/metrics`` server is the forecast package's
(:mod:`foresight.forecast.scrape`); ``foresight serve`` (:mod:`foresight.commands.serve`) starts
either.
"""
