"""Start-up of ranking-service: the model and the vector index are ready before /ready says so."""

import logging

from ranking import index, model, server

log = logging.getLogger(__name__)


def warm_up(settings):
    # Loading the ranking model and building the index over the whole catalogue takes about
    # 35 minutes; /ready answers 503 until both are done, so no request reaches a cold pod.
    server.set_ready(False)
    ranker = model.load(settings.model_uri)
    log.info("ranking model %s loaded", settings.model_uri)
    vectors = index.build(settings.catalogue_uri, dims=ranker.dims)
    log.info("vector index built: %d items", len(vectors))
    server.set_ready(True)
    return ranker, vectors
